/**
 * The fresh child process of the scale curves (bench/scale.ts; issue 15, "Scale curves"): one system, one
 * store size, one process per step, so no cache, heap or module state of another size or system is in the
 * numbers (`node --expose-gc --import tsx bench/scale-child.ts '<json>'`).
 *
 * - `load`: in a new directory, bulk load `records` records (batches of 1,000, one durable commit each;
 *   records generated 10,000 at a time outside the clock and outside the event-loop probes); the system's
 *   compaction, alone; one durable put at a time (`puts` puts, new keys); then puts paced every 2 ms, first
 *   alone, then while a second compaction runs (started, not awaited): each put's latency from its call to
 *   its resolution (`service`) and from the moment it was due (`response`: what an app that wanted to write
 *   then waited, waiting for the loop included); then close and bytes on disk.
 * - `read` (run after the parent evicted the store's files from the OS page cache): memory before open,
 *   open → first record, memory after open, random gets from that cold state, every record read and decoded
 *   (iterate), memory, a warm-up of random gets, timed warm random gets, memory.
 * Every timed step measures its event-loop delay (bench/stall.ts) here, in the child.
 *
 * Prints one line `@@RESULT <json>` on stdout; anything else on stdout/stderr is diagnostics.
 */
import { mkdirSync } from "node:fs";
import type { StoreAdapter } from "./adapter.js";
import { reply } from "./child-protocol.js";
import { diskUsage } from "./fsutil.js";
import { BENCH_SEED, rngFor } from "./prng.js";
import { makeTasks, taskKey, type TaskRecord } from "./records.js";
import { StallMonitor, type StallSample } from "./stall.js";
import { nowMs, percentile } from "./stats.js";
import { findSystem } from "./systems.js";
import { checkRecord, memory } from "./child-memory.js";

export interface ScaleRequest {
  mode: "load" | "read";
  system: string;
  dir: string;
  /** Records bulk-loaded (keys 0..records-1 of the benchmark stream). */
  records: number;
  /** `load`: puts one at a time, and paced puts without a compaction. `read`: cold gets. */
  puts: number;
  /** `read`: warm random gets (and as many in the warm-up before them). */
  gets: number;
  /** Time budget of one timed step that is counted in operations (gets, puts), in ms. */
  budgetMs: number;
  /** `load`: skip both compactions (`--skip-compaction`, for a 1M size on a machine too busy to finish them). */
  skipCompaction?: boolean;
}

/** Event-loop delay of one step: p99 and max in ms (bench/stall.ts), and the longest gap of a 1 ms timer. */
export interface Loop {
  p99: number;
  max: number;
  gap: number;
  /** The most CPU time the process used between two ticks of the 1 ms timer (bench/stall.ts `cpuGap`): the longest stall without the time the OS gave the cores to others. */
  cpuGap?: number;
}

export interface LoadSample {
  bulkRps: number;
  bulkMs: number;
  /** CPU time of the same steps (process.cpuUsage: user + system, all threads), in ms; absent in older results. */
  bulkCpuMs?: number;
  bulkLoop: Loop;
  compactMs: number;
  compactCpuMs?: number;
  compactLoop: Loop;
  put1P50: number;
  put1P99: number;
  put1Loop: Loop;
  /** Paced puts, alone: latency p50/p99 from call to resolution, and p99 from the moment each was due. */
  pacedP50: number;
  pacedP99: number;
  pacedResponseP99: number;
  pacedN: number;
  /** The same while a compaction runs (absent for a system without one). */
  duringP50?: number;
  duringP99?: number;
  duringResponseP99?: number;
  duringN?: number;
  duringCompactMs?: number;
  duringLoop?: Loop;
  /** The paced puts ran out of records before the compaction finished (then its last part had no puts). */
  duringRanOut?: boolean;
  diskBytes: number;
  diskApparent: number;
}

export interface ReadSample {
  /** Resident set size (after GC) before open, after open → first record, after reading every record, after the warm gets. */
  rssBase: number;
  rssOpen: number;
  rssRead: number;
  rssWarm: number;
  heapOpen: number;
  heapRead: number;
  heapWarm: number;
  openMs: number;
  openCpuMs?: number;
  openLoop: Loop;
  coldGetsPerS: number;
  coldGetP99: number;
  coldN: number;
  coldLoop: Loop;
  readAllMs: number;
  readAllCpuMs?: number;
  readLoop: Loop;
  warmGetsPerS: number;
  warmGetP99: number;
  warmN: number;
  warmLoop: Loop;
}

const BATCH = 1_000;
const CHUNK = 10_000;
const PACE_MS = 2;
/** Systems whose `compact()` is a no-op (lmdb reuses pages in place): no "puts during compaction" step. */
const NO_COMPACTION = new Set(["lmdb"]);
const STREAM_SCALE_GETS = 21;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function loopOf(s: StallSample): Loop {
  return { p99: s.p99, max: s.max, gap: s.gap, ...(s.cpuGap === undefined ? {} : { cpuGap: s.cpuGap }) };
}

/** The worst of several steps' stalls (the p99 of the merged steps is at most the largest p99). */
function worst(list: readonly StallSample[]): Loop {
  return {
    p99: Math.max(0, ...list.map((s) => s.p99)),
    max: Math.max(0, ...list.map((s) => s.max)),
    gap: Math.max(0, ...list.map((s) => s.gap)),
    cpuGap: Math.max(0, ...list.map((s) => s.cpuGap ?? 0)),
  };
}

/** CPU time this process used so far (user + system, every thread), in ms: unlike wall-clock time, it does not grow with the machine's load. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function timed<T>(op: () => Promise<T>): Promise<{ value: T; ms: number; cpuMs: number; loop: Loop }> {
  const monitor = await StallMonitor.start();
  const t0 = nowMs();
  const c0 = cpuMs();
  try {
    const value = await op();
    const ms = nowMs() - t0;
    const cpu = cpuMs() - c0;
    return { value, ms, cpuMs: cpu, loop: loopOf(await monitor.stop()) };
  } catch (e) {
    await monitor.stop();
    throw e;
  }
}

/** Puts due every PACE_MS ms from now, one at a time, while `more(i)`; each put's service and response time. */
async function pacedPuts(store: StoreAdapter, records: readonly TaskRecord[], more: (i: number) => boolean): Promise<{ service: number[]; response: number[] }> {
  const service: number[] = [];
  const response: number[] = [];
  const t0 = nowMs();
  for (let i = 0; i < records.length && more(i); i++) {
    const due = t0 + i * PACE_MS;
    const wait = due - nowMs();
    if (wait > 0) await sleep(wait);
    const issued = nowMs();
    await store.putOne(records[i] as TaskRecord);
    const done = nowMs();
    service.push(done - issued);
    response.push(done - due);
  }
  return { service, response };
}

async function load(req: ScaleRequest): Promise<LoadSample> {
  const spec = findSystem(req.system);
  mkdirSync(req.dir, { recursive: true });
  const store = await spec.create();
  await store.open(req.dir);
  let bulkMs = 0;
  let bulkCpuMs = 0;
  const bulkStalls: StallSample[] = [];
  for (let c = 0; c < req.records; c += CHUNK) {
    const records = makeTasks(c, Math.min(CHUNK, req.records - c));
    const monitor = await StallMonitor.start();
    const t0 = nowMs();
    const c0 = cpuMs();
    for (let i = 0; i < records.length; i += BATCH) await store.putMany(records.slice(i, i + BATCH));
    bulkMs += nowMs() - t0;
    bulkCpuMs += cpuMs() - c0;
    bulkStalls.push(await monitor.stop());
  }
  const compaction = req.skipCompaction ? { ms: Number.NaN, cpuMs: Number.NaN, loop: { p99: Number.NaN, max: Number.NaN, gap: Number.NaN } } : await timed(() => store.compact());

  let next = req.records;
  const fresh = (n: number): TaskRecord[] => {
    const r = makeTasks(next, n);
    next += n;
    return r;
  };
  const singles = fresh(req.puts);
  const latencies: number[] = [];
  const put1 = await timed(async () => {
    const start = nowMs();
    for (const r of singles) {
      const t0 = nowMs();
      await store.putOne(r);
      latencies.push(nowMs() - t0);
      if (nowMs() - start > req.budgetMs) break;
    }
  });
  const paced = await pacedPuts(store, fresh(req.puts), () => true);
  const sample: LoadSample = {
    bulkRps: req.records / (bulkMs / 1000),
    bulkMs,
    bulkCpuMs,
    bulkLoop: worst(bulkStalls),
    compactMs: compaction.ms,
    compactCpuMs: compaction.cpuMs,
    compactLoop: compaction.loop,
    put1P50: percentile(latencies, 50),
    put1P99: percentile(latencies, 99),
    put1Loop: put1.loop,
    pacedP50: percentile(paced.service, 50),
    pacedP99: percentile(paced.service, 99),
    pacedResponseP99: percentile(paced.response, 99),
    pacedN: paced.service.length,
    diskBytes: 0,
    diskApparent: 0,
  };
  if (!NO_COMPACTION.has(spec.id) && !req.skipCompaction) {
    // Puts every PACE_MS ms through a compaction of up to 5 × the first one's time (the step says if they ran
    // out first): 2,000 new records, then the same keys again (overwrites), so generating them costs little.
    const cycle = fresh(Math.min(2_000, Math.ceil((5 * compaction.ms + 1000) / PACE_MS)));
    const records = Array.from({ length: Math.ceil((5 * compaction.ms + 1000) / PACE_MS) }, (_, i) => cycle[i % cycle.length] as TaskRecord);
    let done = false;
    let compactMs = 0;
    const monitor = await StallMonitor.start();
    const t0 = nowMs();
    const compacting = store.compact().then(() => {
      compactMs = nowMs() - t0;
      done = true;
    });
    // Only puts issued before the compaction finished count (at least one: the first is issued with it).
    const during = await pacedPuts(store, records, (i) => i === 0 || !done);
    const ranOut = !done;
    await compacting;
    const stalls = await monitor.stop();
    sample.duringP50 = percentile(during.service, 50);
    sample.duringP99 = percentile(during.service, 99);
    sample.duringResponseP99 = percentile(during.response, 99);
    sample.duringN = during.service.length;
    sample.duringCompactMs = compactMs;
    sample.duringLoop = loopOf(stalls);
    if (ranOut) sample.duringRanOut = true;
  }
  await store.close();
  const disk = diskUsage(req.dir);
  sample.diskBytes = disk.allocated;
  sample.diskApparent = disk.apparent;
  return sample;
}

/** `n` random gets (keys of `order`), stopping after `budgetMs`; gets per second and the p99 of one get. */
async function randomGets(store: StoreAdapter, order: Uint32Array, budgetMs: number): Promise<{ perS: number; p99: number; n: number }> {
  const lat: number[] = [];
  const start = nowMs();
  for (const i of order) {
    const key = taskKey(i);
    const t0 = nowMs();
    const value = await store.get(key);
    lat.push(nowMs() - t0);
    if (lat.length === 1) checkRecord(value, key);
    if (nowMs() - start > budgetMs) break;
  }
  return { perS: lat.length / ((nowMs() - start) / 1000), p99: percentile(lat, 99), n: lat.length };
}

async function read(req: ScaleRequest): Promise<ReadSample> {
  const spec = findSystem(req.system);
  const store = await spec.create(); // loads the library: not part of open time
  const rng = rngFor(BENCH_SEED, STREAM_SCALE_GETS, req.records);
  const coldOrder = Uint32Array.from({ length: req.puts }, () => rng.int(req.records));
  const warmup = Uint32Array.from({ length: req.gets }, () => rng.int(req.records));
  const warmOrder = Uint32Array.from({ length: req.gets }, () => rng.int(req.records));
  const key = taskKey(Math.floor(req.records / 2));
  const base = memory();
  const open = await timed(async () => {
    await store.open(req.dir);
    return store.get(key);
  });
  checkRecord(open.value, key);
  const afterOpen = memory();
  const cold = await timed(() => randomGets(store, coldOrder, req.budgetMs));
  const all = await timed(() => store.readAll());
  // The load step's puts added records after the bulk-loaded ones.
  if (all.value < req.records) throw new Error(`readAll found ${all.value} records, expected at least ${req.records}`);
  const afterRead = memory();
  await randomGets(store, warmup, req.budgetMs);
  const warm = await timed(() => randomGets(store, warmOrder, req.budgetMs));
  const afterWarm = memory();
  await store.close();
  return {
    rssBase: base.rss,
    rssOpen: afterOpen.rss,
    rssRead: afterRead.rss,
    rssWarm: afterWarm.rss,
    heapOpen: afterOpen.heap - base.heap,
    heapRead: afterRead.heap - base.heap,
    heapWarm: afterWarm.heap - base.heap,
    openMs: open.ms,
    openCpuMs: open.cpuMs,
    openLoop: open.loop,
    coldGetsPerS: cold.value.perS,
    coldGetP99: cold.value.p99,
    coldN: cold.value.n,
    coldLoop: cold.loop,
    readAllMs: all.ms,
    readAllCpuMs: all.cpuMs,
    readLoop: all.loop,
    warmGetsPerS: warm.value.perS,
    warmGetP99: warm.value.p99,
    warmN: warm.value.n,
    warmLoop: warm.loop,
  };
}

// Run only as the child's entry point (scale.ts imports this module's types).
if (process.argv[1]?.endsWith("scale-child.ts")) {
  const req = JSON.parse(process.argv[2] ?? "{}") as ScaleRequest;
  await reply(() => (req.mode === "load" ? load(req) : read(req)));
}
