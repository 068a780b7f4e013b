/**
 * Live subscriptions (`Watch` in types.ts): `repo.watch(key)`, `repo.watch(where)` and `singleton.watch()`.
 * A watch holds a source (what it reads, and which writes may change it: collection.ts and singleton.ts build
 * them) and its last value. `Watchers`, one per store, is fed by the engine's `onCommit(ops, seq)` (StoreImpl,
 * store.ts) for every commit the store applies, its own or, in a follower, another process's; `resync(seq)`
 * when commits cannot be told apart (an import merged in by compaction, a follower that lost track). In a
 * microtask after the commits of one synchronous step are applied, it re-reads the watches they may change
 * and delivers a value that differs from the last one, with the seq of the state it was read from: one
 * update per watch per commit at most, never one per op.
 *
 * Delivery: subscribers are called in that microtask, each isolated like a store listener (its error goes to
 * the `error` event as `E_LISTENER`); an async iterator holds one pending update, replaced by the next, so a
 * slow consumer gets the latest state and no queue grows. A watch nobody listens to is not re-read: it
 * reads again when a subscriber or iterator arrives.
 */
import { type DescMessage, equals } from "@bufbuild/protobuf";
import type { WriteOp } from "../storage/engine.js";
import { StoreClosedError, UsageError } from "../errors.js";
import type { Watch, WatchUpdate } from "./types.js";

/** What a watch reads, and which commits may change it. */
export interface WatchSource<T> {
  /** The storage name of the entity whose records the value is made of. */
  readonly entity: string;
  /**
   * Whether `op` (of a commit to `entity`, already applied) may change what `read` returns, given the value
   * `read` returned last. A false positive costs a re-read; a false negative loses an update.
   */
  mayChange(op: WriteOp): boolean;
  /** The current value, frozen, read synchronously. */
  read(): T;
  /** Whether two values `read` returned are the same value (then no update is delivered). */
  same(a: T, b: T): boolean;
}

/** Equal records (the same object, or equal protobuf messages), `undefined` equal only to itself. */
export function sameRecord(schema: DescMessage): (a: unknown, b: unknown) => boolean {
  return (a, b) => a === b || (a !== undefined && b !== undefined && equals(schema, a as never, b as never));
}

/**
 * The source of a query's watch. The result may change when a commit touches a key in the current result
 * (the old record matched: it may stop matching, change or go) or puts a record that `matches` (the new
 * record: the query plan's `matchesTerms`, query-plan.ts). `select` returns the result's keys in order.
 */
export function querySource(
  entity: string,
  schema: DescMessage,
  select: () => readonly string[],
  read: (key: string) => unknown,
  matches: (op: WriteOp & { op: "put" }) => boolean,
): WatchSource<readonly unknown[]> {
  let keys: ReadonlySet<string> = new Set();
  const same = sameRecord(schema);
  return {
    entity,
    mayChange: (op) => keys.has(op.key) || (op.op === "put" && matches(op)),
    read: () => {
      const selected = select();
      keys = new Set(selected);
      return Object.freeze(selected.map(read).filter((r) => r !== undefined));
    },
    same: (a, b) => a.length === b.length && a.every((r, i) => same(r, b[i])),
  };
}

type AnyWatch = WatchImpl<unknown>;

export class Watchers {
  /** Open watches by the entity they read. */
  private readonly byEntity = new Map<string, Set<AnyWatch>>();
  /** Watches a commit since the last delivery may have changed. */
  private readonly dirty = new Set<AnyWatch>();
  private scheduled = false;
  private closed = false;
  /** The highest seq announced (`committed`, `resync`). */
  private seq = 0;

  constructor(
    /** The seq of the state the store's reads see now (the engine's `lastSeq`). */
    private readonly lastSeq: () => number,
    /** A subscriber threw (StoreImpl reports it as `E_LISTENER`). */
    readonly subscriberFailed: (e: unknown) => void,
    /** Reading a watch's value failed (damage found on read is reported by the read itself). */
    readonly readFailed: (e: unknown) => void,
  ) {}

  /** A new watch of `source`, holding its current value. */
  watch<T>(source: WatchSource<T>): Watch<T> {
    if (this.closed) throw new StoreClosedError();
    const w = new WatchImpl(source, this.now(), this);
    let set = this.byEntity.get(source.entity);
    if (!set) this.byEntity.set(source.entity, (set = new Set()));
    set.add(w as AnyWatch);
    return w;
  }

  /** The engine applied commit `seq`, whose effective ops are `ops`; deliver the watches it changed. */
  committed(ops: readonly WriteOp[], seq: number): void {
    if (seq > this.seq) this.seq = seq;
    if (this.closed || this.byEntity.size === 0) return;
    for (const o of ops) {
      const set = this.byEntity.get(o.entity);
      if (!set) continue;
      for (const w of set) if (!w.stale && !this.dirty.has(w) && w.source.mayChange(o)) this.dirty.add(w);
    }
    if (this.dirty.size) this.schedule();
  }

  /** Commits up to `seq` were applied without their ops (compaction, import): re-read every watch. */
  resync(seq: number): void {
    if (seq > this.seq) this.seq = seq;
    if (this.closed) return;
    for (const set of this.byEntity.values()) for (const w of set) this.dirty.add(w);
    if (this.dirty.size) this.schedule();
  }

  /** The store closed: every iterator ends, every subscription is dropped. */
  closeAll(): void {
    this.closed = true;
    this.dirty.clear();
    for (const set of [...this.byEntity.values()]) for (const w of [...set]) w.close();
  }

  /** Whether a watch is open (a follower then applies other processes' commits as they come: share/sharing.ts). */
  get active(): boolean {
    return this.byEntity.size > 0;
  }

  /** The seq of the state reads see now. */
  now(): number {
    return Math.max(this.seq, this.lastSeq());
  }

  remove(w: AnyWatch): void {
    this.dirty.delete(w);
    const set = this.byEntity.get(w.source.entity);
    set?.delete(w);
    if (set?.size === 0) this.byEntity.delete(w.source.entity);
  }

  /**
   * Deliver once the current synchronous step is over: the engine calls `onCommit` per commit after applying
   * every commit of a group (or a follower's refresh), so the state read then is the state at `now()`.
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      if (this.closed) return;
      const due = [...this.dirty];
      this.dirty.clear();
      const seq = this.now();
      for (const w of due) w.refresh(seq);
    });
  }
}

/** One async iterator of a watch: one pending update at most. */
class Consumer<T> implements AsyncIterableIterator<WatchUpdate<T>> {
  private pending: WatchUpdate<T> | null;
  private readonly waiting: ((r: IteratorResult<WatchUpdate<T>>) => void)[] = [];
  private ended = false;

  constructor(
    first: WatchUpdate<T>,
    private readonly leave: (c: Consumer<T>) => void,
  ) {
    this.pending = first;
  }

  offer(u: WatchUpdate<T>): void {
    if (this.ended) return;
    const w = this.waiting.shift();
    if (w) w({ value: u, done: false });
    else this.pending = u; // a slow consumer: the latest state replaces the one it has not taken
  }

  end(): void {
    this.ended = true;
    this.pending = null;
    for (const w of this.waiting.splice(0)) w({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<WatchUpdate<T>>> {
    if (this.pending) {
      const value = this.pending;
      this.pending = null;
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((r) => this.waiting.push(r));
  }

  return(): Promise<IteratorResult<WatchUpdate<T>>> {
    this.end();
    this.leave(this);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

class WatchImpl<T> implements Watch<T> {
  private current: WatchUpdate<T>;
  private readonly subscribers = new Set<(u: WatchUpdate<T>) => void>();
  private readonly consumers = new Set<Consumer<T>>();
  private closed = false;
  /** Not re-read while nobody listens: `current` may be behind the store. */
  stale = false;

  constructor(
    readonly source: WatchSource<T>,
    seq: number,
    private readonly owner: Watchers,
  ) {
    this.current = Object.freeze({ value: source.read(), seq });
  }

  /** Re-read (commits up to `seq` applied) and deliver the value if it changed. */
  refresh(seq: number): void {
    if (this.closed) return;
    if (this.subscribers.size === 0 && this.consumers.size === 0) {
      this.stale = true;
      return;
    }
    let value: T;
    try {
      value = this.source.read();
    } catch (e) {
      this.owner.readFailed(e);
      return;
    }
    if (this.source.same(this.current.value, value)) return;
    const u: WatchUpdate<T> = Object.freeze({ value, seq });
    this.current = u;
    for (const c of this.consumers) c.offer(u);
    for (const s of [...this.subscribers]) s(u);
  }

  /** Bring a watch nobody listened to up to date before someone does. */
  private catchUp(): void {
    if (!this.stale) return;
    this.stale = false;
    try {
      const value = this.source.read();
      if (!this.source.same(this.current.value, value)) this.current = Object.freeze({ value, seq: this.owner.now() });
    } catch (e) {
      this.stale = true;
      throw e;
    }
  }

  subscribe(callback: (update: WatchUpdate<T>) => void): () => void {
    if (typeof callback !== "function") throw new UsageError("`subscribe` takes a function");
    if (this.closed) return () => {};
    this.catchUp();
    // A wrapper per subscription: the same function subscribed twice is called twice and unsubscribed once each.
    const call = (u: WatchUpdate<T>) => {
      try {
        callback(u);
      } catch (e) {
        this.owner.subscriberFailed(e);
      }
    };
    this.subscribers.add(call);
    call(this.current);
    return () => void this.subscribers.delete(call);
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchUpdate<T>> {
    if (!this.closed) this.catchUp();
    const c = new Consumer(this.current, (x) => this.consumers.delete(x));
    if (this.closed) c.end();
    else this.consumers.add(c);
    return c;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.consumers) c.end();
    this.consumers.clear();
    this.subscribers.clear();
    this.owner.remove(this as AnyWatch);
  }
}
