/** A FileIO over the real one that fails on demand: tests flip `failWrites` to simulate a full disk. */
import { IoError, NoSpaceError } from "../../../src/runtime/errors.js";
import { type FileIO, nodeFileIO } from "../../../src/runtime/platform/io.js";

export function faultyIO(): FileIO & { failWrites: boolean; failSyncs: boolean; writes: number } {
  const real = nodeFileIO();
  const io = {
    ...real,
    failWrites: false,
    failSyncs: false,
    writes: 0,
    write(fd: number, data: Uint8Array, position: number) {
      io.writes++;
      if (io.failWrites) throw new NoSpaceError(`fd ${fd}`, { cause: Object.assign(new Error("ENOSPC"), { code: "ENOSPC" }) });
      real.write(fd, data, position);
    },
    datasync(fd: number) {
      if (io.failSyncs) throw new IoError("fdatasync", `fd ${fd}`, "EIO");
      real.datasync(fd);
    },
  };
  return io;
}
