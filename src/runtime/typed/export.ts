/**
 * `store.export()`: the store's records as NDJSON (docs/FORMAT.md, "Export file (NDJSON)"): a header line,
 * then one line per record, `{"entity","version","key","record"}` with the record in protobuf JSON. Streamed:
 * keys are scanned a page at a time (one synchronous step each, like `iterate()`), each page written through
 * a file stream that is awaited when it asks for backpressure, with an event-loop turn between pages; memory
 * does not grow with the store. Written to `<to>.tmp`, fsynced and renamed over `to`. Sensitive fields are
 * left out (absent from the record's JSON, their paths listed in the header) unless `includeSensitive`.
 * StoreImpl.export (store.ts) and SingletonImpl.export (singleton.ts) call it.
 */
import fs from "node:fs";
import path from "node:path";
import { toJson } from "@bufbuild/protobuf";
import { CellarError, CorruptionError, SchemaNewerError, UsageError } from "../errors.js";
import type { Engine } from "../storage/engine.js";
import type { EntityDefinition } from "./entity.js";
import type { RecordCodec } from "./record-codec.js";

/** The `format` and `version` of the header line this code writes (and the only ones import reads). */
export const EXPORT_FORMAT = "cellar-export";
export const EXPORT_VERSION = 1;

export interface ExportOptions {
  /** The file to write (replaced atomically: written to `<to>.tmp`, then renamed). */
  to: string;
  /** Storage names of the entities to export (default: every entity of the store). */
  entities?: readonly string[];
  /** Write sensitive fields in clear text into the file. Default false: they are left out. */
  includeSensitive?: boolean;
  /** Called every 256 records and at the end of each entity. */
  onProgress?: (p: { entity: string; done: number; total: number }) => void;
}

export interface ExportResult {
  file: string;
  /** Records written, per entity storage name. */
  records: Record<string, number>;
  /** True when sensitive fields were left out. */
  redacted: boolean;
}

/** The header line's object (the first line of an export file). */
export interface ExportHeader {
  format: typeof EXPORT_FORMAT;
  version: number;
  storeId: string;
  createdAt: string;
  includeSensitive: boolean;
  entities: { entity: string; kind: "collection" | "singleton"; version: number; records: number; redacted: string[] }[];
}

/** Records a page reads in one synchronous step. */
const PAGE = 256;

/** The entities `names` selects, checked (internal `~` entities are never among a store's definitions). */
export function pickEntities(defs: ReadonlyMap<string, EntityDefinition>, names: readonly string[] | undefined): EntityDefinition[] {
  if (names === undefined) return [...defs.values()];
  if (!Array.isArray(names)) throw new UsageError("`entities` is an array of entity storage names");
  return names.map((n) => {
    const def = defs.get(n);
    if (!def) throw new UsageError(`no entity \`${String(n)}\` in this store (storage names: ${[...defs.keys()].join(", ")})`);
    return def;
  });
}

/** The header line for `defs` (record counts as of the start of the export). */
export function exportHeader(engine: Engine, defs: readonly EntityDefinition[], includeSensitive: boolean): ExportHeader {
  return {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    storeId: Buffer.from(engine.storeId).toString("hex"),
    createdAt: new Date().toISOString(),
    includeSensitive,
    entities: defs.map((d) => ({
      entity: d.name,
      kind: d.kind,
      version: d.version,
      records: engine.count(d.name),
      redacted: includeSensitive ? [] : [...d.sensitive],
    })),
  };
}

/**
 * The lines of one page of `def`'s records after key `after` (all of them for a singleton): one synchronous
 * step over the engine's scan. Returns the lines and the last key.
 */
export function exportPage(
  engine: Engine,
  codec: RecordCodec,
  def: EntityDefinition,
  after: string | undefined,
  includeSensitive: boolean,
): { lines: string[]; last: string | undefined } {
  const lines: string[] = [];
  let last: string | undefined;
  const values = codec.codecs.get(def.name)!;
  for (const [key, loc] of engine.scan(def.name, after)) {
    if (loc.version > def.version) throw new SchemaNewerError(def.name, loc.version, def.version);
    let json;
    try {
      const { msg } = values.decode(engine.read(def.name, loc), key, loc.version, codec.keys, !includeSensitive);
      json = toJson(def.schema, msg);
    } catch (e) {
      if (e instanceof CellarError) throw e;
      // The same report a read gives: entity, file and offset, never the record's key or value.
      const { file, offset } = engine.where(loc);
      throw new CorruptionError(file, offset, `bad payload (a \`${def.name}\` record does not decode for export)`, { cause: e });
    }
    lines.push(JSON.stringify({ entity: def.name, version: loc.version, key, record: json }));
    last = key;
    if (lines.length === PAGE) break;
  }
  return { lines, last };
}

/** Export `options.entities` of the store to `options.to`. */
export async function exportStore(engine: Engine, codec: RecordCodec, defs: ReadonlyMap<string, EntityDefinition>, redactedStore: boolean, options: ExportOptions): Promise<ExportResult> {
  if (typeof options !== "object" || options === null || typeof options.to !== "string" || options.to === "") {
    throw new UsageError("`export` takes `{ to }`, the path of the file to write");
  }
  const includeSensitive = options.includeSensitive === true;
  if (includeSensitive && redactedStore) throw new UsageError("a `redactSensitive` store has no sensitive values to export; leave out `includeSensitive`");
  const picked = pickEntities(defs, options.entities);
  const target = path.resolve(options.to);
  const tmp = `${target}.tmp`;
  const out = fs.createWriteStream(tmp, { mode: 0o600, flags: "w" });
  const failed = new Promise<never>((_, reject) => out.once("error", reject));
  failed.catch(() => {});
  const write = async (text: string) => {
    if (!out.write(text)) await Promise.race([new Promise<void>((r) => out.once("drain", () => r())), failed]);
  };
  const records: Record<string, number> = {};
  let ok = false;
  try {
    await Promise.race([new Promise<void>((r) => out.once("open", () => r())), failed]);
    await write(JSON.stringify(exportHeader(engine, picked, includeSensitive)) + "\n");
    for (const def of picked) {
      const total = engine.count(def.name);
      let done = 0;
      let after: string | undefined;
      for (;;) {
        const { lines, last } = exportPage(engine, codec, def, after, includeSensitive);
        if (lines.length === 0) break;
        await write(lines.join("\n") + "\n");
        done += lines.length;
        after = last;
        options.onProgress?.({ entity: def.name, done, total });
        // A turn of the event loop between pages: writes and timers go on during a long export.
        await new Promise<void>((r) => setImmediate(r));
      }
      records[def.name] = done;
      if (done === 0) options.onProgress?.({ entity: def.name, done, total });
    }
    await Promise.race([new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r()))), failed]);
    const fd = fs.openSync(tmp, "r+");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
    syncDir(path.dirname(target));
    ok = true;
  } finally {
    if (!ok) {
      out.destroy();
      fs.rmSync(tmp, { force: true });
    }
  }
  return { file: target, records, redacted: !includeSensitive };
}

function syncDir(dir: string): void {
  if (process.platform === "win32") return;
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
