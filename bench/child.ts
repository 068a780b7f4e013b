/**
 * Entry point of the fresh child process that workloads 5 and 6 run in (`node --expose-gc --import tsx
 * bench/child.ts '<json>'`), so no cache, module state or heap of the parent leaks into the numbers.
 *
 * - `cold`: load the library, then time open → first read, and open → every record read and decoded
 *   (iterated); then every record read into one array (`list()`), timed alone.
 * - `warm`: measure memory, open, read every key once, time random gets, measure memory again.
 * Each timed step also measures its event-loop stalls here, in the child (bench/stall.ts).
 *
 * Prints one line `@@RESULT <json>` on stdout; anything else on stdout/stderr is diagnostics.
 */
import { type ChildRequest, reply } from "./child-protocol.js";
import { loopSample, type Sample } from "./metrics.js";
import { rngFor, BENCH_SEED } from "./prng.js";
import { taskKey } from "./records.js";
import { StallMonitor } from "./stall.js";
import { nowMs } from "./stats.js";
import { findSystem } from "./systems.js";
import { checkRecord, memory } from "./child-memory.js";

const STREAM_GETS = 9;

/**
 * Inputs of the measurement that must stay reachable until memory is measured the second time:
 * V8 may collect a local after its last use, which would show as memory the store freed.
 */
const retained: unknown[] = [];

async function cold(req: ChildRequest): Promise<Sample> {
  const spec = findSystem(req.system);
  const store = await spec.create(); // loads the library: not part of open time
  const key = taskKey(Math.floor(req.records / 2));
  let monitor = await StallMonitor.start();
  const t0 = nowMs();
  await store.open(req.dir);
  const first = await store.get(key);
  const t1 = nowMs();
  const open = await monitor.stop(); // ~2 ms, taken out of the times below
  monitor = await StallMonitor.start();
  const t1b = nowMs();
  const count = await store.readAll();
  const t2 = nowMs();
  const iterate = await monitor.stop();
  monitor = await StallMonitor.start();
  const t3 = nowMs();
  const listed = await store.listAll();
  const t4 = nowMs();
  const list = await monitor.stop();
  await store.close();
  checkRecord(first, key);
  if (count !== req.records) throw new Error(`readAll found ${count} records, expected ${req.records}`);
  if (listed !== req.records) throw new Error(`listAll found ${listed} records, expected ${req.records}`);
  return {
    "cold.first": t1 - t0,
    "cold.all": t1 - t0 + (t2 - t1b),
    "list.all": t4 - t3,
    ...loopSample("open", open),
    ...loopSample("iterate", iterate),
    ...loopSample("list", list),
  };
}

async function warm(req: ChildRequest): Promise<Sample> {
  const spec = findSystem(req.system);
  const store = await spec.create();
  const keys = Array.from({ length: req.records }, (_, i) => taskKey(i));
  const rng = rngFor(BENCH_SEED, STREAM_GETS, 0);
  const order = Uint32Array.from({ length: req.gets }, () => rng.int(req.records));
  // Warm-up: every key once, in a random order (Fisher–Yates), so each system's caches hold what
  // their budgets allow before the timed gets start.
  const warmup = Uint32Array.from({ length: req.records }, (_, i) => i);
  for (let i = warmup.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [warmup[i], warmup[j]] = [warmup[j] as number, warmup[i] as number];
  }
  retained.push(keys, order, warmup);
  const before = memory();

  await store.open(req.dir);
  const warmStart = nowMs();
  for (const i of warmup) {
    await store.get(keys[i] as string);
    if (nowMs() - warmStart > req.budgetMs) break;
  }
  let n = 0;
  const monitor = await StallMonitor.start();
  const start = nowMs();
  for (const i of order) {
    const key = keys[i] as string;
    const value = await store.get(key);
    if (n === 0) checkRecord(value, key);
    n++;
    // Check the clock on every get at first (conf takes ~0.5 s per get), then every 64 gets.
    if ((n < 256 || (n & 63) === 0) && nowMs() - start > req.budgetMs) break;
  }
  const elapsed = nowMs() - start;
  const stalls = await monitor.stop();
  const after = memory();
  await store.close();
  return {
    "warm.gets": n / (elapsed / 1000),
    "warm.n": n,
    "mem.rss": (after.rss - before.rss) / req.records,
    "mem.heap": (after.heap - before.heap) / req.records,
    ...loopSample("gets", stalls),
  };
}

const req = JSON.parse(process.argv[2] ?? "{}") as ChildRequest;
await reply(() => (req.mode === "cold" ? cold(req) : warm(req)));
