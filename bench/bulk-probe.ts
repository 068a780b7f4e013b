/**
 * Issue 15: the bulk load alone, for its rate per CPU-second and its event-loop stalls (stall.ts): `--n`
 * records in commits of 1,000 into a fresh store, through `batch()` (default) or `putMany` (`many`).
 *
 * `npx tsx bulk-probe.ts [n=100000] [batch|many]` (in bench/). Store under bench/.work/.
 */
import { mkdirSync, rmSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { loadavg } from "node:os";
import { openStore } from "../src/generated/index.js";
import { makeTasks } from "./records.js";
import { withStalls } from "./stall.js";
import { BENCH_DIR } from "./peers.js";
const N = Number(process.argv[2] ?? 100000);
const mode = process.argv[3] ?? "batch";
const KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
const dir = `${BENCH_DIR}/.work/bulk-${process.pid}`;
rmSync(dir, { recursive: true, force: true }); mkdirSync(dir, { recursive: true });
const store = await openStore({ dir, key: KEY, compaction: { auto: false }, cleanup: false });
const batches: ReturnType<typeof makeTasks>[] = [];
for (let i = 0; i < N; i += 1000) batches.push(makeTasks(i, Math.min(1000, N - i)));
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const { stalls } = await withStalls(async () => {
  for (const batch of batches) {
    if (mode === "many") await store.tasks.putMany(batch.map((r) => r.input));
    else await store.batch((tx) => { for (const r of batch) tx.tasks.put(r.input); });
  }
});
const el = performance.now() - t0; const c = process.cpuUsage(cpu0);
const cpu = (c.user + c.system) / 1000;
console.log(`${mode} n=${N} wall ${el.toFixed(0)} ms ${(N / el * 1000).toFixed(0)}/s cpu ${cpu.toFixed(0)} ms (${(N / cpu * 1000).toFixed(0)}/cpu-s) p99 ${stalls.p99.toFixed(1)} max ${stalls.max.toFixed(1)} cpuGap ${stalls.cpuGap?.toFixed(1)} ticks ${(stalls.ticks*100).toFixed(0)}% load ${loadavg()[0]!.toFixed(1)}`);
await store.close();
rmSync(dir, { recursive: true, force: true });
