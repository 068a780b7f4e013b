/**
 * `repo.aggregate(options)` over the store: the records the query plan matches (query-plan.ts), each one's
 * time and metric values read from index terms when an index holds the field (`componentNumber` on the sk:
 * no record decoded), else from the decoded record, then `aggregateRows` (aggregate.ts).
 *
 * - With `bucket`, the plan is asked for `orderBy: bucket.field` (rows come in time order: no sort) and
 *   `bucket.from`/`to` become a range on that field when `where` has no condition on it.
 * - A value comes from, in order: the plan's own index (the sk of the entry it yields), another index holding
 *   the field as a component (the record's terms, `engine.termsOf`), the decoded record (slower: a read and a
 *   decode per record, through the record cache).
 * - The walk goes in slices of a few ms with an event-loop turn between; each slice resumes strictly after
 *   the last entry of the one before, so a record written meanwhile is seen at most once (as `queryPage`).
 */
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { UsageError } from "../errors.js";
import type { CollectionDefinition } from "./entity.js";
import { componentNumber, componentPresent, indexKeyers, type IndexKeyer, skOf } from "./index-keys.js";
import { type IndexEntry, keyComparer, planQuery, type QueryPlan } from "./query-plan.js";
import type { QueryContext } from "./query.js";
import { aggregateRows, type AggregateBucket, type AggregateOptions, type AggregateRow, type AggregateSpec } from "./aggregate.js";
import { planIndexAggregate, runIndexAggregate } from "./aggregate-index.js";

/** Longest synchronous slice of the walk, in ms. */
const SLICE_MS = 5;

type Source =
  | { readonly from: "plan"; readonly i: number }
  | { readonly from: "index"; readonly keyer: IndexKeyer; readonly i: number }
  | { readonly from: "record"; readonly field: string };

/** Where a field's number comes from: the plan's index, another index, or the record. */
function sourceOf(def: CollectionDefinition, planKeyer: IndexKeyer | undefined, field: string): Source {
  const i = planKeyer ? planKeyer.components.findIndex((c) => c.field === field && !c.repeated) : -1;
  if (i >= 0) return { from: "plan", i };
  for (const keyer of indexKeyers(def)) {
    const j = keyer.components.findIndex((c) => c.field === field && !c.repeated);
    if (j >= 0) return { from: "index", keyer, i: j };
  }
  return { from: "record", field };
}

type MetricKind = "number" | "timestamp";

/** The kind of a metric field (E_USAGE when it cannot be summed, or compared for min/max). */
function metricKind(def: CollectionDefinition, field: unknown, op: string): MetricKind {
  const f: DescField | undefined = typeof field === "string" ? def.schema.fields.find((x: DescField) => x.localName === field) : undefined;
  const bad = () =>
    new UsageError(
      `aggregate \`${op}\` of \`${def.name}\`: \`${String(field)}\` is not a singular numeric field (numbers, 64-bit integers, Duration${op === "min" || op === "max" ? ", Timestamp" : ""})`,
    );
  if (!f) throw bad();
  if (f.fieldKind === "message") {
    if (f.message.typeName === "google.protobuf.Duration") return "number";
    if (f.message.typeName === "google.protobuf.Timestamp" && (op === "min" || op === "max")) return "timestamp";
    throw bad();
  }
  if (f.fieldKind === "enum") return "number";
  if (f.fieldKind !== "scalar") throw bad();
  if (f.scalar === ScalarType.STRING || f.scalar === ScalarType.BOOL || f.scalar === ScalarType.BYTES) throw bad();
  return "number";
}

/** A field's number from a decoded record (undefined when an unset message field). */
function recordNumber(record: unknown, field: string): number | undefined {
  const v = (record as Record<string, unknown> | undefined)?.[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  const m = v as { $typeName?: string; seconds: bigint; nanos: number };
  if (m.$typeName === "google.protobuf.Timestamp") return Number(m.seconds) * 1000 + m.nanos / 1e6;
  return Number(m.seconds) + m.nanos / 1e9;
}

function checkOptions(def: CollectionDefinition, options: AggregateOptions): void {
  if (typeof options !== "object" || options === null) throw new UsageError(`\`aggregate\` of \`${def.name}\` takes an options object`);
  for (const op of ["sum", "avg", "min", "max"] as const) {
    const list = options[op];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new UsageError(`aggregate \`${op}\` of \`${def.name}\` takes an array of field names`);
    for (const f of list) metricKind(def, f, op);
  }
  const b = options.bucket;
  if (b === undefined) return;
  if (typeof b !== "object" || b === null) throw new UsageError(`aggregate \`bucket\` of \`${def.name}\` takes an object`);
  const f = def.schema.fields.find((x: DescField) => x.localName === b.field);
  const timestamp = f?.fieldKind === "message" && f.message.typeName === "google.protobuf.Timestamp";
  if (!timestamp) throw new UsageError(`aggregate \`bucket.field\` of \`${def.name}\`: \`${String(b.field)}\` is not a Timestamp field`);
  for (const k of ["from", "to"] as const) {
    const d = b[k];
    if (d !== undefined && (!(d instanceof Date) || Number.isNaN(d.getTime()))) {
      throw new UsageError(`aggregate \`bucket.${k}\` of \`${def.name}\` must be a valid Date`);
    }
  }
}

/**
 * The aggregate of the records `options.where` matches (see aggregate.ts `AggregateOptions`): buckets in time
 * order (one without `bucket`). E_USAGE for bad options, or when no index serves the where and `scan` is not
 * set (the plan's error).
 */
export async function runAggregate<Desc extends DescMessage, I extends string>(
  ctx: QueryContext & { readonly engine: { readonly lastSeq?: number } },
  input: AggregateOptions<Desc, I>,
): Promise<AggregateBucket[]> {
  const options = input as unknown as AggregateOptions;
  const { def } = ctx;
  checkOptions(def, options);
  const bucket = options.bucket;
  const where: Record<string, unknown> = { ...((options.where ?? {}) as Record<string, unknown>) };
  if (bucket && where[bucket.field] === undefined && (bucket.from || bucket.to)) {
    where[bucket.field] = { ...(bucket.from ? { gte: bucket.from } : {}), ...(bucket.to ? { lt: bucket.to } : {}) };
  }
  const plan = planQuery(def, where, { orderBy: bucket?.field, scan: options.scan === true });
  const fields = [...new Set([...(options.sum ?? []), ...(options.avg ?? []), ...(options.min ?? []), ...(options.max ?? [])])] as string[];
  const sources = fields.map((f) => sourceOf(def, plan.keyer, f));
  const time = bucket ? sourceOf(def, plan.keyer, bucket.field) : undefined;
  // E_UNAVAILABLE while an index read here is being built (index-build.ts): the plan's, and those values come from.
  const check = (k: IndexKeyer) => ctx.checkIndex?.(k);
  const spec: AggregateSpec = {
    ...(bucket
      ? {
          bucket: {
            by: bucket.by,
            timeZone: bucket.timeZone,
            weekStart: bucket.weekStart,
            from: bucket.from?.getTime(),
            to: bucket.to?.getTime(),
          },
        }
      : {}),
    fill: options.fill === true,
    count: options.count === true,
    fields,
    ...(options.sum ? { sum: options.sum as readonly string[] } : {}),
    ...(options.avg ? { avg: options.avg as readonly string[] } : {}),
    ...(options.min ? { min: options.min as readonly string[] } : {}),
    ...(options.max ? { max: options.max as readonly string[] } : {}),
  };
  if (bucket && spec.bucket && !hasConditions(options.where)) {
    const byIndex = planIndexAggregate(def, bucket.field, fields);
    if (byIndex) [byIndex.countKeyer, ...byIndex.walks.map((w) => w.keyer)].forEach(check);
    const out = byIndex && (await runIndexAggregate(ctx, byIndex, { ...spec, bucket: spec.bucket }));
    if (out) return out;
  }
  plan.indexes.forEach(check);
  for (const s of time ? [time, ...sources] : sources) if (s.from === "index") check(s.keyer);
  return aggregateRows(await collectRows(ctx, plan, time, sources), spec);
}

function hasConditions(where: unknown): boolean {
  return where !== undefined && Object.values(where as Record<string, unknown>).some((v) => v !== undefined);
}

/** The rows of every matching record, read a slice at a time. */
async function collectRows(ctx: QueryContext, plan: QueryPlan, time: Source | undefined, sources: readonly Source[]): Promise<AggregateRow[]> {
  const { def, engine } = ctx;
  const all = time ? [time, ...sources] : sources;
  // A scan's keys were listed at its start: a record deleted since has no terms and is skipped.
  const needTerms = !plan.keyer || all.some((s) => s.from === "index");
  const needRecord = all.some((s) => s.from === "record");
  const planKeyer = plan.keyer;
  const rows: AggregateRow[] = [];
  // The plan's indexes, built on first use without holding the event loop (Engine.buildOrderedIndex, issue 15).
  if (planKeyer) for (const k of plan.indexes) await engine.buildOrderedIndex?.(def.name, k.prefix, keyComparer(def));
  const keys = planKeyer ? undefined : [...engine.keys(def.name)].sort(keyComparer(def));
  let after: IndexEntry | undefined;
  // Once the walk has yielded, a record written meanwhile may come again (its sort key moved past the
  // cursor): the keys seen are kept from then on, and a key is counted once.
  let seen: Set<string> | undefined;
  const firstKeys: string[] = [];
  let terms: readonly string[] | undefined;
  let record: unknown;
  let sk = "";
  const read = (s: Source): number | undefined => {
    // An absent component (unset Timestamp/Duration): no value (no bucket for the time; skipped by sum/avg/min/max).
    if (s.from === "plan") return componentPresent(planKeyer!, sk, s.i) ? componentNumber(planKeyer!, sk, s.i) : undefined;
    if (s.from === "index") {
      const own = terms && skOf(s.keyer, terms);
      return own === undefined || !componentPresent(s.keyer, own, s.i) ? undefined : componentNumber(s.keyer, own, s.i);
    }
    return recordNumber(record, s.field);
  };
  for (;;) {
    const start = performance.now();
    let done = true;
    let n = 0;
    for (const entry of plan.matches(engine, after, false, keys)) {
      after = entry;
      if (seen) {
        if (seen.has(entry.key)) continue;
        seen.add(entry.key);
      } else firstKeys.push(entry.key);
      terms = needTerms ? engine.termsOf(def.name, entry.key) : undefined;
      if (needTerms && terms === undefined) continue;
      record = needRecord ? ctx.read(entry.key) : undefined;
      sk = entry.sk;
      const t = time ? read(time) : 0;
      if (t !== undefined) {
        const values = new Array<number | undefined>(sources.length);
        for (let i = 0; i < sources.length; i++) values[i] = read(sources[i]!);
        rows.push({ t, values });
      }
      if ((++n & 127) === 0 && performance.now() - start > SLICE_MS) {
        done = false;
        break;
      }
    }
    if (done) return rows;
    seen ??= new Set(firstKeys);
    await new Promise<void>((r) => setImmediate(r));
  }
}
