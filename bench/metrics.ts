/** Every number the harness reports, with its unit and which direction is better. */

export type MetricId =
  | "put1.ops"
  | "put1.p50"
  | "put1.p99"
  | "put1.n"
  | "put64.ops"
  | "put64.n"
  | "bulk.rps"
  | "bulk.compact"
  | "settings.full.ops"
  | "settings.full.n"
  | "settings.empty.ops"
  | "settings.empty.n"
  | "cold.first"
  | "cold.all"
  | "warm.gets"
  | "warm.n"
  | "mem.rss"
  | "mem.heap"
  | "disk.bytes"
  | "disk.apparent"
  | "disk.ratio";

export type Unit = "ops/s" | "records/s" | "ms" | "bytes" | "B/record" | "×JSON" | "ops";

export interface MetricDef {
  readonly id: MetricId;
  /** Workload number from issue 6. */
  readonly workload: number;
  readonly label: string;
  /** Column header in tables. */
  readonly short: string;
  readonly unit: Unit;
  /** "info" metrics (operation counts) are shown but never compared. */
  readonly better: "higher" | "lower" | "info";
}

export const METRICS: readonly MetricDef[] = [
  { id: "put1.ops", short: "puts/s", workload: 1, label: "1 put at a time", unit: "ops/s", better: "higher" },
  { id: "put1.p50", short: "p50 ms", workload: 1, label: "1 put at a time, p50", unit: "ms", better: "lower" },
  { id: "put1.p99", short: "p99 ms", workload: 1, label: "1 put at a time, p99", unit: "ms", better: "lower" },
  { id: "put1.n", short: "puts measured", workload: 1, label: "1 put at a time, puts measured", unit: "ops", better: "info" },
  { id: "put64.ops", short: "puts/s", workload: 2, label: "64 puts in flight", unit: "ops/s", better: "higher" },
  { id: "put64.n", short: "puts measured", workload: 2, label: "64 puts in flight, puts measured", unit: "ops", better: "info" },
  { id: "bulk.rps", short: "records/s", workload: 3, label: "bulk load", unit: "records/s", better: "higher" },
  { id: "bulk.compact", short: "compaction ms", workload: 3, label: "compaction after bulk load", unit: "ms", better: "lower" },
  { id: "settings.full.ops", short: "updates/s, full store", workload: 4, label: "settings update, full store", unit: "ops/s", better: "higher" },
  { id: "settings.full.n", short: "updates measured, full", workload: 4, label: "settings update, full store, updates measured", unit: "ops", better: "info" },
  { id: "settings.empty.ops", short: "updates/s, empty store", workload: 4, label: "settings update, empty store", unit: "ops/s", better: "higher" },
  { id: "settings.empty.n", short: "updates measured, empty", workload: 4, label: "settings update, empty store, updates measured", unit: "ops", better: "info" },
  { id: "cold.first", short: "first read ms", workload: 5, label: "cold open → first read", unit: "ms", better: "lower" },
  { id: "cold.all", short: "all read ms", workload: 5, label: "cold open → all read+decoded", unit: "ms", better: "lower" },
  { id: "warm.gets", short: "gets/s", workload: 6, label: "warm random get", unit: "ops/s", better: "higher" },
  { id: "warm.n", short: "gets measured", workload: 6, label: "warm random get, gets measured", unit: "ops", better: "info" },
  { id: "mem.rss", short: "RSS B/record", workload: 6, label: "resident memory per record", unit: "B/record", better: "lower" },
  { id: "mem.heap", short: "heap B/record", workload: 6, label: "JS heap + external per record", unit: "B/record", better: "lower" },
  { id: "disk.bytes", short: "on disk", workload: 7, label: "bytes on disk", unit: "bytes", better: "lower" },
  { id: "disk.apparent", short: "file lengths", workload: 7, label: "sum of file lengths", unit: "bytes", better: "lower" },
  { id: "disk.ratio", short: "× JSON", workload: 7, label: "bytes on disk / JSON bytes", unit: "×JSON", better: "lower" },
];

export function metricDef(id: MetricId): MetricDef {
  const def = METRICS.find((m) => m.id === id);
  if (!def) throw new Error(`unknown metric \`${id}\``);
  return def;
}

/** One repetition's numbers for one system. */
export type Sample = Partial<Record<MetricId, number>>;
