/**
 * An in-memory ordered index of one entity's entries `(sk, key)`: the entries of one index (docs/FORMAT.md,
 * "Index terms"), ordered by sort key (JavaScript string order), then by record key (`compareKeys`). Built by
 * keyspace.ts from the records' terms and kept up to date on every write.
 *
 * Layout: sorted leaves (parallel arrays of LEAF to 2 × LEAF entries, ordered-leaf.ts) with a Fenwick tree of
 * their sizes: `count` is O(log n) (the tree's prefix sum plus a place in a leaf). Searches compare numbers
 * packed from the terms and string keys first ({@link pack}), the strings only where those tie (a search by
 * strings alone waited on ~17 strings scattered in memory). An add waits in a pending buffer
 * (ordered-pending.ts); the pending adds are placed when the index is next read, when a remove names a key with
 * a pending add, or when {@link OrderedIndex.pendingMax} wait: each routed to its leaf by the fences, grouped by
 * leaf, each leaf touched merged once and split into leaves of LEAF if it grew past 2 × LEAF (placing adds one by
 * one waited on a cold leaf per add, ~1 µs each at 100,000 entries; a flush touches each leaf once for all its
 * adds, so the more adds a flush places, the fewer cold leaves per add). Splits leave the tree stale until the
 * next read. At the bound the adds are placed in slices on later turns of the event loop (ordered-place.ts), a
 * query awaits the rest in slices too ({@link OrderedIndex.placeSliced}); a read or remove meanwhile finishes it.
 * Leaves have fixed room (ordered-leaf.ts): a flush writes into them in place and allocates only new leaves.
 * (A sorted base + delta merged past n/32, as DESIGN14 suggested, cost ~4 µs per change amortized.)
 */

import { aboveHi, aboveLo, type IndexEntry, type SkRange } from "./ordered-range.js";
import { commonPrefix, entryOrder, finish, leafSteps, fenwick, fenwickAt, fenwickBefore, BUILT, LEAF, type Leaf, ROOM, pack } from "./ordered-leaf.js";
import { PendingAdds } from "./ordered-pending.js";
import { never, type Placing, placeSome, startPlacing } from "./ordered-place.js";
import { overdue, turn } from "../platform/turn.js";

export { entryOrder, pack } from "./ordered-leaf.js";
export type { IndexEntry, SkBound, SkRange } from "./ordered-range.js";

/** A test on entries, false for a prefix of the order and true after. */
type Past = (sk: string, key: string) => boolean;

export class OrderedIndex {
  /** The leaves, in order (read and replaced by ordered-place.ts too). */
  leaves: Leaf[] = [];
  /** Fenwick tree (1-based) of the leaves' sizes. */
  private tree: number[] = [0];
  private total = 0;

  /**
   * What every term starts with, found when the index is built (the common prefix of its first and last terms:
   * `prefix` and the leading digits every value shares, "80000000" of a timestamp's seconds): terms are
   * packed after it. A term that does not start with it packs as -1 (below) or +Infinity (above): still in
   * order, compared as strings.
   */
  private common: string;

  /**
   * `prefix`: what every entry's term starts with (`"\u0001" + id + "\u0000"`). The leaves hold whole terms, as
   * the records' locations hold them (one string each, shared); an entry's sk is sliced when a walk yields it.
   * `packKeys`: whether `compareKeys` is UTF-8 (or UTF-16) string order, so keys may be packed
   * ({@link pack}) too; otherwise equal terms compare their keys with `compareKeys` alone.
   */
  constructor(
    readonly compareKeys: (a: string, b: string) => number,
    readonly prefix = "",
    readonly packKeys = false,
  ) {
    this.common = prefix;
  }

  /** A term's number (see {@link common}). */
  private num(term: string): number {
    const c = this.common;
    if (term.startsWith(c)) return pack(term, c.length);
    return term < c ? -1 : Number.POSITIVE_INFINITY;
  }

  private knum(key: string): number {
    return this.packKeys ? pack(key, 0) : 0;
  }

  /**
   * An index of the entries `(terms[i], keys[i])` (whole terms, each starting with `prefix`; any order;
   * duplicates kept once), sorted in one go.
   */
  static from(compareKeys: (a: string, b: string) => number, sks: readonly string[], keys: readonly string[], prefix = "", packKeys = false): OrderedIndex {
    return finish(OrderedIndex.building(compareKeys, sks, keys, prefix, packKeys, Uint32Array.from({ length: sks.length }, (_, i) => i).sort(entryOrder(sks, keys, compareKeys))));
  }

  /** {@link from} of entries already in `order` ({@link entryOrder}'s), in steps: yields every 256 (the caller may let the loop turn). */
  static *building(compareKeys: (a: string, b: string) => number, sks: readonly string[], keys: readonly string[], prefix: string, packKeys: boolean, order: ArrayLike<number> & Iterable<number>): Generator<void, OrderedIndex> {
    const ix = new OrderedIndex(compareKeys, prefix, packKeys);
    yield* ix.fillSteps(order, sks, keys);
    return ix;
  }

  /** Leaves made of the entries `(sks[i], keys[i])` for i in `order` (sorted), in an index with none (its common prefix found from them); in steps. */
  private *fillSteps(order: ArrayLike<number> & Iterable<number>, sks: readonly string[], keys: readonly string[]): Generator<void, void> {
    if (order.length) {
      this.common = commonPrefix(sks[order[0]!]!, sks[order[order.length - 1]!]!, this.prefix);
      this.commonAt = order.length;
    }
    this.leaves = yield* leafSteps(order, sks, keys, (t) => this.num(t), (k) => this.knum(k), BUILT, ROOM);
    this.rebuildTree();
  }

  get size(): number {
    this.settle();
    return this.total;
  }

  /** Leaves were split or removed since the tree was built: it is built again when next read, not per split (O(leaves)). */
  private treeStale = false;

  /** Place the pending adds and bring the tree up to date: what a read sees is sorted, with exact sizes. */
  private settle(): void {
    this.flush();
    if (this.treeStale) this.rebuildTree();
  }

  /**
   * Leaves were inserted or removed (`lastNums` kept in step by the caller): the tree is built again when next
   * read, or now when the index doubled since {@link common} was last found (O(1) amortized), so an index filled
   * by writes alone still packs its terms past their shared leading digits.
   */
  restructured(): void {
    this.treeStale = true;
    if (this.leaves.length * LEAF >= 2 * this.commonAt) this.rebuildTree();
  }

  private rebuildTree(): void {
    for (const l of this.leaves) l.counted = l.n;
    const { tree, total } = fenwick(this.leaves);
    this.tree = tree;
    this.total = total;
    this.treeStale = false;
    if (total >= 2 * this.commonAt || total * 2 < this.commonAt) this.recommon();
    this.lastNums = this.leaves.map((l) => l.fN);
  }

  /**
   * Each leaf's last number, in one array of doubles: the search for the leaf of an entry reads this array
   * alone (a few KB, in cache) and visits a leaf's own arrays only where numbers are equal.
   */
  lastNums: number[] = [];

  /** Entries when {@link common} was last found. */
  private commonAt = 0;

  /**
   * Find {@link common} again from the first and last terms, and pack every term again when it changed: when
   * the index doubled or halved since (O(n) then, O(1) amortized per change), so an index built empty and
   * filled by writes packs its terms past their shared leading digits too.
   */
  private recommon(): void {
    this.commonAt = this.total;
    const leaves = this.leaves;
    if (leaves.length === 0) return;
    const last = leaves[leaves.length - 1]!;
    const c = commonPrefix(leaves[0]!.sks[0]!, last.sks[last.n - 1]!, this.prefix);
    if (c === this.common) return;
    this.common = c;
    this.adds.repack((t) => this.num(t));
    for (const l of leaves) {
      for (let i = 0; i < l.n; i++) l.nums[i] = this.num(l.sks[i]!);
      l.fN = this.num(l.fSk);
      l.cols = undefined;
    }
  }

  /** Entries in the leaves before leaf `li`. */
  private before(li: number): number {
    return fenwickBefore(this.tree, li);
  }

  grow(li: number, by: number): void {
    if (this.treeStale) return; // counted when the tree is built again
    for (let i = li + 1; i < this.tree.length; i += i & -i) this.tree[i]! += by;
    this.total += by;
  }

  /** The leaf holding global position `pos` (< size), and the place in it. */
  private at(pos: number): [number, number] {
    return fenwickAt(this.tree, pos);
  }

  /** The first leaf whose last entry is past (`past`), and the first entry past in it; [leaves, 0] when none. */
  private find(past: Past): [number, number] {
    const leaves = this.leaves;
    let a = 0;
    let b = leaves.length;
    while (a < b) {
      const mid = (a + b) >>> 1;
      const l = leaves[mid]!;
      const last = l.n - 1;
      if (past(l.sks[last]!, l.keys[last]!)) b = mid;
      else a = mid + 1;
    }
    if (a === leaves.length) return [a, 0];
    const l = leaves[a]!;
    let x = 0;
    let y = l.n - 1;
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

  /** Order of (sk, key) — numbers n, kn — against entry i of leaf `l`: the numbers first, then the strings. */
  private cmp(sk: string, n: number, key: string, kn: number, l: Leaf, i: number): number {
    const m = l.nums[i]!;
    if (n !== m) return n < m ? -1 : 1;
    const s = l.sks[i]!;
    if (sk !== s) return sk < s ? -1 : 1;
    const km = l.knums[i]!;
    return kn !== km ? (kn < km ? -1 : 1) : this.compareKeys(key, l.keys[i]!);
  }

  /** The first leaf whose fence is ≥ (sk, key) (leaves.length when none): where the entry belongs. */
  seekLeaf(sk: string, n: number, key: string, kn: number, from = 0): number {
    const leaves = this.leaves;
    const lastNums = this.lastNums;
    let a = from;
    let b = leaves.length;
    while (a < b) {
      const mid = (a + b) >>> 1;
      const m = lastNums[mid]!;
      if (n < m) b = mid;
      else if (n > m) a = mid + 1;
      else {
        const l = leaves[mid]!;
        const c = sk !== l.fSk ? (sk < l.fSk ? -1 : 1) : kn !== l.fKn ? (kn < l.fKn ? -1 : 1) : this.compareKeys(key, l.fKey);
        if (c <= 0) b = mid;
        else a = mid + 1;
      }
    }
    return a;
  }

  /** The first entry ≥ (sk, key) in leaf `a`. */
  private seekIn(a: number, sk: string, n: number, key: string, kn: number): number {
    const l = this.leaves[a]!;
    let x = 0;
    let y = l.n - 1;
    while (x < y) {
      const mid = (x + y) >>> 1;
      if (this.cmp(sk, n, key, kn, l, mid) <= 0) y = mid;
      else x = mid + 1;
    }
    return x;
  }

  /** Add an entry (nothing when it is there already). */
  add(sk: string, key: string): void {
    this.addTerm(this.prefix + sk, key);
  }

  /** Remove an entry (nothing when it is not there). */
  remove(sk: string, key: string): void {
    this.removeTerm(this.prefix + sk, key);
  }

  /** Adds not yet placed in a leaf (ordered-pending.ts): placed by any read, a remove of one's key, or {@link pendingMax} of them. */
  private readonly adds = new PendingAdds();

  /**
   * Adds kept pending at most: a quarter of the index, 256 to 16,384 (a flush visits each leaf it touches once
   * for all its adds, up to every leaf: the more adds per flush, the fewer cold leaves per add).
   */
  get pendingMax(): number { return Math.min(16384, Math.max(256, this.total >>> 2)); }
  /** Entries added but not yet placed in a leaf (for tests and metrics). */
  get pending(): number { return this.adds.length + (this.placing ? this.placing.t.m : 0); }

  /** {@link add} of a whole term (`prefix + sk`); `kn`: the key packed as this index packs it, when the caller has it. */
  addTerm(sk: string, key: string, kn = this.knum(key)): void {
    this.adds.push(sk, key, this.num(sk), kn);
    if (this.adds.length >= this.pendingMax) this.placeSoon();
  }

  /**
   * The pending adds being placed in slices (null: none): taken from the buffer (new adds wait in its other
   * arrays), placed a few leaves at a time on later turns of the event loop ({@link placeSoon}), or at once by
   * anything that reads or removes ({@link flush}): until placed, they are pending to every reader, which places
   * them first. Between two slices only adds happen (to the buffer), which do not touch the leaves.
   */
  placing: Placing | null = null;
  private scheduled = false;

  /**
   * Place every pending add now: each routed to its leaf by its fence (a search of {@link lastNums}, a few KB in
   * cache), grouped by leaf (a counting sort on the leaf's position), each leaf's run sorted (a few entries: no
   * sort of all of them, which compared ~13 times per add) and merged into the leaf in place from the back, straight
   * from the pending arrays (ordered-leaf.ts `mergeRun`: the leaf split if it grew past 2 × LEAF).
   */
  private flush(): void {
    if (this.placing) placeSome(this, this.placing, never);
    if (this.adds.length === 0) return;
    if (this.leaves.length === 0) {
      this.flushIntoEmpty();
      return;
    }
    placeSome(this, this.begin(), never);
  }

  /**
   * {@link pendingMax} adds wait: place them in slices on the next turns of the event loop (issue 15: placing
   * 16,384 adds took 14-109 ms of CPU in one step), the ones being placed first if they still are (adds came
   * faster than the slices).
   */
  private placeSoon(): void {
    if (this.leaves.length === 0) {
      this.flush();
      return;
    }
    if (this.placing) placeSome(this, this.placing, never);
    this.begin();
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.tick).unref();
  }

  private readonly tick = (): void => {
    this.scheduled = false;
    const p = this.placing;
    if (p && !placeSome(this, p, overdue)) this.schedule();
  };

  /**
   * Place what is pending without holding the event loop (a query awaits this before it reads: Keyspace
   * `buildIndex`); what is added meanwhile may stay pending (the read places those few at once).
   */
  async placeSliced(): Promise<void> {
    // The placing under way, then the adds waiting when it ends (those pending when called are placed by then).
    for (let round = 0; round < 2; round++) {
      if (!this.placing) {
        if (this.adds.length === 0 || this.leaves.length === 0) return;
        this.begin();
      }
      for (let p = this.placing; p && !placeSome(this, p, overdue); p = this.placing) await turn();
    }
  }

  /** Take the pending adds to place (the index has leaves). */
  private begin(): Placing {
    const t = this.adds.take();
    const p = startPlacing(t, this.leaves.length);
    this.placing = p;
    return p;
  }

  /** {@link flush} into an index with no leaf: its leaves built from the adds, sorted, as {@link from} does. */
  private flushIntoEmpty(): void {
    const { sks, keys, order } = this.adds.takeSorted(this.compareKeys);
    finish(this.fillSteps(order, sks, keys));
  }

  /** {@link remove} of a whole term (`prefix + sk`). */
  removeTerm(sk: string, key: string): void {
    if (this.placing || this.adds.has(key)) this.flush();
    if (this.leaves.length === 0) return;
    const n = this.num(sk);
    const kn = this.knum(key);
    const li = this.seekLeaf(sk, n, key, kn);
    if (li === this.leaves.length) return;
    const i = this.seekIn(li, sk, n, key, kn);
    const l = this.leaves[li]!;
    if (l.sks[i] !== sk || l.keys[i] !== key) return;
    const m = l.n - 1;
    for (let k = i; k < m; k++) {
      l.sks[k] = l.sks[k + 1]!;
      l.keys[k] = l.keys[k + 1]!;
    }
    l.nums.copyWithin(i, i + 1, m + 1);
    l.knums.copyWithin(i, i + 1, m + 1);
    l.sks[m] = "";
    l.keys[m] = "";
    l.n = m;
    l.cols = undefined; // the fence stays: still between this leaf and the next
    if (m === 0) {
      this.leaves.splice(li, 1);
      this.lastNums.splice(li, 1);
      this.restructured();
    } else {
      l.counted--;
      this.grow(li, -1);
    }
  }

  /** [from, to) of the global positions whose sk is in `range`. */
  private span(range: SkRange): [number, number] {
    this.settle();
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
   * `visit(term)` for each entry in `range`, in (sk, key) order, with the entry's whole term (`prefix + sk`):
   * nothing allocated per entry (a walk slices each sk and makes an entry object), for callers that read
   * fixed-width numbers out of the term in place (aggregate-index.ts). `visit` must not change the index.
   */
  visitTerms(range: SkRange, visit: (term: string) => void): void {
    const [from, to] = this.span(range);
    if (from >= to) return;
    let [li, i] = this.at(from);
    let n = to - from;
    while (n > 0) {
      const l = this.leaves[li++]!;
      const sks = l.sks;
      const end = Math.min(l.n, i + n);
      n -= end - i;
      for (; i < end; i++) visit(sks[i]!);
      i = 0;
    }
  }

  /**
   * `visit(decode(term))` for each entry in `range`, in order, where the numbers `decode` gives are kept per
   * leaf under `column` (one Float64Array per leaf and column, dropped when the leaf changes): a metric read
   * again (the next aggregate) reads contiguous doubles instead of parsing strings scattered in memory. One
   * `column` name must always come with the same `decode`; `decode` and `visit` must not change the index.
   */
  visitNumbers(range: SkRange, column: string, decode: (term: string) => number, visit: (x: number) => void): void {
    const [from, to] = this.span(range);
    if (from >= to) return;
    let [li, i] = this.at(from);
    let n = to - from;
    while (n > 0) {
      const l = this.leaves[li++]!;
      let col = l.cols?.get(column);
      if (!col) {
        col = new Float64Array(l.n);
        for (let j = 0; j < col.length; j++) col[j] = decode(l.sks[j]!);
        (l.cols ??= new Map()).set(column, col);
      }
      const end = Math.min(col.length, i + n);
      n -= end - i;
      for (; i < end; i++) visit(col[i]!);
      i = 0;
    }
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
        if (--i < 0) i = (this.leaves[--li]?.n ?? 0) - 1;
      } else if (++i === l.n) {
        li++;
        i = 0;
      }
    }
  }
}
