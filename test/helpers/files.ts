import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

/** sha256 of every regular file directly in `dir`, by name, except the names in `except`. */
export function snapshot(dir: string, except: readonly string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of fs.readdirSync(dir)) {
    const p = path.join(dir, n);
    if (!except.includes(n) && fs.statSync(p).isFile()) out.set(n, createHash("sha256").update(fs.readFileSync(p)).digest("hex"));
  }
  return out;
}

/** {@link snapshot} of a store directory without `LOCK`, which every open rewrites. */
export function storeSnapshot(dir: string): Map<string, string> {
  return snapshot(dir, ["LOCK"]);
}
