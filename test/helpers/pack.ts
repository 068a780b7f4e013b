// Packing the SDK as a user gets it, and running commands in the apps that install it: shared by
// test/pack.test.ts and test/adoption/guide.test.ts.
import { spawn, spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Runs `cmd args` in `cwd`; throws with both outputs unless it exits 0. Returns stdout + stderr. */
export function sh(cwd: string, cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, npm_config_loglevel: "error" } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}) in ${cwd}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout + r.stderr;
}

/**
 * `npm pack` of this checkout into `dest` (prepack builds dist/ first), never into the repo root,
 * where other checkouts' runs may pack at the same time. Returns the tarball's path.
 */
export function packTarball(dest: string): string {
  sh(repoRoot, "npm", ["pack", "--pack-destination", dest]);
  const tgz = readdirSync(dest).filter((f) => f.endsWith(".tgz"));
  if (tgz.length !== 1 || !/^cellar-\d+\.\d+\.\d+.*\.tgz$/.test(tgz[0] ?? "")) {
    throw new Error(`npm pack wrote ${JSON.stringify(tgz)} into ${dest}; expected one cellar-<version>.tgz`);
  }
  return join(dest, tgz[0] ?? "");
}

export interface RunResult {
  readonly status: number | null;
  /** stdout and stderr, interleaved as they came. */
  readonly output: string;
}

/**
 * Like {@link sh}, without blocking the event loop (apps replayed side by side) and without throwing.
 * `env` is the child's whole environment.
 */
export function run(cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (output += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (output += d));
    child.on("error", fail);
    child.on("close", (status) => done({ status, output }));
  });
}
