// Issue 15: reading many records never holds the event loop. `list()`, `iterate()` and `keys()` decode in
// slices and let the loop turn between them (platform/turn.ts): an app's 1 ms timer keeps firing while
// they run. Each test counts the timer's callbacks during the call (before this change: none, the whole
// read was one synchronous step), with the slice budget at 0 ms so that every check yields: the count does
// not depend on how fast this machine decodes.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { openStore as openRuntimeStore } from "../../src/runtime/index.js";
import { Numbered } from "./numbered.js";
import { ticksDuring } from "../helpers/ticks.js";
import { overdue, setSliceBudget, SLICE_MS, sortInSlices, turn } from "../../src/runtime/platform/turn.js";
import { compareIntKeys } from "../../src/runtime/typed/record-codec.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-turns-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => void setSliceBudget(SLICE_MS));
const key = new Uint8Array(32).fill(7);
const N = 20_000;
const id = (i: number) => `t-${String(i).padStart(6, "0")}`;


describe("reads of many records let the event loop turn", () => {
  const dir = path.join(tmp, "tasks");
  let store: Awaited<ReturnType<typeof openStore>>;
  beforeAll(async () => {
    store = await openStore({ dir, key, compaction: { auto: false } });
    // Half in the segment, half in the journal: a page crosses both.
    await store.batch((tx) => {
      for (let i = 0; i < N; i += 2) tx.tasks.put({ id: id(i), title: `task ${i}` });
    });
    await store.compact();
    await store.batch((tx) => {
      for (let i = 1; i < N; i += 2) tx.tasks.put({ id: id(i), title: `task ${i}` });
    });
  });
  afterAll(() => store.close());

  it("list() of 20,000 records: timers run during it, and it returns every record in order", async () => {
    setSliceBudget(0);
    const { ticks, value } = await ticksDuring(() => store.tasks.list());
    expect(value.length).toBe(N);
    expect(value.map((t) => t.id)).toEqual(Array.from({ length: N }, (_, i) => id(i)));
    expect(ticks).toBeGreaterThanOrEqual(3);
  });

  it("keys() of 20,000 records: timers run during it", async () => {
    setSliceBudget(0);
    const { ticks, value } = await ticksDuring(() => store.tasks.keys());
    expect(value).toEqual(Array.from({ length: N }, (_, i) => id(i)));
    expect(ticks).toBeGreaterThanOrEqual(3);
  });

  it("iterate() of 20,000 records: timers run between its pages, and a consumer's slow work per record counts", async () => {
    setSliceBudget(0);
    const { ticks, value } = await ticksDuring(async () => {
      let n = 0;
      for await (const _ of store.tasks.iterate()) n++;
      return n;
    });
    expect(value).toBe(N);
    expect(ticks).toBeGreaterThanOrEqual(3);
    // A consumer that spends ~0.2 ms per record on its own: within one page of 256 records (51 ms), the
    // default 4 ms budget still lets the loop turn (the iterator asks between records).
    setSliceBudget(SLICE_MS);
    const slow = await ticksDuring(async () => {
      let n = 0;
      for await (const _ of store.tasks.iterate({ limit: 200 })) {
        const until = performance.now() + 0.2;
        while (performance.now() < until);
        n++;
      }
      return n;
    });
    expect(slow.value).toBe(200);
    expect(slow.ticks).toBeGreaterThanOrEqual(3);
  });

  it("at the default budget, a 20,000-record list() still yields (it takes well over 4 ms to decode)", async () => {
    const { ticks, value } = await ticksDuring(() => store.tasks.list());
    expect(value.length).toBe(N);
    expect(ticks).toBeGreaterThanOrEqual(1);
  });

  it("a loop of awaited gets served from the cache lets timers run (each settles without I/O)", async () => {
    const k = id(7);
    await store.tasks.get(k); // cached
    const { ticks, value } = await ticksDuring(async () => {
      let n = 0;
      const end = performance.now() + 100;
      while (performance.now() < end) {
        if ((await store.tasks.get(k))?.id !== k) throw new Error("wrong record");
        await store.tasks.has(k);
        await store.settings.get();
        n++;
      }
      return n;
    });
    expect(value).toBeGreaterThan(100);
    expect(ticks).toBeGreaterThanOrEqual(3); // ~25 turns in 100 ms at the 4 ms budget; none before issue 15
  });

  it("concurrent next() calls (not awaited one by one) keep their order across slices", async () => {
    setSliceBudget(0);
    const it = store.tasks.iterate({ limit: 50 });
    const first = await Promise.all(Array.from({ length: 50 }, () => it.next()));
    expect(first.map((r) => (r.value as { id: string }).id)).toEqual(Array.from({ length: 50 }, (_, i) => id(i)));
    expect((await it.next()).done).toBe(true);
  });
});

describe("integer keys", () => {
  it("keys() and list() of 20,000 integer keys come in numeric order, in slices", async () => {
    const store = await openRuntimeStore({ numbered: Numbered }, { dir: path.join(tmp, "ints"), encryption: "none" });
    try {
      await store.batch((tx) => {
        for (let i = 0; i < N; i++) tx.numbered.put({ id: `n${i}`, title: "t", estimateMinutes: (i * 7919) % N });
      });
      setSliceBudget(0);
      const { ticks, value } = await ticksDuring(() => store.numbered.keys());
      expect(value).toEqual(Array.from({ length: N }, (_, i) => i));
      expect(ticks).toBeGreaterThanOrEqual(3);
      const listed = await ticksDuring(() => store.numbered.list({ offset: 10, limit: 5 }));
      expect(listed.value.map((t) => t.estimateMinutes)).toEqual([10, 11, 12, 13, 14]);
    } finally {
      await store.close();
    }
  });

  it("compareIntKeys orders canonical decimal text numerically, negatives first", () => {
    const nums = [0n, -1n, 5n, -100n, 99n, 100n, 18446744073709551615n, -9223372036854775808n, 7n, -7n];
    const text = nums.map(String).sort(compareIntKeys);
    expect(text).toEqual([...nums].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String));
  });

  it("overdue() reads the clock every 8th ask, and once it says so, says so until the loop turns", async () => {
    setSliceBudget(0);
    await turn();
    expect(overdue()).toBe(false); // arms the mark
    let asks = 1;
    while (!overdue()) asks++;
    expect(asks).toBe(8);
    for (let i = 0; i < 20; i++) expect(overdue()).toBe(true);
    await turn();
    expect(overdue()).toBe(false);
  });

  it("sortInSlices sorts like Array.prototype.sort (stable), in runs merged across turns", async () => {
    setSliceBudget(0);
    const items = Array.from({ length: 10_007 }, (_, i) => ({ k: (i * 7919) % 1000, i }));
    const expected = [...items].sort((a, b) => a.k - b.k);
    const got = await sortInSlices(items, (a, b) => a.k - b.k, 64);
    expect(got).toEqual(expected);
  });
});

describe("open", () => {
  it("a cold open lets the loop turn between its steps (engine and typed layer), not one synchronous step", async () => {
    const dir = path.join(tmp, "open-steps");
    const first = await openStore({ dir, key, compaction: { auto: false } });
    await first.tasks.putMany(Array.from({ length: 500 }, (_, i) => ({ id: id(i), title: `task ${i}` })));
    await first.compact();
    await first.tasks.put({ id: id(500), title: "in the journal" });
    await first.close();
    // A setImmediate chain: one count per turn of the loop while the open runs.
    let turns = 0;
    let stop = false;
    const tick = () => {
      turns++;
      if (!stop) setImmediate(tick);
    };
    setImmediate(tick);
    const store = await openStore({ dir, key, compaction: { auto: false } });
    stop = true;
    // The engine turns 5 times (storage/open.ts), the typed layer 2 (typed/open-store.ts).
    expect(turns).toBeGreaterThanOrEqual(7);
    expect((await store.tasks.get(id(500)))?.title).toBe("in the journal");
    await store.close();
  });
});
