/**
 * Issue 15's stalls, Cellar alone, in one process and in a minute or two: the operations of the event-loop
 * table on one store of `--n` tasks (default 100,000), each under a StallMonitor (stall.ts), printed with
 * `cpuGap`, the most CPU this process used between two callbacks of a 1 ms timer: on a machine shared with
 * other work the wall-clock gap includes the time the OS ran other processes, the CPU gap does not.
 *
 * `npx tsx stall-probe.ts [--n 100000] [--reps 1] [--gets 100000]` (in bench/). Stores under bench/.work/.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { openStore } from "../src/generated/index.js";
import { makeTasks, taskKey } from "./records.js";
import { TaskStatus } from "../src/generated/examples/tasks/v1/tasks_pb.js";
import { type StallSample, withStalls } from "./stall.js";
import { BENCH_DIR } from "./peers.js";

const { values } = parseArgs({ options: { n: { type: "string" }, reps: { type: "string" }, gets: { type: "string" } }, strict: true });
const N = Number(values.n ?? 100_000);
const REPS = Number(values.reps ?? 1);
const GETS = Number(values.gets ?? 100_000);
const KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
const rows: { op: string; ms: number; s: StallSample }[] = [];

async function measure<T>(op: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const { value, stalls } = await withStalls(fn);
  rows.push({ op, ms: performance.now() - t0, s: stalls });
  return value;
}

async function rep(dir: string): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let store = await openStore({ dir, key: KEY });
  await measure("one durable put at a time (500)", async () => {
    for (const t of makeTasks(0, 500)) await store.tasks.put(t.input); // keys the bulk load rewrites: N records in all (tasks keep at most 100,000)
  });
  const batches: ReturnType<typeof makeTasks>[] = [];
  for (let i = 0; i < N; i += 1000) batches.push(makeTasks(i, Math.min(1000, N - i)));
  await measure(`bulk load (${N}, putMany of 1000)`, async () => {
    for (const batch of batches) await store.tasks.putMany(batch.map((r) => r.input));
  });
  // The same records again through batch(): its callback encodes 1,000 puts in one step, the commit seals in slices.
  await measure(`batch() of 1000, ${Math.min(20, batches.length)} times`, async () => {
    for (const batch of batches.slice(0, 20)) {
      await store.batch((tx) => {
        for (const r of batch) tx.tasks.put(r.input);
      });
    }
  });
  await measure("compaction", () => store.compact());
  await store.close();
  const mid = taskKey(Math.floor(N / 2));
  store = await measure("cold open → first record", async () => {
    const s = await openStore({ dir, key: KEY });
    await s.tasks.get(mid);
    return s;
  });
  await measure("first query (ordered index build)", async () => {
    if ((await store.tasks.count({ status: TaskStatus.DONE })) < 0) throw new Error("count");
  });
  await measure("iterate every record", async () => {
    let n = 0;
    for await (const _ of store.tasks.iterate()) n++;
    if (n < N) throw new Error(`iterate found ${n}`); // the tasks' retention (maxCount 100,000) may be deleting the rest
  });
  await measure("list every record", async () => {
    if ((await store.tasks.list()).length < N) throw new Error("list");
  });
  await measure("keys()", async () => {
    if ((await store.tasks.keys()).length < N) throw new Error("keys");
  });
  const keys = Array.from({ length: N }, (_, i) => taskKey(i));
  for (const k of keys) await store.tasks.get(k); // warm
  let x = 12345;
  await measure(`warm random gets (${GETS})`, async () => {
    for (let i = 0; i < GETS; i++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      await store.tasks.get(keys[x % N]!);
    }
  });
  await store.close();
}

const base = join(BENCH_DIR, ".work", `probe-${process.pid}`);
try {
  for (let r = 0; r < REPS; r++) await rep(base);
} finally {
  rmSync(base, { recursive: true, force: true });
}
const f = (v: number | undefined) => (v === undefined ? "-" : v < 10 ? v.toFixed(2) : v.toFixed(0));
console.log(`n=${N} reps=${REPS} load=${(await import("node:os")).loadavg().map((l) => l.toFixed(1)).join(" ")}`);
console.log("op".padEnd(40), "ms".padStart(8), "p99".padStart(7), "max".padStart(7), "gap".padStart(7), "cpuGap".padStart(7), "ticks".padStart(6));
for (const { op, ms, s } of rows) {
  console.log(op.padEnd(40), f(ms).padStart(8), f(s.p99).padStart(7), f(s.max).padStart(7), f(s.gap).padStart(7), f(s.cpuGap).padStart(7), `${(s.ticks * 100).toFixed(0)}%`.padStart(6));
}
