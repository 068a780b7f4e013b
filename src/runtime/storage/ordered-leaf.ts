/**
 * The leaves of ordered-index.ts: parallel arrays of entries, the numbers their searches compare first
 * ({@link pack}), the fence that routes adds to a leaf, sorting (merging appended entries) and splitting a leaf,
 * building leaves from sorted entries, and the Fenwick tree of their sizes.
 */

/**
 * Sorted entries in parallel arrays: the terms, the keys, and each one's number by {@link pack} (`nums`: of
 * the term after the index's common prefix; `knums`: of the key, when the index packs keys). Searches compare
 * the numbers first (a contiguous array of doubles, no pointer to follow) and the strings only when the numbers
 * are equal: a search in an index of 100,000 entries otherwise chases ~17 strings scattered through the heap.
 */
export interface Leaf {
  sks: string[];
  keys: string[];
  nums: number[];
  knums: number[];
  /** Numbers decoded from the terms by {@link OrderedIndex.visitNumbers}, by column; dropped when the leaf changes. */
  cols?: Map<string, Float64Array> | undefined;
  /** The leaf's size as the index's Fenwick tree counts it: synced when a flush merges adds into the leaf. */
  counted: number;
  /**
   * The fence: every entry of this leaf is ≤ it, every entry of the next leaf is > it (the last entry when
   * adds were last merged into the leaf; adds past the last leaf's fence move it). Adds and removes find their leaf
   * by the fences, which an append does not move.
   */
  fSk: string;
  fKey: string;
  fN: number;
  fKn: number;
}

/** Characters [PACK_LO, PACK_HI] (ASCII "/" to DEL: digits, hex, letters) pack as one digit each. */
const PACK_LO = 47;
const PACK_HI = 127;
/** Digits: 0 end of string, 1 any character below PACK_LO, 2.. the characters in range, BASE - 1 any above. */
const BASE = PACK_HI - PACK_LO + 4;
/** Characters packed: BASE^8 < 2^53, so the number is exact. */
const PACKED = 8;

/**
 * The first PACKED characters of `s` from `at`, as a number that never orders two strings against their
 * string order (UTF-16 code units; also UTF-8 byte order, which agrees below U+0080): s ≤ t ⇒ pack(s) ≤
 * pack(t). A character out of [PACK_LO, PACK_HI] packs as the low or high digit and ends the number (the
 * digits after it are 0), so strings differing past it pack equal, never in the wrong order.
 */
export function pack(s: string, at: number): number {
  let v = 0;
  let i = 0;
  for (; i < PACKED; i++) {
    if (at + i >= s.length) break;
    const c = s.charCodeAt(at + i);
    if (c < PACK_LO || c > PACK_HI) {
      v = v * BASE + (c < PACK_LO ? 1 : BASE - 1);
      i++;
      break;
    }
    v = v * BASE + (c - PACK_LO + 2);
  }
  for (; i < PACKED; i++) v *= BASE;
  return v;
}

export const EMPTY_LEAF = (): Leaf => ({ sks: [], keys: [], nums: [], knums: [], counted: 0, fSk: "", fKey: "", fN: 0, fKn: 0 });

/** Make the leaf's last entry its fence. */
export function fenceAtLast(l: Leaf): void {
  const i = l.sks.length - 1;
  l.fSk = l.sks[i]!;
  l.fKey = l.keys[i]!;
  l.fN = l.nums[i]!;
  l.fKn = l.knums[i]!;
}

/** The common prefix of `a` and `b` (a ≤ b), at least `base` (which both start with). */
export function commonPrefix(a: string, b: string, base: string): string {
  let i = base.length;
  const n = Math.min(a.length, b.length);
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return a.slice(0, i);
}

/**
 * Cut a sorted leaf of more than 2 × `size` entries down to `size`..2 × `size`: the rest as new leaves of `size`
 * (in order, fenced), returned to go right after it.
 */
export function splitOff(l: Leaf, size: number): Leaf[] {
  const parts: Leaf[] = [];
  while (l.sks.length > 2 * size) {
    const at = l.sks.length - size;
    const upper: Leaf = { sks: l.sks.splice(at), keys: l.keys.splice(at), nums: l.nums.splice(at), knums: l.knums.splice(at), counted: 0, fSk: "", fKey: "", fN: 0, fKn: 0 };
    fenceAtLast(upper);
    parts.push(upper);
  }
  parts.reverse();
  l.cols = undefined;
  fenceAtLast(l);
  return parts;
}

/** A generator of steps ({@link leafSteps}) run to its end: what it returns. */
export function finish<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * Leaves of `size` entries (the last one fewer) holding the entries `(sks[i], keys[i])` for i in `order` (sorted),
 * exact duplicates kept once, each fenced; `num` and `knum` pack a term and a key. In steps: yields after every
 * 256 entries (a caller may let the event loop turn there), returns the leaves.
 */
export function* leafSteps(order: Iterable<number>, sks: readonly string[], keys: readonly string[], num: (t: string) => number, knum: (k: string) => number, size: number): Generator<void, Leaf[]> {
  let n = 0;
  const leaves: Leaf[] = [];
  let leaf: Leaf = EMPTY_LEAF();
  let prevSk: string | undefined;
  let prevKey: string | undefined;
  const close = () => {
    fenceAtLast(leaf);
    leaves.push(leaf);
  };
  for (const i of order) {
    const sk = sks[i]!;
    const key = keys[i]!;
    if (sk === prevSk && key === prevKey) continue;
    prevSk = sk;
    prevKey = key;
    if (leaf.sks.length === size) {
      close();
      leaf = EMPTY_LEAF();
    }
    leaf.sks.push(sk);
    leaf.keys.push(key);
    leaf.nums.push(num(sk));
    leaf.knums.push(knum(key));
    if ((++n & 255) === 0) yield;
  }
  if (leaf.sks.length) close();
  return leaves;
}

/** The order of entries `(sks[i], keys[i])` as indexes into both: by sort key (string order), then by key. */
export function entryOrder(sks: readonly string[], keys: readonly string[], compareKeys: (a: string, b: string) => number): (a: number, b: number) => number {
  return (a, b) => {
    const x = sks[a]!;
    const y = sks[b]!;
    return x < y ? -1 : x > y ? 1 : compareKeys(keys[a]!, keys[b]!);
  };
}

/** A Fenwick tree (1-based) of the leaves' sizes as counted (`counted`), and their sum. */
export function fenwick(leaves: readonly Leaf[]): { tree: number[]; total: number } {
  const n = leaves.length;
  const tree = new Array<number>(n + 1).fill(0);
  let total = 0;
  for (let i = 1; i <= n; i++) {
    const c = leaves[i - 1]!.counted;
    tree[i]! += c;
    total += c;
    const j = i + (i & -i);
    if (j <= n) tree[j]! += tree[i]!;
  }
  return { tree, total };
}

/** Entries in the leaves before leaf `li`. */
export function fenwickBefore(tree: readonly number[], li: number): number {
  let sum = 0;
  for (let i = li; i > 0; i -= i & -i) sum += tree[i]!;
  return sum;
}

/** The leaf holding global position `pos` (< the total), and the place in it. */
export function fenwickAt(tree: readonly number[], pos: number): [number, number] {
  let li = 0;
  let rest = pos;
  let step = 1;
  while (step * 2 < tree.length) step *= 2;
  for (; step > 0; step >>= 1) {
    const next = li + step;
    if (next < tree.length && tree[next]! <= rest) {
      li = next;
      rest -= tree[next]!;
    }
  }
  return [li, rest];
}

/** Drop exact duplicates (an add of an entry already there) of a sorted leaf: they are neighbours. */
function dropDuplicates(l: Leaf): void {
  const { sks, keys, nums, knums } = l;
  let w = 1;
  for (let r = 1; r < sks.length; r++) {
    if (nums[r] === nums[w - 1] && sks[r] === sks[w - 1] && keys[r] === keys[w - 1]) continue;
    if (w !== r) {
      sks[w] = sks[r]!;
      keys[w] = keys[r]!;
      nums[w] = nums[r]!;
      knums[w] = knums[r]!;
    }
    w++;
  }
  sks.length = w;
  keys.length = w;
  nums.length = w;
  knums.length = w;
}

/** Entries to merge into a leaf: parallel arrays, read at the positions a run lists (ordered-pending.ts `TakenAdds`). */
export interface AddArrays {
  sks: readonly string[];
  keys: readonly string[];
  nums: ArrayLike<number>;
  knums: ArrayLike<number>;
}

/**
 * Merge the entries at positions `run` of `t` (sorted as the leaves are; `dup`: two of them are the same entry)
 * into the sorted leaf `l`, in place from the back (the leaf's arrays grown once at their ends: no copy of the
 * run aside, no second pass over it), exact duplicates dropped, the last entry made the fence.
 */
export function mergeRun(l: Leaf, run: ArrayLike<number>, t: AddArrays, dupInRun: boolean, compareKeys: (a: string, b: string) => number): void {
  const { sks, keys, nums, knums } = l;
  const s = sks.length;
  const r = run.length;
  for (let j = 0; j < r; j++) {
    sks.push("");
    keys.push("");
    nums.push(0);
    knums.push(0);
  }
  let dup = dupInRun;
  let i = s - 1;
  let j = r - 1;
  for (let k = s + r - 1; j >= 0; k--) {
    const x = run[j]!;
    let c = -1;
    if (i >= 0) {
      const n = nums[i]!;
      const m = t.nums[x]!;
      if (n !== m) c = n < m ? -1 : 1;
      else {
        const a = sks[i]!;
        const b = t.sks[x]!;
        if (a !== b) c = a < b ? -1 : 1;
        else {
          const kn = knums[i]!;
          const km = t.knums[x]!;
          c = kn !== km ? (kn < km ? -1 : 1) : compareKeys(keys[i]!, t.keys[x]!);
        }
      }
    }
    if (c > 0) {
      sks[k] = sks[i]!;
      keys[k] = keys[i]!;
      nums[k] = nums[i]!;
      knums[k] = knums[i]!;
      i--;
    } else {
      if (c === 0) dup = true;
      sks[k] = t.sks[x]!;
      keys[k] = t.keys[x]!;
      nums[k] = t.nums[x]!;
      knums[k] = t.knums[x]!;
      j--;
    }
  }
  if (dup) dropDuplicates(l);
  l.cols = undefined;
  fenceAtLast(l);
}
