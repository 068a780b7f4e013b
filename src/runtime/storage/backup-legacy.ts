/**
 * Stores made before backup files kept their pre-migration backups as directories inside the store,
 * `<store>/backups/pre-migration-<UTC>/` (lost with the store). At open they are moved to the backup
 * directory, one at a time in the background: each is opened as a store under this store's master key and
 * packed into a backup file (`Engine.packCopy`, dated by its name), the file is verified (verifyBackup:
 * every checksum, tag and record), and only then is the directory renamed to `.<name>.moved` and removed.
 *
 * Crash windows: before the file's rename, the directory is whole and the next open starts over (the file's
 * name follows from the directory's, so the leftover temp file is replaced); after it, the next open packs
 * and verifies the directory again over the same name; after the directory's rename, the file is verified
 * and the next open only removes the `.moved` leftover. The directory or a verified file, never neither.
 */
import path from "node:path";
import fs from "node:fs";
import { type CellarError, isCellarError } from "../errors.js";
import { BACKUPS_DIR } from "../format/filenames.js";
import type { KeyProvider } from "../crypto/keys.js";
import type { Engine } from "./engine.js";
import { verifyBackup } from "./restore.js";
import { removeTree } from "./restore-swap.js";

/** Names of legacy pre-migration directories under `<store>/backups/`. */
export const LEGACY_PREFIX = "pre-migration-";
const MOVED_SUFFIX = ".moved";

/** The legacy pre-migration directories of the store in `storeDir` (absolute paths, oldest first). */
export function legacyCopies(engine: Engine): string[] {
  const root = path.join(engine.dir, BACKUPS_DIR);
  if (!engine.io.exists(root)) return [];
  return engine.io
    .readdir(root)
    .filter((n) => n.startsWith(LEGACY_PREFIX))
    .sort()
    .map((n) => path.join(root, n))
    .filter((d) => isDir(d));
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** When a legacy copy was taken, from its name (`pre-migration-20260101T120000Z`, maybe `-2`), else its mtime. */
export function legacyTime(dir: string): number {
  const m = /^pre-migration-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z(?:-(\d+))?$/.exec(path.basename(dir));
  if (m) {
    const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) + Number(m[7] ?? 0);
    if (Number.isFinite(t)) return t;
  }
  try {
    return fs.statSync(dir).mtimeMs;
  } catch {
    return Date.now();
  }
}

export interface MoveLegacyOptions {
  /** The backup directory (created if missing). */
  backupDir: string;
  /** The backup file name for a legacy directory name. */
  fileName: (legacyName: string) => string;
  label: string;
  /** The store's master key, to verify each file (undefined for a plaintext store). */
  key: Uint8Array | KeyProvider | undefined;
  /** Stop before the next directory (the store is closing). */
  stopped: () => boolean;
  /** A directory that could not be moved (it stays; the next open tries again). */
  problem: (e: CellarError) => void;
}

/** Move every legacy pre-migration directory (see the file comment); resolves with the files written. */
export async function moveLegacyCopies(engine: Engine, o: MoveLegacyOptions): Promise<string[]> {
  const io = engine.io;
  const root = path.join(engine.dir, BACKUPS_DIR);
  if (!io.exists(root)) return [];
  // Leftovers of a move cut short after the directory's rename: their files were verified.
  for (const n of io.readdir(root)) if (n.startsWith(`.${LEGACY_PREFIX}`) && n.endsWith(MOVED_SUFFIX)) removeTree(path.join(root, n));
  const moved: string[] = [];
  for (const dir of legacyCopies(engine)) {
    if (o.stopped()) break;
    const name = path.basename(dir);
    const to = path.join(o.backupDir, o.fileName(name));
    try {
      await engine.packCopy(dir, to, o.label, legacyTime(dir));
      try {
        await verifyBackup(to, { ...(o.key !== undefined ? { key: o.key } : {}), io });
      } catch (e) {
        io.unlink(to); // a file that does not verify is no backup: the directory stays
        throw e;
      }
      const aside = path.join(root, `.${name}${MOVED_SUFFIX}`);
      io.rename(dir, aside);
      io.syncDir(root);
      removeTree(aside);
      moved.push(to);
    } catch (e) {
      if (!isCellarError(e)) throw e;
      o.problem(e);
    }
  }
  try {
    if (io.readdir(root).length === 0) fs.rmdirSync(root);
  } catch {
    // not empty after all, or gone
  }
  return moved;
}
