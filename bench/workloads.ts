/**
 * The seven workloads of issue 6, written once against `StoreAdapter`. Each call measures one
 * repetition for one system in a directory it is given (fresh, empty) and returns its numbers.
 * Records are generated before the clock starts, so generation is never timed.
 *
 * Each also measures the event-loop stalls (bench/stall.ts) of its operation, over the same run as its
 * timing (open and close are outside both): `loop.<op>.*` in the Sample.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { StoreAdapter, SystemSpec } from "./adapter.js";
import { loopSample, type Sample } from "./metrics.js";
import { diskUsage } from "./fsutil.js";
import { makeSettingsPatch, makeSmallTask, makeTasks, type TaskRecord } from "./records.js";
import type { Sizes } from "./sizes.js";
import { StallMonitor } from "./stall.js";
import { nowMs, percentile } from "./stats.js";

async function openFresh(spec: SystemSpec, dir: string): Promise<StoreAdapter> {
  mkdirSync(dir, { recursive: true });
  const adapter = await spec.create();
  await adapter.open(dir);
  return adapter;
}

/** Workload 1: one durable put at a time: throughput and per-put latency. */
export async function putOneAtATime(spec: SystemSpec, sizes: Sizes, dir: string): Promise<Sample> {
  const records = makeTasks(0, sizes.putOne);
  const store = await openFresh(spec, dir);
  const latencies: number[] = [];
  let elapsed: number;
  let stalls;
  const monitor = await StallMonitor.start();
  const start = nowMs();
  try {
    for (const r of records) {
      const t0 = nowMs();
      await store.putOne(r);
      const t1 = nowMs();
      latencies.push(t1 - t0);
      if (t1 - start > sizes.budgetMs) break;
    }
    elapsed = nowMs() - start;
  } finally {
    stalls = await monitor.stop();
    await store.close();
  }
  return {
    ...loopSample("put1", stalls),
    "put1.ops": latencies.length / (elapsed / 1000),
    "put1.p50": percentile(latencies, 50),
    "put1.p99": percentile(latencies, 99),
    "put1.n": latencies.length,
  };
}

/** Workload 2: `inFlight` durable puts outstanding at any moment. */
export async function putsInFlight(spec: SystemSpec, sizes: Sizes, dir: string): Promise<Sample> {
  const records = makeTasks(0, sizes.putInFlight);
  const store = await openFresh(spec, dir);
  let next = 0;
  let done = 0;
  let elapsed: number;
  let stalls;
  const monitor = await StallMonitor.start();
  const start = nowMs();
  const deadline = start + sizes.budgetMs;
  const worker = async (): Promise<void> => {
    while (next < records.length && nowMs() < deadline) {
      const r = records[next++] as TaskRecord;
      await store.putOne(r);
      done++;
    }
  };
  try {
    await Promise.all(Array.from({ length: sizes.inFlight }, worker));
    elapsed = nowMs() - start;
  } finally {
    stalls = await monitor.stop();
    await store.close();
  }
  return { "put64.ops": done / (elapsed / 1000), "put64.n": done, ...loopSample("put64", stalls) };
}

/**
 * Workload 3 (and 7): bulk load in batches, one durable commit per batch; then the system's own
 * compaction, close, and bytes on disk. The store is left in `dir` for workloads 5 and 6.
 */
export async function bulkLoad(spec: SystemSpec, sizes: Sizes, dir: string, jsonBytes: number): Promise<Sample> {
  const records = makeTasks(0, sizes.bulk);
  const batches: TaskRecord[][] = [];
  for (let i = 0; i < records.length; i += sizes.batch) batches.push(records.slice(i, i + sizes.batch));
  const store = await openFresh(spec, dir);
  let elapsed: number;
  let compactMs: number;
  let loop: Sample;
  try {
    let monitor = await StallMonitor.start();
    let start = nowMs();
    for (const b of batches) await store.putMany(b);
    elapsed = nowMs() - start;
    loop = loopSample("bulk", await monitor.stop());
    monitor = await StallMonitor.start();
    start = nowMs();
    await store.compact();
    compactMs = nowMs() - start;
    loop = { ...loop, ...loopSample("compact", await monitor.stop()) };
  } finally {
    await store.close();
  }
  const disk = store.sizeOnDisk();
  return {
    ...loop,
    "bulk.rps": records.length / (elapsed / 1000),
    "bulk.compact": compactMs,
    "disk.bytes": disk.allocated,
    "disk.apparent": disk.apparent,
    "disk.ratio": disk.allocated / jsonBytes,
  };
}

async function timeSettingsUpdates(store: StoreAdapter, sizes: Sizes): Promise<{ ops: number; n: number }> {
  const patches = Array.from({ length: sizes.settingsUpdates }, (_, i) => makeSettingsPatch(i));
  const start = nowMs();
  let n = 0;
  for (const p of patches) {
    await store.updateSettings(p);
    n++;
    if (nowMs() - start > sizes.budgetMs) break;
  }
  return { ops: n / ((nowMs() - start) / 1000), n };
}

/** Workload 4: settings updates in a store holding `settingsStore` records, and in an empty store. */
export async function settingsUpdates(spec: SystemSpec, sizes: Sizes, dir: string): Promise<Sample> {
  const full = await openFresh(spec, join(dir, "full"));
  let fullResult: { ops: number; n: number };
  let stalls;
  try {
    const records = makeTasks(0, sizes.settingsStore);
    for (let i = 0; i < records.length; i += sizes.batch) await full.putMany(records.slice(i, i + sizes.batch));
    const monitor = await StallMonitor.start();
    try {
      fullResult = await timeSettingsUpdates(full, sizes);
    } finally {
      stalls = await monitor.stop();
    }
  } finally {
    await full.close();
  }
  const empty = await openFresh(spec, join(dir, "empty"));
  let emptyResult: { ops: number; n: number };
  try {
    emptyResult = await timeSettingsUpdates(empty, sizes);
  } finally {
    await empty.close();
  }
  return {
    "settings.full.ops": fullResult.ops,
    "settings.full.n": fullResult.n,
    "settings.empty.ops": emptyResult.ops,
    "settings.empty.n": emptyResult.n,
    ...loopSample("settings", stalls),
  };
}

/**
 * Workload 7, small: a fresh store given 100 small records, each put durably on its own, then closed; the
 * bytes every file it left takes on disk (issue 15: ≤ 64 KiB).
 */
export async function smallStore(spec: SystemSpec, dir: string): Promise<Sample> {
  const store = await openFresh(spec, dir);
  try {
    for (let i = 0; i < 100; i++) await store.putOne(makeSmallTask(i));
  } finally {
    await store.close();
  }
  const disk = diskUsage(dir);
  return { "small.bytes": disk.allocated, "small.apparent": disk.apparent };
}
