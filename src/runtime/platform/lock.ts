/**
 * One writer per store directory. `LOCK` is created with O_EXCL and holds the
 * owner's pid, host name and start time. A lock whose process no longer runs
 * on this host is stale and taken over. A directory open in this process is
 * refused before the file is even looked at.
 */
import os from "node:os";
import path from "node:path";
import { isCellarError, StoreLockedError } from "../errors.js";
import type { FileIO } from "./io.js";
import { fromUtf8, utf8 } from "../format/bytes.js";

const openInProcess = new Set<string>();

interface Holder {
  pid: number;
  hostname: string;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readHolder(io: FileIO, file: string): Holder | null {
  try {
    const h = JSON.parse(fromUtf8(io.readFile(file))) as Partial<Holder>;
    if (typeof h.pid === "number" && typeof h.hostname === "string") {
      return { pid: h.pid, hostname: h.hostname, since: String(h.since ?? "unknown") };
    }
  } catch {
    // empty or partial lock file (written while the disk was full, or torn): no holder known
  }
  return null;
}

export class StoreLock {
  private constructor(
    private readonly io: FileIO,
    private readonly file: string,
    private readonly key: string,
  ) {}

  static acquire(io: FileIO, dir: string, lockFile: string): StoreLock {
    const key = path.resolve(dir);
    const me: Holder = { pid: process.pid, hostname: os.hostname(), since: new Date().toISOString() };
    if (openInProcess.has(key)) throw new StoreLockedError(dir, me);
    for (let attempt = 0; attempt < 2; attempt++) {
      let fd: number;
      try {
        fd = io.open(lockFile, "wx+");
      } catch (e) {
        if (!isCellarError(e, "E_IO") || (e as { errno?: string }).errno !== "EEXIST") throw e;
        const holder = readHolder(io, lockFile);
        if (holder && (holder.hostname !== me.hostname || alive(holder.pid)) && holder.pid !== process.pid) {
          throw new StoreLockedError(dir, holder);
        }
        if (!holder && attempt === 0) {
          // An unreadable lock is stale only if it is not being written right now; give its writer a moment.
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
          const again = readHolder(io, lockFile);
          if (again && again.pid !== process.pid && (again.hostname !== me.hostname || alive(again.pid))) {
            throw new StoreLockedError(dir, again);
          }
        }
        io.unlink(lockFile); // stale: its process is gone
        continue;
      }
      try {
        io.write(fd, utf8(JSON.stringify(me)), 0);
        io.fsync(fd);
      } catch (e) {
        // A full disk must not keep a store from opening: an empty lock file still excludes others.
        if (!isCellarError(e, "E_NOSPACE")) {
          io.close(fd);
          io.unlink(lockFile);
          throw e;
        }
      }
      io.close(fd);
      openInProcess.add(key);
      return new StoreLock(io, lockFile, key);
    }
    throw new StoreLockedError(dir, readHolder(io, lockFile) ?? { pid: 0, hostname: "unknown", since: "unknown" });
  }

  release(): void {
    openInProcess.delete(this.key);
    this.io.unlink(this.file);
  }
}
