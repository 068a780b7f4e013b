/**
 * Lifecycle: retention cleanup (issue 12, "Speed": removing half of 100,000 records ≤ 1.0× the time of a
 * compaction of the same store). Builds a store of `records` benchmark tasks (compacted: one segment, as a
 * store looks after a while), copies it, then times on one copy `store.cleanup()` under a rule that keeps the
 * newest half by `createdAt` (every timestamp read, sorted, half the records deleted in one write), and on
 * the other `store.compact()`. Cellar only: no peer has this rule.
 *
 *   npx tsx bench/lifecycle-retention.ts [--records 100000] [--reps 3]
 *
 * `npm run bench` runs it once on its bulk size after the workloads (`retentionBench`) and logs the numbers.
 */
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { TaskEntity } from "../src/generated/examples/tasks/v1/tasks_cellar.js";
import { openStore } from "../src/runtime/typed/store.js";
import { makeRunDir, removeDir } from "./fsutil.js";
import { makeTasks } from "./records.js";

const KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);

export interface RetentionResult {
  records: number;
  removed: number;
  cleanupMs: number;
  compactMs: number;
  /** cleanupMs / compactMs (target ≤ 1.0). */
  ratio: number;
  /** CPU time (user + system) of each, in ms: steadier than wall time on a loaded machine. */
  cleanupCpuMs: number;
  compactCpuMs: number;
}

function entities(keep: number) {
  return { tasks: { ...TaskEntity, retention: { timestampField: "createdAt", maxCount: keep } } as typeof TaskEntity };
}

async function build(dir: string, records: number): Promise<void> {
  const store = await openStore(entities(records), { dir, key: KEY, cleanup: false, compaction: { auto: false } });
  try {
    const all = makeTasks(0, records);
    for (let i = 0; i < all.length; i += 1000) {
      await store.batch((tx) => {
        for (const r of all.slice(i, i + 1000)) tx.tasks.put(r.input);
      });
    }
    await store.compact();
  } finally {
    await store.close();
  }
}

/** One measurement: build, copy, clean one copy, compact the other. */
export async function retentionBench(records: number, dir: string): Promise<RetentionResult> {
  const a = join(dir, "clean");
  const b = join(dir, "compact");
  mkdirSync(dir, { recursive: true });
  await build(a, records);
  cpSync(a, b, { recursive: true });
  const keep = Math.floor(records / 2);
  const opts = { key: KEY, cleanup: false as const, compaction: { auto: false } };

  const s1 = await openStore(entities(keep), { dir: a, ...opts });
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const report = await s1.cleanup();
  const cleanupMs = performance.now() - t0;
  const c1 = process.cpuUsage(c0);
  await s1.close();

  const s2 = await openStore(entities(keep), { dir: b, ...opts });
  const c2 = process.cpuUsage();
  const t1 = performance.now();
  await s2.compact();
  const compactMs = performance.now() - t1;
  const c3 = process.cpuUsage(c2);
  await s2.close();
  rmSync(dir, { recursive: true, force: true });
  const cpu = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
  return { records, removed: report.total, cleanupMs, compactMs, ratio: cleanupMs / compactMs, cleanupCpuMs: cpu(c1), compactCpuMs: cpu(c3) };
}

export function formatRetention(r: RetentionResult): string {
  return `retention cleanup of ${r.records} records (${r.removed} removed): ${r.cleanupMs.toFixed(0)} ms; compaction of the same store: ${r.compactMs.toFixed(0)} ms; ratio ${r.ratio.toFixed(2)} (target ≤ 1.0); CPU ${r.cleanupCpuMs.toFixed(0)} vs ${r.compactCpuMs.toFixed(0)} ms`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { records: { type: "string", default: "100000" }, reps: { type: "string", default: "3" } } });
  const runDir = makeRunDir();
  try {
    const results: RetentionResult[] = [];
    for (let rep = 0; rep < Number(values.reps); rep++) {
      const r = await retentionBench(Number(values.records), join(runDir, `retention-${rep}`));
      results.push(r);
      console.log(formatRetention(r));
    }
    const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    console.log(`median ratio ${median(results.map((r) => r.ratio)).toFixed(2)}`);
  } finally {
    removeDir(runDir);
  }
}
