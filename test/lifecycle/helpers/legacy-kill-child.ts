/**
 * Child process of the legacy-move crash test: opens the store in argv[2] (which has a legacy
 * `backups/pre-migration-*` directory) and SIGKILLs itself in the crash window argv[3] of the move:
 * `pack` (the backup file's temp file half written), `file` (the file renamed in, not yet verified),
 * `dir` (the verified file in, the directory renamed to `.moved`, not yet removed). Without a kill (an
 * unknown window) it waits for the move and exits.
 */
import fs from "node:fs";
import path from "node:path";
import { type FileIO, nodeFileIO } from "../../../src/runtime/platform/io.js";
import { open } from "./auto-backup-helpers.js";

const [dir, window] = process.argv.slice(2) as [string, string];
const real = nodeFileIO();
const die = () => process.kill(process.pid, "SIGKILL");
const tmpFds = new Set<number>();
let writes = 0;
const io: FileIO = {
  ...real,
  open(file, flags) {
    const fd = real.open(file, flags);
    if (file.endsWith(".cellarbackup.tmp")) tmpFds.add(fd);
    return fd;
  },
  write(fd, data, position) {
    real.write(fd, data, position);
    if (window === "pack" && tmpFds.has(fd) && ++writes === 3) die();
  },
  rename(from, to) {
    real.rename(from, to);
    if (window === "file" && to.endsWith(".cellarbackup")) die();
    if (window === "dir" && to.endsWith(".moved")) die();
  },
};
const store = await open(dir, { io });
const end = Date.now() + 20_000;
while (fs.existsSync(path.join(dir, "backups"))) {
  if (Date.now() > end) throw new Error("the legacy directory was not moved");
  await new Promise((r) => setTimeout(r, 5));
}
await store.close();
