/**
 * The writes an import holds in memory until its switch (import.ts), as columns: per write its entity, key,
 * version, index terms, where its value lies (a buffer, an offset, a length) and whether it equals the
 * stored record. A 100,000-record import held a write object, a value view and a wrapper per record: half of
 * the heap the import kept alive, copied by every young-generation collection until promoted. The writes are
 * made again, one at a time, when they are committed or merged in.
 */
import { type BlockRecord, opSize, type WriteOp } from "../format/records.js";
import { compareUtf8 } from "../format/segment-index.js";
import type { Spill, SpilledChunk } from "./import-staging.js";

export type PutOp = Extract<WriteOp, { op: "put" }>;

const SURROGATE = /[\ud800-\udfff]/;

export class HeldWrites {
  /** Bytes of the held writes as an engine write counts them (`opSize`). */
  bytes = 0;
  /** `bytes` of the writes pushed since the last {@link spill} (whose values are in memory). */
  resident = 0;
  private readonly entityNames: string[] = [];
  private readonly entityIds = new Map<string, number>();
  private entity: number[] = [];
  private keys: string[] = [];
  private versions: number[] = [];
  private terms: (readonly string[])[] = [];
  /**
   * Value of write i: `buffers[buffer[i]]`, bytes `shift[buffer[i]] + start[i]` for `length[i]`. A buffer
   * moved to the spill file is `null` here (its chunk in `spilled`) until {@link load} reads it back.
   */
  private buffers: (ArrayBufferLike | null)[] = [];
  private shift: number[] = [];
  private spilled: (SpilledChunk | undefined)[] = [];
  /** The first write whose value was not spilled. */
  private unspilled = 0;
  private buffer: number[] = [];
  private start: number[] = [];
  private length: number[] = [];
  private same: boolean[] = [];

  get count(): number {
    return this.keys.length;
  }

  push(op: PutOp, same: boolean): void {
    let e = this.entityIds.get(op.entity);
    if (e === undefined) {
      e = this.entityNames.length;
      this.entityNames.push(op.entity);
      this.entityIds.set(op.entity, e);
    }
    const v = op.value;
    if (this.buffers.length === 0 || this.buffers[this.buffers.length - 1] !== v.buffer) {
      this.buffers.push(v.buffer);
      this.shift.push(0);
      this.spilled.push(undefined);
    }
    this.entity.push(e);
    this.keys.push(op.key);
    this.versions.push(op.version);
    // An exact-size copy: a list grown by `push` keeps room for 17 terms (~150 bytes) whatever it holds.
    this.terms.push(op.terms.length === 0 ? [] : op.terms.slice());
    this.buffer.push(this.buffers.length - 1);
    this.start.push(v.byteOffset);
    this.length.push(v.byteLength);
    this.same.push(same);
    const size = opSize(op);
    this.bytes += size;
    this.resident += size;
  }

  /**
   * Move the values held in memory to `spill`: per buffer, the bytes its values span (an arena chunk, ~1 MiB),
   * sealed as one chunk. The caller starts a new arena chunk afterwards (a spilled buffer is never written again).
   */
  async spill(spill: Spill): Promise<void> {
    const lo = new Map<number, number>();
    const hi = new Map<number, number>();
    for (let i = this.unspilled; i < this.keys.length; i++) {
      const b = this.buffer[i]!;
      const s = this.start[i]!;
      const e = s + this.length[i]!;
      if (!(lo.get(b)! <= s)) lo.set(b, s);
      if (!(hi.get(b)! >= e)) hi.set(b, e);
    }
    for (const [b, from] of lo) {
      const plain = new Uint8Array(this.buffers[b]!, from, hi.get(b)! - from);
      this.spilled[b] = await spill.write(plain);
      this.shift[b] = -from;
      this.buffers[b] = null;
    }
    this.unspilled = this.keys.length;
    this.resident = 0;
  }

  /** Read every spilled value back into memory (before the writes are handed out). */
  async load(spill: Spill): Promise<void> {
    for (let b = 0; b < this.buffers.length; b++) {
      const c = this.spilled[b];
      if (this.buffers[b] !== null || !c) continue;
      const plain = await spill.read(c);
      this.buffers[b] = plain.buffer;
      this.shift[b]! += plain.byteOffset;
      this.spilled[b] = undefined;
    }
  }

  /** Write `i` as it was pushed. */
  op(i: number): PutOp {
    const b = this.buffer[i]!;
    const value = new Uint8Array(this.buffers[b]!, this.shift[b]! + this.start[i]!, this.length[i]);
    return { op: "put", entity: this.entityNames[this.entity[i]!]!, key: this.keys[i]!, version: this.versions[i]!, value, terms: this.terms[i]! };
  }

  /** The writes in the order they were pushed; `changed`: those that differ from the stored record only. */
  *ops(changed = false): Generator<PutOp> {
    for (let i = 0; i < this.keys.length; i++) if (!changed || !this.same[i]) yield this.op(i);
  }

  /** Drop everything (the writes were staged or committed). */
  clear(): void {
    this.entity = [];
    this.keys = [];
    this.versions = [];
    this.terms = [];
    this.buffers = [];
    this.shift = [];
    this.spilled = [];
    this.unspilled = 0;
    this.resident = 0;
    this.buffer = [];
    this.start = [];
    this.length = [];
    this.same = [];
    this.bytes = 0;
  }

  /**
   * Per entity, its writes as block records in UTF-8 key order, the last write of a key winning (what a
   * compaction merges in). A file in key order (an export of a settled store) is not sorted again; others are
   * sorted in slices, with a turn of the event loop between them.
   */
  async sorted(): Promise<Map<string, Iterable<BlockRecord>>> {
    const byEntity = this.entityNames.map(() => ({ order: [] as number[], ascending: true }));
    for (let i = 0; i < this.keys.length; i++) {
      const e = byEntity[this.entity[i]!]!;
      const key = this.keys[i]!;
      if (e.ascending) e.ascending = !SURROGATE.test(key) && (e.order.length === 0 || this.keys[e.order[e.order.length - 1]!]! < key);
      e.order.push(i);
    }
    const out = new Map<string, Iterable<BlockRecord>>();
    for (const [e, { order, ascending }] of byEntity.entries()) out.set(this.entityNames[e]!, this.records(ascending ? order : await this.sortOrder(order)));
    return out;
  }

  /** `order` (indexes of writes) in UTF-8 key order, the last write of a key winning. */
  private async sortOrder(order: number[]): Promise<number[]> {
    const keys = this.keys;
    // UTF-8 byte order is UTF-16 order unless a key holds a surrogate (then compareUtf8). The sort is stable:
    // of the writes of one key, the last one in the file ends a run of equal keys.
    const surrogate = order.some((i) => SURROGATE.test(keys[i]!));
    const sorted = await sortInSlices(order, surrogate ? (a, b) => compareUtf8(keys[a]!, keys[b]!) : (a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
    return sorted.filter((i, j) => j + 1 === sorted.length || keys[sorted[j + 1]!] !== keys[i]);
  }

  private records(order: readonly number[]): Iterable<BlockRecord> {
    // The columns as they are now (`clear` replaces them).
    const { keys, versions, terms, buffers, shift, buffer, start, length } = this;
    return (function* () {
      for (const i of order) {
        const b = buffer[i]!;
        yield { key: keys[i]!, version: versions[i]!, value: new Uint8Array(buffers[b]!, shift[b]! + start[i]!, length[i]), terms: terms[i]! };
      }
    })();
  }
}

/** Elements sorted or merged between two turns of the event loop (a few milliseconds). */
const SLICE = 16_384;
const turn = () => new Promise<void>((r) => setImmediate(r));

/**
 * A stable sort of `a` that never holds the event loop long: runs of {@link SLICE} sorted by the native sort,
 * then merged pairwise, a turn taken every {@link SLICE} elements.
 */
export async function sortInSlices(a: number[], cmp: (x: number, y: number) => number): Promise<number[]> {
  const n = a.length;
  let src = a.slice();
  for (let lo = 0; lo < n; lo += SLICE) {
    const run = src.slice(lo, lo + SLICE).sort(cmp);
    for (let i = 0; i < run.length; i++) src[lo + i] = run[i]!;
    if (lo + SLICE < n) await turn();
  }
  let dst = new Array<number>(n);
  let moved = 0;
  for (let width = SLICE; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      for (let k = lo; k < hi; k++) {
        // Left first on a tie: stable.
        dst[k] = j >= hi || (i < mid && cmp(src[i]!, src[j]!) <= 0) ? src[i++]! : src[j++]!;
        if (++moved === SLICE) {
          moved = 0;
          await turn();
        }
      }
    }
    [src, dst] = [dst, src];
  }
  return src;
}
