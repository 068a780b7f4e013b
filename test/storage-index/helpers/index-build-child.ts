/**
 * Child process of the SIGKILL-during-index-build test (test/query/index-build.test.ts): opens the store with
 * the indexes added, logging each progress report (a synchronous write: the page cache survives SIGKILL);
 * the parent kills it midway.
 *
 *   tsx index-build-child.ts <dir> <log>
 */
import fs from "node:fs";
import { openStore } from "../../../src/runtime/typed/store.js";
import { after, KEY } from "./index-build-defs.js";

const [dir, log] = process.argv.slice(2) as [string, string];
const fd = fs.openSync(log, "a");
const store = await openStore(
  { focus: after },
  { dir, key: KEY, sharing: false, compaction: { auto: false }, onIndexProgress: (p) => void fs.writeSync(fd, `P ${p.index} ${p.done} ${p.total}\n`) },
);
fs.writeSync(fd, "OPEN\n");
await store.close();
fs.writeSync(fd, "DONE\n");
