/** The data one run produces (also written as JSON with `--json`), and the derived medians and ratios. */
import type { MachineInfo } from "./machine.js";
import { metricDef, type MetricId, type Sample } from "./metrics.js";
import type { RawId, RawSample } from "./raw.js";
import type { Sizes } from "./sizes.js";
import type { StallSample } from "./stall.js";
import { summarize, type Summary } from "./stats.js";

export interface SystemInfo {
  id: string;
  label: string;
  kind: "cellar" | "peer";
  durability: string;
  packageName?: string;
  version?: string;
  /** False when the library could not be loaded; `error` says why. */
  available: boolean;
  error?: string;
}

export interface RunError {
  system: string;
  workload: string;
  message: string;
}

export interface BenchResults {
  sizes: Sizes;
  machine: MachineInfo;
  startedAt: string;
  durationSeconds: number;
  /** The code measured (see `codeRevision`). */
  revision: string;
  /** Bytes of the bulk-loaded records as JSON (`JSON.stringify` of each record, summed). */
  jsonBytes: number;
  systems: SystemInfo[];
  /** samples[systemId] holds one Sample per repetition (workloads merged by repetition index). */
  samples: Record<string, Sample[]>;
  raw: RawSample[];
  /** Event-loop stalls of the idle benchmark process (one per repetition, `loopIdleMs` each): the floor. */
  loopIdle?: StallSample[];
  loopIdleMs?: number;
  /** Event-loop stalls of the lifecycle operations run after the workloads (backup, restore), worst repetition. */
  lifecycleLoop?: { op: string; system: string; stalls: StallSample }[];
  errors: RunError[];
}

export function metricSummary(results: BenchResults, system: string, metric: MetricId): Summary {
  return summarize((results.samples[system] ?? []).map((s) => s[metric] ?? Number.NaN));
}

export function rawSummary(results: BenchResults, id: RawId): Summary {
  return summarize(results.raw.map((s) => s[id] ?? Number.NaN));
}

/** Cellar's median over the peer's median, as measured (not inverted). */
export function ratio(results: BenchResults, cellar: string, peer: string, metric: MetricId): number {
  return metricSummary(results, cellar, metric).median / metricSummary(results, peer, metric).median;
}

/** How many times better Cellar is than the peer: the ratio for higher-is-better metrics, its inverse otherwise. */
export function advantage(results: BenchResults, cellar: string, peer: string, metric: MetricId): number {
  const r = ratio(results, cellar, peer, metric);
  return metricDef(metric).better === "lower" ? 1 / r : r;
}

export function availableSystems(results: BenchResults, kind?: "cellar" | "peer"): SystemInfo[] {
  return results.systems.filter((s) => s.available && (kind === undefined || s.kind === kind));
}
