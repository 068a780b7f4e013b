/**
 * A child process that holds a store open and keeps writing (the app, for test/cli/ops-in-use.test.ts):
 * `hold-store.ts <dir> <status file>`. Writes `{"pid","written"}` to the status file after each write; when the
 * file `<status file>.stop` appears it stops writing, reads every task it wrote back, closes the store and
 * writes `{"pid","written","readBack","done":true}`.
 */
import fs from "node:fs";
import { task } from "../../backup/helpers.js";
import { open, taskId } from "./ops.js";

const [dir, status] = process.argv.slice(2) as [string, string];
const store = await open(dir);
let written = 0;
const report = (extra: object = {}) => fs.writeFileSync(`${status}.tmp`, JSON.stringify({ pid: process.pid, written, ...extra }));
while (!fs.existsSync(`${status}.stop`)) {
  await store.tasks.put(task(10_000 + written, " from the app"));
  written++;
  report();
  fs.renameSync(`${status}.tmp`, status);
  await new Promise((r) => setTimeout(r, 20));
}
let readBack = 0;
for (let i = 0; i < written; i++) if ((await store.tasks.get(taskId(10_000 + i)))?.title === `task ${10_000 + i} from the app`) readBack++;
await store.close();
report({ readBack, done: true });
fs.renameSync(`${status}.tmp`, status);
