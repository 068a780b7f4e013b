/**
 * The leaves of ordered-index.ts: parallel arrays of entries, the numbers their searches compare first
 * ({@link pack}), the fence that routes adds to a leaf, sorting (merging appended entries) and splitting a leaf,
 * building leaves from sorted entries, and the Fenwick tree of their sizes.
 */

/**
 * Sorted entries in parallel arrays of fixed room: entries [0, n) of the terms, the keys, and each one's number by
 * {@link pack} (`nums`: of the term after the index's common prefix; `knums`: of the key, when the index packs
 * keys). Searches compare the numbers first (contiguous doubles, no pointer to follow) and the strings only when
 * the numbers are equal: a search in an index of 100,000 entries otherwise chases ~17 strings scattered through
 * the heap. The arrays' length is the leaf's room, never changed: a merge writes into them in place (a leaf whose
 * arrays grew by pushes was copied into new arrays as it grew, and split by slicing: 2-6 MB of young garbage per
 * index a flush, paid as scavenges by the puts after it). Slots [n, room) hold "" and 0 (no string kept alive).
 * A leaf built at open holds {@link BUILT} entries in room for {@link ROOM} (a quarter free: about the memory of
 * the arrays grown by pushes it replaces, ~43 against ~38 bytes an entry), so adds merge into it in place.
 */
export interface Leaf {
  n: number;
  sks: string[];
  keys: string[];
  nums: Float64Array;
  knums: Float64Array;
  /** Numbers decoded from the terms by {@link OrderedIndex.visitNumbers}, by column; dropped when the leaf changes. */
  cols: Map<string, Float64Array> | undefined;
  /** The leaf's size as the index's Fenwick tree counts it: synced when a flush merges adds into the leaf. */
  counted: number;
  /**
   * The fence: every entry of this leaf is ≤ it, every entry of the next leaf is > it (the last entry when
   * adds were last merged into the leaf; adds past the last leaf's fence move it). Adds and removes find their leaf
   * by the fences.
   */
  fSk: string;
  fKey: string;
  fN: number;
  fKn: number;
}

/** A leaf's size after a split, and half the most it holds. */
export const LEAF = 64;
/** A leaf's room: the most it holds. */
export const ROOM = 2 * LEAF;
/** Entries in a leaf built in one go (ordered-index.ts `from`, and the first adds to an empty index). */
export const BUILT = (3 * LEAF) / 2;

/** A leaf with room for `room` entries, none in it. */
export function newLeaf(room: number): Leaf {
  // fN and fKn made doubles from the start (0.5, not 0): a field first holding a small integer changes the
  // objects' hidden class when it first holds a double, and optimized code meeting the old one deoptimizes.
  return { n: 0, sks: new Array<string>(room).fill(""), keys: new Array<string>(room).fill(""), nums: new Float64Array(room), knums: new Float64Array(room), cols: undefined, counted: 0, fSk: "", fKey: "", fN: 0.5, fKn: 0.5 };
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

/** Make the leaf's last entry its fence. */
export function fenceAtLast(l: Leaf): void {
  const i = l.n - 1;
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

/** A generator of steps ({@link leafSteps}) run to its end: what it returns. */
export function finish<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * Leaves of `size` entries and room for `room` (the last one fewer entries) holding the entries `(sks[i], keys[i])` for i in `order` (sorted),
 * exact duplicates kept once, each fenced; `num` and `knum` pack a term and a key. In steps: yields after every
 * 256 entries (a caller may let the event loop turn there), returns the leaves.
 */
export function* leafSteps(order: Iterable<number>, sks: readonly string[], keys: readonly string[], num: (t: string) => number, knum: (k: string) => number, size: number, room = size): Generator<void, Leaf[]> {
  let n = 0;
  const leaves: Leaf[] = [];
  let leaf: Leaf = newLeaf(room);
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
    if (leaf.n === size) {
      close();
      leaf = newLeaf(room);
    }
    const at = leaf.n++;
    leaf.sks[at] = sk;
    leaf.keys[at] = key;
    leaf.nums[at] = num(sk);
    leaf.knums[at] = knum(key);
    if ((++n & 255) === 0) yield;
  }
  if (leaf.n) close();
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

/** Entries to merge into a leaf: parallel arrays, read at the positions a run lists (ordered-pending.ts `TakenAdds`). */
export interface AddArrays {
  sks: readonly string[];
  keys: readonly string[];
  nums: ArrayLike<number>;
  knums: ArrayLike<number>;
}

/** `l` with room for {@link ROOM} entries: its arrays copied into new ones when it has less (once in a leaf's life). */
function roomy(l: Leaf): void {
  if (l.sks.length >= ROOM) return;
  const m = newLeaf(ROOM);
  for (let i = 0; i < l.n; i++) {
    m.sks[i] = l.sks[i]!;
    m.keys[i] = l.keys[i]!;
  }
  m.nums.set(l.nums.subarray(0, l.n));
  m.knums.set(l.knums.subarray(0, l.n));
  l.sks = m.sks;
  l.keys = m.keys;
  l.nums = m.nums;
  l.knums = m.knums;
}

/** Order of the leaf entry (l, i) against add x of `t`: numbers first, then the strings. */
function order(l: Leaf, i: number, t: AddArrays, x: number, compareKeys: (a: string, b: string) => number): number {
  const n = l.nums[i]!;
  const m = t.nums[x]!;
  if (n !== m) return n < m ? -1 : 1;
  const a = l.sks[i]!;
  const b = t.sks[x]!;
  if (a !== b) return a < b ? -1 : 1;
  const kn = l.knums[i]!;
  const km = t.knums[x]!;
  return kn !== km ? (kn < km ? -1 : 1) : compareKeys(l.keys[i]!, t.keys[x]!);
}

/**
 * Merge the adds at positions `run[from]` to `run[to - 1]` of `t` (sorted as the leaves are; `dupInRun`: two of
 * them are the same entry) into the sorted leaf `l`, from the back, in place: into the leaf's own arrays when the
 * entries fit its room ({@link ROOM} given to it first when they fit that), else into the leaf (its first
 * LEAF + 1 to 2 × LEAF entries) and new leaves of LEAF entries and ROOM room, returned to go right after it (so a
 * flush allocates nothing but the leaves the index grows by). Exact duplicates dropped; every leaf fenced at its
 * last entry.
 */
export function mergeRun(l: Leaf, run: ArrayLike<number>, from: number, to: number, t: AddArrays, dupInRun: boolean, compareKeys: (a: string, b: string) => number): Leaf[] {
  const s = l.n;
  const total = s + to - from;
  let parts: Leaf[] = NONE;
  // The leaves written: `l` keeps the first `first` entries, each part LEAF.
  let first = total;
  if (total > l.sks.length) {
    roomy(l);
    if (total > ROOM) {
      const k = Math.ceil((total - ROOM) / LEAF);
      first = total - k * LEAF;
      parts = [];
      for (let p = 0; p < k; p++) parts.push(newLeaf(ROOM));
    }
  }
  let dup = dupInRun;
  let i = s - 1;
  let j = to - 1;
  // The output cursor, from the back: leaf `out` (parts[pi], or l when pi < 0), place `o`.
  let pi = parts.length - 1;
  let out = pi >= 0 ? parts[pi]! : l;
  let o = (pi >= 0 ? LEAF : first) - 1;
  const { sks, keys, nums, knums } = l; // after roomy: the arrays written
  while (j >= from) {
    const x = run[j]!;
    const c = i >= 0 ? order(l, i, t, x, compareKeys) : -1;
    if (c > 0) {
      out.sks[o] = sks[i]!;
      out.keys[o] = keys[i]!;
      out.nums[o] = nums[i]!;
      out.knums[o] = knums[i]!;
      i--;
    } else {
      if (c === 0) dup = true;
      out.sks[o] = t.sks[x]!;
      out.keys[o] = t.keys[x]!;
      out.nums[o] = t.nums[x]!;
      out.knums[o] = t.knums[x]!;
      j--;
    }
    if (--o < 0 && pi >= 0) {
      out = --pi >= 0 ? parts[pi]! : l;
      o = (pi >= 0 ? LEAF : first) - 1;
    }
  }
  // What is left of the leaf's own entries is in place (o = i) unless parts took some of them: moved up.
  while (i >= 0 && out !== l) {
    out.sks[o] = sks[i]!;
    out.keys[o] = keys[i]!;
    out.nums[o] = nums[i]!;
    out.knums[o] = knums[i]!;
    i--;
    if (--o < 0) {
      out = --pi >= 0 ? parts[pi]! : l;
      o = (pi >= 0 ? LEAF : first) - 1;
    }
  }
  // Slots the leaf's entries moved out of into parts: emptied (no string kept alive past n).
  for (let k = first; k < s; k++) {
    sks[k] = "";
    keys[k] = "";
  }
  l.n = first;
  for (const p of parts) p.n = LEAF;
  l.cols = undefined;
  if (dup) parts = parts.slice(0, dropDuplicates([l, ...parts]) - 1);
  fenceAtLast(l);
  for (const p of parts) fenceAtLast(p);
  return parts;
}

const NONE: Leaf[] = [];

/**
 * Drop exact duplicates (an add of an entry already there: neighbours, sorted) from the entries of `chain`'s
 * leaves in turn, moving the later ones down (each leaf's place kept, the last ones left shorter or empty).
 * Returns how many leaves still hold entries (the first at least).
 */
function dropDuplicates(chain: readonly Leaf[]): number {
  const counts = chain.map((c) => c.n);
  let wl = 0;
  let w = 0;
  let pSk: string | undefined;
  let pKey = "";
  let pN = 0;
  for (const r of chain) {
    const n = r.n;
    for (let k = 0; k < n; k++) {
      const sk = r.sks[k]!;
      const key = r.keys[k]!;
      const num = r.nums[k]!;
      if (num === pN && sk === pSk && key === pKey) continue;
      pSk = sk;
      pKey = key;
      pN = num;
      if (w === counts[wl]) {
        wl++;
        w = 0;
      }
      const d = chain[wl]!;
      d.sks[w] = sk;
      d.keys[w] = key;
      d.nums[w] = num;
      d.knums[w] = r.knums[k]!;
      w++;
    }
  }
  for (let c = 0; c < chain.length; c++) {
    const leaf = chain[c]!;
    const n = c < wl ? counts[c]! : c === wl ? w : 0;
    for (let k = n; k < counts[c]!; k++) {
      leaf.sks[k] = "";
      leaf.keys[k] = "";
    }
    leaf.n = n;
  }
  return wl + 1;
}
