/** Shared setup of the automatic-backup tests: a notes store, files of a backup directory, re-dating a backup file. */
import fs from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { backupHeaderLength, decodeBackupHeader, encodeBackupHeader } from "../../../src/runtime/format/backup-file.js";
import { openStore, type StoreOptions } from "../../../src/runtime/typed/store.js";
import { notesAt } from "../../store/helpers/notes-versions.js";

export const KEY = new Uint8Array(32).fill(7);

export function open(dir: string, extra: Partial<StoreOptions> = {}) {
  return openStore({ notes: notesAt(1) }, { dir, key: KEY, cleanup: false, ...extra });
}

export async function fill(dir: string, n: number, tag: string): Promise<void> {
  const store = await open(dir);
  for (let i = 0; i < n; i++) await store.notes.put({ id: `n${i}`, text: `${tag} ${i}`, tagsCsv: "a", secret: `s${i}` });
  await store.close();
}

/** The names in `dir` (none when missing), sorted. */
export function names(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

/** Poll until `f()` is truthy (or fail after `ms`). */
export async function until<T>(f: () => T | Promise<T>, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Rewrite a backup file's created-at (header re-encoded, whole-file checksum recomputed), as if taken at `at`. */
export function redate(file: string, at: Date): void {
  const b = fs.readFileSync(file);
  const hl = backupHeaderLength(b.subarray(0, 16));
  const h = decodeBackupHeader(b.subarray(0, hl));
  const header = encodeBackupHeader({ ...h, createdAt: at.getTime() });
  const body = Buffer.concat([header, b.subarray(hl, b.length - 4)]);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32LE(crc32(body), 0);
  fs.writeFileSync(file, Buffer.concat([body, trailer]));
}

/** Make a legacy `backups/pre-migration-<stamp>/` directory, as stores made before backup files have: a copy of the store's files. */
export function legacyDir(dir: string, stamp: string, from = dir): string {
  const target = path.join(dir, "backups", `pre-migration-${stamp}`);
  fs.mkdirSync(target, { recursive: true });
  for (const n of fs.readdirSync(from)) {
    if (n === "MANIFEST" || n === "KEYRING" || n.endsWith(".seg") || n.endsWith(".jnl") || /^journal-|^segment-/.test(n)) {
      fs.copyFileSync(path.join(from, n), path.join(target, n));
    }
  }
  return target;
}
