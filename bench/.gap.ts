import { cpSync, rmSync, existsSync } from "node:fs";
import { TaskEntity } from "../src/generated/examples/tasks/v1/tasks_cellar.js";
import { openStore } from "../src/runtime/typed/store.js";
import { makeTasks } from "./records.js";
const KEY = new Uint8Array(32).fill(3);
const ents = (keep: number) => ({ tasks: { ...TaskEntity, retention: { timestampField: "createdAt", maxCount: keep } } as typeof TaskEntity });
const base = "/tmp/rprof/base", dir = "/tmp/rprof/run";
if (!existsSync(base)) {
  const s = await openStore(ents(1e9), { dir: base, key: KEY, cleanup: false, compaction: { auto: false } });
  const all = makeTasks(0, 100000);
  for (let i = 0; i < all.length; i += 1000) await s.batch((tx) => { for (const r of all.slice(i, i + 1000)) tx.tasks.put(r.input); });
  await s.compact(); await s.close();
}
rmSync(dir, { recursive: true, force: true }); cpSync(base, dir, { recursive: true });
const s = await openStore(ents(50000), { dir, key: KEY, cleanup: false, compaction: { auto: false } });
let last = performance.now(), worst = 0; const gaps: number[] = [];
const h = setInterval(() => { const n = performance.now(); const g = n - last; if (g > worst) worst = g; gaps.push(g); last = n; }, 1);
const t = performance.now();
const r = await s.cleanup();
clearInterval(h);
gaps.sort((a, b) => b - a);
console.log("cleanup", (performance.now() - t).toFixed(0), r.total, "worst gaps", gaps.slice(0, 6).map((g) => g.toFixed(0)).join(","));
await s.close();
