/**
 * Re-run one mutation in this process and print its result: `npx tsx test/fuzz/repro.ts --seed S --id N`
 * (the seed and id a fuzz run prints for a finding). Keeps the mutated store with `--keep`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildBase, exercise, MODES, mutate } from "./store-fuzz.js";

const arg = (n: string) => Number(process.argv[process.argv.indexOf(`--${n}`) + 1]);
const seed = arg("seed");
const id = arg("id");
const mode = MODES[id % MODES.length]!;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-repro-"));
const dir = path.join(work, "store");
await buildBase(mode, dir);
const m = mutate(dir, mode, seed, id);
const r = await exercise(dir, m);
console.log(JSON.stringify(r, null, 2));
if (process.argv.includes("--keep")) console.log(`store kept in ${dir}`);
else fs.rmSync(work, { recursive: true, force: true });
