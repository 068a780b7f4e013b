/**
 * Issue 15: an ordered index's first build, in slices (`Keyspace.buildIndex`) against one synchronous step
 * (`Keyspace.orderedIndex`, as before), on a keyspace of `n` records (default 1,000,000) held in the overlay,
 * each with one term of the index, in the same process: total wall and CPU time, and the event-loop stalls
 * (stall.ts: p99/max delay, longest gap of a 1 ms timer, and its CPU gap).
 *
 * `npx tsx index-build-probe.ts [n]` (in bench/).
 */
import { Keyspace } from "../src/runtime/storage/keyspace.js";
import { Loc } from "../src/runtime/format/location.js";
import { compareUtf8 } from "../src/runtime/format/segment-index.js";
import { withStalls } from "./stall.js";

const n = Number(process.argv[2] ?? 1_000_000);
const prefix = "\u00012\u0000";
const make = (): Keyspace => {
  const ks = new Keyspace("e", null);
  for (let i = 0; i < n; i++) {
    const k = `t-${String(i).padStart(7, "0")}`;
    ks.put(new Loc(1, i, 10, 1, k, 0, 10, 1, [`${prefix}${(i * 7919) % 4}x${i % 1000}`]));
  }
  return ks;
};
for (const mode of ["sliced", "one step"] as const) {
  const ks = make();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const { stalls: s } = await withStalls(async () => {
    if (mode === "sliced") await ks.buildIndex(prefix, compareUtf8);
    else ks.orderedIndex(prefix, compareUtf8);
  });
  const ms = performance.now() - t0;
  const cu = process.cpuUsage(c0);
  const size = ks.orderedIndex(prefix, compareUtf8).size;
  console.log(
    `${mode.padEnd(8)} n=${n} total ${ms.toFixed(0)} ms (cpu ${((cu.user + cu.system) / 1000).toFixed(0)}), ` +
      `p99 ${s.p99.toFixed(1)} max ${s.max.toFixed(1)} gap ${s.gap.toFixed(1)} cpuGap ${s.cpuGap?.toFixed(1)} ms, entries ${size}`,
  );
}
