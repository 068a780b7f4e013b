/**
 * The adds an `OrderedIndex` (ordered-index.ts) has not yet placed in its leaves, in the order made: parallel
 * arrays of terms, keys and their packed numbers (kept from one flush to the next, the numbers in typed
 * arrays: an add stores four values and allocates nothing), and, only once a remove asked, the set of their
 * keys. An add appends here, touching nothing else; the index takes them all ({@link PendingAdds.take}) and
 * merges them into its leaves in one pass, each leaf visited once for all its new entries (an add placed
 * straight into its leaf waited on that cold leaf's memory: ~1 µs per add in an index of 100,000 entries).
 */
export interface TakenAdds {
  sks: string[];
  keys: string[];
  nums: Float64Array;
  knums: Float64Array;
  /** How many: entries [0, m) of the arrays (which may be longer). */
  m: number;
}

export interface SortedAdds extends TakenAdds {
  /** Positions into the arrays in (num, sk, knum, key) order: the leaves' order. */
  order: Uint32Array;
}

export class PendingAdds {
  private sks: string[] = [];
  private keys: string[] = [];
  private nums: Float64Array = new Float64Array(64);
  private knums: Float64Array = new Float64Array(64);
  private n = 0;
  /**
   * The record keys of the pending adds, built by the first {@link has} after a take (a remove of one of them
   * must place them first: it may remove one) and kept up to date by adds from then on, until the next take:
   * puts of new records alone never pay for a set.
   */
  private keySet: Set<string> | null = null;

  get length(): number {
    return this.n;
  }

  push(sk: string, key: string, n: number, kn: number): void {
    const i = this.n;
    if (i === this.nums.length) {
      const nums = new Float64Array(i * 2);
      nums.set(this.nums);
      this.nums = nums;
      const knums = new Float64Array(i * 2);
      knums.set(this.knums);
      this.knums = knums;
    }
    this.sks[i] = sk;
    this.keys[i] = key;
    this.nums[i] = n;
    this.knums[i] = kn;
    this.n = i + 1;
    this.keySet?.add(key);
  }

  has(key: string): boolean {
    if (this.n === 0) return false;
    if (!this.keySet) {
      this.keySet = new Set();
      for (let i = 0; i < this.n; i++) this.keySet.add(this.keys[i]!);
    }
    return this.keySet.has(key);
  }

  /** Pack every pending term's number again (the index's common prefix changed). */
  repack(num: (sk: string) => number): void {
    for (let i = 0; i < this.n; i++) this.nums[i] = num(this.sks[i]!);
  }

  /**
   * Every pending add, in the order made; empties the buffer. The arrays are the buffer's own, reused by the
   * adds after the next take: place them before taking again (the index does).
   */
  take(): TakenAdds {
    const m = this.n;
    this.n = 0;
    this.keySet = null;
    const taken = { sks: this.sks, keys: this.keys, nums: this.nums, knums: this.knums, m };
    // The next adds go to the other arrays: the taken ones may be read across turns (a placing in slices).
    this.sks = this.spare.sks;
    this.keys = this.spare.keys;
    this.nums = this.spare.nums;
    this.knums = this.spare.knums;
    this.spare = taken;
    return taken;
  }

  /** The arrays taken last: the next {@link take}'s buffer (the index places one take before the next). */
  private spare: TakenAdds = { sks: [], keys: [], nums: new Float64Array(64), knums: new Float64Array(64), m: 0 };

  /** {@link take}, sorted as the leaves are (numbers first, then strings, then `compareKeys`). */
  takeSorted(compareKeys: (a: string, b: string) => number): SortedAdds {
    const t = this.take();
    const order = new Uint32Array(t.m);
    for (let i = 0; i < t.m; i++) order[i] = i;
    sortRun(order, 0, t.m, t, compareKeys);
    return { ...t, order };
  }
}

/** Order of adds a and b of `t` by (num, sk, knum, key). */
function cmpAdds(t: TakenAdds, a: number, b: number, compareKeys: (a: string, b: string) => number): number {
  const x = t.nums[a]!;
  const y = t.nums[b]!;
  if (x !== y) return x < y ? -1 : 1;
  const s = t.sks[a]!;
  const u = t.sks[b]!;
  if (s !== u) return s < u ? -1 : 1;
  const kx = t.knums[a]!;
  const ky = t.knums[b]!;
  return kx !== ky ? (kx < ky ? -1 : 1) : compareKeys(t.keys[a]!, t.keys[b]!);
}

/**
 * Sort positions `run[from]` to `run[to - 1]` (into `t`'s arrays) by (num, sk, knum, key): checked first in one
 * pass, since adds made in key order (increasing ids, times) to one value of an index arrive sorted already; a
 * short run sorted by insertion in place (nothing allocated). Returns whether two neighbours are the same entry
 * (an entry added twice while pending).
 */
export function sortRun(run: Uint32Array, from: number, to: number, t: TakenAdds, compareKeys: (a: string, b: string) => number): boolean {
  if (to - from < 2) return false;
  let inOrder = true;
  for (let j = from + 1; j < to && inOrder; j++) inOrder = cmpAdds(t, run[j - 1]!, run[j]!, compareKeys) < 0;
  if (inOrder) return false;
  if (to - from <= 32) {
    for (let j = from + 1; j < to; j++) {
      const x = run[j]!;
      let k = j - 1;
      while (k >= from && cmpAdds(t, run[k]!, x, compareKeys) > 0) {
        run[k + 1] = run[k]!;
        k--;
      }
      run[k + 1] = x;
    }
  } else run.subarray(from, to).sort((a, b) => cmpAdds(t, a, b, compareKeys));
  for (let j = from + 1; j < to; j++) if (cmpAdds(t, run[j - 1]!, run[j]!, compareKeys) === 0) return true;
  return false;
}

/**
 * Adds grouped by leaf (`leafOf[x]`, 0 to `leaves` - 1, for each add x < m) by a counting sort: `order` holds leaf
 * 0's adds, then leaf 1's, …; leaf li's are `order[starts[li]]` to `order[starts[li + 1] - 1]`, in the order made.
 */
export function groupByLeaf(leafOf: Uint32Array, m: number, leaves: number): { order: Uint32Array; starts: Uint32Array } {
  const starts = new Uint32Array(leaves + 1);
  for (let x = 0; x < m; x++) starts[leafOf[x]! + 1]!++;
  for (let li = 0; li < leaves; li++) starts[li + 1]! += starts[li]!;
  const order = new Uint32Array(m);
  const next = starts.slice(0, leaves);
  for (let x = 0; x < m; x++) order[next[leafOf[x]!]!++] = x;
  return { order, starts };
}
