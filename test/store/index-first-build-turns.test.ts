// Issue 15: a query's ordered index, built on its first use from every live record's terms, is built in
// slices (Keyspace.buildIndex): an app's 1 ms timer keeps firing during that first query (before: none, the
// whole build was one synchronous step, seconds at a million records), and writes made while it is built
// are in it when it is kept. The slice budget is 0 ms so that every check yields: the counts do not depend
// on how fast this machine sorts.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { TaskStatus } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import { setSliceBudget, SLICE_MS } from "../../src/runtime/platform/turn.js";
import { ticksDuring } from "../helpers/ticks.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-ixturns-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => void setSliceBudget(SLICE_MS));
const key = new Uint8Array(32).fill(7);
const N = 10_000;
const id = (i: number) => `t-${String(i).padStart(6, "0")}`;
const status = (i: number) => (i % 3 === 0 ? TaskStatus.DONE : TaskStatus.TODO);

/** A store of N tasks, half in the segment and half in the journal, no index built yet (a fresh open). */
async function seeded(name: string) {
  const dir = path.join(tmp, name);
  let store = await openStore({ dir, key, compaction: { auto: false } });
  const put = (from: number) =>
    store.batch((tx) => {
      for (let i = from; i < N; i += 2) tx.tasks.put({ id: id(i), title: `task ${i}`, status: status(i) });
    });
  await put(0);
  await store.compact();
  await put(1);
  await store.close();
  store = await openStore({ dir, key, compaction: { auto: false } });
  return store;
}

describe("an ordered index's first build lets the event loop turn", () => {
  it("count(where) and query(where) on a fresh open of 10,000 records: timers run during the build; results exact", async () => {
    const store = await seeded("count");
    try {
      setSliceBudget(0);
      const { ticks, value } = await ticksDuring(() => store.tasks.count({ status: TaskStatus.DONE }));
      expect(value).toBe(Math.ceil(N / 3));
      expect(ticks).toBeGreaterThanOrEqual(3);
      // Built now: the next query reads it at once.
      const done = await store.tasks.query({ status: TaskStatus.DONE }, { limit: 3 });
      expect(done.map((t) => t.id)).toEqual([id(0), id(3), id(6)]);
    } finally {
      await store.close();
    }
  });

  it("writes made while the index is built are in it (puts, updates that move a record, deletes)", async () => {
    const store = await seeded("writes");
    try {
      setSliceBudget(0);
      const building = store.tasks.count({ status: TaskStatus.DONE });
      // Interleaved with the build's slices: each awaited write lets it go on.
      await store.tasks.put({ id: id(1), title: "now done", status: TaskStatus.DONE }); // TODO → DONE
      await store.tasks.put({ id: id(0), title: "undone", status: TaskStatus.TODO }); // DONE → TODO
      await store.tasks.delete(id(3)); // a DONE one
      await store.tasks.put({ id: "z-new", title: "new", status: TaskStatus.DONE }); // after every key
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      await store.tasks.delete(id(N - 1 - ((N - 1) % 3))); // the last DONE one, late in the walk
      await building;
      const expected: string[] = [];
      for (let i = 0; i < N; i++) if (status(i) === TaskStatus.DONE) expected.push(id(i));
      const want = [...expected.filter((k) => k !== id(0) && k !== id(3) && k !== id(N - 1 - ((N - 1) % 3))), id(1), "z-new"].sort();
      const got = (await store.tasks.query({ status: TaskStatus.DONE })).map((t) => t.id);
      expect(got).toEqual(want);
      expect(await store.tasks.count({ status: TaskStatus.DONE })).toBe(want.length);
      expect(await store.tasks.count({ status: TaskStatus.TODO })).toBe(N - 1 - want.length); // N, less two deleted, plus z-new
    } finally {
      await store.close();
    }
  });
});
