/**
 * A collection's repository (`Collection` in types.ts): get, put, delete, has, count, keys, list, iterate
 * (a page at a time) and the queries (query.ts over query-plan.ts's plans), with `offset`/`limit` paging. StoreImpl (store.ts) makes
 * one per collection entity; batch.ts finds them to build a transaction's collection writes.
 */
import type { JsonValue } from "@bufbuild/protobuf";
import { NotFoundError, UsageError, ValidationError } from "../errors.js";
import type { WriteOp } from "../storage/engine.js";
import type { CollectionDefinition, KeyValue } from "./entity.js";
import type { RecordCodec } from "./record-codec.js";
import type { StoreImpl } from "./store.js";
import type { ArchiveOptions, ArchiveResult } from "./archive.js";
import type { ListOptions } from "./types.js";
import { decodeKey, encodeKey, keyOf } from "./values.js";
import { querySource, sameRecord, type Watchers } from "./watch.js";
import { checkIndexBuilt } from "./index-build.js";
import { type QueryContext, runCount, runExplain, runQuery, runQueryPage, watchQuery } from "./query.js";
import type { QueryExplain, QueryOptions, QueryPage } from "./query-types.js";
import type { AggregateBucket, AggregateOptions } from "./aggregate.js";
import { runAggregate } from "./aggregate-run.js";
import { overdue, turn } from "../platform/turn.js";
import { ProtoWriter } from "../format/protowire.js";

export class CollectionImpl {
  /**
   * Per key with a write issued through this repository and not yet settled: the last such write (settled
   * or not, it removes itself when done). `update` reads a key only once none is left, so that it reads the
   * result of every earlier write to the key (the engine shows a write only once committed).
   */
  private readonly inflight = new Map<string, Promise<void>>();
  constructor(
    private readonly store: StoreImpl,
    /** The store's RecordCodec, held here so a get or put reaches it in one step. */
    private readonly codec: RecordCodec,
    readonly def: CollectionDefinition,
    archiver: (options: ArchiveOptions) => Promise<ArchiveResult>,
    /** The store's live subscriptions (watch.ts); an ES private field (not a repository method). */
    watchers: Watchers,
  ) {
    this.#archiver = archiver;
    this.#watchers = watchers;
    this.#query = {
      def,
      engine: store.engine,
      read: (k) => codec.read(def, k),
      sortedKeys: () => codec.sortedKeys(def),
      checkIndex: (keyer) => checkIndexBuilt(store.engine, def, keyer),
    };
  }

  readonly #watchers: Watchers;

  /** The store's archive runner (archive.ts), bound to this collection; an ES private field (not a repository method). */
  readonly #archiver: (options: ArchiveOptions) => Promise<ArchiveResult>;

  async get(key: KeyValue): Promise<unknown> {
    this.store.checkOpen();
    // A get served from the cache settles without I/O: a loop of awaited gets would never let the loop turn.
    // Once the loop is overdue (platform/turn.ts), this one resolves after a turn (issue 15).
    if (overdue()) {
      await turn();
      this.store.checkOpen();
    }
    return this.codec.read(this.def, encodeKey(key, this.def.keyKind));
  }

  async getMany(keys: readonly KeyValue[]): Promise<unknown[]> {
    this.store.checkOpen();
    if (!Array.isArray(keys)) throw new UsageError("`getMany` takes an array of keys");
    if (overdue()) {
      await turn();
      this.store.checkOpen();
    }
    // One synchronous pass: every key is located (and read) with no write in between.
    return keys.map((key) => this.codec.read(this.def, encodeKey(key, this.def.keyKind)));
  }

  async put(value: unknown): Promise<unknown> {
    this.store.checkWritable();
    const { op, msg } = this.codec.encodePut(this.def, value, true);
    // `track` inlined (every put's path): the write itself is the key's last write until this settles it.
    const key = op.key;
    const w = this.codec.write([op]);
    this.inflight.set(key, w);
    try {
      await w;
    } finally {
      if (this.inflight.get(key) === w) this.inflight.delete(key);
    }
    return msg;
  }

  /**
   * `values` put in one atomic write, as a batch would: each validated and encoded in turn, with a turn of the
   * event loop whenever it is overdue (issue 15: a batch's callback encodes its 1,000 puts in one step), one
   * arena for the encoded values; the commit seals in slices too (storage/commit.ts).
   */
  async putMany(values: readonly unknown[]): Promise<void> {
    this.store.checkWritable();
    if (!Array.isArray(values)) throw new UsageError("`putMany` takes an array of records");
    const list = values.slice();
    const ops: WriteOp[] = new Array(list.length);
    const arena = new ProtoWriter(64 * 1024);
    for (let i = 0; i < list.length; i++) {
      try {
        ops[i] = this.codec.encodePut(this.def, list[i], false, arena).op;
      } catch (e) {
        // Which value failed: its position, and its key (a property only, never in the message), as a batch says.
        if (e instanceof ValidationError) throw new ValidationError(e.entity, e.issues, { batch: { index: i, key: keyOf(this.def, list[i]) } });
        throw e;
      }
      if (overdue()) {
        await turn();
        this.store.checkWritable();
      }
    }
    const w = this.codec.write(ops);
    this.trackMany(
      ops.map((o) => o.key),
      w,
    );
    await w;
  }

  async update(key: KeyValue, patch: unknown): Promise<unknown> {
    this.store.checkWritable();
    const k = encodeKey(key, this.def.keyKind);
    if (typeof patch !== "function" && (typeof patch !== "object" || patch === null)) throw notAPatch(this.def.name);
    // Wait until no write to this key is in flight, then read, merge, validate and issue the write in one
    // synchronous step: nothing else can write the key in between, and the next update waits for this one.
    for (let p = this.inflight.get(k); p; p = this.inflight.get(k)) await p.then(ignore, ignore); // (a put's write may reject)
    this.store.checkWritable();
    let msg: unknown;
    // Made again on newer state when another process changed the record first (shared stores: E_CONFLICT).
    const build = (): WriteOp[] => {
      const current = this.codec.read(this.def, k);
      if (current === undefined) throw new NotFoundError(this.def.name, key);
      const next = typeof patch === "function" ? (patch as (c: unknown) => unknown)(current) : patch;
      if (typeof next !== "object" || next === null) throw notAPatch(this.def.name);
      const put = this.codec.encodePut(this.def, { ...(current as object), ...(next as object) }, true);
      if (put.op.key !== k) {
        throw new ValidationError(this.def.name, [{ path: [this.def.key], message: "`update` cannot change the key field", code: "custom" }]);
      }
      msg = put.msg;
      return [put.op];
    };
    await this.track(k, this.codec.write(build(), build));
    return msg;
  }

  /** Remember `write` as the last write to `key` until it settles; resolves or rejects as it does. */
  track(key: string, write: Promise<void>): Promise<void> {
    const done: Promise<void> = write.then(
      () => this.settled(key, done),
      () => this.settled(key, done),
    );
    this.inflight.set(key, done);
    return write;
  }

  /** {@link track} for many keys of one write (a batch, `putMany`, a retention cleanup's deletes): one settlement for all. */
  trackMany(keys: readonly string[], write: Promise<void>): void {
    const done: Promise<void> = write.then(
      () => this.settledMany(keys, done),
      () => this.settledMany(keys, done),
    );
    for (const k of keys) this.inflight.set(k, done);
  }

  private settledMany(keys: readonly string[], done: Promise<void>): void {
    for (const k of keys) if (this.inflight.get(k) === done) this.inflight.delete(k);
  }

  /** Whether a write to `key` issued through this repository (or a batch) has not settled yet (retention.ts). */
  busy(key: string): boolean {
    return this.inflight.has(key);
  }

  private settled(key: string, done: Promise<void>): void {
    if (this.inflight.get(key) === done) this.inflight.delete(key);
  }

  async delete(key: KeyValue): Promise<boolean> {
    this.store.checkWritable();
    const k = encodeKey(key, this.def.keyKind);
    if (!this.store.engine.has(this.def.name, k)) return false;
    await this.track(k, this.codec.write([{ op: "delete", entity: this.def.name, key: k }]));
    return true;
  }

  /** Previous versions of the record, newest first (history.ts); E_USAGE when the entity keeps no history. */
  async history(key: KeyValue): Promise<unknown[]> {
    this.store.checkOpen();
    return this.codec.historyOf(this.def, encodeKey(key, this.def.keyKind));
  }

  /**
   * Write back the version a history entry holds (`at`: its id, or a time), as a `put` (a delete when the
   * record did not exist then), after the writes to the key in flight, like `update`.
   */
  async revert(key: KeyValue, at: string | Date): Promise<unknown> {
    this.store.checkWritable();
    const k = encodeKey(key, this.def.keyKind);
    this.codec.history.entries(this.def, k); // E_USAGE at once when the entity keeps no history
    for (let p = this.inflight.get(k); p; p = this.inflight.get(k)) await p.then(ignore, ignore);
    this.store.checkWritable();
    const { name, entry } = this.codec.history.pick(this.def, k, at);
    if (!entry) return this.codec.read(this.def, k); // no change since then
    const value = this.codec.historyValue(name, entry.loc);
    if (value === undefined) {
      if (this.store.engine.has(this.def.name, k)) await this.track(k, this.codec.write([{ op: "delete", entity: this.def.name, key: k }]));
      return undefined;
    }
    const { op, msg } = this.codec.encodePut(this.def, value, true);
    await this.track(k, this.codec.write([op]));
    return msg;
  }

  /** Move the records older than `olderThan` into a new archive file and delete them (archive.ts). */
  async archive(options: ArchiveOptions): Promise<ArchiveResult> {
    return this.#archiver(options);
  }

  toJson(record: unknown): JsonValue {
    this.store.checkOpen();
    return this.codec.toJson(this.def, record);
  }

  fromJson(json: unknown): unknown {
    this.store.checkOpen();
    return this.codec.fromJson(this.def, json);
  }

  async has(key: KeyValue): Promise<boolean> {
    this.store.checkOpen();
    if (overdue()) {
      await turn();
      this.store.checkOpen();
    }
    return this.store.engine.has(this.def.name, encodeKey(key, this.def.keyKind));
  }

  async count(where?: unknown, options?: { scan?: boolean }): Promise<number> {
    this.store.checkOpen();
    return runCount(this.#query, where, options);
  }

  async keys(options?: ListOptions): Promise<KeyValue[]> {
    this.store.checkOpen();
    const out: KeyValue[] = [];
    const kind = this.def.keyKind;
    for await (const p of this.pages(options, false, Infinity)) for (const k of p) out.push(decodeKey(k as string, kind));
    return out;
  }

  async list(options?: ListOptions): Promise<unknown[]> {
    this.store.checkOpen();
    const out: unknown[] = [];
    for await (const p of this.pages(options, true, Infinity)) for (const r of p) out.push(r);
    return out;
  }

  iterate(options?: ListOptions): AsyncIterableIterator<unknown> {
    this.store.checkOpen();
    // A plain iterator over pages (not an async generator): a record of the current page is one settled
    // promise, no generator queue hop. The next page is asked for (and a turn taken) once the page is used
    // up, or sooner when the loop is overdue (the app's own work per record counts too).
    const pages = this.pages(options, true, ITERATE_PAGE);
    let batch: readonly unknown[] = [];
    let i = 0;
    /** A slow step in progress: later calls wait for it (the protocol allows calls without awaiting). */
    let tail: Promise<unknown> | null = null;
    const slow = async (): Promise<IteratorResult<unknown>> => {
      if (overdue()) await turn();
      while (i >= batch.length) {
        const p = await pages.next();
        if (p.done) {
          batch = [];
          i = 0;
          return { value: undefined, done: true };
        }
        batch = p.value;
        i = 0;
      }
      return { value: batch[i++], done: false };
    };
    const it: AsyncIterableIterator<unknown> = {
      next: () => {
        if (tail === null && i < batch.length && !overdue()) return Promise.resolve({ value: batch[i++], done: false });
        const r = tail ? tail.then(slow, slow) : slow();
        const t: Promise<unknown> = r.then(
          () => {
            if (tail === t) tail = null;
          },
          () => {
            if (tail === t) tail = null;
          },
        );
        tail = t;
        return r;
      },
      return: async () => {
        batch = [];
        i = 0;
        await pages.return(undefined);
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /**
   * The records (`values`) or keys of `list`/`iterate`/`keys` in key order, a page at a time: a page ends at
   * `max` entries or once the event loop is overdue (platform/turn.ts), and an overdue page waits for a
   * turn first. A page is read within one synchronous step (the engine's scan must not span a write or a
   * compaction); the next starts after the last key seen, so a write between pages is seen if it lands
   * after that key. Integer keys: in numeric order from the sorted key list (taken once, in slices); a key
   * deleted meanwhile is skipped.
   */
  private async *pages(options: ListOptions | undefined, values: boolean, max: number): AsyncGenerator<readonly unknown[]> {
    let skip = options?.offset ?? 0;
    let left = options?.limit ?? Infinity;
    if (skip < 0 || left < 0 || !Number.isFinite(skip)) throw new UsageError("`offset` and `limit` must be ≥ 0");
    const { def, codec } = this;
    const engine = this.store.engine;
    if (def.keyKind !== "string") {
      const keys = page(await codec.sortedKeysSliced(def), options);
      for (let i = 0; i < keys.length; ) {
        if (overdue()) await turn();
        this.store.checkOpen();
        const out: unknown[] = [];
        while (i < keys.length && out.length < max) {
          const k = keys[i++]!;
          const r = values ? codec.read(def, k) : engine.has(def.name, k) ? k : undefined;
          if (r !== undefined) out.push(r);
          if (overdue()) break;
        }
        if (out.length) yield out;
      }
      return;
    }
    let after: string | undefined;
    while (left > 0) {
      if (overdue()) await turn();
      this.store.checkOpen();
      const out: unknown[] = [];
      let n = 0;
      for (const [key, value] of codec.scan(def, { offset: skip, limit: Math.min(left, max) }, after, values)) {
        out.push(values ? value : key);
        after = key;
        n++;
        if (overdue()) break;
      }
      if (n === 0) return;
      skip = 0;
      left -= n;
      yield out;
    }
  }

  async query(where: unknown, options?: QueryOptions): Promise<unknown[]> {
    this.store.checkOpen();
    return runQuery(this.#query, where, options);
  }

  async queryPage(where: unknown, options: QueryOptions): Promise<QueryPage<unknown>> {
    this.store.checkOpen();
    return runQueryPage(this.#query, where, options);
  }

  explain(where: unknown, options?: QueryOptions): QueryExplain {
    this.store.checkOpen();
    return runExplain(this.#query, where, options);
  }

  aggregate(options: AggregateOptions): Promise<AggregateBucket[]> {
    this.store.checkOpen();
    return runAggregate(this.#query, options);
  }

  /** What query.ts reads for this collection; an ES private field (not a repository method). */
  readonly #query: QueryContext;

  /** A live record (`watch(key)`) or query result (`watch(where)`): see watch.ts. */
  watch(keyOrWhere: unknown): unknown {
    this.store.checkOpen();
    const { def, codec } = this;
    if (typeof keyOrWhere === "object" && keyOrWhere !== null) {
      const { plan, select } = watchQuery(this.#query, keyOrWhere);
      const read = (k: string) => codec.read(def, k);
      return this.#watchers.watch(querySource(def.name, def.schema, select, read, (op) => plan.matchesTerms(op.terms)));
    }
    const k = encodeKey(keyOrWhere, def.keyKind);
    return this.#watchers.watch({ entity: def.name, mayChange: (op) => op.key === k, read: () => codec.read(def, k), same: sameRecord(def.schema) });
  }
}

const ignore = (): void => {};

function notAPatch(entity: string): ValidationError {
  return new ValidationError(entity, [{ path: [], message: "expected an object or an updater function", code: "invalid_type" }]);
}

/** Records `iterate()` reads per synchronous step. */
const ITERATE_PAGE = 256;

function page<T>(items: T[], options?: ListOptions): T[] {
  const offset = options?.offset ?? 0;
  const limit = options?.limit ?? Infinity;
  if (offset < 0 || limit < 0 || !Number.isFinite(offset)) throw new UsageError("`offset` and `limit` must be ≥ 0");
  return offset === 0 && limit >= items.length ? items.slice() : items.slice(offset, offset + limit);
}
