/** What the numbers were measured on, for the report header. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { join } from "node:path";
import { fileSystemType, REPO_ROOT } from "./fsutil.js";

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  kernel: string;
  node: string;
  /** File system of the directory the stores were written to. */
  fileSystem: string;
  benchDir: string;
}

function osName(): string {
  try {
    const line = readFileSync("/etc/os-release", "utf8")
      .split("\n")
      .find((l) => l.startsWith("PRETTY_NAME="));
    return line ? line.slice("PRETTY_NAME=".length).replace(/^"|"$/g, "") : process.platform;
  } catch {
    return process.platform;
  }
}

export function machineInfo(benchDir: string): MachineInfo {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? "unknown",
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: osName(),
    kernel: release(),
    node: process.version,
    fileSystem: fileSystemType(benchDir),
    benchDir,
  };
}

/**
 * Which code was measured: `CELLAR_BENCH_REVISION` if set (a run from an exported snapshot), else the
 * repository's HEAD, marked when src/ has uncommitted changes (other work in the same checkout).
 */
export function codeRevision(): string {
  const fromEnv = process.env.CELLAR_BENCH_REVISION;
  if (fromEnv) return fromEnv;
  try {
    const git = (...args: string[]): string => execFileSync("git", ["-C", REPO_ROOT, ...args], { encoding: "utf8" }).trim();
    const head = git("rev-parse", "--short", "HEAD");
    return git("status", "--porcelain", "--", "src") === "" ? head : `${head} + uncommitted changes in src/`;
  } catch {
    return "unknown";
  }
}

/** The installed version of a peer (in bench/node_modules, see peers.ts), or undefined if it is not installed. */
export function packageVersion(name: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "bench", "node_modules", name, "package.json"), "utf8")) as {
      version?: string;
    };
    return pkg.version;
  } catch {
    return undefined;
  }
}
