/**
 * Runs commands one after the other in this process's session (for test/cli/keychain.test.ts, which starts
 * it under `dbus-run-session` with an unlocked gnome-keyring, so every step sees the same Secret Service) and
 * prints their exits as one JSON line on stdout. Usage: CELLAR_STEPS='[{"argv":["node",...],"env":{...}},...]'
 * node --import tsx keychain-steps.ts. `node` as argv[0] is this Node.
 */
import { spawnSync } from "node:child_process";

export interface Step {
  argv: string[];
  env?: Record<string, string>;
}
export interface StepExit {
  status: number | null;
  stdout: string;
  stderr: string;
}

const steps = JSON.parse(process.env.CELLAR_STEPS ?? "[]") as Step[];
const exits: StepExit[] = [];
for (const step of steps) {
  const [cmd, ...args] = step.argv;
  const r = spawnSync(cmd === "node" ? process.execPath : cmd!, args, { env: { ...process.env, CELLAR_STEPS: "", ...step.env }, encoding: "utf8", timeout: 60_000 });
  exits.push({ status: r.status, stdout: r.stdout, stderr: r.stderr + (r.error ? `\n${String(r.error)}` : "") });
}
process.stdout.write(JSON.stringify(exits) + "\n");
