/** File-system helpers for the harness: where stores live, how big they are, what file system holds them. */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (bench/ is one level below it). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Stores live under `bench/.work/` (gitignored): on the same file system as the repository. */
export const WORK_ROOT = join(REPO_ROOT, "bench", ".work");

/** A fresh, empty directory for one run, removed by the caller (see `removeDir`). */
export function makeRunDir(): string {
  mkdirSync(WORK_ROOT, { recursive: true });
  return mkdtempSync(join(WORK_ROOT, "run-"));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

export interface DiskUsage {
  /** Bytes the file system allocated (`st_blocks × 512`, what `du` reports): includes preallocated space. */
  allocated: number;
  /** Sum of file lengths (`st_size`). */
  apparent: number;
  files: number;
}

/** Disk usage of every file below `dir`. */
export function diskUsage(dir: string): DiskUsage {
  const usage: DiskUsage = { allocated: 0, apparent: 0, files: 0 };
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) {
        const st = statSync(p);
        usage.allocated += st.blocks * 512;
        usage.apparent += st.size;
        usage.files++;
      }
    }
  };
  walk(dir);
  return usage;
}

/** The file-system type (`ext4`, `tmpfs`, …) of the mount holding `path`, from /proc/mounts. */
export function fileSystemType(path: string): string {
  try {
    const real = realpathSync(path);
    let best = { mount: "", type: "unknown" };
    for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
      const [, mount, type] = line.split(" ");
      if (!mount || !type) continue;
      const m = mount.replace(/\\040/g, " ");
      const inside = m === "/" || real === m || real.startsWith(m + "/");
      if (inside && m.length >= best.mount.length) best = { mount: m, type };
    }
    return best.type;
  } catch {
    return "unknown";
  }
}
