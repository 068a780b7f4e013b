/**
 * One batch of store mutations in a child process (run by fuzz-runner.ts). Writes `S <id>` before each
 * mutation (so the parent's watchdog can name a mutation that hangs) and `R <json>` after it.
 * Arguments: one JSON object { seed, from, to, base, work }.
 */
import fs from "node:fs";
import path from "node:path";
import { exercise, type Finding, MODES, mutate, type Result } from "./store-fuzz.js";

const { seed, from, to, base, work } = JSON.parse(process.argv[2]!) as { seed: number; from: number; to: number; base: string; work: string };

/** Errors that escaped every await (a background task's rejection, a listener's throw). */
const escaped: Finding[] = [];
const note = (e: unknown) => {
  const err = e as Error;
  escaped.push({ outcome: "untyped", op: "uncaught", what: `${err?.name}: ${String(err?.message ?? e).slice(0, 160)}`, where: (err?.stack ?? "").split("\n").slice(1, 3).join(" < ") });
};
process.on("uncaughtException", note);
process.on("unhandledRejection", note);

const line = (s: string) => fs.writeSync(1, s + "\n");

for (let id = from; id < to; id++) {
  line(`S ${id}`);
  const mode = MODES[id % MODES.length]!;
  const dir = path.join(work, `m${id}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(path.join(base, mode), dir, { recursive: true });
  const mutation = mutate(dir, mode, seed, id);
  const result: Result = await exercise(dir, mutation);
  await new Promise((r) => setImmediate(r));
  if (escaped.length) {
    result.findings.push(...escaped.splice(0));
    result.outcome = "untyped";
  }
  fs.rmSync(dir, { recursive: true, force: true });
  line(`R ${JSON.stringify(result)}`);
}
