/** Shared setup of the backup tests: a temp root, keys, the example entities and a task factory. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Priority, TaskStatus } from "../../src/generated/examples/tasks/v1/tasks_pb.js";

export const KEY = new Uint8Array(32).fill(7);
export const OTHER_KEY = new Uint8Array(32).fill(9);
/** The cheapest Argon2id libsodium allows: the tests check the wrapping, not the cost. */
export const CHEAP = { opsLimit: 1, memLimit: 8192 };

export function tempRoot(prefix: string): { root: string; cleanup: () => void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { root, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

export const task = (i: number, note = "") => ({
  id: `task-${String(i).padStart(5, "0")}`,
  title: `task ${i}${note}`,
  status: i % 3 === 0 ? TaskStatus.DONE : TaskStatus.TODO,
  priority: Priority.HIGH,
  createdAt: timestampFromDate(new Date(Date.UTC(2026, 0, 1) + i * 1000)),
  tags: i % 2 ? ["work"] : ["home"],
  notes: "x".repeat(i % 50),
  projectId: "",
  estimateMinutes: i,
});

/** Every file of a directory tree with its bytes, for "nothing changed" checks. */
export function treeBytes(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    out.set(path.relative(dir, p), fs.readFileSync(p).toString("base64"));
  }
  return out;
}

/** A record value as the typed layer writes it (envelope byte 0, then a protobuf string field 1): verify decodes it. */
export function val(s: string): Uint8Array {
  const b = Buffer.from(s);
  const len: number[] = [];
  for (let n = b.length; ; n >>>= 7) {
    if (n < 0x80) {
      len.push(n);
      break;
    }
    len.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([0, 0x0a, ...len]), b]);
}

/** The string {@link val} wrapped (lengths below 16 KiB). */
export const text = (v: Uint8Array) => Buffer.from(v.subarray(v[2]! < 0x80 ? 3 : 4)).toString();
