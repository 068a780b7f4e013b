/**
 * Record history's cost on writes (issue 12, "Record history"): the same workload of puts to a collection,
 * awaited in groups of 64, with and without `history: { keep: 20 }`, on a fresh store each; then the time
 * to list one record's 20 versions. Run alone with `npx tsx bench/lifecycle-history.ts [records] [rounds]`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { entities } from "../src/generated/index.js";
import { defineCollection, openStore } from "../src/runtime/index.js";

const key = new Uint8Array(32).fill(1);

export async function historyBench(records: number, rounds: number): Promise<{ plain: number; history: number; list20Ms: number }> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-bench-history-"));
  try {
    const run = async (withHistory: boolean) => {
      const tasks = withHistory ? defineCollection({ ...entities.tasks, history: { keep: 20 } }) : entities.tasks;
      const store = await openStore({ tasks }, { dir: path.join(tmp, withHistory ? "history" : "plain"), key });
      const t0 = performance.now();
      let n = 0;
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < records; i += 64) {
          const ps: Promise<unknown>[] = [];
          for (let j = i; j < Math.min(records, i + 64); j++) ps.push(store.tasks.put({ id: `t${j}`, title: `task ${j} round ${r}`, estimateMinutes: r }));
          await Promise.all(ps);
          n += ps.length;
        }
      }
      const rate = n / ((performance.now() - t0) / 1000);
      let list20Ms = 0;
      if (withHistory) {
        const t1 = performance.now();
        for (let i = 0; i < 100; i++) await store.tasks.history(`t${i}`);
        list20Ms = (performance.now() - t1) / 100;
      }
      await store.close();
      return { rate, list20Ms };
    };
    const plain = await run(false);
    const history = await run(true);
    return { plain: plain.rate, history: history.rate, list20Ms: history.list20Ms };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const records = Number(process.argv[2] ?? 5000);
  const rounds = Number(process.argv[3] ?? 5);
  const r = await historyBench(records, rounds);
  console.log(
    `puts/s without history ${Math.round(r.plain)}, with history {keep: 20} ${Math.round(r.history)} (${(r.history / r.plain).toFixed(2)}x); history(key) of ${Math.min(rounds - 1, 20)} versions: ${r.list20Ms.toFixed(3)} ms`,
  );
}
