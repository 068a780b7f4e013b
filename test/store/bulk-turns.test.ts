// Issue 15: a bulk load never holds the event loop. A large commit (128 ops or more: a batch, `putMany`)
// seals its values in slices with turns of the loop between them and fdatasyncs on the thread pool
// (storage/commit.ts); `putMany` validates and encodes its values in slices too (typed/collection.ts). An
// app's 1 ms timer keeps firing meanwhile (before: at most once, the whole commit was one synchronous step),
// and the write stays atomic: a read during it sees all of it or none.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { ticksDuring } from "../helpers/ticks.js";
import { setSliceBudget, SLICE_MS } from "../../src/runtime/platform/turn.js";
import { type FileIO, nodeFileIO } from "../../src/runtime/platform/io.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-bulk-turns-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => void setSliceBudget(SLICE_MS));
const key = new Uint8Array(32).fill(9);
const N = 5_000;
const id = (i: number) => `t-${String(i).padStart(5, "0")}`;
const task = (i: number, title = `task ${i}`) => ({ id: id(i), title, notes: "n".repeat(200), tags: ["work", "home"] });

/** Reads `first` and `last` together on every turn while `during` runs: what each read saw. */
async function watchAtomic(store: Awaited<ReturnType<typeof openStore>>, first: string, last: string, during: Promise<unknown>) {
  const seen: string[] = [];
  let over = false;
  void during.finally(() => (over = true)).catch(() => {});
  while (!over) {
    const [a, b] = await store.tasks.getMany([first, last]);
    seen.push(`${a ? a.title : "-"}|${b ? b.title : "-"}`);
    await new Promise((r) => setImmediate(r));
  }
  await during;
  return seen;
}

describe("bulk writes let the event loop turn", () => {
  it("putMany of 5,000 records: timers run during it, it is one atomic write, and every record reads back", async () => {
    const store = await openStore({ dir: path.join(tmp, "many"), key, compaction: { auto: false } });
    try {
      await store.tasks.putMany([task(0, "old"), task(N - 1, "old")]);
      const commits: number[] = [];
      store.on("change", (e) => commits.push(e.seq));
      setSliceBudget(0);
      const values = Array.from({ length: N }, (_, i) => task(i));
      const { ticks, value: seen } = await ticksDuring(() => watchAtomic(store, id(0), id(N - 1), store.tasks.putMany(values)));
      expect(ticks).toBeGreaterThanOrEqual(3);
      expect(seen.every((s) => s === "old|old" || s === `task 0|task ${N - 1}`)).toBe(true);
      expect(seen[0]).toBe("old|old");
      expect(new Set(commits).size).toBe(1); // one commit: every change event carries its seq
      expect(commits.length).toBe(N);
      expect((await store.tasks.list()).map((t) => t.title)).toEqual(values.map((v) => v.title));
    } finally {
      await store.close();
    }
    const again = await openStore({ dir: path.join(tmp, "many"), key });
    expect(await again.tasks.count()).toBe(N);
    expect((await again.tasks.get(id(N - 1)))?.title).toBe(`task ${N - 1}`);
    await again.close();
  });

  it("a batch of 5,000 puts: its commit seals in slices (timers run), atomic as before", async () => {
    const store = await openStore({ dir: path.join(tmp, "batch"), key, compaction: { auto: false } });
    try {
      setSliceBudget(0);
      const { ticks, value: seen } = await ticksDuring(() =>
        watchAtomic(
          store,
          id(0),
          id(N - 1),
          store.batch((tx) => {
            for (let i = 0; i < N; i++) tx.tasks.put(task(i));
          }),
        ),
      );
      expect(ticks).toBeGreaterThanOrEqual(3); // 0 or 1 when the commit was one step
      expect(seen.every((s) => s === "-|-" || s === `task 0|task ${N - 1}`)).toBe(true);
      expect(await store.tasks.count()).toBe(N);
    } finally {
      await store.close();
    }
  });

  it("putMany refuses a value that does not validate, naming its index and key, and stores none", async () => {
    const store = await openStore({ dir: path.join(tmp, "invalid"), key });
    try {
      const values = Array.from({ length: 300 }, (_, i) => task(i));
      values[201] = { ...task(201), title: "x".repeat(501) };
      await expect(store.tasks.putMany(values)).rejects.toMatchObject({ code: "E_VALIDATION", batchIndex: 201, key: id(201) });
      expect(await store.tasks.count()).toBe(0);
      // @ts-expect-error not an array
      await expect(store.tasks.putMany(task(1))).rejects.toMatchObject({ code: "E_USAGE" });
      await store.tasks.putMany([]);
      expect(await store.tasks.count()).toBe(0);
    } finally {
      await store.close();
    }
  });

  it("engine: writes made while a large commit seals join the next flush; a compaction and close wait for it; all survive a reopen", async () => {
    const dir = path.join(tmp, "engine");
    const put = (k: string, n: number): WriteOp => ({ op: "put", entity: "e", key: k, version: 1, value: Buffer.from(`${k}:${n}`.padEnd(300, ".")), terms: [] });
    let e = await Engine.open({ dir, key, compaction: { auto: false } });
    setSliceBudget(0);
    const big = e.write(Array.from({ length: 2_000 }, (_, i) => put(`b${i}`, 1)));
    let during = 0;
    const small: Promise<void>[] = [];
    // Issued on the turns the big commit yields: each lands after it (a later sequence number).
    for (let t = 0; t < 5; t++) {
      await new Promise((r) => setImmediate(r));
      if (e.get("e", "b0") === undefined) during++;
      small.push(e.write([put(`s${t}`, 2), put("b7", 2)]));
    }
    const compacted = e.compact();
    await Promise.all([big, ...small, compacted]);
    expect(during).toBeGreaterThan(0); // the turns came while the big commit was not yet visible
    expect(Buffer.from(e.get("e", "b7")!.value).toString()).toMatch(/^b7:2/); // the later write wins
    const last = e.write(Array.from({ length: 500 }, (_, i) => put(`c${i}`, 3)));
    await e.close(); // waits for the write in flight
    await last;
    e = await Engine.open({ dir, key });
    expect(e.count("e")).toBe(2_000 + 5 + 500);
    expect(Buffer.from(e.get("e", "b7")!.value).toString()).toMatch(/^b7:2/);
    expect(Buffer.from(e.get("e", "c499")!.value).toString()).toMatch(/^c499:3/);
    await e.close();
  }, 60_000);

  it("a slow disk: a large commit's fdatasync and a compaction's segment fsync run on the thread pool, timers fire during them", async () => {
    // The real file I/O, each sync 40 ms slower (a busy disk): a sync on the event loop would hold it that long.
    const real = nodeFileIO();
    const slow = (f: (fd: number) => Promise<void>) => async (fd: number) => {
      await f.call(real, fd);
      await new Promise((r) => setTimeout(r, 40));
    };
    const syncs: string[] = [];
    const io: FileIO = Object.assign(Object.create(real) as FileIO, {
      datasyncAsync: (fd: number) => (syncs.push("datasync"), slow(real.datasyncAsync!)(fd)),
      fsyncAsync: (fd: number) => (syncs.push("fsync"), slow(real.fsyncAsync!)(fd)),
      writeAsync: undefined, // the journal's zero fill ahead off: its own fdatasyncs are not this test's
    });
    const put = (k: string): WriteOp => ({ op: "put", entity: "e", key: k, version: 1, value: Buffer.from(k.padEnd(300, ".")), terms: [] });
    const e = await Engine.open({ dir: path.join(tmp, "slow"), key, io, compaction: { auto: false } });
    try {
      const w = await ticksDuring(() => e.write(Array.from({ length: 1_000 }, (_, i) => put(`k${i}`))));
      expect(syncs).toEqual(["datasync"]);
      expect(w.ticks).toBeGreaterThanOrEqual(10); // ~40 ms of the sync's wait, in which the loop turned
      const c = await ticksDuring(() => e.compact());
      expect(syncs).toContain("fsync");
      expect(c.ticks).toBeGreaterThanOrEqual(10);
      expect(e.count("e")).toBe(1_000);
    } finally {
      await e.close();
    }
  });

  it("large commits sealed with no turn (nothing overdue) and no sync aside (relaxed): the writes after them still flush", async () => {
    // `sliced` then finishes inside the flush that called it, before its promise is returned: that promise
    // once became the commit's `syncing` after the run had ended, and every later write waited forever.
    const put = (k: string): WriteOp => ({ op: "put", entity: "e", key: k, version: 1, value: Buffer.from(k), terms: [] });
    const e = await Engine.open({ dir: path.join(tmp, "relaxed"), key, durability: "relaxed", compaction: { auto: false } });
    try {
      setSliceBudget(60_000); // never overdue: the whole group is sealed in the flush's own step
      for (let round = 0; round < 3; round++) {
        const writes = e.write(Array.from({ length: 200 }, (_, i) => put(`r${round}-${i}`)));
        const settled = await Promise.race([writes.then(() => "written"), new Promise((r) => setTimeout(r, 5_000, "stuck"))]);
        expect(settled).toBe("written");
      }
      expect(e.count("e")).toBe(600);
    } finally {
      await e.close();
    }
  });
});
