/**
 * Ranges of sort keys as `OrderedIndex` (ordered-index.ts) takes them, compared as prefixes, and its entries.
 * The query plan (typed/query-plan.ts) builds these ranges from a query's conditions.
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

/** Whether `sk` is at or past the lower bound (prefix comparison). Monotone in sk order. */
export function aboveLo(sk: string, lo: SkBound): boolean {
  const p = sk.length > lo.sk.length ? sk.slice(0, lo.sk.length) : sk;
  return lo.exclusive ? p > lo.sk : p >= lo.sk;
}

/** Whether `sk` is past the upper bound (prefix comparison). Monotone in sk order. */
export function aboveHi(sk: string, hi: SkBound): boolean {
  const p = sk.length > hi.sk.length ? sk.slice(0, hi.sk.length) : sk;
  return hi.exclusive ? p >= hi.sk : p > hi.sk;
}
