/**
 * The benchmark's peers (better-sqlite3, lmdb, classic-level, conf) live in bench/package.json, not in the
 * SDK's: neither the SDK, its tests nor the demo need them, and building them is most of a fresh install.
 * `npm run bench` installs them on first use, and again whenever bench/package-lock.json changed:
 * `npm ci` in bench/, then a stamp (the lock's sha256, Node's ABI) in bench/node_modules. Node and TypeScript resolve
 * a bench file's `import("better-sqlite3")` upward from the file, so bench/node_modules is found first.
 *
 * `npm run bench:install` runs only this step (CI runs it before type-checking bench/).
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** bench/, where the peers' package.json, lock and node_modules are. */
export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

const STAMP = join(BENCH_DIR, "node_modules", ".cellar-bench-lock.sha256");

/** The lock's sha256 and the Node ABI the peers were built for (better-sqlite3 is built per ABI). */
function lockHash(): string {
  const lock = createHash("sha256").update(readFileSync(join(BENCH_DIR, "package-lock.json"))).digest("hex");
  return `${lock} node-abi-${process.versions.modules} ${process.platform}-${process.arch}`;
}

/** True when bench/node_modules was installed from the current bench/package-lock.json. */
export function peersInstalled(): boolean {
  return existsSync(STAMP) && readFileSync(STAMP, "utf8").trim() === lockHash();
}

/** Installs the peers into bench/node_modules unless they are already installed from the current lock. */
export function ensurePeers(log: (line: string) => void = (l) => process.stderr.write(l + "\n")): void {
  if (peersInstalled()) return;
  log("cellar bench: installing the benchmark's peers into bench/node_modules (first use, or bench/package-lock.json or Node's ABI changed)…");
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  // stdout of the bench is its report: npm's own output goes to stderr.
  const r = spawnSync(npm, ["ci", "--no-audit", "--no-fund"], { cwd: BENCH_DIR, stdio: ["ignore", 2, "inherit"], shell: process.platform === "win32" });
  if (r.status !== 0) throw new Error(`\`npm ci\` in bench/ failed (${r.error?.message ?? `exit ${r.status}`}); the peers cannot run`);
  writeFileSync(STAMP, lockHash() + "\n");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) ensurePeers();
