/**
 * Index build at open (docs/FORMAT.md, "Index terms" and "`~indexes`"): each collection's declared indexes
 * against those its records' terms hold, as the internal engine entity `~indexes` records them. An index
 * declared and not built is built by the writer after upgrade (openStore, and a follower's promotion):
 * records walked in key order a slice at a time (≤ ~5 ms of work, then a turn of the event loop), each
 * decoded and its terms computed (index-keys.ts); every ~50 ms of slices, ONE engine write puts again the
 * records whose terms differ, with their same value bytes and version and the new terms, and `~indexes`
 * saying how far the build got (`building.after`). Killed midway, the next open resumes after that key.
 * Indexes built but no longer declared leave `built` (their terms are ignored and go at each record's next
 * write). A record the app writes meanwhile is left out of the write (it carries its terms already).
 *
 * A follower never builds; a query on an index not yet built gets `E_UNAVAILABLE` ({@link checkIndexBuilt},
 * which the query plan calls). Called by open-store.ts.
 */
import { create } from "@bufbuild/protobuf";
import { CellarError, isCellarError } from "../errors.js";
import { DecodeError, fromUtf8, utf8 } from "../format/bytes.js";
import { INDEXES_ENTITY } from "../format/format.js";
import { PayloadDecodeError, ValueCodec, ValueKind } from "../crypto/value.js";
import type { Engine, Loc, WriteOp } from "../storage/engine.js";
import type { CollectionDefinition, EntityDefinition } from "./entity.js";
import { type IndexKeyer, indexKeyers, indexTerms } from "./index-keys.js";

/** The internal engine entity recording, per app entity (key: its storage name), which indexes its records' terms hold. */
export { INDEXES_ENTITY } from "../format/format.js";

/** Progress of an index build at open (`StoreOptions.onIndexProgress`), after each slice. */
export interface IndexProgress {
  /** The entity's storage name. */
  entity: string;
  /** The index as the schema declares it (`"status"`, `"project_id,created_at"`). */
  index: string;
  /** Records of the entity gone through so far (of `total`). */
  done: number;
  total: number;
}

// The public option, merged into types.ts's StoreOptions (at its 500-line limit) by declaration merging.
declare module "./types.js" {
  interface StoreOptions {
    /**
     * Called while an index added to the schema is built at open (`openStore` resolves once every index is
     * built), after each slice of records. Example: `onIndexProgress: (p) => console.log(p.entity, p.index, p.done, p.total)`.
     */
    onIndexProgress?: (p: IndexProgress) => void;
  }
}

/** What `~indexes` records about one entity. */
export interface IndexState {
  /** Ids (`IndexSpec.id`) of the indexes every record's terms hold. */
  readonly built: readonly string[];
  /** A build under way: its ids, and the last key done (records up to it hold their terms). */
  readonly building?: { readonly ids: readonly string[]; readonly after?: string };
}

/**
 * A `~indexes` value: a plain record value (docs/FORMAT.md, "Record values") whose message is
 * `{ bytes json = 1 }`, the UTF-8 JSON `{"v":2,"built":[…],"building":{"ids":[…],"after":"…"}}`.
 * `v` is the term format the built indexes hold: 2 since absent components are encoded (index-keys.ts
 * `ABSENT`); a state of another `v` (1: a record lacking an unset Timestamp/Duration had no term) reads as no
 * state, so every declared index is built again at the writer's next open.
 */
export const INDEX_STATE_VERSION = 2;

export function encodeIndexState(s: IndexState): Uint8Array {
  const json = utf8(JSON.stringify({ v: INDEX_STATE_VERSION, built: s.built, ...(s.building ? { building: s.building } : {}) }));
  const len: number[] = [];
  for (let n = json.length; ; n = Math.floor(n / 128)) {
    if (n < 128) {
      len.push(n);
      break;
    }
    len.push((n % 128) | 128);
  }
  const out = new Uint8Array(2 + len.length + json.length);
  out[0] = ValueKind.plain;
  out[1] = 0x0a; // field 1, length-delimited
  out.set(len, 2);
  out.set(json, 2 + len.length);
  return out;
}

/** The state a `~indexes` value holds; undefined when it is not one (then the entity's indexes are built again). */
export function decodeIndexState(b: Uint8Array): IndexState | undefined {
  if (b.length < 3 || b[0] !== ValueKind.plain || b[1] !== 0x0a) return undefined;
  let at = 2;
  let len = 0;
  for (let shift = 1; at < b.length && shift < 2 ** 35; shift *= 128) {
    const x = b[at++]!;
    len += (x & 127) * shift;
    if (x < 128) break;
  }
  if (at + len !== b.length) return undefined;
  try {
    const o = JSON.parse(fromUtf8(b.subarray(at))) as { v?: unknown; built?: unknown; building?: { ids?: unknown; after?: unknown } };
    const ids = (x: unknown): x is string[] => Array.isArray(x) && x.every((i) => typeof i === "string");
    if (o.v !== INDEX_STATE_VERSION || !ids(o.built)) return undefined;
    const bl = o.building;
    if (bl === undefined) return { built: o.built };
    if (!ids(bl?.ids) || (bl.after !== undefined && typeof bl.after !== "string")) return undefined;
    return { built: o.built, building: { ids: bl.ids, ...(bl.after !== undefined ? { after: bl.after as string } : {}) } };
  } catch {
    return undefined;
  }
}

/** The last state read per engine and entity, with the seq of the `~indexes` record it came from. */
const stateCache = new WeakMap<Engine, Map<string, { seq: number; state: IndexState | undefined }>>();

/** What `~indexes` records about `entity` (undefined: nothing, or a value that does not parse). */
export function readIndexState(engine: Engine, entity: string): IndexState | undefined {
  const seq = engine.locateSeq(INDEXES_ENTITY, entity);
  let cache = stateCache.get(engine);
  if (!cache) stateCache.set(engine, (cache = new Map()));
  const hit = cache.get(entity);
  if (hit && hit.seq === seq) return hit.state;
  const rec = seq === 0 ? undefined : engine.get(INDEXES_ENTITY, entity);
  const state = rec ? decodeIndexState(rec.value) : undefined;
  cache.set(entity, { seq, state });
  return state;
}

/**
 * Whether the store has built index `id` of `def`: `~indexes` lists it, or the entity has no record and no
 * `~indexes` record (nothing to build). False while a writer builds it, or before one has.
 */
export function indexBuilt(engine: Engine, def: CollectionDefinition, id: string): boolean {
  const state = readIndexState(engine, def.name);
  return state ? state.built.includes(id) : engine.count(def.name) === 0;
}

/**
 * Throws `E_UNAVAILABLE` (a `CellarError`, retryable) when the store has not built `keyer`'s index yet: what a
 * query checks before it uses an index. (errors.ts is at its 500-line limit: no class of its own.)
 */
export function checkIndexBuilt(engine: Engine, def: CollectionDefinition, keyer: IndexKeyer): void {
  if (indexBuilt(engine, def, keyer.spec.id)) return;
  const by = engine.role === "follower" ? " by the writer process" : "";
  throw new CellarError("E_UNAVAILABLE", `index \`${keyer.spec.name}\` of \`${def.name}\` is being built${by}: a query can use it once the build at open is done`);
}

/**
 * A slice's work before a turn of the event loop; how long (or how many value bytes) slices gather records
 * before one write (with an fsync: one per slice made the build a matter of fsyncs).
 */
const SLICE_MS = 5;
const WRITE_MS = 50;
const SLICE_BYTES = 1024 * 1024;

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Build what every collection of `defs` declares and has not built (writer only, after upgrade). A build the
 * store's quota refuses (`E_QUOTA`) stops where it is, for that entity, and goes to `onRefused` (the store opens:
 * queries on those indexes get `E_UNAVAILABLE`, the next open goes on); any other failure rejects.
 */
export async function buildIndexes(
  engine: Engine,
  defs: Iterable<EntityDefinition>,
  onProgress?: (p: IndexProgress) => void,
  onRefused?: (e: CellarError) => void,
): Promise<void> {
  // Entities with nothing to build whose record says otherwise (new ones, indexes removed): one write for all.
  const settled: WriteOp[] = [];
  const builds: Build[] = [];
  for (const def of defs) {
    if (def.kind !== "collection") continue;
    const b = plan(engine, def);
    if (b.todo.length) builds.push(b);
    else if (b.stale) settled.push(stateOp(def, { built: b.declared }));
  }
  const refused = (e: unknown): void => {
    if (!isCellarError(e, "E_QUOTA")) throw e;
    onRefused?.(e);
  };
  if (settled.length) await engine.write(settled).catch(refused);
  for (const b of builds) await build(engine, b, onProgress).catch(refused);
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));

const stateOp = (def: CollectionDefinition, s: IndexState): WriteOp => ({ op: "put", entity: INDEXES_ENTITY, key: def.name, version: 1, value: encodeIndexState(s), terms: [] });

interface Build {
  def: CollectionDefinition;
  declared: string[];
  /** Declared and built. */
  built: string[];
  /** Declared and not built. */
  todo: IndexKeyer[];
  /** Where a build killed midway stopped (records up to this key are done). */
  after: string | undefined;
  /** With nothing to build: whether `~indexes` says otherwise (or nothing). */
  stale: boolean;
}

function plan(engine: Engine, def: CollectionDefinition): Build {
  const keyers = indexKeyers(def);
  const declared = keyers.map((k) => k.spec.id);
  const state = readIndexState(engine, def.name);
  const built = state ? state.built.filter((id) => declared.includes(id)) : [];
  // An entity without records holds every index it declares.
  const todo = engine.count(def.name) === 0 ? [] : keyers.filter((k) => !built.includes(k.spec.id));
  const ids = todo.map((k) => k.spec.id);
  // Resumed only when it builds the same indexes: records before `after` hold the terms of exactly those.
  const after = state?.building && sameSet(state.building.ids, ids) ? state.building.after : undefined;
  return { def, declared, built, todo, after, stale: !state || state.building !== undefined || !sameSet(state.built, declared) };
}

/** A record read for a write to come, and where its value was then. */
interface Pending {
  op: WriteOp;
  loc: Loc;
}

async function build(engine: Engine, b: Build, onProgress?: (p: IndexProgress) => void): Promise<void> {
  const { def, todo, built, declared } = b;
  const ids = todo.map((k) => k.spec.id);
  const total = engine.count(def.name);
  /** On disk: the last key done, and the records up to it. */
  let saved = b.after;
  let savedCount = saved === undefined ? 0 : total - (await countAfter(engine, def.name, saved));
  /** Read: the last key gone through, and the records up to it. */
  let after = saved;
  let count = savedCount;
  let pending: Pending[] = [];
  let bytes = 0;
  let generation = engine.position.generation;
  let since = performance.now();
  const codec = new ValueCodec(def.name, def.schema, def.sensitive, def.codec);
  const zero = create(def.schema) as Record<string, unknown>;
  for (;;) {
    if (pending.length === 0) generation = engine.position.generation;
    const slice = nextSlice(engine, def, codec, zero, after);
    pending.push(...slice.pending);
    bytes += slice.bytes;
    count += slice.records;
    after = slice.last ?? after;
    if (slice.end || bytes >= SLICE_BYTES || performance.now() - since >= WRITE_MS) {
      for (let wait = engine.unsettled(); wait; wait = engine.unsettled()) await wait;
      // One synchronous step from here to the write: no write is queued, so the live records are what the
      // store holds, and this write is queued before any the app issues after it (which then win).
      if (engine.position.generation !== generation) {
        // A compaction moved the records read (their locations say nothing now): read them again.
        [after, count, pending, bytes] = [saved, savedCount, [], 0];
        continue;
      }
      // Records the app wrote since they were read carry their terms already; deleted ones are gone.
      const ops = pending.filter((p) => sameLoc(engine.locate(def.name, p.op.key), p.loc)).map((p) => p.op);
      const state: IndexState = slice.end ? { built: declared } : { built, building: { ids, ...(after !== undefined ? { after } : {}) } };
      const write = engine.write([...ops, stateOp(def, state)]);
      [saved, savedCount, pending, bytes] = [after, count, [], 0];
      await write;
      for (const k of todo) onProgress?.({ entity: def.name, index: k.spec.name, done: count, total: Math.max(total, count) });
      if (slice.end) return;
      since = performance.now();
    }
    await turn();
  }
}

const sameLoc = (a: Loc | undefined, b: Loc): boolean => a !== undefined && a.file === b.file && a.frameOffset === b.frameOffset && a.start === b.start;

/** The records after `after` in one slice of work: those whose terms differ, to be put again; the last key gone through. */
function nextSlice(
  engine: Engine,
  def: CollectionDefinition,
  codec: ValueCodec,
  zero: Record<string, unknown>,
  after: string | undefined,
): { pending: Pending[]; bytes: number; records: number; last: string | undefined; end: boolean } {
  const start = performance.now();
  const pending: Pending[] = [];
  let bytes = 0;
  let records = 0;
  let last: string | undefined;
  for (const [key, loc] of engine.scan(def.name, after)) {
    if (records > 0 && (bytes >= SLICE_BYTES || (records % 16 === 0 && performance.now() - start >= SLICE_MS))) return { pending, bytes, records, last, end: false };
    records++;
    last = key;
    // A record at another schema version than the app's (none after upgrade) or one that cannot be read
    // (damage, reported by the read) keeps its terms.
    if (loc.version !== def.version) continue;
    let value: Uint8Array;
    let terms: string[];
    try {
      value = engine.read(def.name, loc);
      terms = indexTerms(def, codec.decode(value, key, loc.version, null, true).msg as unknown as Record<string, unknown>, zero);
    } catch (e) {
      if (e instanceof CellarError || e instanceof PayloadDecodeError || e instanceof DecodeError) continue;
      throw e;
    }
    if (sameSet(terms, loc.terms)) continue; // written with these terms already (by this app version)
    pending.push({ op: { op: "put", entity: def.name, key, version: loc.version, value: value.slice(), terms }, loc });
    bytes += value.length;
  }
  return { pending, bytes, records, last, end: true };
}

/** Records of `entity` whose key sorts after `after`, counted a slice at a time. */
async function countAfter(engine: Engine, entity: string, after: string): Promise<number> {
  let n = 0;
  let from = after;
  for (;;) {
    const start = performance.now();
    let more = false;
    for (const [key] of engine.scan(entity, from)) {
      n++;
      from = key;
      if (n % 256 === 0 && performance.now() - start >= SLICE_MS) {
        more = true;
        break;
      }
    }
    if (!more) return n;
    await turn();
  }
}
