/**
 * A FileIO over the real one that can simulate a power cut: every byte written to a file since that file's
 * last fdatasync/fsync is put back as it was (the worst case a power cut allows: the page cache is lost
 * whole), and the file is cut back to its synced length. Directory operations (create, rename, unlink) are
 * not rolled back: the engine fsyncs the directory after each of them before it relies on it.
 *
 * After `cut()` every write, truncate and sync fails with `E_IO` (the machine is off): the engine that was
 * running can be closed (it fails, and releases its lock) and the directory reopened with a fresh FileIO.
 */
import { IoError } from "../../../src/runtime/errors.js";
import { type FileIO, nodeFileIO } from "../../../src/runtime/platform/io.js";

interface Unsynced {
  file: string;
  /** The file's length at its last sync (or when first written after it). */
  size: number;
  /** Bytes overwritten since, within `size`, oldest first. */
  undo: { at: number; old: Uint8Array }[];
}

export function powerCutIO(): FileIO & { syncs: number; cut(): void } {
  const real = nodeFileIO();
  const paths = new Map<number, string>();
  const unsynced = new Map<number, Unsynced>();
  /** Files closed with unsynced bytes. */
  const closed: Unsynced[] = [];
  let off = false;
  const dead = (what: string) => {
    if (off) throw new IoError(what, "power cut", "EIO");
  };
  const track = (fd: number): Unsynced => {
    let u = unsynced.get(fd);
    if (!u) unsynced.set(fd, (u = { file: paths.get(fd)!, size: real.size(fd), undo: [] }));
    return u;
  };
  const synced = (fd: number) => {
    unsynced.delete(fd);
    // A sync writes back the file's pages, whichever descriptor wrote them.
    for (let i = closed.length - 1; i >= 0; i--) if (closed[i]!.file === paths.get(fd)) closed.splice(i, 1);
    io.syncs++;
  };
  const io = {
    ...real,
    syncs: 0,
    open(file: string, flags: "r" | "r+" | "wx+") {
      const fd = real.open(file, flags);
      paths.set(fd, file);
      return fd;
    },
    close(fd: number) {
      // Closing does not sync: bytes still unsynced stay tracked (by path) until the cut.
      const u = unsynced.get(fd);
      if (u) {
        unsynced.delete(fd);
        closed.push(u);
      }
      paths.delete(fd);
      real.close(fd);
    },
    write(fd: number, data: Uint8Array, position: number) {
      dead("write");
      const u = track(fd);
      const end = Math.min(position + data.length, u.size);
      if (end > position) {
        const old = new Uint8Array(end - position);
        real.read(fd, old, position);
        u.undo.push({ at: position, old });
      }
      real.write(fd, data, position);
    },
    truncate(fd: number, length: number) {
      dead("ftruncate");
      const u = track(fd);
      if (length < u.size) {
        const old = new Uint8Array(u.size - length);
        real.read(fd, old, length);
        u.undo.push({ at: length, old });
      }
      real.truncate(fd, length);
    },
    datasync(fd: number) {
      dead("fdatasync");
      real.datasync(fd);
      synced(fd);
    },
    fsync(fd: number) {
      dead("fsync");
      real.fsync(fd);
      synced(fd);
    },
    cut() {
      off = true;
      for (const u of [...unsynced.values(), ...closed.reverse()]) { // newest first
        if (!real.exists(u.file)) continue; // unlinked since: nothing to put back
        const fd = real.open(u.file, "r+");
        try {
          for (let i = u.undo.length - 1; i >= 0; i--) real.write(fd, u.undo[i]!.old, u.undo[i]!.at);
          real.truncate(fd, u.size);
        } finally {
          real.close(fd);
        }
      }
      unsynced.clear();
      closed.length = 0;
    },
  };
  return io;
}
