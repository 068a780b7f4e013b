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

/** Flip one byte (offset 60: inside its first block's frame) of the store's segment in `dir`: a damaged disk. */
export function damageSegment(dir: string): void {
  const seg = fs.readdirSync(dir).find((n) => n.endsWith(".seg"))!;
  const fd = fs.openSync(path.join(dir, seg), "r+");
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, 60);
  b[0]! ^= 0xff;
  fs.writeSync(fd, b, 0, 1, 60);
  fs.closeSync(fd);
}
