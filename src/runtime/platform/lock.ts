/**
 * One writer per store directory: an exclusive kernel lock on byte {@link LOCK_BYTE} of the store's `LOCK`
 * file ({@link FileIO.tryLock}: an OFD lock on Linux, `flock` on macOS, `LockFileEx` on Windows), taken on
 * the directory's real path (symlinks resolved). The OS releases it when its holder closes the file or dies,
 * so a crash never leaves a store locked, and there is no staleness check to race. `LOCK` is never removed:
 * unlinking a lock file that another process has just opened would let two in. Its content (the holder's
 * pid, host name and start time) is information for the `StoreLockedError` message only; the lock alone
 * decides. A directory already open in this process is refused before the file is even opened.
 * See docs/FORMAT.md, "`LOCK`".
 */
import os from "node:os";
import { fromUtf8, utf8 } from "../format/bytes.js";
import { isCellarError, type LockHolder, StoreLockedError } from "../errors.js";
import { StorePaths } from "../format/filenames.js";
import type { FileIO } from "./io.js";

/**
 * The byte of `LOCK` that is locked: far beyond the holder information, so that on Windows (where a locked
 * range cannot be read by others) the information stays readable. SQLite's lock bytes sit at 2^30 too.
 */
export const LOCK_BYTE = 2 ** 30;
/** The most of `LOCK` read for the holder information (it is ~100 bytes). */
const HOLDER_MAX = 1024;

/** Stores open in this process, by real path, with the information their `LOCK` holds. */
const openInProcess = new Map<string, LockHolder>();

/** The holder a `LOCK` file names, or null for an empty, torn or foreign one. */
function parseHolder(bytes: Uint8Array): LockHolder | null {
  try {
    const h = JSON.parse(fromUtf8(bytes)) as Partial<LockHolder> | null;
    if (h && Number.isSafeInteger(h.pid) && typeof h.hostname === "string" && h.hostname.length <= 255 && typeof h.since === "string" && h.since.length <= 64) {
      return { pid: h.pid!, hostname: h.hostname, since: h.since };
    }
  } catch {
    // empty, torn or not ours: no holder known
  }
  return null;
}

function readHolder(io: FileIO, fd: number): LockHolder | null {
  try {
    const buf = new Uint8Array(HOLDER_MAX);
    return parseHolder(buf.subarray(0, io.read(fd, buf, 0)));
  } catch (e) {
    if (isCellarError(e)) return null; // information only
    throw e;
  }
}

type Attempt = { lock: StoreLock; holder?: undefined } | { lock: null; holder: LockHolder | null };

export class StoreLock {
  private released = false;

  private constructor(
    private readonly io: FileIO,
    private readonly fd: number,
    /** The store directory's real path. */
    readonly realDir: string,
    /** What this lock wrote into `LOCK`. */
    readonly holder: LockHolder,
  ) {}

  /**
   * Take the lock of the store in `dir` (which must exist), or return null when another open of it holds
   * the lock, in this process or another. Throws `E_IO` / `E_LOCK_UNAVAILABLE`, never waits.
   */
  static tryAcquire(io: FileIO, dir: string): StoreLock | null {
    return StoreLock.attempt(io, dir).lock;
  }

  /** {@link tryAcquire}, throwing `StoreLockedError` (`E_LOCKED`, naming the holder if `LOCK` does) when held. */
  static acquire(io: FileIO, dir: string): StoreLock {
    const got = StoreLock.attempt(io, dir);
    if (got.lock) return got.lock;
    throw new StoreLockedError(dir, got.holder);
  }

  private static attempt(io: FileIO, dir: string): Attempt {
    const real = io.realpath(dir);
    const mine = openInProcess.get(real);
    if (mine) return { lock: null, holder: mine };
    const fd = io.open(new StorePaths(real).lock, "c+");
    let lock: StoreLock | null = null;
    try {
      if (!io.tryLock(fd, LOCK_BYTE)) return { lock: null, holder: readHolder(io, fd) };
      const me: LockHolder = { pid: process.pid, hostname: os.hostname(), since: new Date().toISOString() };
      try {
        const bytes = utf8(JSON.stringify(me));
        io.write(fd, bytes, 0);
        io.truncate(fd, bytes.length);
      } catch (e) {
        // A full disk must not keep a store from opening: the lock excludes others, the text only names us.
        if (!isCellarError(e, "E_NOSPACE")) throw e;
        io.truncate(fd, 0);
      }
      lock = new StoreLock(io, fd, real, me);
      openInProcess.set(real, me);
      return { lock };
    } finally {
      if (!lock) io.close(fd); // closing drops the kernel lock if it was taken
    }
  }

  /** Release the lock (idempotent). The `LOCK` file stays, emptied: removing it could let two writers in. */
  release(): void {
    if (this.released) return;
    this.released = true;
    openInProcess.delete(this.realDir);
    try {
      this.io.truncate(this.fd, 0);
    } catch {
      // information only; closing releases the lock regardless
    }
    this.io.close(this.fd);
  }
}
