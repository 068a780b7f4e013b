/**
 * Long crash soak: `npm run soak:crash -- [rounds=2000]`. The same round as the
 * test suite's 20-round loop, for thousands of rounds on one store directory.
 * Exits 1 on the first violation, printing the round, seed and what was wrong.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { crashRound } from "./helpers/crash-round.js";

const rounds = Number(process.argv[2] ?? 2000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-soak-"));
const dir = path.join(tmp, "store");
let initial = new Map<string, string | null>();
let seed = Number(process.env.SOAK_SEED ?? Date.now() % 1_000_000);
const startSeed = seed;
let acked = 0;
let tails = 0;
const started = Date.now();
for (let round = 0; round < rounds; round++) {
  seed = (seed * 1103515245 + 12345) >>> 0;
  const r = await crashRound(dir, tmp, round, seed, 5 + (seed % 250), initial);
  if (r.signal !== "SIGKILL" || r.damaged || r.problems.length) {
    console.error(`round ${round} (start seed ${startSeed}, seed ${seed}) failed:`, r.signal, r.stderr, r.damaged, r.problems.slice(0, 10));
    console.error(`store kept at ${dir}`);
    process.exit(1);
  }
  acked += r.acked;
  if (r.tornTail) tails++;
  initial = new Map(r.stored);
  fs.rmSync(path.join(tmp, `round-${round}.log`));
  if ((round + 1) % 50 === 0) {
    console.log(`${round + 1}/${rounds} rounds, ${acked} acknowledged writes checked, ${tails} torn tails, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
}
console.log(`soak passed: ${rounds} rounds, ${acked} acknowledged writes checked (start seed ${startSeed})`);
fs.rmSync(tmp, { recursive: true, force: true });
