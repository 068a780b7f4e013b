// Issue 15: retention's cleanup sorts every record of an entity over its rule oldest first; that sort runs
// in slices (platform/turn.ts sortInSlices), so an app's 1 ms timer keeps firing during it (before: the
// whole sort was one synchronous step, ~2 s at a million records). The slice budget is 0 ms: every check
// yields, so the count does not depend on how fast this machine sorts.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, expect, it } from "vitest";
import { openStore } from "../../src/runtime/index.js";
import { ConversationEntity } from "../../src/generated/examples/conversations/v1/conversations_cellar.js";
import { setSliceBudget, SLICE_MS } from "../../src/runtime/platform/turn.js";
import { ticksDuring } from "../helpers/ticks.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-retention-turns-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => void setSliceBudget(SLICE_MS));
const N = 30_000;

it("cleanup() over 30,000 records by key order: timers run while it sorts them; the oldest keys go", async () => {
  const entities = { conversations: { ...ConversationEntity, retention: { maxCount: N - 5 } } as typeof ConversationEntity };
  const store = await openStore(entities, { dir: path.join(tmp, "s"), encryption: "none", cleanup: false, compaction: { auto: false } });
  try {
    const id = (i: number) => `c-${String((i * 7919) % N).padStart(6, "0")}`; // written out of key order
    await store.batch((tx) => {
      for (let i = 0; i < N; i++) tx.conversations.put({ id: id(i), title: "t" });
    });
    setSliceBudget(0);
    const { ticks, value: report } = await ticksDuring(() => store.cleanup());
    expect(report.total).toBe(5);
    expect((await store.conversations.keys()).slice(0, 2)).toEqual(["c-000005", "c-000006"]);
    expect(ticks).toBeGreaterThanOrEqual(5);
  } finally {
    await store.close();
  }
});
