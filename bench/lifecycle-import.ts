/**
 * Issue 12's import target alone (`import ≥ 0.8× our own bulk load`), alternating the two measures in one
 * process so that both see the same machine load: the export file is made once (bulk load, compaction,
 * export: untimed), then each repetition bulk-loads the records into a fresh store (batches of 1,000) and
 * imports the file into another fresh store. Wall and CPU time (user + system, all threads) of each.
 *
 * `npx tsx bench/lifecycle-import.ts [--n 100000] [--reps 5]`
 */
import fs from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { makeRunDir, removeDir } from "./fsutil.js";
import { makeTasks } from "./records.js";

const KEY = new Uint8Array(32).fill(11);
type Generated = typeof import("../src/generated/index.js");
const open = async (dir: string) => ((await import("../src/generated/index.js")) as Generated).openStore({ dir, key: KEY });

function timed<T>(f: () => Promise<T>): Promise<{ ms: number; cpu: number; value: T }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  return f().then((value) => {
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return { ms, cpu: (c.user + c.system) / 1000, value };
  });
}

async function bulkLoad(dir: string, n: number, batch: number) {
  const records = makeTasks(0, n);
  const store = await open(dir);
  try {
    return await timed(async () => {
      for (let i = 0; i < n; i += batch) {
        await store.batch((tx) => {
          for (let j = i; j < Math.min(n, i + batch); j++) tx.tasks.put(records[j]!.input);
        });
      }
    });
  } finally {
    await store.close();
  }
}

async function main(n: number, reps: number, batch: number) {
  const runDir = makeRunDir();
  const file = join(runDir, "tasks.ndjson");
  try {
    const src = await open(join(runDir, "src"));
    try {
      const records = makeTasks(0, n);
      for (let i = 0; i < n; i += batch) await src.batch((tx) => { for (let j = i; j < Math.min(n, i + batch); j++) tx.tasks.put(records[j]!.input); });
      await src.compact();
      await src.export({ to: file, entities: ["tasks"] });
    } finally {
      await src.close();
    }
    console.log(`lifecycle import: ${n} task records, file ${(fs.statSync(file).size / 1e6).toFixed(1)} MB, ${reps} alternations`);
    const ratios: number[] = [];
    const cpuRatios: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const load = await bulkLoad(join(runDir, `load-${rep}`), n, batch);
      removeDir(join(runDir, `load-${rep}`));
      const dir = join(runDir, `imp-${rep}`);
      const store = await open(dir);
      let imp;
      try {
        imp = await timed(() => store.import(file));
        if (imp.value.records.tasks !== n || (await store.tasks.count()) !== n) throw new Error("import lost records");
      } finally {
        await store.close();
      }
      removeDir(dir);
      ratios.push(load.ms / imp.ms);
      cpuRatios.push(load.cpu / imp.cpu);
      console.log(`  load ${os.loadavg()[0]!.toFixed(1)}: bulk load ${load.ms.toFixed(0)} ms (cpu ${load.cpu.toFixed(0)}), import ${imp.ms.toFixed(0)} ms (cpu ${imp.cpu.toFixed(0)}) -> ${(load.ms / imp.ms).toFixed(2)}x (cpu ${(load.cpu / imp.cpu).toFixed(2)}x)`);
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    console.log(`import vs bulk load: median ${med(ratios).toFixed(2)}x wall, ${med(cpuRatios).toFixed(2)}x cpu (target >= 0.8)`);
  } finally {
    removeDir(runDir);
  }
}

if (process.argv[1]?.endsWith("lifecycle-import.ts")) {
  const { values } = parseArgs({ options: { n: { type: "string", default: "100000" }, reps: { type: "string", default: "5" } }, strict: true });
  await main(Number(values.n), Number(values.reps), 1000);
}
