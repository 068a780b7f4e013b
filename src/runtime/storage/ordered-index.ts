/**
 * An in-memory ordered index of one entity's entries `(sk, key)`: the entries of one index (docs/FORMAT.md,
 * "Index terms"), ordered by sort key (JavaScript string order), then by record key (`compareKeys`, the
 * entity's key order). Built by keyspace.ts from the records' terms and kept up to date on every write.
 *
 * Layout: a sorted `base` (two parallel arrays), a small sorted `delta` of entries added since the last merge,
 * and a sorted list of `removed` base positions. An insert or a removal touches the delta or the removed list
 * only (a splice of at most max(1024, n/32) elements), never the base; when they grow past that bound the
 * three are merged into a new base (O(n), once every n/32 changes: O(1) amortized per change). `count` is
 * three binary searches per range (base, removed, delta): O(log n).
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

/** Merge the delta and the removed positions into the base once they pass max(MIN_PENDING, n / PENDING_RATIO). */
const MIN_PENDING = 1024;
const PENDING_RATIO = 32;

/** Whether `sk` is at or past the lower bound (prefix comparison). Monotone in sk order. */
function aboveLo(sk: string, lo: SkBound): boolean {
  const p = sk.length > lo.sk.length ? sk.slice(0, lo.sk.length) : sk;
  return lo.exclusive ? p > lo.sk : p >= lo.sk;
}

/** Whether `sk` is at or before the upper bound (prefix comparison). Monotone (decreasing) in sk order. */
function belowHi(sk: string, hi: SkBound): boolean {
  const p = sk.length > hi.sk.length ? sk.slice(0, hi.sk.length) : sk;
  return hi.exclusive ? p < hi.sk : p <= hi.sk;
}

/** Sorted entries in two parallel arrays. */
interface Run {
  sks: string[];
  keys: string[];
}

export class OrderedIndex {
  private base: Run = { sks: [], keys: [] };
  /** Positions in `base` no longer in the index, ascending. */
  private removed: number[] = [];
  private delta: Run = { sks: [], keys: [] };

  constructor(private readonly compareKeys: (a: string, b: string) => number) {}

  /**
   * An index of `entries` (any order; duplicates kept once), sorted in one go: what a build from the records'
   * terms uses instead of `add` per entry.
   */
  static from(compareKeys: (a: string, b: string) => number, sks: string[], keys: string[]): OrderedIndex {
    const ix = new OrderedIndex(compareKeys);
    const order = new Array<number>(sks.length);
    for (let i = 0; i < order.length; i++) order[i] = i;
    order.sort((a, b) => {
      const x = sks[a]!;
      const y = sks[b]!;
      return x < y ? -1 : x > y ? 1 : compareKeys(keys[a]!, keys[b]!);
    });
    const base: Run = { sks: [], keys: [] };
    for (const i of order) {
      const n = base.sks.length;
      if (n > 0 && base.sks[n - 1] === sks[i] && base.keys[n - 1] === keys[i]) continue;
      base.sks.push(sks[i]!);
      base.keys.push(keys[i]!);
    }
    ix.base = base;
    return ix;
  }

  get size(): number {
    return this.base.sks.length - this.removed.length + this.delta.sks.length;
  }

  /** Order of (sk, key) against entry i of `run`. */
  private cmp(sk: string, key: string, run: Run, i: number): number {
    const s = run.sks[i]!;
    return sk < s ? -1 : sk > s ? 1 : this.compareKeys(key, run.keys[i]!);
  }

  /** First position of `run` whose entry is ≥ (sk, key) (> when `strict`). */
  private seek(run: Run, sk: string, key: string, strict = false): number {
    let lo = 0;
    let hi = run.sks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.cmp(sk, key, run, mid);
      if (c > 0 || (strict && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Position of `p` in `removed`, or where it would go (negated minus one) when absent. */
  private removedAt(p: number): number {
    const r = this.removed;
    let lo = 0;
    let hi = r.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (r[mid]! < p) lo = mid + 1;
      else hi = mid;
    }
    return lo < r.length && r[lo] === p ? lo : -lo - 1;
  }

  /** Add an entry (nothing when it is there already). */
  add(sk: string, key: string): void {
    const p = this.seek(this.base, sk, key);
    if (p < this.base.sks.length && this.cmp(sk, key, this.base, p) === 0) {
      const at = this.removedAt(p);
      if (at >= 0) this.removed.splice(at, 1); // back in: the base position is live again
      return;
    }
    const d = this.seek(this.delta, sk, key);
    if (d < this.delta.sks.length && this.cmp(sk, key, this.delta, d) === 0) return;
    this.delta.sks.splice(d, 0, sk);
    this.delta.keys.splice(d, 0, key);
    this.maybeMerge();
  }

  /** Remove an entry (nothing when it is not there). */
  remove(sk: string, key: string): void {
    const d = this.seek(this.delta, sk, key);
    if (d < this.delta.sks.length && this.cmp(sk, key, this.delta, d) === 0) {
      this.delta.sks.splice(d, 1);
      this.delta.keys.splice(d, 1);
      return;
    }
    const p = this.seek(this.base, sk, key);
    if (p >= this.base.sks.length || this.cmp(sk, key, this.base, p) !== 0) return;
    const at = this.removedAt(p);
    if (at >= 0) return;
    this.removed.splice(-at - 1, 0, p);
    this.maybeMerge();
  }

  private maybeMerge(): void {
    const pending = this.delta.sks.length + this.removed.length;
    if (pending > Math.max(MIN_PENDING, this.base.sks.length / PENDING_RATIO)) this.merge();
  }

  /** Fold the delta and the removed positions into a new base. */
  private merge(): void {
    const { base, delta, removed } = this;
    const n = base.sks.length - removed.length + delta.sks.length;
    const sks = new Array<string>(n);
    const keys = new Array<string>(n);
    let o = 0;
    let d = 0;
    let r = 0;
    for (let b = 0; b < base.sks.length; b++) {
      if (r < removed.length && removed[r] === b) {
        r++;
        continue;
      }
      while (d < delta.sks.length && this.cmp(delta.sks[d]!, delta.keys[d]!, base, b) < 0) {
        sks[o] = delta.sks[d]!;
        keys[o++] = delta.keys[d++]!;
      }
      sks[o] = base.sks[b]!;
      keys[o++] = base.keys[b]!;
    }
    for (; d < delta.sks.length; d++) {
      sks[o] = delta.sks[d]!;
      keys[o++] = delta.keys[d]!;
    }
    this.base = { sks, keys };
    this.delta = { sks: [], keys: [] };
    this.removed = [];
  }

  /** [from, to) of `run`'s positions whose sk is in `range`. */
  private span(run: Run, range: SkRange): [number, number] {
    const { sks } = run;
    let from = 0;
    let to = sks.length;
    const { lo, hi } = range;
    if (lo) {
      let a = 0;
      let b = sks.length;
      while (a < b) {
        const mid = (a + b) >>> 1;
        if (aboveLo(sks[mid]!, lo)) b = mid;
        else a = mid + 1;
      }
      from = a;
    }
    if (hi) {
      let a = from;
      let b = sks.length;
      while (a < b) {
        const mid = (a + b) >>> 1;
        if (belowHi(sks[mid]!, hi)) a = mid + 1;
        else b = mid;
      }
      to = a;
    }
    return [from, Math.max(from, to)];
  }

  /** Entries whose sk is in `range`: O(log n). */
  count(range: SkRange): number {
    const [bf, bt] = this.span(this.base, range);
    const [df, dt] = this.span(this.delta, range);
    const rf = this.removedAt(bf);
    const rt = this.removedAt(bt);
    const gone = (rt < 0 ? -rt - 1 : rt) - (rf < 0 ? -rf - 1 : rf);
    return bt - bf - gone + (dt - df);
  }

  /**
   * Entries in (sk, key) order (reversed when `reverse`), starting strictly after `after` when given (in the
   * walk's direction). Consume it within one synchronous step (a write changes what it walks).
   */
  *walk(range: SkRange, options?: { reverse?: boolean; after?: IndexEntry }): Generator<IndexEntry> {
    let [bf, bt] = this.span(this.base, range);
    let [df, dt] = this.span(this.delta, range);
    const after = options?.after;
    if (options?.reverse) {
      if (after) {
        bt = Math.max(bf, Math.min(bt, this.seek(this.base, after.sk, after.key)));
        dt = Math.max(df, Math.min(dt, this.seek(this.delta, after.sk, after.key)));
      }
      yield* this.walkDown(bf, bt, df, dt);
    } else {
      if (after) {
        bf = Math.min(bt, Math.max(bf, this.seek(this.base, after.sk, after.key, true)));
        df = Math.min(dt, Math.max(df, this.seek(this.delta, after.sk, after.key, true)));
      }
      yield* this.walkUp(bf, bt, df, dt);
    }
  }

  private *walkUp(bf: number, bt: number, df: number, dt: number): Generator<IndexEntry> {
    const { base, delta, removed } = this;
    const at = this.removedAt(bf);
    let r = at < 0 ? -at - 1 : at;
    let d = df;
    for (let b = bf; b < bt; b++) {
      if (r < removed.length && removed[r] === b) {
        r++;
        continue;
      }
      while (d < dt && this.cmp(delta.sks[d]!, delta.keys[d]!, base, b) < 0) {
        yield { sk: delta.sks[d]!, key: delta.keys[d]! };
        d++;
      }
      yield { sk: base.sks[b]!, key: base.keys[b]! };
    }
    for (; d < dt; d++) yield { sk: delta.sks[d]!, key: delta.keys[d]! };
  }

  private *walkDown(bf: number, bt: number, df: number, dt: number): Generator<IndexEntry> {
    const { base, delta, removed } = this;
    const at = this.removedAt(bt);
    let r = (at < 0 ? -at - 1 : at) - 1; // the last removed position below bt
    let d = dt - 1;
    for (let b = bt - 1; b >= bf; b--) {
      if (r >= 0 && removed[r] === b) {
        r--;
        continue;
      }
      while (d >= df && this.cmp(delta.sks[d]!, delta.keys[d]!, base, b) > 0) {
        yield { sk: delta.sks[d]!, key: delta.keys[d]! };
        d--;
      }
      yield { sk: base.sks[b]!, key: base.keys[b]! };
    }
    for (; d >= df; d--) yield { sk: delta.sks[d]!, key: delta.keys[d]! };
  }
}
