/**
 * Child process of the archive SIGKILL tests: fills a store with old conversations (large titles, so that
 * the archive file takes several copy chunks) and a few new ones, logs them, then archives the old ones into
 * the store's default backup directory and SIGKILLs itself at the named failpoint (armed when the archive starts):
 *
 *   backup.afterChunk     while the archive file is being written
 *   backup.beforeRename   the file written and synced under its temp name
 *   archive.afterVerify   the file in place and verified, no delete issued
 *   commit.beforeWrite    the deletes' frame about to be written
 *   commit.afterSync      the deletes written and synced, not yet acknowledged
 *
 *   tsx archive-child.ts <dir> <log> <failpoint>
 *
 * The `commit.*` failpoints are armed for the archive's deletes only. New records are written all along the
 * archive, each logged once acknowledged.
 *
 * Log lines: `OLD <key>` / `NEW <key>` once written, `ARCHIVE` when the archive starts, `DONE` if it finishes.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ConversationEntity } from "../../../src/generated/examples/conversations/v1/conversations_cellar.js";
import { openStore } from "../../../src/runtime/index.js";
import type { Engine, WriteOp } from "../../../src/runtime/storage/engine.js";

const [dir, log, at] = process.argv.slice(2) as [string, string, string];
const DAY = 86_400_000;
const fd = fs.openSync(log, "a");
const say = (line: string) => fs.writeSync(fd, line + "\n");
let armed = false;
const store = await openStore(
  { conversations: ConversationEntity },
  {
    dir,
    key: new Uint8Array(32).fill(6),
    cleanup: false,
    compaction: { auto: false },
    failpoint: (name) => {
      if (armed && name === at) process.kill(process.pid, "SIGKILL");
    },
  },
);
const old = Array.from({ length: 400 }, (_, i) => `old${String(i).padStart(4, "0")}`);
for (let b = 0; b < old.length; b += 200) {
  await store.batch((tx) => {
    for (const k of old.slice(b, b + 200)) tx.conversations.put({ id: k, model: randomBytes(1500).toString("base64"), updatedAt: timestampFromMs(Date.now() - 200 * DAY) });
  });
}
for (const k of old) say(`OLD ${k}`);
for (let i = 0; i < 10; i++) {
  await store.conversations.put({ id: `new${i}`, updatedAt: timestampFromMs(Date.now() - DAY) });
  say(`NEW new${i}`);
}
// The commit failpoints: for the archive's deletes only (recognized as they are issued), not the writes below.
const engine = (store as unknown as { engine: Engine }).engine;
const write = engine.write.bind(engine);
engine.write = (ops: readonly WriteOp[]) => {
  if (at.startsWith("commit.") && ops.length > 1 && ops.every((o) => o.op === "delete")) armed = true;
  return write(ops);
};
say("ARCHIVE");
if (!at.startsWith("commit.")) armed = true;
let done = false;
const archiving = store.conversations.archive({ olderThan: "100d" }).then(() => {
  done = true;
  say("DONE");
});
for (let i = 0; !done; i++) {
  await store.conversations.put({ id: `live${i}`, updatedAt: timestampFromMs(Date.now()) });
  say(`NEW live${i}`);
}
await archiving;
process.exit(3); // the kill never came
