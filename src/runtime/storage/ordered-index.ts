/**
 * An in-memory ordered index of one entity's entries `(sk, key)`: the entries of one index (docs/FORMAT.md,
 * "Index terms"), ordered by sort key (JavaScript string order), then by record key (`compareKeys`, the
 * entity's key order). Built by keyspace.ts from the records' terms and kept up to date on every write.
 *
 * Layout: a sorted list of sorted leaves (a leaf: two parallel arrays of at most 2 × LEAF entries), with a
 * Fenwick tree of the leaves' sizes. A change splices one leaf (≤ 2 × LEAF elements) and updates the tree
 * (O(log leaves)); a leaf that grows past 2 × LEAF splits in two, an empty one goes (the tree is rebuilt then,
 * O(leaves)). Finding an entry or a range bound is a binary search over the leaves' last entries, then in one
 * leaf; a position in the whole order is the tree's prefix sum plus the place in the leaf: `count` is
 * O(log n). (DESIGN14 suggested a sorted base + delta merged when it passes n/32; measured at 100,000
 * entries, its merges cost ~4 µs per change amortized, more than the rest of a put: leaves never copy more
 * than one leaf.)
 */

export interface SkBound {
  readonly sk: string;
  readonly exclusive?: boolean;
}

/**
 * A range of sks compared as prefixes: an entry is ≥ lo when sk.slice(0, lo.sk.length) ≥ lo.sk (> when
 * exclusive), ≤ hi when sk.slice(0, hi.sk.length) ≤ hi.sk (< when exclusive). lo = hi = p (inclusive)
 * selects every sk starting with p. Absent bound: open.
 */
export interface SkRange {
  readonly lo?: SkBound;
  readonly hi?: SkBound;
}

export interface IndexEntry {
  readonly sk: string;
  readonly key: string;
}

/** A leaf's size after a split, and half the most it holds. */
const LEAF = 64;

/** Whether `sk` is at or past the lower bound (prefix comparison). Monotone in sk order. */
function aboveLo(sk: string, lo: SkBound): boolean {
  const p = sk.length > lo.sk.length ? sk.slice(0, lo.sk.length) : sk;
  return lo.exclusive ? p > lo.sk : p >= lo.sk;
}

/** Whether `sk` is past the upper bound (prefix comparison). Monotone in sk order. */
function aboveHi(sk: string, hi: SkBound): boolean {
  const p = sk.length > hi.sk.length ? sk.slice(0, hi.sk.length) : sk;
  return hi.exclusive ? p >= hi.sk : p > hi.sk;
}

/** Sorted entries in two parallel arrays. */
interface Leaf {
  sks: string[];
  keys: string[];
}

/** A test on entries, false for a prefix of the order and true after. */
type Past = (sk: string, key: string) => boolean;

export class OrderedIndex {
  private leaves: Leaf[] = [];
  /** Fenwick tree (1-based) of the leaves' sizes. */
  private tree: number[] = [0];
  private total = 0;

  /**
   * `prefix`: what every entry's term starts with (`"\u0001" + id + "\u0000"`). The leaves hold whole terms, as
   * the records' locations hold them (one string each, shared): sorting and comparing those flat strings is
   * several times faster than comparing sks sliced off them; an entry's sk is sliced when a walk yields it.
   */
  constructor(
    private readonly compareKeys: (a: string, b: string) => number,
    private readonly prefix = "",
  ) {}

  /**
   * An index of the entries `(terms[i], keys[i])` (whole terms, each starting with `prefix`; any order;
   * duplicates kept once), sorted in one go.
   */
  static from(compareKeys: (a: string, b: string) => number, sks: readonly string[], keys: readonly string[], prefix = ""): OrderedIndex {
    const ix = new OrderedIndex(compareKeys, prefix);
    const order = new Uint32Array(sks.length);
    for (let i = 0; i < order.length; i++) order[i] = i;
    order.sort((a, b) => {
      const x = sks[a]!;
      const y = sks[b]!;
      return x < y ? -1 : x > y ? 1 : compareKeys(keys[a]!, keys[b]!);
    });
    let leaf: Leaf = { sks: [], keys: [] };
    let prevSk: string | undefined;
    let prevKey: string | undefined;
    for (const i of order) {
      const sk = sks[i]!;
      const key = keys[i]!;
      if (sk === prevSk && key === prevKey) continue;
      prevSk = sk;
      prevKey = key;
      if (leaf.sks.length === LEAF) {
        ix.leaves.push(leaf);
        leaf = { sks: [], keys: [] };
      }
      leaf.sks.push(sk);
      leaf.keys.push(key);
    }
    if (leaf.sks.length) ix.leaves.push(leaf);
    ix.rebuildTree();
    return ix;
  }

  get size(): number {
    return this.total;
  }

  private rebuildTree(): void {
    const n = this.leaves.length;
    const tree = new Array<number>(n + 1).fill(0);
    let total = 0;
    for (let i = 1; i <= n; i++) {
      tree[i]! += this.leaves[i - 1]!.sks.length;
      total += this.leaves[i - 1]!.sks.length;
      const j = i + (i & -i);
      if (j <= n) tree[j]! += tree[i]!;
    }
    this.tree = tree;
    this.total = total;
  }

  /** Entries in the leaves before leaf `li`. */
  private before(li: number): number {
    let sum = 0;
    for (let i = li; i > 0; i -= i & -i) sum += this.tree[i]!;
    return sum;
  }

  private grow(li: number, by: number): void {
    for (let i = li + 1; i < this.tree.length; i += i & -i) this.tree[i]! += by;
    this.total += by;
  }

  /** The leaf holding global position `pos` (< size), and the place in it. */
  private at(pos: number): [number, number] {
    let li = 0;
    let rest = pos;
    let step = 1;
    while (step * 2 < this.tree.length) step *= 2;
    for (; step > 0; step >>= 1) {
      const next = li + step;
      if (next < this.tree.length && this.tree[next]! <= rest) {
        li = next;
        rest -= this.tree[next]!;
      }
    }
    return [li, rest];
  }

  /** The first leaf whose last entry is past (`past`), and the first entry past in it; [leaves, 0] when none. */
  private find(past: Past): [number, number] {
    const leaves = this.leaves;
    let a = 0;
    let b = leaves.length;
    while (a < b) {
      const mid = (a + b) >>> 1;
      const l = leaves[mid]!;
      const last = l.sks.length - 1;
      if (past(l.sks[last]!, l.keys[last]!)) b = mid;
      else a = mid + 1;
    }
    if (a === leaves.length) return [a, 0];
    const l = leaves[a]!;
    let x = 0;
    let y = l.sks.length - 1;
    while (x < y) {
      const mid = (x + y) >>> 1;
      if (past(l.sks[mid]!, l.keys[mid]!)) y = mid;
      else x = mid + 1;
    }
    return [a, x];
  }

  /** Global position of the first entry past. */
  private first(past: Past): number {
    const [li, i] = this.find(past);
    return li === this.leaves.length ? this.total : this.before(li) + i;
  }

  private notBefore(sk: string, key: string): Past {
    return (s, k) => s > sk || (s === sk && this.compareKeys(k, key) >= 0);
  }

  /** Order of (sk, key) against entry i of leaf `l`. */
  private cmp(sk: string, key: string, l: Leaf, i: number): number {
    const s = l.sks[i]!;
    return sk === s ? this.compareKeys(key, l.keys[i]!) : sk < s ? -1 : 1;
  }

  /** {@link find} for the first entry ≥ (sk, key), without a closure: what every add and remove asks. */
  private seek(sk: string, key: string): [number, number] {
    const leaves = this.leaves;
    let a = 0;
    let b = leaves.length;
    while (a < b) {
      const mid = (a + b) >>> 1;
      const l = leaves[mid]!;
      if (this.cmp(sk, key, l, l.sks.length - 1) <= 0) b = mid;
      else a = mid + 1;
    }
    if (a === leaves.length) return [a, 0];
    const l = leaves[a]!;
    let x = 0;
    let y = l.sks.length - 1;
    while (x < y) {
      const mid = (x + y) >>> 1;
      if (this.cmp(sk, key, l, mid) <= 0) y = mid;
      else x = mid + 1;
    }
    return [a, x];
  }

  /** Add an entry (nothing when it is there already). */
  add(sk: string, key: string): void {
    this.addTerm(this.prefix + sk, key);
  }

  /** Remove an entry (nothing when it is not there). */
  remove(sk: string, key: string): void {
    this.removeTerm(this.prefix + sk, key);
  }

  /** {@link add} of a whole term (`prefix + sk`). */
  addTerm(sk: string, key: string): void {
    if (this.leaves.length === 0) {
      this.leaves.push({ sks: [sk], keys: [key] });
      this.rebuildTree();
      return;
    }
    let [li, i] = this.seek(sk, key);
    if (li === this.leaves.length) {
      li--; // after every entry: at the end of the last leaf
      i = this.leaves[li]!.sks.length;
    }
    const l = this.leaves[li]!;
    if (i < l.sks.length && l.sks[i] === sk && l.keys[i] === key) return;
    l.sks.splice(i, 0, sk);
    l.keys.splice(i, 0, key);
    if (l.sks.length > 2 * LEAF) {
      this.leaves.splice(li + 1, 0, { sks: l.sks.splice(LEAF), keys: l.keys.splice(LEAF) });
      this.rebuildTree();
    } else this.grow(li, 1);
  }

  /** {@link remove} of a whole term (`prefix + sk`). */
  removeTerm(sk: string, key: string): void {
    const [li, i] = this.seek(sk, key);
    const l = this.leaves[li];
    if (!l || l.sks[i] !== sk || l.keys[i] !== key) return;
    l.sks.splice(i, 1);
    l.keys.splice(i, 1);
    if (l.sks.length === 0) {
      this.leaves.splice(li, 1);
      this.rebuildTree();
    } else this.grow(li, -1);
  }

  /** [from, to) of the global positions whose sk is in `range`. */
  private span(range: SkRange): [number, number] {
    const p = this.prefix;
    const lo = range.lo && { sk: p + range.lo.sk, exclusive: range.lo.exclusive === true };
    const hi = range.hi && { sk: p + range.hi.sk, exclusive: range.hi.exclusive === true };
    const from = lo ? this.first((sk) => aboveLo(sk, lo)) : 0;
    const to = hi ? this.first((sk) => aboveHi(sk, hi)) : this.total;
    return [from, Math.max(from, to)];
  }

  /** Entries whose sk is in `range`: O(log n). */
  count(range: SkRange): number {
    const [from, to] = this.span(range);
    return to - from;
  }

  /**
   * Entries in (sk, key) order (reversed when `reverse`), starting strictly after `after` when given (in the
   * walk's direction). Consume it within one synchronous step (a write changes what it walks).
   */
  *walk(range: SkRange, options?: { reverse?: boolean; after?: IndexEntry }): Generator<IndexEntry> {
    let [from, to] = this.span(range);
    const at = options?.after;
    const after = at && { sk: this.prefix + at.sk, key: at.key };
    const reverse = options?.reverse === true;
    if (after) {
      if (reverse) to = Math.min(to, this.first(this.notBefore(after.sk, after.key)));
      else from = Math.max(from, this.first((s, k) => s > after.sk || (s === after.sk && this.compareKeys(k, after.key) > 0)));
    }
    if (from >= to) return;
    let [li, i] = this.at(reverse ? to - 1 : from);
    const cut = this.prefix.length;
    for (let n = to - from; n > 0; n--) {
      const l = this.leaves[li]!;
      yield { sk: cut ? l.sks[i]!.slice(cut) : l.sks[i]!, key: l.keys[i]! };
      if (reverse) {
        if (--i < 0) i = this.leaves[--li]?.sks.length! - 1;
      } else if (++i === l.sks.length) {
        li++;
        i = 0;
      }
    }
  }
}
