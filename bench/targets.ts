/**
 * The Speed targets of issue 3 (storage engine), each checked against this run's medians for Cellar
 * with encryption, compression and validation on (system `cellar`).
 */
import { formatRatio, sig3 } from "./format.js";
import type { MetricId } from "./metrics.js";
import type { RawId } from "./raw.js";
import { metricSummary, rawSummary, type BenchResults } from "./results.js";

export type TargetStatus = "met" | "not met" | "not measured";

export interface TargetResult {
  /** The target as issue 3 states it. */
  target: string;
  /** What was measured, with the numbers behind the verdict. */
  measured: string;
  status: TargetStatus;
}

const CELLAR = "cellar";

interface Check {
  target: string;
  /** The compared value (a ratio or an absolute number) and how to describe it. */
  evaluate(m: (system: string, metric: MetricId) => number, jsonBytes: number, raw: (id: RawId) => number): { value: number; measured: string };
  pass(value: number): boolean;
}

const CHECKS: readonly Check[] = [
  {
    target: "one durable put at a time: ≥ 1.0× better-sqlite3 FULL",
    evaluate: (m) => {
      const c = m(CELLAR, "put1.ops");
      const s = m("sqlite-full", "put1.ops");
      return { value: c / s, measured: `${sig3(c)} vs ${sig3(s)} puts/s = ${formatRatio(c / s)}` };
    },
    pass: (v) => v >= 1.0,
  },
  {
    target: "one durable put at a time: ≥ 0.85× the physical limit, a 512 B pwrite + fdatasync into a preallocated file (issue 15)",
    evaluate: (m, _json, raw) => {
      const c = m(CELLAR, "put1.ops");
      const l = raw("prealloc.pwrite");
      return { value: c / l, measured: `${sig3(c)} vs ${sig3(l)} writes/s = ${formatRatio(c / l)}` };
    },
    pass: (v) => v >= 0.85,
  },
  {
    target: "64 puts in flight: ≥ 10× our own one-at-a-time rate",
    evaluate: (m) => {
      const f = m(CELLAR, "put64.ops");
      const o = m(CELLAR, "put1.ops");
      return { value: f / o, measured: `${sig3(f)} vs ${sig3(o)} puts/s = ${formatRatio(f / o)}` };
    },
    pass: (v) => v >= 10,
  },
  {
    target: "bulk load in batches of 1,000: ≥ 100,000 records/s",
    evaluate: (m) => {
      const c = m(CELLAR, "bulk.rps");
      return { value: c, measured: `${sig3(c)} records/s` };
    },
    pass: (v) => v >= 100_000,
  },
  {
    target: "bulk load in batches of 1,000: ≥ 0.6× better-sqlite3 FULL",
    evaluate: (m) => {
      const c = m(CELLAR, "bulk.rps");
      const s = m("sqlite-full", "bulk.rps");
      return { value: c / s, measured: `${sig3(c)} vs ${sig3(s)} records/s = ${formatRatio(c / s)}` };
    },
    pass: (v) => v >= 0.6,
  },
  {
    target: "one settings update in a store of 10,000 records: ≥ 0.9× the same update in an empty store",
    evaluate: (m) => {
      const f = m(CELLAR, "settings.full.ops");
      const e = m(CELLAR, "settings.empty.ops");
      return { value: f / e, measured: `${sig3(f)} vs ${sig3(e)} updates/s = ${formatRatio(f / e)}` };
    },
    pass: (v) => v >= 0.9,
  },
  {
    target: "one settings update in a store of 10,000 records: ≥ 1.0× better-sqlite3 FULL (issue 15)",
    evaluate: (m) => {
      const c = m(CELLAR, "settings.full.ops");
      const s = m("sqlite-full", "settings.full.ops");
      return { value: c / s, measured: `${sig3(c)} vs ${sig3(s)} updates/s = ${formatRatio(c / s)}` };
    },
    pass: (v) => v >= 1.0,
  },
  {
    target: "cold open of a 100,000-record store: first record in ≤ 2.0× better-sqlite3's time (issue 15)",
    evaluate: (m) => {
      const c = m(CELLAR, "cold.first");
      const s = m("sqlite-full", "cold.first");
      return { value: c / s, measured: `${sig3(c)} vs ${sig3(s)} ms = ${formatRatio(c / s)}` };
    },
    pass: (v) => v <= 2.0,
  },
  {
    target: "cold open: all records read and decoded in ≤ 1.0× better-sqlite3's time (issue 15)",
    evaluate: (m) => {
      const c = m(CELLAR, "cold.all");
      const s = m("sqlite-full", "cold.all");
      return { value: c / s, measured: `${sig3(c)} vs ${sig3(s)} ms = ${formatRatio(c / s)}` };
    },
    pass: (v) => v <= 1.0,
  },
  {
    target: "cold open of a 100,000-record store in a fresh process: first record ≤ 30 ms",
    evaluate: (m) => {
      const c = m(CELLAR, "cold.first");
      return { value: c, measured: `${sig3(c)} ms` };
    },
    pass: (v) => v <= 30,
  },
  {
    target: "cold open: all records decoded in ≤ 1.0× LevelDB's time (classic-level)",
    evaluate: (m) => {
      const c = m(CELLAR, "cold.all");
      const l = m("leveldb", "cold.all");
      return { value: c / l, measured: `${sig3(c)} vs ${sig3(l)} ms = ${formatRatio(c / l)}` };
    },
    pass: (v) => v <= 1.0,
  },
  {
    target: "warm random get: ≥ 1.0× lmdb",
    evaluate: (m) => {
      const c = m(CELLAR, "warm.gets");
      const l = m("lmdb", "warm.gets");
      return { value: c / l, measured: `${sig3(c)} vs ${sig3(l)} gets/s = ${formatRatio(c / l)}` };
    },
    pass: (v) => v >= 1.0,
  },
  {
    target: "a store of 100 small records: ≤ 64 KiB on disk (issue 15)",
    evaluate: (m) => {
      const c = m(CELLAR, "small.bytes");
      return { value: c, measured: `${sig3(c / 1024)} KiB allocated, ${sig3(m(CELLAR, "small.apparent") / 1024)} KiB of file lengths` };
    },
    pass: (v) => v <= 64 * 1024,
  },
  {
    target: "bytes on disk after compaction: ≤ 0.5× the same records as JSON",
    evaluate: (m, jsonBytes) => {
      const c = m(CELLAR, "disk.ratio");
      const mb = (n: number): string => `${sig3(n / 1e6)} MB`;
      return { value: c, measured: `${mb(m(CELLAR, "disk.bytes"))} for ${mb(jsonBytes)} of JSON = ${formatRatio(c)}` };
    },
    pass: (v) => v <= 0.5,
  },
];

export function evaluateTargets(results: BenchResults): TargetResult[] {
  const m = (system: string, metric: MetricId): number => metricSummary(results, system, metric).median;
  return CHECKS.map((check) => {
    const { value, measured } = check.evaluate(m, results.jsonBytes, (id) => rawSummary(results, id).median);
    if (!Number.isFinite(value)) {
      return { target: check.target, measured: "not measured (a system it needs did not run; see Systems)", status: "not measured" };
    }
    return { target: check.target, measured, status: check.pass(value) ? "met" : "not met" };
  });
}
