/**
 * Child process of the backup crash tests: takes a backup or runs a restore and SIGKILLs itself at the named
 * failpoint (its `nth` hit). Prints nothing; the parent checks the files.
 *
 * argv: backup|backup-selective|restore dir file failpoint [nth] [log]   (log: "A <key>" per acknowledged write, synchronously)
 */
import fs from "node:fs";
import { Engine } from "../../../src/runtime/storage/engine.js";
import { restoreBackup } from "../../../src/runtime/storage/restore.js";
import type { Failpoint } from "../../../src/runtime/platform/io.js";
import { KEY, val } from "../helpers.js";

const [mode, dir, file, at, nthArg = "1", log] = process.argv.slice(2);
if (!mode || !dir || !file || !at) throw new Error("usage: kill-child backup|restore dir file failpoint [nth]");
let hits = 0;
const failpoint = (name: Failpoint) => {
  if (name === at && ++hits === Number(nthArg)) process.kill(process.pid, "SIGKILL");
};

if (mode === "backup" || mode === "backup-selective") {
  const engine = await Engine.open({ dir, key: KEY, failpoint, compaction: { auto: false } });
  const backup = engine.backup(mode === "backup" ? { to: file } : { to: file, entities: { include: ["e"] } });
  // Writes go on during the backup: acknowledged ones must survive the kill in the store itself.
  const out = log ? fs.openSync(log, "a") : null;
  for (let i = 0; i < 20; i++) {
    await engine.write([{ op: "put", entity: "e", key: `during${i}`, version: 1, value: val("dur"), terms: [] }]);
    if (out !== null) fs.writeSync(out, `A during${i}\n`);
  }
  await backup;
  await engine.close();
} else {
  await restoreBackup(file, { dir, key: KEY, failpoint });
}
process.exit(0);
