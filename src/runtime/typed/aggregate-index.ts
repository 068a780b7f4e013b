/**
 * Aggregates answered by the indexes alone, bucket by bucket (aggregate-run.ts tries it first): when there
 * is a bucket and no `where` beyond `bucket.from`/`to`, an index leading with the bucket's field counts each
 * bucket (`OrderedIndex.count` over the bucket's range of sort keys: O(log n), no entry visited), and each
 * metric is summed by walking, over the same range, an index whose first component is the bucket's field
 * and which holds the metric (`"started_at,duration"` for `sum: ["duration"]`): its value read from the term
 * in place, no record read, no term looked up, and kept per leaf of the index for the next aggregate
 * (`OrderedIndex.visitNumbers`; a write drops its leaf's numbers). Buckets are never found per record: they come from the first and last
 * entries and are walked with time-buckets.ts.
 *
 * Every record is in every index: a record whose bucket field is unset has the absent marker there, below
 * every bucket's range (in no bucket); an unset metric (a Duration) is the marker, skipped when read (sum,
 * avg, min and max skip it, as SQL skips NULL). Without `fill`, an empty bucket costs nothing: the next
 * bucket is the one of the first entry past the bucket just done.
 *
 * The buckets are computed a slice at a time with an event-loop turn between; a write to the store during a
 * turn (the engine's `lastSeq` moves) starts the computation again, and the third attempt runs in one
 * synchronous step, so every record is counted once, with one value.
 */
import { canBeAbsent, componentNumber, encodeComponent, PRESENT_LOW, indexKeyers, type IndexComponent, type IndexKeyer } from "./index-keys.js";
import { keyComparer, type SkRange } from "./query-plan.js";
import type { QueryContext } from "./query.js";
import { Acc, bucketMaker, MAX_FILLED_BUCKETS, type AggregateBucket, type AggregateSpec } from "./aggregate.js";
import { Bucketer, type TimeBucket } from "./time-buckets.js";
import type { CollectionDefinition } from "./entity.js";

/** Longest synchronous slice, in ms. */
const SLICE_MS = 5;
/** Attempts in slices before one synchronous run. */
const SLICED_ATTEMPTS = 2;

/** Any component will do: every record is in every index (an unset Timestamp/Duration is the absent marker). */
const always = (_c: IndexComponent) => true;

interface MetricWalk {
  readonly keyer: IndexKeyer;
  /** (component position in the keyer, column in spec.fields) */
  readonly reads: { readonly i: number; readonly col: number }[];
}

export interface IndexAggregatePlan {
  readonly countKeyer: IndexKeyer;
  readonly walks: readonly MetricWalk[];
}

/** How the indexes alone answer an aggregate of `fields` bucketed by `field`, or undefined when they cannot. */
export function planIndexAggregate(def: CollectionDefinition, field: string, fields: readonly string[]): IndexAggregatePlan | undefined {
  const leading = indexKeyers(def).filter((k) => k.components[0]!.field === field && !k.components[0]!.repeated);
  const countKeyer = leading.find((k) => k.components.slice(1).every(always));
  if (!countKeyer) return undefined;
  const walks = new Map<IndexKeyer, MetricWalk>();
  for (let col = 0; col < fields.length; col++) {
    const f = fields[col]!;
    let found: { keyer: IndexKeyer; i: number } | undefined;
    if (f === field) found = { keyer: countKeyer, i: 0 };
    for (const k of leading) {
      if (found) break;
      const i = k.components.findIndex((c, j) => j > 0 && c.field === f && !c.repeated);
      if (i > 0 && k.components.every((c, j) => j === 0 || j === i || always(c))) found = { keyer: k, i };
    }
    if (!found) return undefined;
    let w = walks.get(found.keyer);
    if (!w) walks.set(found.keyer, (w = { keyer: found.keyer, reads: [] }));
    w.reads.push({ i: found.i, col });
  }
  return { countKeyer, walks: [...walks.values()] };
}

/** A Timestamp sort key of an instant in epoch ms. */
function timeSk(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return encodeComponent("timestamp", { seconds: BigInt(seconds), nanos: Math.round((ms - seconds * 1000) * 1e6) });
}

/** Shorter than any bucket, in ms (a day across a change can be 23 hours, a month 28 days). */
const SHORTEST: Record<string, number> = { day: 22 * 3_600_000, week: 7 * 22 * 3_600_000, month: 27 * 86_400_000 };

/** The aggregate by `plan` (see above), or undefined when there is nothing in range (the general walk's answer). */
export async function runIndexAggregate(ctx: QueryContext & { readonly engine: { readonly lastSeq?: number } }, plan: IndexAggregatePlan, spec: AggregateSpec & { bucket: object }): Promise<AggregateBucket[] | undefined> {
  // The indexes read, built on first use without holding the event loop (Engine.buildOrderedIndex, issue 15).
  for (const k of [plan.countKeyer, ...plan.walks.map((w) => w.keyer)]) await ctx.engine.buildOrderedIndex?.(ctx.def.name, k.prefix, keyComparer(ctx.def));
  for (let attempt = 0; ; attempt++) {
    const seq = ctx.engine.lastSeq;
    const sliced = attempt < SLICED_ATTEMPTS && seq !== undefined;
    const out = await attemptOnce(ctx, plan, spec, sliced ? () => ctx.engine.lastSeq !== seq : undefined);
    if (out !== "changed") return out;
  }
}

async function attemptOnce(
  ctx: QueryContext,
  plan: IndexAggregatePlan,
  spec: AggregateSpec & { bucket: object },
  changed: (() => boolean) | undefined,
): Promise<AggregateBucket[] | undefined | "changed"> {
  const { def, engine } = ctx;
  const compare = keyComparer(def);
  const index = engine.orderedIndex(def.name, plan.countKeyer.prefix, compare);
  const { from, to } = spec.bucket as { from?: number; to?: number };
  const all: SkRange = { lo: { sk: from !== undefined ? timeSk(from) : PRESENT_LOW }, ...(to !== undefined && { hi: { sk: timeSk(to), exclusive: true } }) };
  const total = index.count(all);
  if (total === 0) return undefined; // the general walk has nothing to visit either
  const first = index.walk(all)[Symbol.iterator]().next().value;
  const last = index.walk(all, { reverse: true })[Symbol.iterator]().next().value;
  if (!first || !last) return undefined;
  const bucketer = new Bucketer(spec.bucket);
  const fill = spec.fill === true;
  const t0 = fill && from !== undefined ? from : componentNumber(plan.countKeyer, first.sk, 0);
  const t1 = fill && to !== undefined ? to - 1 : componentNumber(plan.countKeyer, last.sk, 0);
  if (fill && (t1 - t0) / SHORTEST[bucketer.by]! > MAX_FILLED_BUCKETS) return undefined; // aggregateRows says why
  const make = bucketMaker(spec);
  /** Without fill: the bucket of the first entry at or after `b.end` (empty buckets cost nothing). */
  const nextFull = (b: TimeBucket): TimeBucket | undefined => {
    const after = index.walk({ lo: { sk: timeSk(b.end) }, ...(all.hi && { hi: all.hi }) })[Symbol.iterator]().next().value;
    if (!after) return undefined;
    const t = componentNumber(plan.countKeyer, after.sk, 0);
    const n = bucketer.next(b);
    return t < n.end ? n : bucketer.bucketOf(t);
  };
  const walks = plan.walks.map((w) => {
    const index = engine.orderedIndex(def.name, w.keyer.prefix, compare);
    const base = index.prefix.length;
    // Each metric read from the whole terms in place, its numbers kept per leaf (OrderedIndex.visitNumbers).
    const reads = w.reads.map((r) => ({ ...r, column: `${r.i}:${w.keyer.components[r.i]!.kind}`, decode: (term: string) => componentNumber(w.keyer, term, r.i, base) }));
    return { ...w, index, reads };
  });
  const width = spec.fields.length;
  const out: AggregateBucket[] = [];
  let slice = performance.now();
  for (let b: TimeBucket | undefined = bucketer.bucketOf(t0); b && b.start <= t1; b = fill ? bucketer.next(b) : nextFull(b)) {
    const lo = from !== undefined && from > b.start ? from : b.start;
    const hi = to !== undefined && to < b.end ? to : b.end;
    const range: SkRange = { lo: { sk: timeSk(lo) }, hi: { sk: timeSk(hi), exclusive: true } };
    const count = index.count(range);
    if (count === 0) {
      if (fill) out.push(make(b, undefined));
      continue;
    }
    const acc = new Acc(width);
    acc.count = count;
    for (const w of walks) {
      for (const r of w.reads) {
        // NaN from a Timestamp/Duration component is an absent value (skipped, as SQL skips NULL); a double's is its own.
        const absentable = canBeAbsent(w.keyer.components[r.i]!.kind);
        w.index.visitNumbers(range, r.column, r.decode, (x) => (x === x || !absentable) && acc.addAt(r.col, x));
      }
    }
    out.push(make(b, acc));
    if (changed && performance.now() - slice > SLICE_MS) {
      await new Promise<void>((r) => setImmediate(r));
      if (changed()) return "changed";
      slice = performance.now();
    }
  }
  return out;
}
