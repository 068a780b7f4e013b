/**
 * The query planner (docs/QUERIES.md): `planQuery(def, where, options)` checks a `where` against the
 * entity's indexes (E_USAGE for a field that is not indexed, an unknown operator, a value of the wrong
 * type), picks the index serving the most leading components (equalities and `in`, then one range or
 * prefix on the next component; the one giving the requested order on a tie), turns those conditions into
 * ranges of sort keys (`SkRange`, index-keys.ts encodings) and leaves the rest as residual conditions,
 * checked from a record's index terms, never by decoding it. The plan walks the engine's ordered index
 * (`matches`), tells whether a record's terms satisfy the where (`matchesTerms`: change events, watch), and
 * says how it runs (`explain`). query.ts runs plans; aggregate.ts gathers its rows through `matches`.
 */
import { UsageError } from "../errors.js";
import { compareUtf8 } from "../format/segment-index.js";
import type { IndexEntry, OrderedIndex, SkBound, SkRange } from "../storage/ordered-index.js";
import type { CollectionDefinition } from "./entity.js";
import { type IndexKeyer, indexKeyers } from "./index-keys.js";
import { componentOf, componentSlice, componentsEnd, type FieldCond, holds, parseCondition } from "./query-conditions.js";
import type { QueryExplain } from "./query-types.js";

export type { IndexEntry, SkBound, SkRange };

/** What a plan reads: the engine (`Engine` has these methods). */
export interface QueryEngine {
  orderedIndex(entity: string, prefix: string, compareKeys: (a: string, b: string) => number): OrderedIndex;
  /** The index `orderedIndex` returns, built without holding the event loop: await it first (optional: a view may lack it). */
  buildOrderedIndex?(entity: string, prefix: string, compareKeys: (a: string, b: string) => number): Promise<void>;
  termsOf(entity: string, key: string): readonly string[] | undefined;
  keys(entity: string): Iterable<string>;
}

export interface PlanOptions {
  readonly orderBy?: string | undefined;
  readonly scan?: boolean | undefined;
}

/** Ranges of one index beyond which `in` values stop narrowing the walk (they are then checked per entry). */
const MAX_RANGES = 256;

/** A residual condition and where to read its field: from the walked sk (`slot`) or from the record's terms. */
interface Check {
  readonly cond: FieldCond;
  readonly keyer: IndexKeyer;
  readonly slot: number;
  /** Component i of `keyer` is read straight from the walked entry's sk. */
  readonly fromSk: boolean;
}

export interface QueryPlan {
  readonly def: CollectionDefinition;
  /** The index walked; undefined: a scan of every record in key order. */
  readonly keyer: IndexKeyer | undefined;
  /** Disjoint ranges of the index, in index order ([] for a scan). */
  readonly ranges: readonly SkRange[];
  /** No record can match (e.g. `in: []`, or `gt` above `lt`). */
  readonly empty: boolean;
  /** `matches` yields in the result's order (key order, or by `orderBy` then key): a limit can stop early. */
  readonly ordered: boolean;
  /** The `orderBy` field, or undefined (key order). */
  readonly orderBy: string | undefined;
  /** `count` may add up the ranges' sizes: no residual check, no key twice. */
  readonly exactCount: boolean;
  /** Every index the plan reads: the one walked, and those residual conditions and `orderBy` are read from. */
  readonly indexes: readonly IndexKeyer[];
  /** The where had no condition at all. */
  readonly unconditioned: boolean;
  /**
   * Keys (and sks of the walked index; "" in a scan) of matching records, in index order (scan: key order,
   * from `keys` when given, sorted, else the engine's keys sorted), residual conditions checked, each key
   * once, strictly after `after` in the walk's order. Consume within one synchronous step.
   */
  matches(engine: QueryEngine, after?: IndexEntry, reverse?: boolean, keys?: readonly string[]): Generator<IndexEntry>;
  /** Whether a record with these index terms satisfies the where (and has a term of the `orderBy` field's index). */
  matchesTerms(terms: readonly string[]): boolean;
  /** The sort key of a match by `orderBy` (its component's encoding; "" without orderBy), read from `entry.sk` or the record's terms. */
  orderKey(engine: QueryEngine, entry: IndexEntry): string;
  explain(): QueryExplain;
}

/** Plan `where` over `def`'s indexes (E_USAGE for a bad where or a query no index serves without `scan`). */
export function planQuery(def: CollectionDefinition, where: unknown, options: PlanOptions = {}): QueryPlan {
  if (typeof where !== "object" || where === null || Array.isArray(where)) {
    throw new UsageError(`a query of \`${def.name}\` takes an object of conditions on indexed fields`);
  }
  const keyers = indexKeyers(def);
  const conds = new Map<string, FieldCond>();
  for (const [field, value] of Object.entries(where)) {
    if (value === undefined) continue;
    conds.set(field, parseCondition(def, componentOf(def, keyers, field), value));
  }
  const orderBy = options.orderBy;
  if (orderBy !== undefined) {
    const comp = typeof orderBy === "string" ? componentOf(def, keyers, orderBy, "orderBy") : undefined;
    if (!comp) throw new UsageError(`\`orderBy\` of a query of \`${def.name}\` takes the name of an indexed field`);
    if (comp.repeated) throw new UsageError(`\`orderBy\` of a query of \`${def.name}\`: \`${orderBy}\` is a list, which has no order`);
  }
  return buildPlan(def, keyers, conds, orderBy, options.scan === true);
}

/** The key order of an entity: UTF-8 for string keys, numeric for integer keys (stored in decimal). */
export function keyComparer(def: CollectionDefinition): (a: string, b: string) => number {
  if (def.keyKind === "string") return compareUtf8;
  return (a, b) => {
    if (a.length < 16 && b.length < 16) return Number(a) - Number(b);
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}

/** How one index would serve the conditions. */
interface Candidate {
  readonly keyer: IndexKeyer;
  /** Leading components fixed by points, then whether the next has a range. */
  readonly pointCount: number;
  readonly hasRange: boolean;
  readonly ranges: SkRange[];
  /** The fixed sk prefix of each range (its points' encodings). */
  readonly prefixes: readonly string[];
  /** Fields the ranges apply exactly. */
  readonly exact: ReadonlySet<string>;
  readonly ordered: boolean;
}

function candidate(keyer: IndexKeyer, conds: ReadonlyMap<string, FieldCond>, orderBy: string | undefined): Candidate {
  let prefixes = [""];
  let pointCount = 0;
  let range: { lo?: SkBound; hi?: SkBound } | undefined;
  const exact = new Set<string>();
  const comps = keyer.components;
  for (const comp of comps) {
    const c = conds.get(comp.field);
    if (!c) break;
    if (c.points !== undefined) {
      if (prefixes.length * c.points.length > MAX_RANGES) break;
      prefixes = prefixes.flatMap((p) => c.points!.map((x) => p + x));
      pointCount++;
      exact.add(c.field);
      continue;
    }
    if (c.prefix !== undefined) range = { lo: { sk: c.prefix }, hi: { sk: c.prefix } };
    else range = { ...(c.lo && { lo: c.lo }), ...(c.hi && { hi: c.hi }) };
    if (c.prefix === undefined || (c.lo === undefined && c.hi === undefined)) exact.add(c.field);
    break;
  }
  const ranges: SkRange[] = prefixes.map((p) => rangeUnder(p, range));
  const next = comps[pointCount];
  // Each range is in the result's order: key order when points fix every component (ties go by key); by
  // `orderBy` then key when points fix the components before it and it is the last. Several ranges are
  // merged in that order (matches).
  const ordered = orderBy === undefined ? pointCount === comps.length : next?.field === orderBy && pointCount === comps.length - 1;
  return { keyer, pointCount, hasRange: range !== undefined, ranges, prefixes, exact, ordered };
}

/** The range of sks starting with `p` and, on the next component, within `r`. */
function rangeUnder(p: string, r: { lo?: SkBound; hi?: SkBound } | undefined): SkRange {
  const lo = r?.lo ? { sk: p + r.lo.sk, ...(r.lo.exclusive && { exclusive: true }) } : p === "" ? undefined : { sk: p };
  const hi = r?.hi ? { sk: p + r.hi.sk, ...(r.hi.exclusive && { exclusive: true }) } : p === "" ? undefined : { sk: p };
  return { ...(lo && { lo }), ...(hi && { hi }) };
}

function better(a: Candidate, b: Candidate): boolean {
  const sa = a.pointCount * 2 + (a.hasRange ? 1 : 0);
  const sb = b.pointCount * 2 + (b.hasRange ? 1 : 0);
  if (sa !== sb) return sa > sb;
  if (a.ordered !== b.ordered) return a.ordered;
  return a.keyer.components.length < b.keyer.components.length;
}

function buildPlan(def: CollectionDefinition, keyers: readonly IndexKeyer[], conds: ReadonlyMap<string, FieldCond>, orderBy: string | undefined, scan: boolean): QueryPlan {
  let best: Candidate | undefined;
  for (const k of keyers) {
    const c = candidate(k, conds, orderBy);
    const narrows = c.pointCount > 0 || c.hasRange;
    // An index that narrows nothing still serves an `orderBy` it starts with (read in its order, residual checked).
    if (!narrows && !(orderBy !== undefined && k.components[0]!.field === orderBy)) continue;
    if (!best || better(c, best)) best = c;
  }
  if (!best && (conds.size > 0 || orderBy !== undefined) && !scan) throw noIndex(def, keyers, conds, orderBy);
  // index-build check: a query on an index the store has not built yet gets E_UNAVAILABLE: query.ts's
  // `planFor` asks `QueryContext.checkIndex` (the storage helper's `checkIndexBuilt`) of each of `indexes`.
  return new Plan(def, keyers, conds, orderBy, best);
}

function noIndex(def: CollectionDefinition, keyers: readonly IndexKeyer[], conds: ReadonlyMap<string, FieldCond>, orderBy: string | undefined): UsageError {
  const fields = [...conds.keys(), ...(orderBy ? [orderBy] : [])];
  const named = (x: readonly string[]) => x.map((f) => `\`${f}\``).join(", ");
  const containing = keyers.filter((k) => k.components.some((c) => fields.includes(c.field))).map((k) => `\`${k.spec.name}\``);
  return new UsageError(
    `no index of \`${def.name}\` serves this query: an index starting with one of ${named(fields)} would` +
      (containing.length ? `; indexes containing them: ${containing.join(", ")}` : "") +
      "; or pass `{ scan: true }` to check every record",
  );
}

class Plan implements QueryPlan {
  readonly keyer: IndexKeyer | undefined;
  readonly ranges: readonly SkRange[];
  readonly empty: boolean;
  readonly ordered: boolean;
  readonly exactCount: boolean;
  readonly indexes: readonly IndexKeyer[];
  readonly unconditioned: boolean;
  /** Conditions the walk does not apply by its ranges. */
  private readonly checks: readonly Check[];
  /** Every condition (matchesTerms), with the index each is read from. */
  private readonly all: readonly Check[];
  /** The walked index may hold a key several times (a list's elements, several `in` values). */
  private readonly dedupe: boolean;
  private readonly orderAt: { keyer: IndexKeyer; slot: number; fromSk: boolean } | undefined;
  private readonly uses: readonly string[];
  private readonly compareKeys: (a: string, b: string) => number;
  /** Ordered ranges, several: walked together, merged (each range's fixed prefix, its points, first). */
  private readonly merged: { readonly prefixes: readonly string[]; readonly points: number } | undefined;

  constructor(
    readonly def: CollectionDefinition,
    keyers: readonly IndexKeyer[],
    conds: ReadonlyMap<string, FieldCond>,
    readonly orderBy: string | undefined,
    best: Candidate | undefined,
  ) {
    this.keyer = best?.keyer;
    this.ranges = best ? best.ranges : [];
    this.empty = [...conds.values()].some((c) => c.empty);
    this.unconditioned = conds.size === 0;
    this.compareKeys = keyComparer(def);
    const source = (field: string) => readFrom(keyers, best?.keyer, field);
    this.all = [...conds.values()].map((cond) => ({ cond, ...source(cond.field) }));
    this.checks = this.all.filter((c) => !best?.exact.has(c.cond.field));
    this.orderAt = orderBy === undefined ? undefined : source(orderBy);
    const repeated = best?.keyer.components[0]!.repeated === true;
    this.dedupe = repeated && !(best!.ranges.length === 1 && best!.pointCount === 1);
    this.ordered = best ? best.ordered : orderBy === undefined;
    this.merged = best?.ordered && best.ranges.length > 1 ? { prefixes: best.prefixes, points: best.pointCount } : undefined;
    this.uses = best ? best.keyer.components.slice(0, best.pointCount + (best.hasRange ? 1 : 0)).map((c) => c.field) : [];
    // The ranges count exactly when nothing is checked per entry and no key can be in two of them; an
    // `orderBy` outside the walked index is read from the record's terms (it has one in every built index).
    this.exactCount = best !== undefined && this.checks.length === 0 && !this.dedupe && (this.orderAt === undefined || this.orderAt.fromSk);
    this.indexes = [...new Set([...(best ? [best.keyer] : []), ...this.all.map((c) => c.keyer), ...(this.orderAt ? [this.orderAt.keyer] : [])])];
  }

  *matches(engine: QueryEngine, after?: IndexEntry, reverse = false, keys?: readonly string[]): Generator<IndexEntry> {
    if (this.empty) return;
    const entity = this.def.name;
    if (!this.keyer) {
      const sorted = keys ?? [...engine.keys(entity)].sort(this.compareKeys);
      let i = after === undefined ? (reverse ? sorted.length - 1 : 0) : this.start(sorted, after.key, reverse);
      for (; i >= 0 && i < sorted.length; i += reverse ? -1 : 1) {
        const key = sorted[i]!;
        const terms = this.checks.length || this.orderAt ? engine.termsOf(entity, key) : undefined;
        if (terms === undefined && (this.checks.length || this.orderAt)) continue;
        if (terms && !this.matchesTerms(terms)) continue;
        yield { sk: "", key };
      }
      return;
    }
    const index = engine.orderedIndex(entity, this.keyer.prefix, this.compareKeys);
    if (this.merged) {
      yield* this.mergedWalk(engine, index, after, reverse);
      return;
    }
    const seen = this.dedupe ? new Set<string>() : undefined;
    const ranges = reverse ? [...this.ranges].reverse() : this.ranges;
    const opts = { reverse, ...(after && { after }) };
    for (const r of ranges) {
      for (const e of index.walk(r, opts)) {
        if (seen?.has(e.key)) continue;
        if (!this.passes(engine, e)) continue;
        seen?.add(e.key);
        yield e;
      }
    }
  }

  /**
   * The ranges walked together and merged into the result's order, (sk past the range's prefix, key); after
   * `after` (its part past the points, in each range). Equal keys meet (a list's elements): one is yielded.
   */
  private *mergedWalk(engine: QueryEngine, index: OrderedIndex, after: IndexEntry | undefined, reverse: boolean): Generator<IndexEntry> {
    const { prefixes, points } = this.merged!;
    const rest = after && after.sk.slice(componentsEnd(this.keyer!, after.sk, points));
    const dir = reverse ? -1 : 1;
    // Per range: its next entry, that entry's sk past the prefix (`x`), the prefix's length, the walk.
    const heads: { e: IndexEntry; x: string; pl: number; it: Iterator<IndexEntry> }[] = [];
    this.ranges.forEach((r, i) => {
      const p = prefixes[i]!;
      const it = index.walk(r, { reverse, ...(after && { after: { sk: p + rest, key: after.key } }) })[Symbol.iterator]();
      const n = it.next();
      if (!n.done) heads.push({ e: n.value, x: n.value.sk.slice(p.length), pl: p.length, it });
    });
    const before = (a: (typeof heads)[number], b: (typeof heads)[number]) => dir * (a.x < b.x ? -1 : a.x > b.x ? 1 : this.compareKeys(a.e.key, b.e.key)) < 0;
    let last: string | undefined;
    while (heads.length) {
      let m = 0;
      for (let i = 1; i < heads.length; i++) if (before(heads[i]!, heads[m]!)) m = i;
      const h = heads[m]!;
      const e = h.e;
      const n = h.it.next();
      if (n.done) heads.splice(m, 1);
      else {
        h.x = n.value.sk.slice(h.pl);
        h.e = n.value;
      }
      if (e.key === last || !this.passes(engine, e)) continue;
      last = e.key;
      yield e;
    }
  }

  /** The position in sorted `keys` of the first key strictly after `key` in the walk's direction. */
  private start(keys: readonly string[], key: string, reverse: boolean): number {
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compareKeys(keys[mid]!, key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    // lo: the first key > `key`; going down, the last key < `key`.
    if (!reverse) return lo;
    return lo > 0 && keys[lo - 1] === key ? lo - 2 : lo - 1;
  }

  /** The residual conditions (and the orderBy field's presence) of one walked entry. */
  private passes(engine: QueryEngine, e: IndexEntry): boolean {
    let terms: readonly string[] | undefined;
    for (const c of this.checks) {
      if (c.fromSk) {
        if (!holds(c.cond, componentSlice(c.keyer, e.sk, c.slot))) return false;
        continue;
      }
      terms ??= engine.termsOf(this.def.name, e.key) ?? [];
      if (!someTerm(terms, c)) return false;
    }
    if (this.orderAt && !this.orderAt.fromSk) {
      terms ??= engine.termsOf(this.def.name, e.key) ?? [];
      if (!terms.some((t) => t.startsWith(this.orderAt!.keyer.prefix))) return false;
    }
    return true;
  }

  matchesTerms(terms: readonly string[]): boolean {
    if (this.empty) return false;
    for (const c of this.all) if (!someTerm(terms, c)) return false;
    return this.orderAt === undefined || terms.some((t) => t.startsWith(this.orderAt!.keyer.prefix));
  }

  orderKey(engine: QueryEngine, entry: IndexEntry): string {
    const at = this.orderAt;
    if (!at) return "";
    if (at.fromSk) return componentSlice(at.keyer, entry.sk, at.slot);
    const t = engine.termsOf(this.def.name, entry.key)?.find((x) => x.startsWith(at.keyer.prefix));
    return t === undefined ? "" : componentSlice(at.keyer, t.slice(at.keyer.prefix.length), at.slot);
  }

  explain(): QueryExplain {
    return Object.freeze({
      index: this.keyer?.spec.name,
      scan: this.keyer === undefined,
      ranges: this.ranges.length,
      uses: Object.freeze([...this.uses]),
      residual: Object.freeze(this.checks.map((c) => c.cond.field)),
      order: this.ordered ? ("index" as const) : ("sorted" as const),
      exactCount: this.exactCount || (this.keyer === undefined && this.unconditioned),
    });
  }
}

/** Whether some term of `c.keyer` in `terms` has a component `c.slot` that satisfies the condition. */
function someTerm(terms: readonly string[], c: Check): boolean {
  const p = c.keyer.prefix;
  for (const t of terms) {
    if (t.startsWith(p) && holds(c.cond, componentSlice(c.keyer, t.slice(p.length), c.slot))) return true;
  }
  return false;
}

/**
 * Where a field's value is read: from the walked index's sk when it holds it (not as a list), else from the
 * terms of the smallest index holding it (every record is in every index: an unset Timestamp/Duration is
 * the absent marker). `componentOf` checked that some index holds it.
 */
function readFrom(keyers: readonly IndexKeyer[], walked: IndexKeyer | undefined, field: string): { keyer: IndexKeyer; slot: number; fromSk: boolean } {
  if (walked) {
    const slot = walked.components.findIndex((c) => c.field === field);
    if (slot >= 0 && !walked.components[slot]!.repeated) return { keyer: walked, slot, fromSk: true };
  }
  let found: { keyer: IndexKeyer; slot: number; fromSk: boolean } | undefined;
  for (const k of keyers) {
    const slot = k.components.findIndex((c) => c.field === field);
    if (slot < 0) continue;
    if (!found || k.components.length < found.keyer.components.length) found = { keyer: k, slot, fromSk: false };
  }
  return found!;
}
