/**
 * `store.export()`: the store's records as NDJSON (docs/FORMAT.md, "Export file (NDJSON)"): a header line,
 * then one line per record, `{"entity","version","key","record"}` with the record in protobuf JSON. Streamed:
 * keys are scanned a page at a time (one synchronous step each, like `iterate()`), each page written through
 * a file stream that is awaited when it asks for backpressure, with an event-loop turn between pages; memory
 * does not grow with the store (beyond the keys of records still in the journal, which compaction bounds). Written to `<to>.tmp`, fsynced and renamed over `to`. Sensitive fields are
 * left out (absent from the record's JSON, their paths listed in the header) unless `includeSensitive`.
 * StoreImpl.export (store.ts) and SingletonImpl.export (singleton.ts) call it.
 */
import fs from "node:fs";
import path from "node:path";
import { CellarError, CorruptionError, IoError, NoSpaceError, SchemaNewerError, UsageError } from "../errors.js";
import type { Engine, Loc } from "../storage/engine.js";
import type { EntityDefinition } from "./entity.js";
import { jsonWriter } from "./json-writer.js";
import { BAIL, jsonTranscoder, type JsonOut, OK, type Transcoder } from "./json-transcode.js";
import { parseEnvelope, ValueKind } from "../crypto/value.js";
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

/** One record's line (the value read at `loc`, sensitive fields left out unless `includeSensitive`). */
function exportLine(engine: Engine, codec: RecordCodec, def: EntityDefinition, key: string, loc: Loc, includeSensitive: boolean): string {
  if (loc.version > def.version) throw new SchemaNewerError(def.name, loc.version, def.version);
  let json: string;
  try {
    const { msg } = codec.codecs.get(def.name)!.decode(engine.read(def.name, loc), key, loc.version, codec.keys, !includeSensitive);
    json = jsonWriter(def.schema)(msg);
  } catch (e) {
    if (e instanceof CellarError) throw e;
    // The same report a read gives: entity, file and offset, never the record's key or value.
    const { file, offset } = engine.where(loc);
    throw new CorruptionError(file, offset, `bad payload (a \`${def.name}\` record does not decode for export)`, { cause: e });
  }
  // As JSON.stringify({ entity, version, key, record }) writes it, the record's text made in one pass.
  return `{"entity":${JSON.stringify(def.name)},"version":${loc.version},"key":${JSON.stringify(key)},"record":${json}}`;
}

/**
 * The lines of one page of `def`'s records after key `after` (all of them for a singleton): one synchronous
 * step over the engine's scan, `PAGE` records scanned at most. With `later`, records whose value is in a
 * journal are not read but their keys pushed there (see {@link exportEntity}). Returns the lines and the
 * last key scanned.
 */
export function exportPage(
  engine: Engine,
  codec: RecordCodec,
  def: EntityDefinition,
  after: string | undefined,
  includeSensitive: boolean,
  later?: [string, Loc][],
): { lines: string[]; last: string | undefined; scanned: number } {
  const lines: string[] = [];
  let last: string | undefined;
  let scanned = 0;
  for (const [key, loc] of engine.scan(def.name, after)) {
    last = key;
    if (later && engine.inJournal(loc)) later.push([key, loc]);
    else lines.push(exportLine(engine, codec, def, key, loc, includeSensitive));
    if (++scanned === PAGE) break;
  }
  return { lines, last, scanned };
}

/**
 * One record's line written straight into `out` (see {@link exportLine}): the record's bytes transcoded to
 * JSON (json-transcode.ts) when it takes them, else the line {@link exportLine} makes. False, with nothing
 * written, when `out` has no room for it.
 */
function exportInto(out: JsonOut, engine: Engine, codec: RecordCodec, def: EntityDefinition, head: Buffer, transcode: Transcoder, key: string, loc: Loc, includeSensitive: boolean): boolean {
  if (loc.version > def.version) throw new SchemaNewerError(def.name, loc.version, def.version);
  const start = out.pos;
  const value = engine.read(def.name, loc);
  // The message bytes the general path decodes (ValueCodec.decode), when they are one part: a plain value,
  // or a sensitive one's public part (no sealed part, or sealed and left out).
  let body: Uint8Array | null = null;
  if (value[0] === ValueKind.plain) body = value.subarray(1);
  else {
    try {
      const env = parseEnvelope(value);
      if (!env.sealed || !includeSensitive) body = env.public;
    } catch {
      // malformed: the general path reports it
    }
  }
  if (body) {
    const tail = `${loc.version},"key":${JSON.stringify(key)},"record":`;
    if (out.pos + head.length + tail.length * 3 + 2 <= out.buf.length) {
      out.buf.set(head, out.pos);
      out.pos += head.length;
      out.pos += out.buf.write(tail, out.pos, "utf8");
      const r = transcode(body, out);
      if (r === OK && out.pos + 2 <= out.buf.length) {
        out.buf[out.pos++] = 0x7d; // }
        out.buf[out.pos++] = 0x0a;
        return true;
      }
      out.pos = start;
      if (r !== BAIL) return false;
    } else return false;
  }
  const line = exportLine(engine, codec, def, key, loc, includeSensitive);
  if (out.pos + line.length * 3 + 1 > out.buf.length) return false;
  out.pos += out.buf.write(line, out.pos, "utf8");
  out.buf[out.pos++] = 0x0a;
  return true;
}

/**
 * Every record of `def`, a page at a time, each line written straight into the output chunk: first the
 * segment's in key order (its blocks one after another), then those in the journals in file order (each
 * frame read once; there are at most a journal's worth of them, which compaction bounds). Reading journal
 * records in key order instead decrypts a whole frame per record once the block cache no longer holds them
 * all. A page ends early when the chunk is full (it is handed to the file and the page goes on after it).
 */
async function exportEntity(engine: Engine, codec: RecordCodec, def: EntityDefinition, includeSensitive: boolean, lines: ChunkedLines, progress: (done: number) => void): Promise<number> {
  const out = lines.out;
  const head = Buffer.from(`{"entity":${JSON.stringify(def.name)},"version":`);
  const transcode = jsonTranscoder(def.schema);
  const line = (key: string, loc: Loc) => exportInto(out, engine, codec, def, head, transcode, key, loc, includeSensitive);
  let done = 0;
  const pageDone = async (n: number, full: boolean) => {
    done += n;
    progress(done);
    if (full) await lines.room(n === 0);
    // A turn of the event loop between pages: writes and timers go on during a long export.
    await new Promise<void>((r) => setImmediate(r));
  };
  let after: string | undefined;
  const later: [string, Loc][] = [];
  for (;;) {
    let scanned = 0;
    let n = 0;
    let full = false;
    for (const [key, loc] of engine.scan(def.name, after)) {
      if (engine.inJournal(loc)) later.push([key, loc]);
      else if (line(key, loc)) n++;
      else {
        full = true;
        break;
      }
      after = key;
      if (++scanned === PAGE) break;
    }
    if (scanned === 0 && !full) break;
    await pageDone(n, full);
  }
  // The journals' records, in file order of where the scan found them (each read below from where it is
  // then: a key deleted meanwhile is skipped, one moved is read where it went). Without writes meanwhile
  // that is where they are; locating each again for the sort only cost a map lookup per record.
  later.sort((a, b) => {
    const x = a[1];
    const y = b[1];
    return x.file - y.file || x.frameOffset - y.frameOffset || x.start - y.start;
  });
  const keys = later.map((p) => p[0]);
  later.length = 0;
  for (let i = 0; i < keys.length; ) {
    let n = 0;
    let full = false;
    for (const stop = Math.min(keys.length, i + PAGE); i < stop; i++) {
      const k = keys[i]!;
      const loc = engine.locate(def.name, k); // where it is now: a compaction may have moved it
      if (!loc) continue;
      if (!line(k, loc)) {
        full = true;
        break;
      }
      n++;
    }
    await pageDone(n, full);
  }
  return done;
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
  // A 1 MiB buffer: the next pages are encoded while the last ones are written (16 KiB, the default, made
  // every page wait for its own write).
  const out = fs.createWriteStream(tmp, { mode: 0o600, flags: "w", highWaterMark: CHUNK });
  const failed = new Promise<never>((_, reject) => out.once("error", reject));
  failed.catch(() => {});
  const lines = chunkedLines(out, failed);
  const { write, flush } = lines;
  const records: Record<string, number> = {};
  let ok = false;
  try {
    await Promise.race([new Promise<void>((r) => out.once("open", () => r())), failed]);
    await write([JSON.stringify(exportHeader(engine, picked, includeSensitive))]);
    for (const def of picked) {
      const total = engine.count(def.name);
      const done = await exportEntity(engine, codec, def, includeSensitive, lines, (d) => options.onProgress?.({ entity: def.name, done: d, total }));
      records[def.name] = done;
      if (done === 0) options.onProgress?.({ entity: def.name, done, total });
    }
    await flush();
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
  } catch (e) {
    throw fileFailure(e, "export", target);
  } finally {
    if (!ok) {
      out.destroy();
      fs.rmSync(tmp, { force: true });
    }
  }
  return { file: target, records, redacted: !includeSensitive };
}

/** Bytes of UTF-8 handed to the file stream at a time. */
const CHUNK = 1 << 20;

/** See {@link chunkedLines}. */
export interface ChunkedLines {
  /** The chunk being filled: lines may be written straight into `out.buf` from `out.pos` (each ending in `\n`). */
  out: JsonOut;
  write: (lines: readonly string[]) => Promise<void>;
  /** Hand the chunk to the file (when anything is in it). */
  flush: () => Promise<void>;
  /** Make room after a line did not fit: the chunk is handed over, and made twice as big when `grow` (the line did not fit an empty one). */
  room: (grow: boolean) => Promise<void>;
}

/**
 * Lines (each followed by `\n`) encoded straight into 1 MiB buffers, each handed to `out` whole when the next
 * line may not fit (awaiting its drain when it asks): no joined string of a page, no second copy of it
 * (`lines.join` then the stream's own UTF-8 encoding of it were a third of an export's time). The bytes are
 * those of `Buffer.from(text)` (lone surrogates as U+FFFD), as before. Export also writes its records' lines
 * into the chunk itself (`out`, `room`).
 */
export function chunkedLines(out: fs.WriteStream, failed: Promise<never>): ChunkedLines {
  const o: JsonOut = { buf: Buffer.allocUnsafe(CHUNK), pos: 0 };
  const flush = async () => {
    if (o.pos === 0) return;
    const chunk = o.buf.subarray(0, o.pos);
    o.buf = Buffer.allocUnsafe(Math.max(CHUNK, o.buf.length)); // the stream holds `chunk` until it is written
    o.pos = 0;
    if (!out.write(chunk)) await Promise.race([new Promise<void>((r) => out.once("drain", () => r())), failed]);
  };
  const write = async (lines: readonly string[]) => {
    for (const text of lines) {
      const most = text.length * 3 + 1; // UTF-8 bytes of a UTF-16 code unit: at most 3 (a pair: 4 for 2)
      if (o.pos + most > o.buf.length) {
        await flush();
        if (most > o.buf.length) o.buf = Buffer.allocUnsafe(most);
      }
      o.pos += o.buf.write(text, o.pos, "utf8");
      o.buf[o.pos++] = 0x0a;
    }
  };
  const room = async (grow: boolean) => {
    const empty = o.pos === 0;
    await flush();
    if (grow && empty) o.buf = Buffer.allocUnsafe(o.buf.length * 2);
  };
  return { out: o, write, flush, room };
}

/** A failure of the file system while exporting or importing `file`, as a CellarError (`E_IO`, `E_NOSPACE`); others as they are. */
export function fileFailure(e: unknown, op: "export" | "import", file: string): unknown {
  if (e instanceof CellarError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  if (typeof code !== "string") return e;
  if (code === "ENOSPC" || code === "EDQUOT") return new NoSpaceError(path.basename(file), { cause: e });
  return new IoError(op, path.basename(file), code, { cause: e });
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
