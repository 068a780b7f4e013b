/**
 * The query API's types (docs/QUERIES.md): conditions on indexed fields, typed from the schema, the options
 * of `query`/`queryPage`/`count`, a page with its cursor, and what `explain` says. Types only, no code:
 * `Collection` (types.ts) takes its query methods from {@link QueryMethods}; query-plan.ts and query.ts
 * implement them.
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { ListOptions, StoredRecord } from "./types.js";
import type { AggregateOptions, AggregateResult } from "./aggregate.js";

/** The element type of a field (the field's own type when it is not a list). */
export type IndexValue<Desc extends DescMessage, P extends string> = P extends keyof MessageShape<Desc>
  ? MessageShape<Desc>[P] extends readonly (infer E)[]
    ? E
    : MessageShape<Desc>[P]
  : never;

/** A `google.protobuf.Timestamp` or `Duration` given as its parts (`seconds`, then `nanos`, default 0). */
export interface SecondsNanos {
  readonly seconds: bigint;
  readonly nanos?: number;
}

/**
 * What a condition may compare field `P` with: its element type, and for a Timestamp field also a `Date`
 * or `{ seconds, nanos? }`, for a Duration field `{ seconds, nanos? }` or a number of seconds, for a 64-bit
 * integer field also a safe integer number.
 */
export type QueryValue<Desc extends DescMessage, P extends string> = QueryScalar<NonNullable<IndexValue<Desc, P>>>;
type QueryScalar<V> = V extends { readonly $typeName: "google.protobuf.Timestamp" }
  ? V | Date | SecondsNanos
  : V extends { readonly $typeName: "google.protobuf.Duration" }
    ? V | SecondsNanos | number
    : V extends bigint
      ? bigint | number
      : V;

/**
 * Operators on one indexed field, all of which must hold (AND). On a repeated field (a list), a record
 * matches when one element satisfies every operator.
 */
export interface Range<V> {
  eq?: V;
  gt?: V;
  gte?: V;
  lt?: V;
  lte?: V;
  /** One of these values. */
  in?: readonly V[];
  /** Strings starting with this (string fields only). */
  prefix?: [V] extends [string] ? string : never;
}

/** A condition on one indexed field: a value (equal to it) or operators (`Range`). */
export type Condition<V> = V | Range<V>;

/** What `query`, `queryPage`, `count`, `explain` and `watch` take: conditions on indexed fields, all of which must hold. */
export type QueryWhere<Desc extends DescMessage, I extends string> = { [P in I]?: Condition<QueryValue<Desc, P>> };

/** The indexed fields that are not lists (what `orderBy` takes). */
export type OrderField<Desc extends DescMessage, I extends string> = {
  [P in I]: P extends keyof MessageShape<Desc> ? (MessageShape<Desc>[P] extends readonly unknown[] ? never : P) : never;
}[I];

export interface QueryOptions<I extends string = string, O extends string = I> extends ListOptions {
  /**
   * An indexed field (not a list): results by its value, then by key. Records without a value for it (an
   * unset Timestamp or Duration) come first (last with `reverse`), as SQL's NULLS FIRST. Without it: key order.
   */
  orderBy?: O;
  /** Descending order (by `orderBy`, else by key). */
  reverse?: boolean;
  /** The cursor of a page `queryPage` returned: the page after it (stable across writes). */
  after?: string;
  /** Allow reading every record when no index serves the conditions (otherwise `E_USAGE`). */
  scan?: boolean;
}

/** One page of `queryPage`: the records, and the cursor of the next page (`undefined` after the last). */
export interface QueryPage<T> {
  readonly records: readonly T[];
  readonly cursor: string | undefined;
}

/** How a query runs (`explain`): which index, how many ranges of it, what is checked per record, the order. */
export interface QueryExplain {
  /** The index read (its declaration, e.g. `"project_id,created_at"`), or `undefined` for a scan of every record. */
  readonly index: string | undefined;
  /** Every record is read (in key order) and checked: `scan: true` allowed it, or the query has no condition. */
  readonly scan: boolean;
  /** The number of ranges of the index read (one per combination of `in` values). */
  readonly ranges: number;
  /** Fields of the index whose conditions the ranges apply (leading components). */
  readonly uses: readonly string[];
  /** Fields checked per candidate record from its index terms (never by decoding the record). */
  readonly residual: readonly string[];
  /**
   * `"index"`: the index's order is the result's order (its ranges merged), so a `limit` stops the read
   * early; `"sorted"`: the matching keys are gathered and sorted (by key, or by `orderBy`) before the page
   * is read.
   */
  readonly order: "index" | "sorted";
  /** `count(where)` adds up the ranges' sizes without visiting their entries. */
  readonly exactCount: boolean;
}

/** The query methods of a collection (`Collection` in types.ts). */
export interface QueryMethods<Desc extends DescMessage, I extends string> {
  /**
   * Records matching every condition of `where`, read through an index (`explain` says which; a query no
   * index serves is refused with `E_USAGE` unless `scan: true`), in key order or by `orderBy`. A condition
   * on a field that is not indexed, an unknown operator or a value of the wrong type is `E_USAGE`. Read in
   * one synchronous step. Example: `query({ startedAt: { gte: from, lt: to } }, { orderBy: "startedAt" })`.
   */
  query(where: QueryWhere<Desc, I>, options?: QueryOptions<I, OrderField<Desc, I>>): Promise<StoredRecord<Desc>[]>;
  /**
   * One page of `query` (`limit` records at most, ≥ 1) and the cursor of the next (pass it as `after`, with
   * the same where and options; `undefined` after the last page). Each page is read in one synchronous step
   * and starts strictly after the cursor's position: a record not written between pages is never returned
   * twice nor skipped; one written meanwhile is seen with its new value if its new position is after the
   * cursor (in key order never again; by `orderBy`, again if its value moved past the cursor).
   */
  queryPage(where: QueryWhere<Desc, I>, options: QueryOptions<I, OrderField<Desc, I>> & { limit: number }): Promise<QueryPage<StoredRecord<Desc>>>;
  /** The number of records (matching `where`): from the index, without decoding records. */
  count(where?: QueryWhere<Desc, I>, options?: { scan?: boolean }): Promise<number>;
  /** How `query(where, options)` would run, without running it (`E_USAGE` as `query` would throw). */
  explain(where: QueryWhere<Desc, I>, options?: QueryOptions<I, OrderField<Desc, I>>): QueryExplain;
  /**
   * Count, sum, average, minimum and maximum of the records matching `where`, in time buckets (`bucket: {
   * field, by: "day" | "week" | "month", timeZone }`) or as one total; from the indexes without decoding
   * records where they hold the values (docs/AGGREGATES.md). Example:
   * `aggregate({ bucket: { field: "startedAt", by: "day", timeZone: "Europe/Berlin" }, count: true, sum: ["duration"] })`.
   */
  aggregate<const O extends AggregateOptions<Desc, I>>(options: O): Promise<AggregateResult<O>[]>;
}
