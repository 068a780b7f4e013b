/**
 * The adds an `OrderedIndex` (ordered-index.ts) has not yet placed in its leaves, in the order made: parallel
 * arrays of terms, keys and their packed numbers, and the set of their keys. An add appends here, touching
 * nothing else; the index takes them all in sorted order ({@link PendingAdds.take}) and merges them into its
 * leaves in one pass, each leaf visited once for all its new entries (an add placed straight into its leaf
 * waited on that cold leaf's memory: ~1 µs per add in an index of 100,000 entries).
 */
export interface SortedAdds {
  sks: string[];
  keys: string[];
  nums: number[];
  knums: number[];
  /** Positions into the arrays in (num, sk, knum, key) order: the leaves' order. */
  order: Uint32Array;
}

export class PendingAdds {
  private sks: string[] = [];
  private keys: string[] = [];
  private nums: number[] = [];
  private knums: number[] = [];
  /** The record keys of the pending adds: a remove of one of them must place them first (it may remove one). */
  private readonly keySet = new Set<string>();

  get length(): number {
    return this.sks.length;
  }

  push(sk: string, key: string, n: number, kn: number): void {
    this.sks.push(sk);
    this.keys.push(key);
    this.nums.push(n);
    this.knums.push(kn);
    this.keySet.add(key);
  }

  has(key: string): boolean {
    return this.keySet.has(key);
  }

  /** Pack every pending term's number again (the index's common prefix changed). */
  repack(num: (sk: string) => number): void {
    for (let i = 0; i < this.sks.length; i++) this.nums[i] = num(this.sks[i]!);
  }

  /** Every pending add, sorted as the leaves are (numbers first, then strings, then `compareKeys`); empties the buffer. */
  take(compareKeys: (a: string, b: string) => number): SortedAdds {
    const { sks, keys, nums, knums } = this;
    this.sks = [];
    this.keys = [];
    this.nums = [];
    this.knums = [];
    this.keySet.clear();
    const m = sks.length;
    const order = new Uint32Array(m);
    for (let i = 0; i < m; i++) order[i] = i;
    if (m > 1) {
      order.sort((a, b) => {
        const x = nums[a]!;
        const y = nums[b]!;
        if (x !== y) return x < y ? -1 : 1;
        const s = sks[a]!;
        const t = sks[b]!;
        if (s !== t) return s < t ? -1 : 1;
        const kx = knums[a]!;
        const ky = knums[b]!;
        return kx !== ky ? (kx < ky ? -1 : 1) : compareKeys(keys[a]!, keys[b]!);
      });
    }
    return { sks, keys, nums, knums, order };
  }
}
