/**
 * Child process for the SIGKILL-during-cleanup tests: fills a store with expired and fresh conversations,
 * logs each acknowledged write, then runs `store.cleanup()` while it keeps writing fresh records, and kills
 * itself (SIGKILL) at the moment `mode` names:
 *
 *   scan     halfway through the cleanup's reading of timestamps (before it decides anything)
 *   before   at `commit.beforeWrite` of the flush holding the cleanup's deletes (nothing of it written)
 *   after    at `commit.afterSync` of that flush (written and synced, not yet acknowledged)
 *   split    (long keys: the cleanup takes two writes) at `commit.beforeWrite` of the second one
 *
 *   tsx cleanup-child.ts <dir> <log> <mode>
 *
 * Log lines: `OLD <key>` / `ACK <key>` once a write of an expired / fresh record is acknowledged,
 * `CLEANUP` when the cleanup starts, `DONE` if it ever finishes (it should not).
 */
import fs from "node:fs";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ConversationEntity } from "../../../src/generated/examples/conversations/v1/conversations_cellar.js";
import { openStore } from "../../../src/runtime/index.js";
import type { Engine, WriteOp } from "../../../src/runtime/storage/engine.js";

const [dir, log, mode] = process.argv.slice(2) as [string, string, "scan" | "before" | "after" | "split"];
const DAY = 86_400_000;
const fd = fs.openSync(log, "a");
const say = (line: string) => fs.writeSync(fd, line + "\n");
const die = () => process.kill(process.pid, "SIGKILL");

let killAt: string | null = null;
const store = await openStore(
  { conversations: { ...ConversationEntity, retention: { maxAgeMs: 30 * DAY, timestampField: "updatedAt" } } as typeof ConversationEntity },
  {
    dir,
    key: new Uint8Array(32).fill(5),
    cleanup: false,
    compaction: { auto: false },
    failpoint: (name) => {
      if (name === killAt) die();
    },
  },
);
const engine = (store as unknown as { engine: Engine }).engine;
const keyOf = (i: number) => (mode === "split" ? `old${String(i).padStart(5, "0")}${"k".repeat(1000)}` : `old${String(i).padStart(5, "0")}`);
const total = mode === "split" ? 3000 : 2000;
for (let b = 0; b < total; b += 500) {
  const keys = Array.from({ length: 500 }, (_, j) => keyOf(b + j));
  await store.batch((tx) => {
    // ages 31 to ~60 days: the oldest first in time is not the first in key order
    for (const [j, k] of keys.entries()) tx.conversations.put({ id: k, updatedAt: timestampFromMs(Date.now() - (31 + ((b + j) * 7919) % 29) * DAY) });
  });
  for (const k of keys) say(`OLD ${k}`);
}
for (let i = 0; i < 20; i++) {
  await store.conversations.put({ id: `fresh${i}`, updatedAt: timestampFromMs(Date.now() - DAY) });
  say(`ACK fresh${i}`);
}

// Recognize the cleanup's writes (deletes only) as they are issued, and arm the failpoint for their flush.
let cleanupWrites = 0;
const write = engine.write.bind(engine);
engine.write = (ops: readonly WriteOp[]) => {
  if (ops.length > 1 && ops.every((o) => o.op === "delete")) {
    cleanupWrites++;
    if (mode === "before" || (mode === "split" && cleanupWrites === 2)) killAt = "commit.beforeWrite";
    if (mode === "after") killAt = "commit.afterSync";
  }
  return write(ops);
};
if (mode === "scan") {
  let reads = 0;
  const read = engine.read.bind(engine);
  engine.read = (entity, loc) => {
    if (++reads === total / 2) die();
    return read(entity, loc);
  };
}

say("CLEANUP");
let done = false;
const cleaning = store.cleanup().then(() => {
  done = true;
  say("DONE");
});
// Writes go on during the cleanup; each acknowledged one is logged.
for (let i = 0; !done; i++) {
  await store.conversations.put({ id: `live${i}`, updatedAt: timestampFromMs(Date.now()) });
  say(`ACK live${i}`);
}
await cleaning;
process.exit(3); // the kill never came
