/**
 * Queries run (docs/QUERIES.md): `query`, `queryPage` (cursors), `count(where)`, `explain` and the keys of a
 * `watch(where)`, over a plan of query-plan.ts. A page is read in one synchronous step: the plan's walk of
 * the engine's ordered index and the reads of its records, with no write in between, so a record is seen
 * at most once per page; a cursor is the last (sort key, key) returned, and the next page starts strictly
 * after it, so across pages too. collection.ts delegates its query methods here.
 */
import { UsageError } from "../errors.js";
import type { CollectionDefinition } from "./entity.js";
import type { IndexKeyer } from "./index-keys.js";
import { type IndexEntry, keyComparer, type PlanOptions, planQuery, type QueryEngine, type QueryPlan } from "./query-plan.js";
import type { QueryExplain, QueryOptions, QueryPage } from "./query-types.js";

/** What a query reads: a collection's definition, the engine, and its record reads. */
export interface QueryContext {
  readonly def: CollectionDefinition;
  readonly engine: QueryEngine & { count(entity: string): number };
  /** The record under a stored key, decoded and frozen (`RecordCodec.read`), `undefined` when absent. */
  read(key: string): unknown;
  /** Every key in key order (`RecordCodec.sortedKeys`, cached). */
  sortedKeys(): readonly string[];
  /** Throws (`E_UNAVAILABLE`) when the store has not built an index the plan reads yet. */
  checkIndex?(keyer: IndexKeyer): void;
}

/** The plan of a query, refused while an index it reads is not built yet (index-build check). */
function planFor(ctx: QueryContext, where: unknown, options: PlanOptions): QueryPlan {
  const p = planQuery(ctx.def, where, options);
  if (ctx.checkIndex) for (const k of p.indexes) ctx.checkIndex(k);
  return p;
}

/** Cursor format version (the JSON inside the base64url text). */
const CURSOR_VERSION = 1;

interface Cursor {
  /** The plan's order: "i" + index id (walked in index order) or "s" + orderBy (gathered and sorted). */
  readonly m: string;
  /** The sk (index order) or the orderBy component's encoding (sorted order) of the last record returned. */
  readonly s: string;
  /** Its stored key. */
  readonly k: string;
}

/**
 * The ordered indexes `plan` reads, each built on its first use without holding the event loop
 * (`Engine.buildOrderedIndex`, issue 15): the plan's synchronous walk then finds them built.
 */
async function indexesReady(ctx: QueryContext, plan: QueryPlan): Promise<void> {
  const build = ctx.engine.buildOrderedIndex;
  if (!build || !plan.keyer) return;
  for (const k of plan.indexes) await build.call(ctx.engine, ctx.def.name, k.prefix, keyComparer(ctx.def));
}

/** The records of `query(where, options)`. */
export async function runQuery(ctx: QueryContext, where: unknown, options?: QueryOptions): Promise<unknown[]> {
  return (await runPage(ctx, where, options, false)).records as unknown[];
}

/** `queryPage`: a page and the cursor of the next. */
export async function runQueryPage(ctx: QueryContext, where: unknown, options: QueryOptions): Promise<QueryPage<unknown>> {
  if (typeof options?.limit !== "number" || !(options.limit >= 1)) throw new UsageError("`queryPage` takes a `limit` ≥ 1");
  return runPage(ctx, where, options, true);
}

async function runPage(ctx: QueryContext, where: unknown, options: QueryOptions | undefined, paged: boolean): Promise<QueryPage<unknown>> {
  const o = checkOptions(options);
  const plan = planFor(ctx, where, o);
  await indexesReady(ctx, plan);
  const mode = plan.ordered ? `i${plan.keyer?.spec.id ?? ""}` : `s${plan.orderBy ?? ""}`;
  const after = o.after === undefined ? undefined : decodeCursor(o.after, mode);
  const want = o.limit === Infinity ? Infinity : o.offset + o.limit + (paged ? 1 : 0);
  const picked = plan.ordered ? walkOrdered(ctx, plan, after, o.reverse, want) : gatherSorted(ctx, plan, after, o.reverse, want);
  const page = picked.slice(o.offset, o.offset + o.limit);
  const records: unknown[] = [];
  for (const e of page) {
    const r = ctx.read(e.key);
    if (r !== undefined) records.push(r);
  }
  const last = page[page.length - 1];
  const more = paged && picked.length > o.offset + o.limit;
  const cursor = more && last ? encodeCursor({ m: mode, s: last.sk, k: last.key }) : undefined;
  return Object.freeze({ records, cursor });
}

/** Matches in walk order (which is the result's order), up to `want`. */
function walkOrdered(ctx: QueryContext, plan: QueryPlan, after: Cursor | undefined, reverse: boolean, want: number): IndexEntry[] {
  const out: IndexEntry[] = [];
  if (want === 0) return out;
  const keys = plan.keyer ? undefined : ctx.sortedKeys();
  for (const e of plan.matches(ctx.engine, after && { sk: after.s, key: after.k }, reverse, keys)) {
    out.push(e);
    if (out.length >= want) break;
  }
  return out;
}

/**
 * Every match, sorted by (orderBy's encoding, key), after the cursor, the first `want`; the entries' `sk`
 * is replaced by the sort key (what a cursor holds in this order).
 */
function gatherSorted(ctx: QueryContext, plan: QueryPlan, after: Cursor | undefined, reverse: boolean, want: number): IndexEntry[] {
  const cmpKey = keyComparer(ctx.def);
  const keys = plan.keyer ? undefined : ctx.sortedKeys();
  const all: IndexEntry[] = [];
  const dir = reverse ? -1 : 1;
  const cmp = (a: IndexEntry, b: IndexEntry) => dir * (a.sk < b.sk ? -1 : a.sk > b.sk ? 1 : cmpKey(a.key, b.key));
  const from = after && { sk: after.s, key: after.k };
  for (const e of plan.matches(ctx.engine, undefined, false, keys)) {
    const x = { sk: plan.orderKey(ctx.engine, e), key: e.key };
    if (!from || cmp(x, from) > 0) all.push(x);
  }
  if (want * 8 < all.length) return smallest(all, want, cmp);
  return all.sort(cmp);
}

/** The `n` smallest of `items` by `cmp`, in order (a bounded max-heap: O(items · log n) instead of a sort). */
function smallest<T>(items: readonly T[], n: number, cmp: (a: T, b: T) => number): T[] {
  const heap: T[] = [];
  const up = (i: number) => {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (cmp(heap[i]!, heap[p]!) <= 0) return;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  };
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && cmp(heap[l]!, heap[m]!) > 0) m = l;
      if (r < heap.length && cmp(heap[r]!, heap[m]!) > 0) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (const x of items) {
    if (heap.length < n) {
      heap.push(x);
      up(heap.length - 1);
    } else if (n > 0 && cmp(x, heap[0]!) < 0) {
      heap[0] = x;
      down(0);
    }
  }
  return heap.sort(cmp);
}

/** `count(where)`: the ranges' sizes when the plan allows, else the matches counted (never a record decoded). */
export async function runCount(ctx: QueryContext, where: unknown, options?: { scan?: boolean }): Promise<number> {
  if (where === undefined) return ctx.engine.count(ctx.def.name);
  if (options !== undefined && (typeof options !== "object" || options === null)) throw new UsageError("`count` takes options as an object");
  unknownOption(options, COUNT_OPTIONS);
  const plan = planFor(ctx, where, { scan: options?.scan === true });
  if (plan.empty) return 0;
  if (!plan.keyer && plan.unconditioned) return ctx.engine.count(ctx.def.name);
  await indexesReady(ctx, plan);
  if (plan.exactCount && plan.keyer) {
    const index = ctx.engine.orderedIndex(ctx.def.name, plan.keyer.prefix, keyComparer(ctx.def));
    let n = 0;
    for (const r of plan.ranges) n += index.count(r);
    return n;
  }
  let n = 0;
  for (const _ of plan.matches(ctx.engine, undefined, false, plan.keyer ? undefined : ctx.sortedKeys())) n++;
  return n;
}

export function runExplain(ctx: QueryContext, where: unknown, options?: QueryOptions): QueryExplain {
  return planQuery(ctx.def, where, checkOptions(options)).explain();
}

/** The plan of a `watch(where)` and the keys of its result, in key order. */
export function watchQuery(ctx: QueryContext, where: unknown): { plan: QueryPlan; select: () => string[] } {
  const plan = planFor(ctx, where, {});
  const select = () => (plan.ordered ? walkOrdered(ctx, plan, undefined, false, Infinity) : gatherSorted(ctx, plan, undefined, false, Infinity)).map((e) => e.key);
  return { plan, select };
}

interface CheckedOptions {
  readonly limit: number;
  readonly offset: number;
  readonly reverse: boolean;
  readonly after: string | undefined;
  readonly orderBy: string | undefined;
  readonly scan: boolean;
}

const QUERY_OPTIONS = ["limit", "offset", "orderBy", "reverse", "after", "scan"];
const COUNT_OPTIONS = ["scan"];

/** E_USAGE for an option the call does not take (a typo such as `orderby` would otherwise be ignored). */
function unknownOption(options: object | undefined, known: readonly string[]): void {
  const bad = options && Object.keys(options).find((k) => !known.includes(k));
  if (bad !== undefined) throw new UsageError(`unknown query option \`${bad}\` (options: ${known.join(", ")})`);
}

function checkOptions(options: QueryOptions | undefined): CheckedOptions {
  if (options !== undefined && (typeof options !== "object" || options === null)) throw new UsageError("query options must be an object");
  unknownOption(options, QUERY_OPTIONS);
  const offset = options?.offset ?? 0;
  const limit = options?.limit ?? Infinity;
  if (typeof offset !== "number" || typeof limit !== "number" || !(offset >= 0) || !(limit >= 0) || !Number.isFinite(offset)) {
    throw new UsageError("`offset` and `limit` must be ≥ 0");
  }
  const after = options?.after;
  if (after !== undefined && typeof after !== "string") throw new UsageError("`after` takes a cursor (a string) from `queryPage`");
  return {
    offset: Math.floor(offset),
    limit: limit === Infinity ? limit : Math.floor(limit),
    reverse: options?.reverse === true,
    after,
    orderBy: options?.orderBy,
    scan: options?.scan === true,
  };
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify({ v: CURSOR_VERSION, ...c }), "utf8").toString("base64url");
}

function decodeCursor(text: string, mode: string): Cursor {
  let c: unknown;
  try {
    c = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    c = undefined;
  }
  const o = c as { v?: unknown; m?: unknown; s?: unknown; k?: unknown } | undefined;
  if (typeof o !== "object" || o === null || o.v !== CURSOR_VERSION || typeof o.m !== "string" || typeof o.s !== "string" || typeof o.k !== "string") {
    throw new UsageError("`after` is not a cursor `queryPage` returned");
  }
  if (o.m !== mode) throw new UsageError("`after` is a cursor of another query (another order or index)");
  return { m: o.m, s: o.s, k: o.k };
}
