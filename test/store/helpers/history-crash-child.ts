/**
 * Child process for the record-history crash test: writes record `k` of a `tasks` collection with history
 * again and again (op i: a put of title `i`, or every 7th op a delete), several writes in flight, and logs
 * each op's number once acknowledged (synchronous appends: the page cache survives SIGKILL). The parent
 * kills it with SIGKILL at a random moment and checks that the record and its history agree.
 *
 *   tsx history-crash-child.ts <dir> <log>
 */
import fs from "node:fs";
import { entities } from "../../../src/generated/index.js";
import { defineCollection, openStore } from "../../../src/runtime/index.js";

const [dir, logPath] = process.argv.slice(2) as [string, string];
const historyCrashKey = new Uint8Array(32).fill(5);
const historyCrashTasks = defineCollection({ ...entities.tasks, history: { keep: 100_000 } });

const log = fs.openSync(logPath, "a");
const store = await openStore({ tasks: historyCrashTasks }, { dir, key: historyCrashKey, compaction: { minDeadBytes: 16 * 1024, maxJournalBytes: 64 * 1024 } });
fs.writeSync(log, "OPEN\n");
for (let i = 1; ; ) {
  const inflight: Promise<void>[] = [];
  for (let j = 0; j < 4; j++, i++) {
    const n = i;
    const w = n % 7 === 0 ? store.tasks.delete("k").then(() => {}) : store.tasks.put({ id: "k", title: String(n) }).then(() => {});
    inflight.push(w.then(() => void fs.writeSync(log, `A ${n}\n`)));
  }
  await Promise.all(inflight);
}
