/**
 * aggregateRows and trend against a plain model: each row's bucket label from Intl's local date of the row
 * (test/helpers/calendar.ts), rows grouped in a Map, metrics summed per group. Rows cluster around the
 * zones' daylight-saving changes. Values are integers, so sums are exact whatever the order of addition.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { aggregateRows, trend, type AggregateBucket, type AggregateRow } from "../../src/runtime/typed/aggregate.js";
import type { BucketBy } from "../../src/runtime/typed/time-buckets.js";
import { isCellarError } from "../../src/runtime/errors.js";
import { dayLabelIn, weekLabel } from "../helpers/calendar.js";

const ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham", "America/Santiago", "UTC"];
const HOUR = 3_600_000;
const FIELDS = ["a", "b"];

/** UTC instants of 2026's changes (and a year's end) in the zones above: rows fall within two days of them. */
const CHANGES = [
  "2026-03-08T07:00:00Z", // New York
  "2026-03-29T01:00:00Z", // Berlin
  "2026-04-04T15:00:00Z", // Lord Howe
  "2026-04-04T14:45:00Z", // Chatham
  "2026-04-05T03:00:00Z", // Santiago
  "2026-09-06T04:00:00Z", // Santiago
  "2026-09-26T14:00:00Z", // Chatham
  "2026-10-03T15:30:00Z", // Lord Howe
  "2026-10-25T01:00:00Z", // Berlin
  "2026-11-01T06:00:00Z", // New York
  "2026-12-31T23:30:00Z",
].map(Date.parse);

const time = fc.oneof(
  fc.tuple(fc.constantFrom(...CHANGES), fc.integer({ min: -48 * HOUR, max: 48 * HOUR })).map(([c, d]) => c + d),
  fc.integer({ min: Date.UTC(2025, 11, 1), max: Date.UTC(2027, 1, 1) }),
);
const value = fc.option(fc.integer({ min: -1000, max: 100_000 }), { nil: undefined });
const rowsArb = fc.array(fc.record({ t: time, values: fc.tuple(value, value) }), { maxLength: 120 });

function labelOf(by: BucketBy, zone: string, t: number, weekStart: number): string {
  const day = dayLabelIn(zone, t);
  return by === "day" ? day : by === "week" ? weekLabel(day, weekStart) : day.slice(0, 7);
}

interface ModelBucket {
  count: number;
  sum: number[];
  n: number[];
  min: number[];
  max: number[];
}

function model(rows: readonly AggregateRow[], label: (t: number) => string): Map<string, ModelBucket> {
  const groups = new Map<string, ModelBucket>();
  for (const row of rows) {
    const key = label(row.t);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { count: 0, sum: [0, 0], n: [0, 0], min: [Infinity, Infinity], max: [-Infinity, -Infinity] }));
    g.count++;
    row.values.forEach((v, i) => {
      if (v === undefined) return;
      g.sum[i]! += v;
      g.n[i]!++;
      g.min[i] = Math.min(g.min[i]!, v);
      g.max[i] = Math.max(g.max[i]!, v);
    });
  }
  return groups;
}

function expectBucketMatches(b: AggregateBucket, g: ModelBucket | undefined): void {
  const m = g ?? { count: 0, sum: [0, 0], n: [0, 0], min: [], max: [] };
  expect(b.count).toBe(m.count);
  expect(b.sum).toEqual({ a: m.sum[0], b: m.sum[1] });
  const mean = (i: number) => (m.n[i] ? m.sum[i]! / m.n[i]! : null);
  expect(b.avg).toEqual({ a: mean(0), b: mean(1) });
  expect(b.min).toEqual({ a: m.n[0] ? m.min[0] : null, b: m.n[1] ? m.min[1] : null });
  expect(b.max).toEqual({ a: m.n[0] ? m.max[0] : null });
}

const ALL = { count: true, fields: FIELDS, sum: FIELDS, avg: FIELDS, min: FIELDS, max: ["a"] } as const;

describe("aggregateRows against a Map model over Intl's local dates", () => {
  it("buckets with rows: labels, counts, sums, means, minima and maxima per local day, week or month", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.constantFrom<BucketBy>("day", "week", "month"),
        fc.constantFrom(1, 7, 3),
        rowsArb,
        (zone, by, weekStart, rows) => {
          const out = aggregateRows(rows, { ...ALL, bucket: { by, timeZone: zone, weekStart } });
          const groups = model(rows, (t) => labelOf(by, zone, t, weekStart));
          expect(out.map((b) => b.label)).toEqual([...groups.keys()].sort());
          for (const b of out) {
            expectBucketMatches(b, groups.get(b.label));
            // The bucket's bounds hold its rows, and start on the first instant of its label.
            for (const r of rows) if (labelOf(by, zone, r.t, weekStart) === b.label) expect(r.t >= b.start!.getTime() && r.t < b.end!.getTime()).toBe(true);
            expect(labelOf(by, zone, b.start!.getTime(), weekStart)).toBe(b.label);
            expect(labelOf(by, zone, b.start!.getTime() - 1, weekStart)).not.toBe(b.label);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("rows in time order or not give the same buckets", () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), fc.constantFrom<BucketBy>("day", "week", "month"), rowsArb, (zone, by, rows) => {
        const sorted = [...rows].sort((x, y) => x.t - y.t);
        const spec = { ...ALL, bucket: { by, timeZone: zone } };
        expect(aggregateRows(rows, spec)).toEqual(aggregateRows(sorted, spec));
      }),
      { numRuns: 100 },
    );
  });

  it("fill: every bucket from the first row's (or from's) to the last row's (or to's), adjacent, the empty ones zero", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.constantFrom<BucketBy>("day", "week", "month"),
        fc.constantFrom(1, 7),
        rowsArb,
        fc.option(time, { nil: undefined }),
        fc.option(time, { nil: undefined }),
        (zone, by, weekStart, rows, from, to) => {
          const bucket = { by, timeZone: zone, weekStart, from, to };
          const filled = aggregateRows(rows, { ...ALL, bucket, fill: true });
          const kept = rows.filter((r) => (from === undefined || r.t >= from) && (to === undefined || r.t < to));
          const groups = model(kept, (t) => labelOf(by, zone, t, weekStart));
          // Without fill: the same buckets with rows.
          const sparse = aggregateRows(rows, { ...ALL, bucket });
          expect(sparse).toEqual(filled.filter((b) => b.count! > 0));
          if (from !== undefined && to !== undefined && to <= from) return void expect(filled).toEqual([]);
          const times = kept.map((r) => r.t);
          const first = from ?? Math.min(...times);
          const last = to !== undefined ? to - 1 : Math.max(...times);
          if (kept.length === 0 && (from === undefined || to === undefined)) return void expect(filled).toEqual([]);
          expect(filled[0]!.label).toBe(labelOf(by, zone, first, weekStart));
          expect(filled.at(-1)!.label).toBe(labelOf(by, zone, last, weekStart));
          for (let i = 0; i < filled.length; i++) {
            const b = filled[i]!;
            if (i > 0) expect(b.start).toEqual(filled[i - 1]!.end);
            expect(labelOf(by, zone, b.start!.getTime(), weekStart)).toBe(b.label);
            expectBucketMatches(b, groups.get(b.label));
          }
          expect(filled.reduce((s, b) => s + b.count!, 0)).toBe(kept.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a year of daily buckets filled: 365 labels, two of 23 and 25 hours in Berlin", () => {
    const from = Date.UTC(2025, 11, 31, 23);
    const to = Date.UTC(2026, 11, 31, 23);
    const out = aggregateRows([{ t: Date.UTC(2026, 5, 1), values: [] }], { count: true, fields: [], bucket: { by: "day", timeZone: "Europe/Berlin", from, to }, fill: true });
    expect(out.length).toBe(365);
    expect(out[0]!.label).toBe("2026-01-01");
    expect(out.at(-1)!.label).toBe("2026-12-31");
    const hours = out.map((b) => (b.end!.getTime() - b.start!.getTime()) / HOUR);
    expect(hours.filter((h) => h !== 24).sort()).toEqual([23, 25]);
    expect(out.find((b) => b.label === "2026-06-01")!.count).toBe(1);
  });

  it("without a bucket: one bucket over every row, labelled all", () => {
    fc.assert(
      fc.property(rowsArb, (rows) => {
        const [b, ...rest] = aggregateRows(rows, ALL);
        expect(rest).toEqual([]);
        expect(b!.label).toBe("all");
        expect(b!.start).toBeUndefined();
        expectBucketMatches(b!, model(rows, () => "all").get("all"));
      }),
    );
  });

  it("bad specs: a metric not among the fields, a fill of too many buckets, a bad zone: E_USAGE", () => {
    const code = (f: () => unknown) => {
      try {
        f();
        return "none";
      } catch (e) {
        return isCellarError(e) ? e.code : String(e);
      }
    };
    expect(code(() => aggregateRows([], { fields: ["a"], sum: ["b"] }))).toBe("E_USAGE");
    expect(code(() => aggregateRows([], { fields: [], bucket: { by: "day", from: Date.UTC(1800, 0, 1), to: Date.UTC(2200, 0, 1) }, fill: true }))).toBe("E_USAGE");
    expect(code(() => aggregateRows([{ t: 0, values: [] }], { fields: [], bucket: { by: "day", timeZone: "Nowhere/None" } }))).toBe("E_USAGE");
    expect(code(() => aggregateRows([], { fields: [], bucket: { by: "day", from: Number.NaN } }))).toBe("E_USAGE");
  });
});

describe("trend", () => {
  it("compares each bucket's metric with the one before it", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -50, max: 50 })), (values) => {
        const buckets = values.map((v, i) => ({ label: String(i), v }));
        const points = trend(buckets, (b) => b.v);
        expect(points.length).toBe(values.length);
        points.forEach((p, i) => {
          expect(p.bucket).toBe(buckets[i]);
          expect(p.value).toBe(values[i]);
          const prev = i === 0 ? undefined : values[i - 1]!;
          expect(p.previous).toBe(prev);
          expect(p.change).toBe(prev === undefined ? undefined : values[i]! - prev);
          expect(p.ratio).toBe(prev === undefined || prev === 0 ? undefined : values[i]! / prev);
        });
      }),
    );
  });

  it("over aggregate's filled buckets: an empty day compares as zero", () => {
    const day = (d: number) => Date.UTC(2026, 2, d, 12);
    const rows = [day(1), day(1), day(3)].map((t) => ({ t, values: [] }));
    const out = aggregateRows(rows, { count: true, fields: [], bucket: { by: "day" }, fill: true });
    expect(trend(out, (b) => b.count!).map((p) => [p.bucket.label, p.value, p.change, p.ratio])).toEqual([
      ["2026-03-01", 2, undefined, undefined],
      ["2026-03-02", 0, -2, 0],
      ["2026-03-03", 1, 1, undefined],
    ]);
  });
});
