/**
 * How the harness talks to bench/child.ts: the request it passes as one JSON argument, and the one
 * `@@RESULT <json>` line the child prints back.
 */
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { REPO_ROOT } from "./fsutil.js";
import type { Sample } from "./metrics.js";

export interface ChildRequest {
  mode: "cold" | "warm";
  system: string;
  dir: string;
  /** Records in the store (keys 0..records-1 of the benchmark stream). */
  records: number;
  gets: number;
  budgetMs: number;
}

export const RESULT_PREFIX = "@@RESULT ";

const CHILD = join(dirname(fileURLToPath(import.meta.url)), "child.ts");
/** The tsx loader, resolved from here so children find it whatever their working directory. */
const TSX = import.meta.resolve("tsx");
const CHILD_TIMEOUT_MS = 15 * 60_000;

/** Run one measurement in a fresh Node process and return its numbers. */
export function runChild(req: ChildRequest): Promise<Sample> {
  return runScript<Sample>(CHILD, req, req.mode);
}

/**
 * Run `script` (a bench/ module) in a fresh `node --expose-gc` process with `arg` as its one JSON argument,
 * and return what it printed after RESULT_PREFIX. `what` names the measurement in errors.
 */
export function runScript<T>(script: string, arg: unknown, what: string, timeoutMs = CHILD_TIMEOUT_MS): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", "--import", TSX, script, JSON.stringify(arg)], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split("\n").find((l) => l.startsWith(RESULT_PREFIX));
      if (timedOut) reject(new Error(`child (${what}) killed after ${Math.round(timeoutMs / 60_000)} min without a result`));
      else if (code === 0 && line) resolvePromise(JSON.parse(line.slice(RESULT_PREFIX.length)) as T);
      else reject(new Error(`child (${what}) exited with ${signal ?? code}: ${stderr.trim().split("\n").slice(0, 6).join(" / ") || "no result"}`));
    });
  });
}

/**
 * A measuring child's answer: `work`'s sample on stdout after {@link RESULT_PREFIX} (what `runChild` and
 * `runScript` read), or its error on stderr with exit code 1.
 */
export async function reply(work: () => Promise<unknown>): Promise<void> {
  try {
    const sample = await work();
    process.stdout.write(`\n${RESULT_PREFIX}${JSON.stringify(sample)}\n`);
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  }
}
