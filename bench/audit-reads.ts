/**
 * Issue 16's audit log: what counting reads costs. `profiles.get` of 100 records already in the record cache
 * (the cheapest read, so the counting is the largest share of it), N times, with `audit` off and on, in one
 * process and alternating, `--reps` times; prints ns per get and the on/off ratio of the medians.
 * Run: `npx tsx bench/audit-reads.ts [--n 200000] [--reps 5]`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { openStore } from "../src/generated/index.js";

const { values } = parseArgs({ options: { n: { type: "string", default: "200000" }, reps: { type: "string", default: "5" } } });
const N = Number(values.n);
const key = new Uint8Array(32).fill(9);

async function nsPerGet(audit: boolean): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-audit-reads-"));
  const store = await openStore({ dir, key, ...(audit ? { audit: { actor: "bench" } } : {}) });
  try {
    for (let i = 0; i < 100; i++) await store.profiles.put({ id: `p${i}`, displayName: "x", email: `e${i}@example.com` });
    for (let i = 0; i < N; i++) await store.profiles.get(`p${i % 100}`); // warm: cache, JIT
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) await store.profiles.get(`p${i % 100}`);
    return Number(process.hrtime.bigint() - t) / N;
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const off: number[] = [];
const on: number[] = [];
for (let r = 0; r < Number(values.reps); r++) {
  off.push(await nsPerGet(false));
  on.push(await nsPerGet(true));
}
console.log(`get, audit off: ${off.map(Math.round).join(" ")} ns (median ${Math.round(median(off))})`);
console.log(`get, audit on:  ${on.map(Math.round).join(" ")} ns (median ${Math.round(median(on))})`);
console.log(`ratio on/off of the medians: ${(median(on) / median(off)).toFixed(2)}x; load ${os.loadavg()[0]!.toFixed(1)}`);
