/**
 * Child process for crash tests. Writes to a store and logs, with synchronous
 * writes to a log file (page cache survives SIGKILL), each op before it is
 * issued (`I`) and after it is acknowledged (`A`). The parent kills it with
 * SIGKILL and checks the store against the log.
 *
 * argv: dir log seed mode   (mode: "mixed" | "compact-at:<failpoint>")
 */
import { Engine, type WriteOp } from "../../../src/runtime/storage/engine.js";
import type { Failpoint } from "../../../src/runtime/platform/io.js";
import { TEST_KEY, valueFor, writeLog } from "./model.js";

const [dir, logPath, seedArg, mode = "mixed"] = process.argv.slice(2);
if (!dir || !logPath || !seedArg) throw new Error("usage: crash-writer dir log seed [mode]");
let seed = Number(seedArg) >>> 0;
const rand = () => {
  seed = (seed * 1664525 + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const crashAt = mode.startsWith("compact-at:") ? (mode.slice("compact-at:".length) as Failpoint) : null;
let armed = false;

const engine = await Engine.open({
  dir,
  key: TEST_KEY,
  compaction: { minDeadBytes: 32 * 1024, maxJournalBytes: 256 * 1024 },
  failpoint: (name) => {
    if (armed && name === crashAt) process.kill(process.pid, "SIGKILL");
  },
});
const { say, issue } = writeLog(logPath, engine);
say("OPEN");


const put = (key: string, n: number): WriteOp => ({ op: "put", entity: "e", key, version: 1, value: valueFor(key, n), terms: [] });

if (crashAt) {
  // Build up acknowledged state with dead bytes, then compact and die inside the named window.
  const ps: Promise<void>[] = [];
  for (let i = 0; i < 400; i++) ps.push(issue([put(`k${i % 150}`, i)], "single"));
  ps.push(issue([{ op: "delete", entity: "e", key: "k7" }], "single"));
  await Promise.all(ps);
  armed = true;
  say("COMPACT");
  await engine.compact();
  say("COMPACTED");
  // a failpoint that is not reached by compact() itself: keep writing so commit windows are hit
  for (let i = 0; ; i++) await issue([put(`k${i % 150}`, 1000 + i)], "single");
}

let n = 0;
for (;;) {
  const inflight = 1 + Math.floor(rand() * 8);
  const ps: Promise<void>[] = [];
  for (let i = 0; i < inflight; i++) {
    n++;
    const r = rand();
    if (r < 0.1) {
      // a batch of fresh keys: all or none must survive; one in five is large enough (≥ SLICED_MIN_OPS) to be
      // sealed in slices with its fdatasync on the thread pool (storage/commit.ts). `n` starts again in every
      // process: a large batch's keys have a prefix of their own, so that a batch of an earlier round with
      // the same `n` is the same batch (same keys, same values), never a part of it.
      const ops: WriteOp[] = [];
      const large = r < 0.02;
      for (let j = 0; j < (large ? 150 : 5); j++) ops.push(put(`${large ? "L" : "b"}${n}-${j}`, n));
      ps.push(issue(ops, "batch"));
    } else if (r < 0.2) {
      ps.push(issue([{ op: "delete", entity: "e", key: `k${Math.floor(rand() * 60)}` }], "single"));
    } else {
      ps.push(issue([put(`k${Math.floor(rand() * 60)}`, n)], "single"));
    }
  }
  await Promise.all(ps);
  if (rand() < 0.02) await engine.compact();
}
