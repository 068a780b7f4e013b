/**
 * A full check of a store without opening it for the app (`cellar verify`): opened for reading
 * (describe.ts `openForReading`: read-only with every segment block's crc checked before open returns, or
 * a follower engine when another process holds the store), then every live record of every entity read
 * (its block's or frame's checksum and tag checked, as a read checks them) and, for the app's entities at
 * the schema's version, decoded (protobuf, and the sealed part of sensitive fields opened: its tag checked).
 * Damage is collected, not thrown: the report lists every finding. No record is written; at the end the
 * result (counts, when, by whom) replaces the store directory's `VERIFIED` file (verified.ts, which
 * `lastVerification` reads), unless `record: false`. Values never leave this module: a finding names entity,
 * key, file and offset only.
 */
import { CorruptionError, isCellarError } from "../errors.js";
import { PayloadDecodeError, ValueCodec } from "../crypto/value.js";
import type { Loc, RecoveryReport } from "../storage/engine.js";
import type { EntityDefinition } from "./entity.js";
import { openForReading, type ReadOpened, type ReadOpenOptions } from "./describe.js";
import { type LastVerification, recordVerification, verificationOf } from "./verified.js";

export interface VerifyFinding {
  /** `"damage"`: bytes that fail their checks (found at open, or reading a record); `"decode"`: intact bytes that do not decode as the entity's message. */
  kind: "damage" | "decode";
  reason: string;
  file?: string;
  offset?: number;
  entity?: string;
  key?: string;
  /** Records lost with damaged bytes (entity and key), when known. */
  records?: { entity: string; key: string }[];
}

export interface VerifyReport {
  opened: ReadOpened["opened"];
  holderPid: number | null;
  /** Whether every segment block's crc was checked at open (not as a follower: blocks holding no live record are then not read). */
  blocksChecked: boolean;
  /** Live records read, per engine entity, and of those decoded. */
  read: Record<string, number>;
  decoded: number;
  /** Records at an older schema version: checked (checksum, tag), not decoded with the app's schema. */
  older: number;
  findings: VerifyFinding[];
  recovery: RecoveryReport;
  /** What was written to `VERIFIED` (null with `record: false`, or when writing it failed: `recordError`). */
  recorded: LastVerification | null;
  /** Why `VERIFIED` could not be written (a read-only directory, say); the verification itself stands. */
  recordError?: string;
}

/** `verifyStore`'s options: how to open the store, and how the result is recorded. */
export interface VerifyStoreOptions extends Omit<ReadOpenOptions, "verifyBlocks" | "keyScope"> {
  /** Write the result to the store's `VERIFIED` (default true). */
  readonly record?: boolean;
  /** Who runs it, recorded in `VERIFIED` (`cellar verify`: `cellar-cli:<OS user>`). Default "". */
  readonly by?: string;
}

function damageAtOpen(recovery: RecoveryReport): VerifyFinding[] {
  const found: VerifyFinding[] = recovery.damaged.map((d) => ({ kind: "damage", reason: d.reason, file: d.file, offset: d.offset, records: d.records }));
  const t = recovery.truncatedTail;
  if (t) found.push({ kind: "damage", reason: `the journal's end: ${t.reason}`, file: t.file, offset: t.offset });
  return found;
}

/** One record read and, when `codec` is given, decoded; a problem as a finding, else null. */
function checkRecord(r: ReadOpened, entity: string, key: string, loc: Loc, codec: ValueCodec | null): VerifyFinding | null {
  const { engine } = r;
  try {
    const bytes = engine.read(entity, loc);
    if (codec) codec.decode(bytes, key, loc.version, engine.keyring, false);
    return null;
  } catch (e) {
    if (e instanceof CorruptionError) return { kind: "damage", reason: e.message, entity, key, ...engine.where(loc) };
    if (e instanceof PayloadDecodeError || (isCellarError(e) && e.code === "E_SCHEMA_MISMATCH")) {
      return { kind: "decode", reason: `does not decode as the entity's message (${(e as Error).message})`, entity, key, ...engine.where(loc) };
    }
    if (isCellarError(e)) return { kind: "damage", reason: `${e.message} (${e.code})`, entity, key, ...engine.where(loc) };
    return { kind: "damage", reason: `bad payload (${(e as Error).message})`, entity, key, ...engine.where(loc) };
  }
}

/** Check the store at `options.dir` against `entities`; `onProgress(done, total)` as records are read. */
export async function verifyStore(entities: Record<string, EntityDefinition>, options: VerifyStoreOptions, onProgress?: (done: number, total: number) => void): Promise<VerifyReport> {
  const { record = true, by = "", ...open } = options;
  const started = performance.now();
  const report = await check(entities, open, onProgress);
  if (!record) return report;
  const v = verificationOf(report, by, performance.now() - started);
  try {
    recordVerification(options.dir, v);
    report.recorded = v;
  } catch (e) {
    report.recordError = (e as Error).message;
  }
  return report;
}

async function check(entities: Record<string, EntityDefinition>, options: Omit<ReadOpenOptions, "verifyBlocks" | "keyScope">, onProgress?: (done: number, total: number) => void): Promise<VerifyReport> {
  const r = await openForReading({ ...options, verifyBlocks: true, keyScope: "all" });
  try {
    const defs = new Map(Object.values(entities).map((d) => [d.name, d]));
    const report: VerifyReport = { opened: r.opened, holderPid: r.holderPid, blocksChecked: r.opened === "read-only", read: {}, decoded: 0, older: 0, findings: damageAtOpen(r.engine.recovery), recovery: r.engine.recovery, recorded: null };
    // Every live record's location first (a scan is consumed in one synchronous step), then read in slices.
    const work: { entity: string; key: string; loc: Loc; codec: ValueCodec | null }[] = [];
    for (const entity of r.engine.entityNames().sort()) {
      const def = defs.get(entity);
      const codec = def ? new ValueCodec(def.name, def.schema, def.sensitive, def.codec) : null;
      for (const [key, loc] of r.engine.scan(entity)) {
        const current = def !== undefined && loc.version === def.version;
        if (def && !current) report.older++;
        work.push({ entity, key, loc, codec: current ? codec : null });
      }
    }
    for (let i = 0; i < work.length; i++) {
      const w = work[i]!;
      const finding = checkRecord(r, w.entity, w.key, w.loc, w.codec);
      report.read[w.entity] = (report.read[w.entity] ?? 0) + 1;
      if (finding) report.findings.push(finding);
      else if (w.codec) report.decoded++;
      if (i % 256 === 255) {
        onProgress?.(i + 1, work.length);
        await new Promise<void>((res) => setImmediate(res));
      }
    }
    onProgress?.(work.length, work.length);
    return report;
  } finally {
    await r.engine.close();
  }
}
