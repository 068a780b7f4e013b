/**
 * Recovery from damage (`store.recoverFrom(file)`, `openStore({ onCorruption: "restore" })`): the records
 * that damage found at open (or by the background check, or by a compaction) made unreadable are brought
 * back from backups of the same store, newest backup first, through the store's normal write path, without
 * touching a record the store holds or bringing back one it deleted. The rule (docs/FORMAT.md, "Recovery
 * policy", "Recovery from a backup"):
 *
 * - **Named losses**: the recovery report's `records` (a damaged segment block, a block a compaction could
 *   not read): each comes from the newest backup that holds its key.
 * - **Unnamed losses** (journal frames, a whole segment): a backup of the same store holds the same file
 *   byte for byte up to its point, so a record is lost when its live location *in the backup* lies in the
 *   damaged bytes of the same file (same number, offset inside the damaged range). Only the newest backup
 *   that holds those bytes is used for them; bytes no backup holds (written after it) are reported unknown.
 * - Never brought back: a record the store holds now (newer, or for journal damage possibly the older value
 *   the lost write replaced: kept and reported), a record the store knows it deleted (`Engine.knowsDeleted`),
 *   record history entries (`~history:E`, internal).
 *
 * Values are read from the unpacked backup opened by the engine and checked whole (storage/restore.ts
 * `openBackup`), decoded with the backup's keys, migrated through the app's steps when older, and written
 * with `store.batch` (validation, indexes, history, events, quota), in one atomic write when they fit.
 */
import path from "node:path";
import { create, type DescMessage, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import { BackupForeignError, isCellarError, UsageError } from "../errors.js";
import { parseName } from "../format/filenames.js";
import { BackupKeyKind } from "../format/backup-file.js";
import { END_RECORD_SIZE } from "../format/format.js";
import type { KeyProvider } from "../crypto/keys.js";
import { type SensitiveKeys, ValueCodec } from "../crypto/value.js";
import type { Engine } from "../storage/engine.js";
import { listBackups, readBackupHeader } from "../storage/backup.js";
import { openBackup } from "../storage/restore.js";
import type { EntityDefinition } from "./entity.js";
import type { MigrationStep } from "./migration.js";
import { INTERNAL_PREFIX } from "./history.js";

export interface RecoverOptions {
  /** A backup sealed under a store master key: that key (default: the key this store was opened with). */
  key?: Uint8Array | KeyProvider;
  /** A password backup: its password. */
  password?: string | Uint8Array;
}

/** A lost record (or a damaged range whose records are unknown) that did not come back, and why. */
export interface MissingRecord {
  /** The entity and record key, when known (never a value). */
  entity?: string;
  key?: string;
  /** For losses whose records are unknown: the damaged file and offset from the recovery report. */
  file?: string;
  offset?: number;
  reason: string;
}

/** What `recoverFrom` (or `onCorruption: "restore"` at open) brought back and what it could not. */
export interface RecoverReport {
  /** Records written back, per entity (storage name). */
  restored: Record<string, number>;
  missing: MissingRecord[];
  /** The backup files records came from, newest first. */
  from: string[];
  /** Backups that were tried and could not be used (damaged, wrong key, another store, a newer schema). */
  skipped: { file: string; reason: string }[];
  /** Atomic writes used: 1, or more when the records did not fit in one write (then each is atomic on its own). */
  writes: number;
}

/** What recovery needs of the open store (StoreImpl). */
export interface RecoverHost {
  readonly engine: Engine;
  readonly defs: ReadonlyMap<string, EntityDefinition>;
  readonly migrations: readonly MigrationStep[];
  /** `Engine.knowsDeleted`, and the deletes this session made since damage was found. */
  knowsDeleted(entity: string, key: string, afterSeq?: number): boolean;
  /** The key the store was opened with (for backups sealed under it). */
  readonly storeKey: Uint8Array | KeyProvider | undefined;
  /**
   * Write `items` in one atomic batch, leaving out (synchronously, as the batch is built) those whose key the
   * store holds or is writing by then, and those the entity's validation refuses; resolves with those left
   * out and why.
   */
  write(items: readonly Found[]): Promise<Map<Found, string>>;
}

/** A record found in a backup, decoded (and migrated) into an input of its entity. */
export interface Found {
  def: EntityDefinition;
  key: string;
  input: unknown;
  /** Encoded size in the backup, for splitting writes. */
  bytes: number;
}

/** Record bytes per write: below the engine's 32 MiB limit for one write, with room for keys, terms and re-encoding. */
const WRITE_BUDGET = 8 * 1024 * 1024;

interface Unnamed {
  file: string;
  offset: number;
  kind: "journal" | "segment";
  number: number;
  /** End of the damaged range (Infinity: to the end of the file). */
  end: number;
  /** Set once the newest backup holding the bytes was read. */
  done: boolean;
}

const id = (entity: string, key: string) => `${entity}\u0000${key}`;

/** Recovery of the losses in `host.engine.recovery` from `files` (tried in the order given; see the file comment). */
export async function recover(host: RecoverHost, files: readonly string[], options: RecoverOptions, explicit: boolean): Promise<RecoverReport> {
  const report: RecoverReport = { restored: {}, missing: [], from: [], skipped: [], writes: 0 };
  const storeId = Buffer.from(host.engine.storeId).toString("hex");
  const check = (file: string) => {
    const { header } = readBackupHeader(host.engine.io, file);
    if (Buffer.from(header.storeId).toString("hex") !== storeId) throw new BackupForeignError(`\`${file}\` is a backup of another store: it cannot repair this one`);
  };
  if (explicit) for (const file of files) check(file); // each file named is a backup of this store, whatever was lost
  const { named, unnamed } = losses(host, report);
  if (!named.size && !unnamed.length) return report;
  const found = new Map<string, Found>();
  for (const file of files.map((f) => path.resolve(f))) {
    if (!named.size && unnamed.every((u) => u.done)) break;
    let used: boolean;
    try {
      check(file);
      used = await fromBackup(host, file, options, named, unnamed, found, report);
    } catch (e) {
      if (explicit || !isCellarError(e)) throw e;
      report.skipped.push({ file, reason: `${e.code}: ${e.message}` });
      continue;
    }
    if (used) report.from.push(file);
  }
  for (const r of named.values()) report.missing.push({ ...r, reason: "in no backup tried" });
  for (const u of unnamed) {
    if (!u.done) report.missing.push({ file: u.file, offset: u.offset, reason: "no backup tried holds the damaged bytes: the records they held are unknown" });
  }
  await writeFound(host, [...found.values()], report);
  return report;
}

/** The lost records the report names, and the damaged ranges whose records are unknown. */
function losses(host: RecoverHost, report: RecoverReport): { named: Map<string, { entity: string; key: string }>; unnamed: Unnamed[] } {
  const { engine, defs } = host;
  const named = new Map<string, { entity: string; key: string }>();
  const unnamed: Unnamed[] = [];
  for (const d of engine.recovery.damaged) {
    if (d.records.length === 0) {
      const p = parseName(d.file);
      if (p.kind !== "journal" && p.kind !== "segment") continue; // a manifest copy: no records
      if (d.bytes === 0 && d.reason.startsWith("unexpected sequence")) {
        // Frames missing before this place, not at it: where they were is unknown (docs/FORMAT.md, "Recovery policy").
        report.missing.push({ file: d.file, offset: d.offset, reason: "frames missing before this place (a gap in sequence): the records they held are unknown" });
        continue;
      }
      unnamed.push({ file: d.file, offset: d.offset, kind: p.kind, number: p.number, end: d.bytes > 0 ? d.offset + d.bytes : Infinity, done: false });
      continue;
    }
    for (const r of d.records) {
      if (engine.has(r.entity, r.key) || host.knowsDeleted(r.entity, r.key)) continue; // written or deleted since
      if (r.entity.startsWith(INTERNAL_PREFIX)) {
        report.missing.push({ entity: r.entity, key: r.key, reason: "record history is not recovered" });
      } else if (!defs.has(r.entity)) {
        report.missing.push({ entity: r.entity, key: r.key, reason: "not an entity of this store's schema" });
      } else named.set(id(r.entity, r.key), { entity: r.entity, key: r.key });
    }
  }
  return { named, unnamed };
}

/** Take what `file` holds of the losses still open; returns whether any record came from it. */
async function fromBackup(
  host: RecoverHost,
  file: string,
  options: RecoverOptions,
  named: Map<string, { entity: string; key: string }>,
  unnamed: Unnamed[],
  found: Map<string, Found>,
  report: RecoverReport,
): Promise<boolean> {
  const { header } = readBackupHeader(host.engine.io, file);
  const key = header.keyKind === BackupKeyKind.store ? (options.key ?? host.storeKey) : options.key;
  const opened = await openBackup(file, {
    io: host.engine.io,
    ...(key !== undefined && header.keyKind !== BackupKeyKind.password ? { key } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
  });
  const b = opened.engine;
  let used = false;
  const take = async (entity: string, k: string, version: number, value: Uint8Array) => {
    const def = host.defs.get(entity)!;
    const input = await decodeInput(host, def, k, version, value, b.keyring);
    if (typeof input === "string") report.missing.push({ entity, key: k, reason: input });
    else found.set(id(entity, k), { def, key: k, input: input.value, bytes: value.length + Buffer.byteLength(k) });
    used = true;
  };
  try {
    for (const [i, r] of named) {
      const loc = b.locate(r.entity, r.key);
      if (!loc) continue;
      named.delete(i);
      await take(r.entity, r.key, loc.version, b.read(r.entity, loc));
    }
    // A re-encoded backup (selective, or without the sensitive keys) packs a fresh segment and no journal: its
    // files are not byte copies of the store's, so places in them say nothing about the damaged bytes.
    const copies = header.files.some((f) => parseName(f.name).kind === "journal");
    for (const u of unnamed) {
      if (u.done || !copies) continue;
      const packed = header.files.find((f) => f.name === u.file);
      // A journal's copy ends in an end record the store's file does not have there: frames end before it.
      const held = packed ? packed.length - (u.kind === "journal" ? END_RECORD_SIZE : 0) : 0;
      if (held <= u.offset) continue; // the damaged bytes were written after this backup
      u.done = true;
      if (u.end > held) {
        report.missing.push({ file: u.file, offset: u.offset, reason: "records written there after the newest backup holding the file (if any) are unknown" });
      }
      for (const entity of b.entityNames()) {
        if (!host.defs.has(entity)) continue;
        const hits: [string, number, Uint8Array][] = [];
        for (const [k, loc] of b.scan(entity)) {
          if (loc.file !== u.number || loc.frameOffset < u.offset || loc.frameOffset >= u.end) continue;
          // A journal record's seq orders it against the deletes the store knows; a segment's precedes them all.
          if (found.has(id(entity, k)) || host.knowsDeleted(entity, k, u.kind === "journal" ? loc.seq : undefined)) continue;
          const mine = host.engine.locate(entity, k);
          if (mine && mine.file === loc.file && mine.frameOffset === loc.frameOffset) continue; // the same write, intact
          if (mine) {
            report.missing.push({ entity, key: k, reason: "the store holds another value of this record: kept" });
            continue;
          }
          hits.push([k, loc.version, b.read(entity, loc).slice()]);
        }
        for (const [k, version, value] of hits) await take(entity, k, version, value);
      }
    }
  } finally {
    await opened.dispose();
  }
  return used;
}

/** A backup's record as an input of `def` (migrated through the app's steps when older), or why it cannot be. */
async function decodeInput(
  host: RecoverHost,
  def: EntityDefinition,
  key: string,
  version: number,
  value: Uint8Array,
  keys: SensitiveKeys | null,
): Promise<{ value: unknown } | string> {
  if (version > def.version) return `stored at schema version ${version} in the backup, newer than this app's ${def.version}`;
  const steps = new Map(host.migrations.filter((s) => s.entity === def.name).map((s) => [s.from, s]));
  for (let v = version; v < def.version; v++) if (!steps.has(v)) return `no migration step from schema version ${v} to ${v + 1}`;
  const schema: DescMessage = version === def.version ? def.schema : steps.get(version)!.fromSchema;
  let msg: Message;
  try {
    msg = new ValueCodec(def.name, schema, []).decode(value, key, version, keys).msg;
  } catch (e) {
    return `does not decode as \`${schema.typeName}\` (${isCellarError(e) ? e.code : "error"})`;
  }
  let init: unknown = msg;
  for (let v = version; v < def.version; v++) {
    const step = steps.get(v)!;
    try {
      init = await step.migrate(msg, { entity: def.name, key: def.kind === "collection" ? key : undefined, from: v, to: v + 1 });
      if (typeof init !== "object" || init === null) throw new TypeError("the step returned no object");
      if (v + 1 < def.version) msg = create(step.toSchema, init as MessageInitShape<DescMessage>) as Message;
    } catch (e) {
      return `migration from schema version ${v} to ${v + 1} failed (${e instanceof Error ? e.constructor.name : typeof e})`;
    }
  }
  return { value: init };
}

/** Write what was found, in as few atomic writes as fit under the budget; count what was written. */
async function writeFound(host: RecoverHost, found: Found[], report: RecoverReport): Promise<void> {
  let i = 0;
  while (i < found.length) {
    const part: Found[] = [];
    let bytes = 0;
    while (i < found.length && (part.length === 0 || bytes + found[i]!.bytes <= WRITE_BUDGET)) {
      bytes += found[i]!.bytes;
      part.push(found[i++]!);
    }
    const left = await host.write(part);
    report.writes++;
    for (const f of part) {
      const why = left.get(f);
      if (why === undefined) report.restored[f.def.name] = (report.restored[f.def.name] ?? 0) + 1;
      else report.missing.push({ entity: f.def.name, key: f.key, reason: why });
    }
  }
}

/**
 * The backups `onCorruption: "restore"` tries: this store's intact backups in `dir`, newest first (none when
 * `dir` does not exist).
 */
export function backupsOf(engine: Engine, dir: string): string[] {
  if (!engine.io.exists(dir)) return [];
  const storeId = Buffer.from(engine.storeId).toString("hex");
  try {
    return listBackups(dir, engine.io).flatMap((b) => (b.damaged === null && b.storeId === storeId ? [b.file] : []));
  } catch (e) {
    if (isCellarError(e)) return [];
    throw e;
  }
}

/** Check `recoverFrom`'s arguments (E_USAGE). */
export function checkRecoverArgs(files: unknown, options: unknown): string[] {
  const list = typeof files === "string" ? [files] : Array.isArray(files) ? files : null;
  if (!list || !list.length || !list.every((f) => typeof f === "string" && f.length > 0)) {
    throw new UsageError("`recoverFrom` needs a backup file (or a list of them, newest first)");
  }
  if (options !== undefined && (typeof options !== "object" || options === null)) throw new UsageError("`recoverFrom` options must be an object: `{ key?, password? }`");
  return list as string[];
}
