/**
 * The packed SDK as a user gets it, for tests that install it into a fresh app: the tarball (packed once
 * per content of the package's inputs and shared by every test file that asks, across runs too), a fresh
 * app directory, `npm install` of the tarball, and Node release binaries from the npm registry's `node`
 * package for running under another Node line than the one running the tests.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface ShOptions {
  /** Run under this `node` binary: its directory goes first on PATH (so `#!/usr/bin/env node` and install scripts use it too). */
  node?: string;
  env?: Record<string, string>;
}

/** Runs `cmd args` in `cwd`; throws with the whole output unless it exits 0; returns stdout + stderr. */
export function sh(cwd: string, cmd: string, args: readonly string[], opts: ShOptions = {}): string {
  const env: Record<string, string | undefined> = { ...process.env, npm_config_loglevel: "error", ...opts.env };
  if (opts.node !== undefined) env.PATH = `${dirname(opts.node)}${delimiter}${env.PATH ?? ""}`;
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? r.error?.message}) in ${cwd}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout + r.stderr;
}

/** What `npm pack` reads: the published files, their build inputs and the dependency versions. */
const PACK_INPUTS = ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "README.md", "src", "codegen", "schemas/cellar", "docs/SCHEMAS.md", "docs/GETTING-STARTED.md"];

function inputsHash(): string {
  const h = createHash("sha256");
  const add = (p: string): void => {
    const abs = join(repoRoot, p);
    if (!existsSync(abs)) return;
    if (statSync(abs).isDirectory()) {
      for (const name of readdirSync(abs).sort()) add(join(p, name));
    } else {
      h.update(`${p}\0`).update(readFileSync(abs)).update("\0");
    }
  };
  PACK_INPUTS.forEach(add);
  return h.digest("hex").slice(0, 20);
}

const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * The SDK's tarball (`npm pack`, whose prepack builds dist/), packed once for the current content of
 * {@link PACK_INPUTS}: test files running at the same time wait for one pack (a lock directory) instead of
 * building dist/ over each other, and later runs of unchanged code reuse it. Lives in the OS temp dir.
 */
export function packedSdk(): string {
  const cache = join(tmpdir(), "cellar-pack-cache");
  mkdirSync(cache, { recursive: true });
  const key = inputsHash();
  const done = join(cache, key); // holds the tarball under npm's name once packed (renamed into place whole)
  const lock = join(cache, `${key}.lock`);
  for (const deadline = Date.now() + 10 * 60_000; !existsSync(done); ) {
    try {
      mkdirSync(lock);
    } catch {
      // Someone else packs: wait for the tarball, or take over a lock left by a killed run.
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 5 * 60_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      sleep(250);
      continue;
    }
    try {
      if (existsSync(done)) break;
      const staging = mkdtempSync(join(cache, `${key}-`));
      try {
        sh(repoRoot, "npm", ["pack", "--pack-destination", staging]);
        renameSync(staging, done);
      } finally {
        rmSync(staging, { recursive: true, force: true });
      }
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
  // Drop the tarballs of other inputs after a day (the cache keeps the recent ones only).
  for (const f of readdirSync(cache)) {
    const p = join(cache, f);
    if (f !== key && Date.now() - statSync(p).mtimeMs > 86_400_000) rmSync(p, { recursive: true, force: true });
  }
  const packed = readdirSync(done).filter((f) => f.endsWith(".tgz"));
  if (packed.length !== 1) throw new Error(`${done} holds ${packed.join(", ") || "no tarball"}`);
  return join(done, packed[0] ?? "");
}

/** A fresh app directory `dir` with a package.json as a new ESM app writes it (plus `fields`). */
export function freshApp(dir: string, fields: Record<string, unknown> = {}): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "app", private: true, type: "module", ...fields }, null, 2) + "\n");
  return dir;
}

/** npm's own CLI script, to run npm under another Node binary (the `node` package ships no npm). */
export function npmCli(): string {
  const fromEnv = process.env.npm_execpath;
  if (fromEnv?.endsWith("npm-cli.js")) return fromEnv;
  const prefix = sh(repoRoot, "npm", ["prefix", "-g"]).trim();
  const candidates = [join(prefix, "lib", "node_modules", "npm", "bin", "npm-cli.js"), join(prefix, "node_modules", "npm", "bin", "npm-cli.js")];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`npm-cli.js not found under ${prefix}`);
  return found;
}

/** `npm install <tarball>` in `app` (from the warm cache where it can), under `node` if given; returns npm's output. */
export function installTarball(app: string, tarball: string, node?: string): string {
  const args = ["install", tarball, "--no-audit", "--no-fund", "--prefer-offline", "--loglevel", "warn"];
  return node === undefined ? sh(app, "npm", args) : sh(app, node, [npmCli(), ...args], { node });
}

/**
 * The path of a real Node binary of release line `major` (22, 24…): the npm registry's `node` package,
 * fetched once by `npx` into npm's cache (~15 s the first time, ~1 s after).
 */
export function nodeBinary(major: number): string {
  const path = sh(tmpdir(), "npx", ["-y", "-p", `node@${major}`, "node", "-p", "process.execPath"]).trim().split("\n").pop() ?? "";
  if (!existsSync(path)) throw new Error(`npx -p node@${major} gave no binary (${path})`);
  return path;
}

/** The packed SDK ({@link packedSdk}) copied into `dest` under npm's name, as `npm pack` in a checkout leaves it. */
export function packTarball(dest: string): string {
  const tgz = packedSdk();
  mkdirSync(dest, { recursive: true });
  const to = join(dest, basename(tgz));
  copyFileSync(tgz, to);
  return to;
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
