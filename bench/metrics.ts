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
  | "disk.ratio"
  | "small.bytes"
  | "small.apparent"
  | "list.all"
  | LoopMetricId;

/**
 * The operations whose event-loop stalls are measured (issue 15; bench/stall.ts), in report order, and
 * the workload each belongs to. `open`, `iterate`, `list` and `gets` are measured in the child process.
 */
export const LOOP_OPS = [
  { op: "put1", workload: 1, label: "one durable put at a time" },
  { op: "put64", workload: 2, label: "64 durable puts in flight" },
  { op: "settings", workload: 4, label: "settings updates in the full store" },
  { op: "bulk", workload: 3, label: "bulk load (batches)" },
  { op: "compact", workload: 3, label: "compaction after bulk load" },
  { op: "open", workload: 5, label: "cold open → first record" },
  { op: "iterate", workload: 5, label: "iterate every record (after cold open)" },
  { op: "list", workload: 5, label: "list every record into one array" },
  { op: "gets", workload: 6, label: "warm random gets" },
] as const;
export type LoopOp = (typeof LOOP_OPS)[number]["op"];
export type LoopStat = "p99" | "max" | "gap" | "ticks";
export type LoopMetricId = `loop.${LoopOp}.${LoopStat}`;

export function loopMetric(op: LoopOp, stat: LoopStat): LoopMetricId {
  return `loop.${op}.${stat}`;
}

export type Unit = "ops/s" | "records/s" | "ms" | "bytes" | "B/record" | "×JSON" | "ops" | "%";

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
  { id: "small.bytes", short: "100 small: on disk", workload: 7, label: "a store of 100 small records: bytes on disk", unit: "bytes", better: "lower" },
  { id: "small.apparent", short: "100 small: file lengths", workload: 7, label: "a store of 100 small records: sum of file lengths", unit: "bytes", better: "lower" },
  { id: "list.all", short: "list all ms", workload: 5, label: "list() of every record into one array", unit: "ms", better: "lower" },
  ...LOOP_OPS.flatMap(({ op, workload, label }): MetricDef[] => [
    { id: loopMetric(op, "p99"), short: `${op} loop p99`, workload, label: `${label}: event-loop delay p99`, unit: "ms", better: "lower" },
    { id: loopMetric(op, "max"), short: `${op} loop max`, workload, label: `${label}: event-loop delay max`, unit: "ms", better: "lower" },
    { id: loopMetric(op, "gap"), short: `${op} timer gap`, workload, label: `${label}: longest gap of a 1 ms timer`, unit: "ms", better: "lower" },
    { id: loopMetric(op, "ticks"), short: `${op} timer ran`, workload, label: `${label}: 1 ms timer callbacks that ran`, unit: "%", better: "higher" },
  ]),
];

export function metricDef(id: MetricId): MetricDef {
  const def = METRICS.find((m) => m.id === id);
  if (!def) throw new Error(`unknown metric \`${id}\``);
  return def;
}

/** One repetition's numbers for one system. */
export type Sample = Partial<Record<MetricId, number>>;

/** A StallSample (bench/stall.ts) as the Sample metrics of operation `op`. */
export function loopSample(op: LoopOp, s: { p99: number; max: number; gap: number; ticks: number }): Sample {
  return { [loopMetric(op, "p99")]: s.p99, [loopMetric(op, "max")]: s.max, [loopMetric(op, "gap")]: s.gap, [loopMetric(op, "ticks")]: s.ticks };
}
