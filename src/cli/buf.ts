/**
 * Runs the buf CLI that ships with Cellar (never a global install) with a PATH on which buf finds
 * `protoc-gen-es` and `protoc-gen-cellar`.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { delimiter, isAbsolute, join, relative } from "node:path";
import { bufLauncher, protocGenEsBinDir } from "./paths.js";

export interface BufResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runBuf(root: string, args: readonly string[]): BufResult {
  const path = [join(root, "node_modules", ".bin"), protocGenEsBinDir(), process.env.PATH ?? ""].join(delimiter);
  const r = spawnSync(process.execPath, [bufLauncher(), ...args], {
    cwd: root,
    env: { ...process.env, PATH: path },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** Module directories of a buf.yaml v2 (`modules: - path: …`), or `["."]`. */
export function moduleDirs(root: string): string[] {
  const file = join(root, "buf.yaml");
  if (!existsSync(file)) return ["."];
  const dirs = [...readFileSync(file, "utf8").matchAll(/^\s*-\s*path:\s*["']?([^"'\s#]+)/gm)].map((m) => m[1] ?? ".");
  return dirs.length > 0 ? dirs : ["."];
}

/** Output directories (`out:`) of a buf.gen.yaml, in order, without duplicates. */
export function outDirs(template: string): string[] {
  const out: string[] = [];
  for (const m of readFileSync(template, "utf8").matchAll(/^\s*(?:-\s*)?out:\s*["']?([^"'\s#]+)/gm)) {
    const dir = (m[1] ?? "").replace(/\/+$/, "");
    if (dir !== "" && !out.includes(dir)) out.push(dir);
  }
  return out;
}

/**
 * Rewrites `file.proto:line:col` positions from module-relative paths (what plugins see) to paths
 * relative to the app root (what an editor opens), e.g. `tasks/v1/tasks.proto` → `schemas/tasks/v1/tasks.proto`.
 */
export function rewritePositions(root: string, text: string): string {
  const modules = moduleDirs(root);
  return text.replace(/(^|[\s:(])([\w./-]+\.proto):(\d+):(\d+)/g, (all, pre: string, file: string, line: string, col: string) => {
    if (isAbsolute(file) || existsSync(join(root, file))) return all;
    for (const dir of modules) {
      if (existsSync(join(root, dir, file))) return `${pre}${relative(root, join(root, dir, file))}:${line}:${col}`;
    }
    return all;
  });
}

/**
 * What buf.gen.yaml says about the lock: the `lock=` option (if any), and the 1-based line of the
 * protoc-gen-cellar plugin entry (undefined when the template has none, or does not exist).
 */
export function templateLock(root: string, template = "buf.gen.yaml"): { lock: string | undefined; pluginLine: number | undefined } {
  const file = join(root, template);
  if (!existsSync(file)) return { lock: undefined, pluginLine: undefined };
  const text = readFileSync(file, "utf8");
  const m = /(?:^|[\s,[\-])lock=([^\s,\]"']+)/m.exec(text);
  const i = text.split("\n").findIndex((l) => /^\s*-?\s*local:.*protoc-gen-cellar/.test(l));
  return { lock: m?.[1]?.replace(/\/+$/, ""), pluginLine: i < 0 ? undefined : i + 1 };
}

/**
 * The value of option `key` (`key=value` in `opt`) of the plugin entry of a buf.gen.yaml whose `local`
 * names `plugin`; undefined when the template, the entry or the option is missing.
 */
export function templatePluginOption(template: string, plugin: string, key: string): string | undefined {
  if (!existsSync(template)) return undefined;
  const lines = readFileSync(template, "utf8").split("\n");
  const start = lines.findIndex((l) => /^\s*-?\s*local:/.test(l) && l.includes(plugin));
  if (start < 0) return undefined;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (/^\s*-\s*(local|remote|protoc_builtin):/.test(line) || /^\S/.test(line)) break;
    const m = new RegExp(`(?:^|[\\s,[\\-"'])${key}=([^\\s,\\]"'#]+)`).exec(line.replace(/#.*$/, ""));
    if (m) return m[1];
  }
  return undefined;
}
