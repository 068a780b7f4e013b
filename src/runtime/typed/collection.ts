/**
 * A collection's repository (`Collection` in types.ts): get, put, delete, has, count, keys, list, iterate
 * (a page at a time) and query (by index terms), with `offset`/`limit` paging. StoreImpl (store.ts) makes
 * one per collection entity; batch.ts finds them to build a transaction's collection writes.
 */
import { UsageError } from "../errors.js";
import { compareUtf8 } from "../format/segment-index.js";
import type { CollectionDefinition, KeyValue } from "./entity.js";
import type { RecordCodec } from "./record-codec.js";
import type { StoreImpl } from "./store.js";
import type { ListOptions } from "./types.js";
import { decodeKey, encodeKey, term } from "./values.js";

export class CollectionImpl {
  constructor(
    private readonly store: StoreImpl,
    /** The store's RecordCodec, held here so a get or put reaches it in one step. */
    private readonly codec: RecordCodec,
    readonly def: CollectionDefinition,
  ) {}

  async get(key: KeyValue): Promise<unknown> {
    this.store.checkOpen();
    return this.codec.read(this.def, encodeKey(key, this.def.keyKind));
  }

  async put(value: unknown): Promise<unknown> {
    this.store.checkWritable();
    const { op, msg } = this.codec.encodePut(this.def, value, true);
    await this.store.engine.write([op]);
    return msg;
  }

  async delete(key: KeyValue): Promise<boolean> {
    this.store.checkWritable();
    const k = encodeKey(key, this.def.keyKind);
    if (!this.store.engine.has(this.def.name, k)) return false;
    await this.store.engine.write([{ op: "delete", entity: this.def.name, key: k }]);
    return true;
  }

  async has(key: KeyValue): Promise<boolean> {
    this.store.checkOpen();
    return this.store.engine.has(this.def.name, encodeKey(key, this.def.keyKind));
  }

  async count(): Promise<number> {
    this.store.checkOpen();
    return this.store.engine.count(this.def.name);
  }

  async keys(options?: ListOptions): Promise<KeyValue[]> {
    this.store.checkOpen();
    return page(this.codec.sortedKeys(this.def), options).map((k) => decodeKey(k, this.def.keyKind));
  }

  async list(options?: ListOptions): Promise<unknown[]> {
    this.store.checkOpen();
    // String keys: the engine scans in key order already. Integer keys are stored as decimal text, whose
    // order is not numeric: sort those.
    if (this.def.keyKind === "string") return Array.from(this.codec.scan(this.def, options), (e) => e[1]);
    return page(this.codec.sortedKeys(this.def), options).map((k) => this.codec.read(this.def, k));
  }

  iterate(options?: ListOptions): AsyncIterableIterator<unknown> {
    this.store.checkOpen();
    // A plain iterator over pages (not an async generator): one settled promise per record, no generator
    // queue hops; each page is read within one synchronous step of `pages`.
    const pages = this.pages(options);
    let batch: unknown[] = [];
    let i = 0;
    const it: AsyncIterableIterator<unknown> = {
      next: () => {
        try {
          while (i >= batch.length) {
            const p = pages.next();
            if (p.done) return Promise.resolve({ value: undefined, done: true });
            batch = p.value;
            i = 0;
          }
          return Promise.resolve({ value: batch[i++], done: false });
        } catch (e) {
          return Promise.reject(e);
        }
      },
      return: () => {
        pages.return(undefined);
        batch = [];
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /** The records of `iterate()`, a page at a time. */
  private *pages(options?: ListOptions): Generator<unknown[]> {
    let skip = options?.offset ?? 0;
    let left = options?.limit ?? Infinity;
    if (skip < 0 || left < 0 || !Number.isFinite(skip)) throw new UsageError("`offset` and `limit` must be ≥ 0");
    if (this.def.keyKind !== "string") {
      // Integer keys: numeric order comes from the sorted key list (taken once); a key deleted meanwhile is skipped.
      const keys = page(this.codec.sortedKeys(this.def), options);
      for (let i = 0; i < keys.length; i += ITERATE_PAGE) {
        yield keys
          .slice(i, i + ITERATE_PAGE)
          .map((k) => this.codec.read(this.def, k))
          .filter((r) => r !== undefined);
      }
      return;
    }
    let after: string | undefined;
    while (left > 0) {
      // One page per synchronous step: the engine's scan must not span a write or a compaction.
      const batch: unknown[] = [];
      for (const [key, value] of this.codec.scan(this.def, { offset: skip, limit: Math.min(left, ITERATE_PAGE) }, after)) {
        batch.push(value);
        after = key;
      }
      if (batch.length === 0) return;
      skip = 0;
      left -= batch.length;
      yield batch;
    }
  }

  async query(where: Record<string, unknown>, options?: ListOptions): Promise<unknown[]> {
    this.store.checkOpen();
    const sets: ReadonlySet<string>[] = [];
    for (const [field, value] of Object.entries(where)) {
      if (value === undefined) continue;
      if (!this.def.indexes.includes(field)) {
        throw new UsageError(`\`${field}\` is not an indexed field of \`${this.def.name}\` (indexes: ${this.def.indexes.join(", ") || "none"})`);
      }
      sets.push(this.store.engine.lookup(this.def.name, term(field, value)));
    }
    let keys: string[];
    if (sets.length === 0) keys = this.codec.sortedKeys(this.def);
    else {
      sets.sort((a, b) => a.size - b.size);
      keys = [...sets[0]!].filter((k) => sets.every((s) => s.has(k)));
      if (this.def.keyKind === "string") keys.sort(compareUtf8);
      else keys.sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    }
    return page(keys, options).map((k) => this.codec.read(this.def, k));
  }
}

/** Records `iterate()` reads per synchronous step. */
const ITERATE_PAGE = 256;

function page<T>(items: T[], options?: ListOptions): T[] {
  const offset = options?.offset ?? 0;
  const limit = options?.limit ?? Infinity;
  if (offset < 0 || limit < 0 || !Number.isFinite(offset)) throw new UsageError("`offset` and `limit` must be ≥ 0");
  return offset === 0 && limit >= items.length ? items.slice() : items.slice(offset, offset + limit);
}
