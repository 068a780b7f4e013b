/**
 * Aggregates: `repo.aggregate({ where, bucket, fill, count, sum, avg, min, max })` (issue 14). This file holds
 * the options' and results' types (typed from the schema), the pure computation over rows
 * (`aggregateRows`), and `trend`; aggregate-run.ts reads the rows from the store (index terms first).
 *
 * Numbers: integers and doubles as numbers, 64-bit integers as `Number()`, a `Duration` in seconds, a
 * `Timestamp` (min/max) in epoch milliseconds; both fractional when they have nanos.
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import { UsageError } from "../errors.js";
import { Bucketer, type BucketBy, type TimeBucket } from "./time-buckets.js";
import type { QueryWhere, TimestampField } from "./types.js";

type Shape<Desc extends DescMessage> = MessageShape<Desc>;
type Fields<Desc extends DescMessage> = keyof Shape<Desc> & string;

/** The `Timestamp` fields of a message among `I` (a bucket's `field`: an indexed Timestamp field). */
export type TimeField<Desc extends DescMessage, I extends string = string> = TimestampField<Desc> & I;

/**
 * The fields `sum` and `avg` take: singular number and bigint scalars (not enums: `0.5` is no enum value)
 * and `Duration` fields.
 */
export type NumField<Desc extends DescMessage> = {
  [P in Fields<Desc>]-?: NonNullable<Shape<Desc>[P]> extends number
    ? 0.5 extends NonNullable<Shape<Desc>[P]>
      ? P
      : never
    : NonNullable<Shape<Desc>[P]> extends bigint
      ? P
      : NonNullable<Shape<Desc>[P]> extends Duration
        ? P
        : never;
}[Fields<Desc>];

/** The fields `min` and `max` take: `NumField`s and `Timestamp` fields (epoch ms). */
export type MinMaxField<Desc extends DescMessage> = NumField<Desc> | TimestampField<Desc>;

/** How records are grouped by time. */
export interface BucketSpec<F extends string = string> {
  /** An indexed `Timestamp` field: each record goes to the bucket of its value (records without one: none). */
  readonly field: F;
  /** Local days, weeks or months (docs/QUERIES.md "Time buckets"; time-buckets.ts). */
  readonly by: BucketBy;
  /** IANA time zone the calendar is read in. Default `"UTC"`. Example: `"Europe/Berlin"`. */
  readonly timeZone?: string;
  /** ISO weekday weeks start on: 1 = Monday (default) … 7 = Sunday. */
  readonly weekStart?: 1 | 2 | 3 | 4 | 5 | 6 | 7;
  /** Only records at or after this instant. */
  readonly from?: Date;
  /** Only records before this instant (exclusive). */
  readonly to?: Date;
}

/** What `repo.aggregate` takes. */
export interface AggregateOptions<Desc extends DescMessage = DescMessage, I extends string = string> {
  /** The records counted (as `query`'s `where`); all records when absent. */
  readonly where?: QueryWhere<Desc, I>;
  /** Group by local day, week or month of a Timestamp index field; one bucket over everything when absent. */
  readonly bucket?: BucketSpec<TimeField<Desc, I>>;
  /** Include empty buckets between `bucket.from` (or the first record's) and `bucket.to` (or the last record's). */
  readonly fill?: boolean;
  /** Count the records of each bucket. */
  readonly count?: boolean;
  /** Sum of each field per bucket (records without a value add nothing; 0 for none). */
  readonly sum?: readonly NumField<Desc>[];
  /** Mean of each field per bucket over the records with a value (`null` for none). */
  readonly avg?: readonly NumField<Desc>[];
  readonly min?: readonly MinMaxField<Desc>[];
  readonly max?: readonly MinMaxField<Desc>[];
  /** Allow a full scan when no index serves `where` (as `query`'s `scan`). */
  readonly scan?: boolean;
}

/** One bucket of an aggregate, every metric present (the untyped shape `aggregateRows` returns). */
export interface AggregateBucket {
  /** First instant of the bucket (a local midnight); undefined without `bucket`. */
  readonly start: Date | undefined;
  /** First instant after the bucket (the next bucket's start); undefined without `bucket`. */
  readonly end: Date | undefined;
  /** `"2026-03-29"` (day; week: its first day), `"2026-03"` (month), `"all"` without `bucket`. */
  readonly label: string;
  readonly count?: number;
  readonly sum?: Readonly<Record<string, number>>;
  readonly avg?: Readonly<Record<string, number | null>>;
  readonly min?: Readonly<Record<string, number | null>>;
  readonly max?: Readonly<Record<string, number | null>>;
}

type Names<L> = L extends readonly (infer F extends string)[] ? F : never;

/** The bucket type `repo.aggregate(options)` resolves to: the metrics `options` asked for, typed by field. */
export type AggregateResult<O> = {
  readonly start: O extends { bucket: object } ? Date : undefined;
  readonly end: O extends { bucket: object } ? Date : undefined;
  readonly label: string;
} & (O extends { count: true } ? { readonly count: number } : unknown) &
  (O extends { sum: infer L } ? { readonly sum: Readonly<Record<Names<L>, number>> } : unknown) &
  (O extends { avg: infer L } ? { readonly avg: Readonly<Record<Names<L>, number | null>> } : unknown) &
  (O extends { min: infer L } ? { readonly min: Readonly<Record<Names<L>, number | null>> } : unknown) &
  (O extends { max: infer L } ? { readonly max: Readonly<Record<Names<L>, number | null>> } : unknown);

/** One record as `aggregateRows` sees it: its time (epoch ms) and its metric values (`spec.fields` order). */
export interface AggregateRow {
  readonly t: number;
  readonly values: readonly (number | undefined)[];
}

/** What `aggregateRows` computes. */
export interface AggregateSpec {
  readonly bucket?: {
    readonly by: BucketBy;
    readonly timeZone?: string | undefined;
    readonly weekStart?: number | undefined;
    /** Rows before it are left out (epoch ms, inclusive bound). */
    readonly from?: number | undefined;
    /** Rows at or after it are left out (epoch ms, exclusive bound). */
    readonly to?: number | undefined;
  };
  readonly fill?: boolean;
  readonly count?: boolean;
  /** The metric fields: a row's `values[i]` is the value of `fields[i]`. */
  readonly fields: readonly string[];
  readonly sum?: readonly string[];
  readonly avg?: readonly string[];
  readonly min?: readonly string[];
  readonly max?: readonly string[];
}

/** Most buckets `fill` makes (a day bucket for 270 years); past it, E_USAGE. */
export const MAX_FILLED_BUCKETS = 100_000;

/** Per bucket sums, counts with a value, mins and maxes of every field (indexed by `spec.fields`). */
export class Acc {
  count = 0;
  readonly sum: Float64Array;
  readonly n: Uint32Array;
  readonly min: Float64Array;
  readonly max: Float64Array;
  constructor(width: number) {
    this.sum = new Float64Array(width);
    this.n = new Uint32Array(width);
    this.min = new Float64Array(width).fill(Infinity);
    this.max = new Float64Array(width).fill(-Infinity);
  }
  add(values: readonly (number | undefined)[]): void {
    this.count++;
    for (let i = 0; i < this.sum.length; i++) {
      const v = values[i];
      if (v !== undefined) this.addAt(i, v);
    }
  }
  /** Field `i`'s value of one record (the record itself is counted apart, in `count`). */
  addAt(i: number, v: number): void {
    this.sum[i]! += v;
    this.n[i]!++;
    if (v < this.min[i]!) this.min[i] = v;
    if (v > this.max[i]!) this.max[i] = v;
  }
}

/** A function making a bucket's result from its bounds and accumulator (undefined: empty), for `spec`. */
export function bucketMaker(spec: AggregateSpec): (b: TimeBucket, acc: Acc | undefined) => AggregateBucket {
  const columns = metricColumns(spec);
  return (b, acc) => finish(spec, columns, { start: new Date(b.start), end: new Date(b.end), label: b.label }, acc);
}

/** Which field positions each metric reads; E_USAGE for a name not in `fields`. */
function metricColumns(spec: AggregateSpec): { name: string; col: number }[][] {
  const cols = new Map(spec.fields.map((f, i) => [f, i] as const));
  return [spec.sum, spec.avg, spec.min, spec.max].map((list) =>
    (list ?? []).map((name) => {
      const col = cols.get(name);
      if (col === undefined) throw new UsageError(`aggregate: field \`${String(name)}\` is not among the metric fields`);
      return { name, col };
    }),
  );
}

function finish(
  spec: AggregateSpec,
  columns: { name: string; col: number }[][],
  range: { start: Date | undefined; end: Date | undefined; label: string },
  acc: Acc | undefined,
): AggregateBucket {
  const out: Record<string, unknown> = { start: range.start, end: range.end, label: range.label };
  if (spec.count) out.count = acc?.count ?? 0;
  const [sum, avg, min, max] = columns as [typeof columns[0], typeof columns[0], typeof columns[0], typeof columns[0]];
  const has = (c: number) => acc !== undefined && acc.n[c]! > 0;
  if (spec.sum) out.sum = Object.freeze(Object.fromEntries(sum.map(({ name, col }) => [name, acc ? acc.sum[col]! : 0])));
  if (spec.avg) out.avg = Object.freeze(Object.fromEntries(avg.map(({ name, col }) => [name, has(col) ? acc!.sum[col]! / acc!.n[col]! : null])));
  if (spec.min) out.min = Object.freeze(Object.fromEntries(min.map(({ name, col }) => [name, has(col) ? acc!.min[col]! : null])));
  if (spec.max) out.max = Object.freeze(Object.fromEntries(max.map(({ name, col }) => [name, has(col) ? acc!.max[col]! : null])));
  return Object.freeze(out) as unknown as AggregateBucket;
}

/** Rows in time order: `rows` itself when already ordered (one pass to check), else a sorted copy. */
function inTimeOrder(rows: readonly AggregateRow[]): readonly AggregateRow[] {
  for (let i = 1; i < rows.length; i++) {
    if (rows[i]!.t < rows[i - 1]!.t) return [...rows].sort((a, b) => a.t - b.t);
  }
  return rows;
}

function bound(v: number | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new UsageError(`aggregate: \`bucket.${name}\` must be a valid Date`);
  return v;
}

/**
 * The aggregate of `rows` as `spec` says: one bucket over every row without `spec.bucket`, else the buckets
 * holding rows (and, with `fill`, the empty ones between), in time order. Rows may come in any order (in
 * time order they are not copied; otherwise a sorted copy is made). Rows outside `bucket.from`/`bucket.to`
 * are left out; a row's `undefined` value adds nothing to that field's metrics (but the row is counted).
 * Pure: no store, no clock. Boundaries are computed once per bucket (time-buckets.ts), never per row.
 */
export function aggregateRows(rows: readonly AggregateRow[], spec: AggregateSpec): AggregateBucket[] {
  const columns = metricColumns(spec);
  const width = spec.fields.length;
  if (!spec.bucket) {
    let acc: Acc | undefined;
    for (const row of rows) (acc ??= new Acc(width)).add(row.values);
    return [finish(spec, columns, { start: undefined, end: undefined, label: "all" }, acc)];
  }
  const bucketer = new Bucketer(spec.bucket);
  const from = bound(spec.bucket.from, "from");
  const to = bound(spec.bucket.to, "to");
  const fill = spec.fill === true;
  const out: AggregateBucket[] = [];
  if (from !== undefined && to !== undefined && to <= from) return out;
  const emit = (b: TimeBucket, acc: Acc | undefined) => {
    if (out.length >= MAX_FILLED_BUCKETS && fill) throw tooMany();
    out.push(finish(spec, columns, { start: new Date(b.start), end: new Date(b.end), label: b.label }, acc));
  };
  // With `fill`, the walk starts at from's bucket and every bucket up to the last is emitted; without, the
  // bucket of the next row is looked up directly (one boundary computation per bucket with rows).
  let cur: TimeBucket | undefined = fill && from !== undefined ? bucketer.bucketOf(from) : undefined;
  let acc: Acc | undefined;
  let any = false;
  for (const row of inTimeOrder(rows)) {
    const t = row.t;
    if ((from !== undefined && t < from) || (to !== undefined && t >= to)) continue;
    any = true;
    if (cur === undefined) cur = bucketer.bucketOf(t);
    else if (t >= cur.end) {
      if (acc || fill) emit(cur, acc);
      acc = undefined;
      if (!fill) {
        const n = bucketer.next(cur); // dense data: the next bucket, whose start is cached already
        cur = t < n.end ? n : bucketer.bucketOf(t);
      } else {
        cur = bucketer.next(cur);
        while (t >= cur.end) emit(cur, undefined), (cur = bucketer.next(cur));
      }
    }
    (acc ??= new Acc(width)).add(row.values);
  }
  if (cur === undefined || (!any && (from === undefined || to === undefined))) return out;
  if (acc || fill) emit(cur, acc);
  if (fill && to !== undefined) {
    while (cur.end < to) emit((cur = bucketer.next(cur)), undefined);
  }
  return out;
}

function tooMany(): UsageError {
  return new UsageError(`aggregate: \`fill\` would make more than ${MAX_FILLED_BUCKETS} buckets: narrow \`bucket.from\`/\`bucket.to\``);
}

/** One bucket compared with the one before it (`trend`). */
export interface TrendPoint<B> {
  readonly bucket: B;
  /** `metric(bucket)`. */
  readonly value: number;
  /** The previous bucket's value (undefined for the first bucket). */
  readonly previous: number | undefined;
  /** `value - previous` (undefined for the first bucket). */
  readonly change: number | undefined;
  /** `value / previous` (undefined for the first bucket and when `previous` is 0). */
  readonly ratio: number | undefined;
}

/**
 * Each bucket compared with the one before it, by `metric` (e.g. `(b) => b.sum.duration`). Buckets as
 * `aggregate` returns them (in time order; pass `fill: true` there to compare with empty periods rather
 * than with the last period that had records). Example:
 * `trend(await repo.aggregate({ bucket: { field: "startedAt", by: "week" }, count: true, fill: true }), (b) => b.count)`.
 */
export function trend<B>(buckets: readonly B[], metric: (bucket: B) => number): TrendPoint<B>[] {
  const out: TrendPoint<B>[] = [];
  let previous: number | undefined;
  for (const bucket of buckets) {
    const value = metric(bucket);
    out.push(
      Object.freeze({
        bucket,
        value,
        previous,
        change: previous === undefined ? undefined : value - previous,
        ratio: previous === undefined || previous === 0 ? undefined : value / previous,
      }),
    );
    previous = value;
  }
  return out;
}
