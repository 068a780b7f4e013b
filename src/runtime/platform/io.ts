/**
 * The I/O seam: every byte Cellar reads or writes goes through a `FileIO`.
 * The default, {@link nodeFileIO}, uses Node's synchronous fs calls (measured
 * faster than the thread-pool calls for one-fsync-per-commit workloads; see
 * docs/BENCHMARKS.md). Tests wrap it to inject faults (`ENOSPC`, dropped
 * unsynced bytes) and to crash the process inside named windows
 * ({@link Failpoint}).
 *
 * Every method throws `IoError` / `NoSpaceError`, never a raw Node error.
 */
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { IoError, LockUnavailableError, NoSpaceError } from "../errors.js";

/** Mode of every file Cellar creates (owner read-write), whatever the process umask. See docs/SECURITY.md. */
export const FILE_MODE = 0o600;
/** Mode of every directory Cellar creates (owner only), whatever the process umask. */
export const DIR_MODE = 0o700;

export interface FileIO {
  /**
   * Open for reading (`r`), read-write (`r+`), create-exclusive read-write (`wx+`) or read-write, created
   * if missing and never truncated (`c+`). Returns a descriptor. A file created here has mode
   * {@link FILE_MODE} (0600), independent of the umask.
   */
  open(file: string, flags: "r" | "r+" | "wx+" | "c+"): number;
  close(fd: number): void;
  /** Read up to `length` bytes at `position`; loops over short reads; returns the bytes read (fewer only at EOF). */
  read(fd: number, into: Uint8Array, position: number): number;
  /** Write all of `data` at `position`; loops over short writes. */
  write(fd: number, data: Uint8Array, position: number): void;
  datasync(fd: number): void;
  fsync(fd: number): void;
  /**
   * `fsync` on the libuv thread pool: the caller goes on meanwhile (a restore checks the files it unpacked
   * while they reach the disk). Optional: without it callers use `fsync`.
   */
  fsyncAsync?(fd: number): Promise<void>;
  /**
   * `datasync` on the libuv thread pool: the event loop turns meanwhile (a shared store's writer takes its
   * followers' writes during a commit's fdatasync). Optional: without it callers use `datasync`.
   */
  datasyncAsync?(fd: number): Promise<void>;
  /**
   * `write` on the libuv thread pool (the journal's zero fill ahead of its tail). Optional: without it the
   * journal is extended on the commit's path.
   */
  writeAsync?(fd: number, data: Uint8Array, position: number): Promise<void>;
  size(fd: number): number;
  truncate(fd: number, length: number): void;
  /** Atomic rename; retried with backoff on `EPERM`/`EBUSY`/`EACCES` (virus scanners on Windows). */
  rename(from: string, to: string): void;
  unlink(file: string): void;
  /** fsync a directory so that creations, renames and deletions in it are durable. */
  syncDir(dir: string): void;
  readdir(dir: string): string[];
  /** Create `dir` and any missing parents, each with mode {@link DIR_MODE} (0700); an existing one is left as it is. */
  mkdirp(dir: string): void;
  exists(file: string): boolean;
  readFile(file: string): Uint8Array;
  /** The canonical absolute path of an existing `file` (symlinks resolved). */
  realpath(file: string): string;
  /**
   * Try to take the exclusive kernel lock of byte `offset` of the open file `fd`: an OFD lock on Linux,
   * `flock` on macOS (the whole file), `LockFileEx` on Windows. False when another open file description
   * holds it, in this process or another. The OS releases it when `fd` is closed or the process dies.
   * Throws `LockUnavailableError` (`E_LOCK_UNAVAILABLE`) when this platform has no such lock.
   */
  tryLock(fd: number, offset: number): boolean;
}

/** Named windows in which tests may crash or fail a store. See docs/FORMAT.md, "Crash windows". */
export type Failpoint =
  | "commit.beforeWrite"
  | "commit.afterWrite"
  | "commit.afterSync"
  | "journal.afterCreate"
  | "compaction.afterRotate"
  | "compaction.afterSegmentWrite"
  | "compaction.beforeSegmentRename"
  | "compaction.beforeDirSync"
  | "compaction.beforeManifestRename"
  | "compaction.afterManifestRename"
  | "compaction.beforeDelete"
  | "manifest.beforeRename"
  | "manifest.beforeCopyRename"
  | "keyring.beforeRename"
  | "keyring.afterRename"
  | "create.afterKeyring"
  | "compaction.beforeKeyRetire"
  | "backup.afterChunk"
  | "backup.beforeRename"
  | "restore.afterStage"
  | "restore.afterMarker"
  | "restore.afterAside"
  | "restore.afterSwap"
  | "archive.afterVerify";

function wrap(e: unknown, syscall: string, file: string): never {
  const code = (e as NodeJS.ErrnoException)?.code ?? "UNKNOWN";
  if (code === "ENOSPC" || code === "EDQUOT") throw new NoSpaceError(file, { cause: e });
  throw new IoError(syscall, file, code, { cause: e });
}

const RENAME_RETRY = new Set(["EPERM", "EBUSY", "EACCES"]);

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Create `file` (`O_EXCL`), write all of `bytes`, fsync and close it. The caller fsyncs the directory. */
export function writeNewFile(io: FileIO, file: string, bytes: Uint8Array): void {
  const fd = io.open(file, "wx+");
  try {
    io.write(fd, bytes, 0);
    io.fsync(fd);
  } finally {
    io.close(fd);
  }
}

/**
 * Replace `target` with `bytes` the way LevelDB writes `CURRENT`: unlink a stale `tmp`, create it
 * (`O_EXCL`), write, fsync, close; `beforeRename()` (a failpoint); rename over `target`; fsync `dir`. Any
 * failure removes `tmp` and rethrows: there is never a non-atomic fallback.
 */
export function replaceFileAtomically(io: FileIO, dir: string, tmp: string, target: string, bytes: Uint8Array, beforeRename: () => void): void {
  io.unlink(tmp);
  try {
    writeNewFile(io, tmp, bytes);
  } catch (e) {
    io.unlink(tmp);
    throw e;
  }
  try {
    beforeRename();
    io.rename(tmp, target);
  } catch (e) {
    io.unlink(tmp);
    throw e;
  }
  io.syncDir(dir);
}

/** `io.fsync(fd)` on the libuv pool when `io` has it (`fsyncAsync`), else at once; a failure rejects. */
export async function fsyncOffLoop(io: FileIO, fd: number): Promise<void> {
  if (io.fsyncAsync) return io.fsyncAsync(fd);
  io.fsync(fd);
}

/** `io.syncDir(dir)` with its fsync on the libuv pool (through `io`'s open, fsync and close); as `syncDir`, nothing on Windows. */
export async function syncDirOffLoop(io: FileIO, dir: string): Promise<void> {
  if (!io.fsyncAsync || process.platform === "win32") return io.syncDir(dir);
  const fd = io.open(dir, "r");
  try {
    await io.fsyncAsync(fd);
  } finally {
    io.close(fd);
  }
}

/** {@link replaceFileAtomically} (without its failpoint) with its two fsyncs on the libuv pool. */
export async function replaceFileAtomicallyOffLoop(io: FileIO, dir: string, tmp: string, target: string, bytes: Uint8Array): Promise<void> {
  io.unlink(tmp);
  try {
    const fd = io.open(tmp, "wx+");
    try {
      io.write(fd, bytes, 0);
      await fsyncOffLoop(io, fd);
    } finally {
      io.close(fd);
    }
    io.rename(tmp, target);
  } catch (e) {
    io.unlink(tmp);
    throw e;
  }
  await syncDirOffLoop(io, dir);
}

/**
 * Run `rename`, retrying with exponential backoff (10 ms doubling, at most 8 retries, ~2.5 s in all) while it
 * fails with `EPERM`, `EBUSY` or `EACCES`: on Windows a virus scanner or indexer briefly holds new files.
 * There is never a fallback to a non-atomic copy. Exported for tests.
 */
export function renameWithRetry(rename: () => void, sleep: (ms: number) => void = sleepSync): void {
  for (let attempt = 0; ; attempt++) {
    try {
      rename();
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "";
      if (!RENAME_RETRY.has(code) || attempt >= 8) throw e;
      sleep(Math.min(10 * 2 ** attempt, 1000));
    }
  }
}

/** The part of `fs-native-extensions` Cellar uses. */
interface NativeLock {
  tryLock(fd: number, offset: number, length: number, opts: { shared: boolean }): boolean;
}

let nativeLock: NativeLock | null = null;

/**
 * Load the native lock module once (`fs-native-extensions`, prebuilt for Linux, macOS and Windows). A
 * platform where it does not load gets `LockUnavailableError`: Cellar never opens a store without a lock.
 * `load` is for tests.
 */
export function loadNativeLock(load: () => unknown = () => createRequire(import.meta.url)("fs-native-extensions")): NativeLock {
  if (nativeLock) return nativeLock;
  let mod: unknown;
  try {
    mod = load();
  } catch (e) {
    throw new LockUnavailableError(`the native module \`fs-native-extensions\` did not load on ${process.platform}-${process.arch}`, { cause: e });
  }
  if (typeof (mod as Partial<NativeLock> | null)?.tryLock !== "function") {
    throw new LockUnavailableError(`the native module \`fs-native-extensions\` has no \`tryLock\` on ${process.platform}-${process.arch}`);
  }
  return (nativeLock = mod as NativeLock);
}

/**
 * Load the native lock module now if it loads, and say nothing if it does not (the open that needs it then
 * throws `LockUnavailableError` as before). Called when the open path's modules load (storage/open.ts), so the
 * dlopen of the addon (~3–7 ms in a fresh process, issue 15) is paid with the library's import, as
 * better-sqlite3 pays its own addon's at `require`, not by the first open's caller.
 */
export function preloadNativeLock(): void {
  try {
    loadNativeLock();
  } catch {
    // reported by the open that needs the lock
  }
}

/** Errors a refused non-blocking lock comes back as: `EAGAIN`/`EWOULDBLOCK` (POSIX), `EACCES` (some fcntl), `EBUSY` (libuv's name for Windows' `ERROR_LOCK_VIOLATION`). */
const LOCK_HELD = new Set(["EAGAIN", "EWOULDBLOCK", "EACCES", "EBUSY"]);

/**
 * The methods of {@link nodeFileIO} that take a path, not a descriptor: they share no state, so they are
 * written once here and `nodeFileIO` puts each on the object it returns as an own property.
 */
const pathIO: Pick<FileIO, "rename" | "unlink" | "syncDir" | "readdir" | "mkdirp" | "exists" | "readFile" | "realpath"> = {
  rename(from, to) {
    try {
      renameWithRetry(() => fs.renameSync(from, to));
    } catch (e) {
      wrap(e, "rename", `${path.basename(from)} -> ${path.basename(to)}`);
    }
  },
  unlink(file) {
    try {
      fs.unlinkSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      wrap(e, "unlink", path.basename(file));
    }
  },
  syncDir(dir) {
    if (process.platform === "win32") return; // directories cannot be opened for fsync on Windows; NTFS journals metadata
    let fd: number | undefined;
    try {
      fd = fs.openSync(dir, "r");
      fs.fsyncSync(fd);
    } catch (e) {
      wrap(e, "fsync(dir)", dir);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  },
  readdir(dir) {
    try {
      return fs.readdirSync(dir);
    } catch (e) {
      return wrap(e, "readdir", dir);
    }
  },
  mkdirp(dir) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    } catch (e) {
      wrap(e, "mkdir", dir);
    }
  },
  exists(file) {
    return fs.existsSync(file);
  },
  readFile(file) {
    try {
      return fs.readFileSync(file);
    } catch (e) {
      return wrap(e, "read", path.basename(file));
    }
  },
  realpath(file) {
    try {
      return fs.realpathSync(file);
    } catch (e) {
      return wrap(e, "realpath", file);
    }
  },
};

/** `fs.write` of all of `data` at `position` on the libuv thread pool, looping over short writes; failures wrapped as `write`'s. */
function writeOnPool(fd: number, data: Uint8Array, position: number, name: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const next = (done: number): void => {
      if (done >= data.length) return resolve();
      fs.write(fd, data, done, data.length - done, position + done, (e, n) => {
        if (!e && n > 0) return next(done + n);
        try {
          wrap(e ?? Object.assign(new Error("write returned 0 bytes"), { code: "EIO" }), "write", name);
        } catch (w) {
          reject(w);
        }
      });
    };
    next(0);
  });
}

/** Node's real file system, synchronous. */
export function nodeFileIO(): FileIO {
  const names = new Map<number, string>();
  const nameOf = (fd: number) => names.get(fd) ?? `fd ${fd}`;
  /** `sync` (fs.fsync or fs.fdatasync) of `fd` on the libuv thread pool; a failure wrapped as the sync calls wrap it. */
  const onPool = (sync: (fd: number, done: (e: NodeJS.ErrnoException | null) => void) => void, syscall: string, fd: number) =>
    new Promise<void>((resolve, reject) =>
      sync(fd, (e) => {
        if (!e) return resolve();
        try {
          wrap(e, syscall, nameOf(fd));
        } catch (w) {
          reject(w);
        }
      }),
    );
  return {
    open(file, flags) {
      try {
        const fd = fs.openSync(file, flags === "c+" ? fs.constants.O_RDWR | fs.constants.O_CREAT : flags, FILE_MODE);
        names.set(fd, path.basename(file));
        return fd;
      } catch (e) {
        return wrap(e, "open", path.basename(file));
      }
    },
    close(fd) {
      try {
        fs.closeSync(fd);
      } catch (e) {
        wrap(e, "close", nameOf(fd));
      } finally {
        names.delete(fd);
      }
    },
    read(fd, into, position) {
      let done = 0;
      try {
        while (done < into.length) {
          const n = fs.readSync(fd, into, done, into.length - done, position + done);
          if (n === 0) break;
          done += n;
        }
      } catch (e) {
        wrap(e, "read", nameOf(fd));
      }
      return done;
    },
    write(fd, data, position) {
      let done = 0;
      try {
        while (done < data.length) {
          const n = fs.writeSync(fd, data, done, data.length - done, position + done);
          if (n <= 0) throw Object.assign(new Error("write returned 0 bytes"), { code: "EIO" });
          done += n;
        }
      } catch (e) {
        wrap(e, "write", nameOf(fd));
      }
    },
    datasync(fd) {
      try {
        fs.fdatasyncSync(fd);
      } catch (e) {
        wrap(e, "fdatasync", nameOf(fd));
      }
    },
    fsync(fd) {
      try {
        fs.fsyncSync(fd);
      } catch (e) {
        wrap(e, "fsync", nameOf(fd));
      }
    },
    datasyncAsync: (fd) => onPool(fs.fdatasync, "fdatasync", fd),
    writeAsync: (fd, data, position) => writeOnPool(fd, data, position, nameOf(fd)),
    fsyncAsync: (fd) => onPool(fs.fsync, "fsync", fd),
    size(fd) {
      try {
        return fs.fstatSync(fd).size;
      } catch (e) {
        return wrap(e, "fstat", nameOf(fd));
      }
    },
    truncate(fd, length) {
      try {
        fs.ftruncateSync(fd, length);
      } catch (e) {
        wrap(e, "ftruncate", nameOf(fd));
      }
    },
    rename: pathIO.rename,
    unlink: pathIO.unlink,
    syncDir: pathIO.syncDir,
    readdir: pathIO.readdir,
    mkdirp: pathIO.mkdirp,
    exists: pathIO.exists,
    readFile: pathIO.readFile,
    realpath: pathIO.realpath,
    tryLock(fd, offset) {
      const native = loadNativeLock();
      try {
        return native.tryLock(fd, offset, 1, { shared: false });
      } catch (e) {
        if (LOCK_HELD.has((e as NodeJS.ErrnoException)?.code ?? "")) return false;
        return wrap(e, "lock", nameOf(fd));
      }
    },
  };
}
