// `collection.iterate()`: every record in key order, a page at a time, across the journal and the segment,
// with writes and compactions between pages; offset and limit; integer keys in numeric order.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { openStore as openRuntimeStore } from "../../src/runtime/index.js";
import { Numbered } from "./numbered.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-iter-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(7);

const id = (i: number) => `t-${String(i).padStart(5, "0")}`;
const task = (i: number, title = `task ${i}`) => ({ id: id(i), title });

async function collect<T>(it: AsyncIterable<T>, each?: (v: T, n: number) => Promise<void>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) {
    out.push(v);
    if (each) await each(v, out.length);
  }
  return out;
}

describe("iterate()", () => {
  it("yields every record once, in key order, from the segment and the journal together, and agrees with list()", async () => {
    const dir = path.join(tmp, "mixed");
    const store = await openStore({ dir, key, compaction: { auto: false } });
    try {
      // Odd ids go to the segment, even ids stay in the journal (so pages cross both).
      await store.batch((tx) => {
        for (let i = 1; i < 1200; i += 2) tx.tasks.put(task(i));
      });
      await store.compact();
      await store.batch((tx) => {
        for (let i = 0; i < 1200; i += 2) tx.tasks.put(task(i));
        tx.tasks.put(task(3, "rewritten in the journal"));
        tx.tasks.delete(id(5));
      });
      const got = await collect(store.tasks.iterate());
      const ids = got.map((t) => t.id);
      const expected = Array.from({ length: 1200 }, (_, i) => id(i)).filter((k) => k !== id(5));
      expect(ids).toEqual(expected);
      expect(got.find((t) => t.id === id(3))?.title).toBe("rewritten in the journal");
      expect(Object.isFrozen(got[0])).toBe(true);
      expect((await store.tasks.list()).map((t) => t.id)).toEqual(ids);
      expect((await collect(store.tasks.iterate({ offset: 700, limit: 300 }))).map((t) => t.id)).toEqual(expected.slice(700, 1000));
      expect(await collect(store.tasks.iterate({ limit: 0 }))).toEqual([]);
      expect(await collect(store.tasks.iterate({ offset: 5000 }))).toEqual([]);
      await expect(collect(store.tasks.iterate({ offset: -1 }))).rejects.toThrow(/offset/);
    } finally {
      await store.close();
    }
  });

  it("goes on across writes and a compaction between pages: sees writes after its position, never a deleted record, never a record twice", async () => {
    const dir = path.join(tmp, "live");
    const store = await openStore({ dir, key, compaction: { auto: false } });
    try {
      await store.batch((tx) => {
        for (let i = 0; i < 2000; i += 2) tx.tasks.put(task(i));
      });
      await store.compact();
      const got = await collect(store.tasks.iterate(), async (t, n) => {
        if (n === 300) {
          // Behind the iteration (not seen), ahead of it (seen), and a delete ahead (never seen).
          await store.tasks.put(task(1, "behind"));
          await store.tasks.put(task(1999, "ahead"));
          await store.tasks.delete(id(1500));
          await store.tasks.put(task(1800, "updated ahead")); // past the page read so far (256 records a page)
        }
        if (n === 700) await store.compact(); // the segment the iteration started on is replaced
      });
      const ids = got.map((t) => t.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect([...ids].sort()).toEqual(ids);
      expect(ids).not.toContain(id(1));
      expect(ids).not.toContain(id(1500));
      expect(ids).toContain(id(1999));
      expect(got.find((t) => t.id === id(1800))?.title).toBe("updated ahead");
      expect(ids.length).toBe(1000 - 1 + 1);
    } finally {
      await store.close();
    }
  });

  it("walks integer keys in numeric order", async () => {
    const store = await openRuntimeStore({ numbered: Numbered }, { dir: path.join(tmp, "ints"), encryption: "none" });
    try {
      const mins = [5, 100, 20, 3000, 1, 999, 40];
      await store.batch((tx) => {
        for (const m of mins) tx.numbered.put({ id: `n${m}`, title: "t", estimateMinutes: m });
      });
      const got = await collect(store.numbered.iterate());
      expect(got.map((t) => t.estimateMinutes)).toEqual([...mins].sort((a, b) => a - b));
      expect((await collect(store.numbered.iterate({ offset: 2, limit: 3 }))).map((t) => t.estimateMinutes)).toEqual([20, 40, 100]);
    } finally {
      await store.close();
    }
  });
});

describe("batch values", () => {
  it("a batch larger than its encoding buffer's first 64 KiB (it grows mid-batch) stores every value intact", async () => {
    const dir = path.join(tmp, "arena");
    const notes = (i: number) => `note ${i} `.repeat(40); // ~400 bytes each: ~800 KB for the batch
    let store = await openStore({ dir, key });
    try {
      await store.batch((tx) => {
        for (let i = 0; i < 2000; i++) tx.tasks.put({ ...task(i), notes: notes(i) });
        tx.settings.update({ language: "de" }); // an entity the codec does not take (sensitive fields): general path
      });
      // A failed batch (invalid input mid-way) writes nothing and leaves the next batch unaffected.
      await expect(
        store.batch((tx) => {
          tx.tasks.put({ ...task(5000), notes: "kept?" });
          tx.tasks.put({ id: "", title: "" });
        }),
      ).rejects.toMatchObject({ code: "E_VALIDATION" });
      expect(await store.tasks.get(id(5000))).toBeUndefined();
      for (const i of [0, 1, 150, 999, 1999]) expect((await store.tasks.get(id(i)))?.notes).toBe(notes(i));
    } finally {
      await store.close();
    }
    store = await openStore({ dir, key });
    try {
      let n = 0;
      for await (const t of store.tasks.iterate()) {
        expect(t.notes).toBe(notes(Number(t.id.slice(2))));
        n++;
      }
      expect(n).toBe(2000);
      expect((await store.settings.get()).language).toBe("de");
    } finally {
      await store.close();
    }
  });
});

describe("the shared cache", () => {
  it("records and blocks share one budget: records may use what blocks leave, never more than the sum", async () => {
    const dir = path.join(tmp, "shared-cache");
    const MiB = 1024 * 1024;
    const store = await openStore({ dir, key, cacheBytes: MiB, blockCacheBytes: 8 * MiB, compaction: { auto: false } });
    try {
      await store.batch((tx) => {
        for (let i = 0; i < 6000; i++) tx.tasks.put({ ...task(i), notes: `n${i} `.repeat(60) });
      });
      await store.compact();
      for (let i = 0; i < 6000; i++) await store.tasks.get(id(i));
      const s = store.stats();
      expect(s.recordCacheBytes).toBeGreaterThan(MiB); // more than its own share: the blocks left room
      expect(s.recordCacheBytes + s.blockCacheBytes).toBeLessThanOrEqual(9 * MiB);
      expect(s.blockCacheBytes).toBeGreaterThan(0);
      // A compaction drops the old files' blocks, not the decoded records (their values did not change).
      await store.tasks.put({ ...task(0), title: "changed" });
      await store.compact();
      const after = store.stats();
      expect(after.blockCacheBytes).toBe(0);
      expect(after.recordCacheBytes).toBeGreaterThan(MiB / 2);
      expect((await store.tasks.get(id(0)))?.title).toBe("changed");
      expect((await store.tasks.get(id(1)))?.title).toBe("task 1");
    } finally {
      await store.close();
    }
  });
});
