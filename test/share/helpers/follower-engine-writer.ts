/**
 * Child process of the follower tests (test/share/follower-engine*.test.ts): the store's writer. Writes to a
 * store and logs each op before it is issued (`I`) and once acknowledged (`A`), with synchronous writes to the
 * log (the page cache survives SIGKILL), in the format of test/engine/helpers/model.ts; compacts and rotates
 * the data key now and then. Logs `OPEN` once the store is open and `DONE` once every op is acknowledged.
 *
 * argv: dir log seed count [plan]
 *   count 0: write until killed. plan: a JSON file of steps to run instead of random ones:
 *   ["put", key, n] | ["del", key] | ["batch", [[key, n], ...]] | ["compact"] | ["rotate"].
 */
import fs from "node:fs";
import { Engine, type WriteOp } from "../../../src/runtime/storage/engine.js";
import { TEST_KEY, valueFor, writeLog } from "../../engine/helpers/model.js";

const [dir, logPath, seedArg, countArg, planFile] = process.argv.slice(2);
if (!dir || !logPath || !seedArg || !countArg) throw new Error("usage: follower-engine-writer dir log seed count [plan]");
let seed = Number(seedArg) >>> 0;
const rand = () => {
  seed = (seed * 1664525 + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const engine = await Engine.open({ dir, key: TEST_KEY, compaction: { minDeadBytes: 16 * 1024, maxJournalBytes: 64 * 1024 } });
const { say, issue } = writeLog(logPath, engine);
say("OPEN");

const put = (key: string, n: number): WriteOp => ({ op: "put", entity: "e", key, version: 1, value: valueFor(key, n), terms: [`t${n % 3}`] });
const del = (key: string): WriteOp => ({ op: "delete", entity: "e", key });

type Step = ["put", string, number] | ["del", string] | ["batch", [string, number][]] | ["compact"] | ["rotate"];

async function run(step: Step): Promise<void> {
  if (step[0] === "put") await issue([put(step[1], step[2])], "single");
  else if (step[0] === "del") await issue([del(step[1])], "single");
  else if (step[0] === "batch") await issue(step[1].map(([k, n]) => put(k, n)), "batch");
  else if (step[0] === "compact") {
    say("COMPACT");
    await engine.compact();
  } else {
    say("ROTATE");
    engine.rotateKey();
  }
}

if (planFile) {
  for (const step of JSON.parse(fs.readFileSync(planFile, "utf8")) as Step[]) await run(step);
} else {
  const count = Number(countArg);
  for (let n = 1; count === 0 || n <= count; ) {
    // A few writes in flight at once: they share commits (group commit), as an app's do.
    const ps: Promise<void>[] = [];
    for (let i = 1 + Math.floor(rand() * 6); i > 0; i--, n++) {
      const r = rand();
      if (r < 0.1) ps.push(issue([0, 1, 2].map((j) => put(`b${n}-${j}`, n)), "batch"));
      else if (r < 0.25) ps.push(issue([del(`k${Math.floor(rand() * 40)}`)], "single"));
      else ps.push(issue([put(`k${Math.floor(rand() * 40)}`, n)], "single"));
    }
    await Promise.all(ps);
    if (rand() < 0.03) await run(["compact"]);
    if (rand() < 0.02) await run(["rotate"]);
  }
}
await engine.close();
say("DONE");
