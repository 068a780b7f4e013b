/**
 * The journal's preallocation grows with the store (docs/FORMAT.md, "Journal"): a new store starts with
 * a 16 KiB journal that doubles as it fills, so a store of a hundred small records stays under 64 KiB on
 * disk, while a compaction's new journal starts as large as the one it replaces (up to 1 MiB) and a
 * journal an earlier version preallocated to 1 MiB opens and keeps its size.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { TaskStatus } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { nodeFileIO } from "../../src/runtime/platform/io.js";
import { TEST_KEY, valueFor } from "./helpers/model.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-journal-growth-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const KiB = 1024;

/** Every file below `dir`: lengths and the blocks the file system allocated. */
function usage(dir: string): { apparent: number; allocated: number } {
  let apparent = 0;
  let allocated = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const st = fs.statSync(path.join(e.parentPath, e.name));
    apparent += st.size;
    allocated += st.blocks * 512;
  }
  return { apparent, allocated };
}

const journals = (dir: string) => fs.readdirSync(dir).filter((f) => f.startsWith("journal-")).sort();
const put = (key: string, bytes: number): WriteOp => ({ op: "put", entity: "e", key, version: 1, value: Buffer.alloc(bytes, key), terms: [] });

describe("journal preallocation", () => {
  it("a store of 100 small records, each put durably on its own, takes at most 64 KiB on disk, and reads back", async () => {
    const dir = path.join(tmp, "small");
    const key = new Uint8Array(32).fill(3);
    let store = await openStore({ dir, key, cleanup: false });
    for (let i = 0; i < 100; i++) await store.tasks.put({ id: `task-${i}`, title: `Water the plants, week ${i}`, status: TaskStatus.TODO });
    await store.close();
    const u = usage(dir);
    expect(u.apparent).toBeLessThanOrEqual(64 * KiB);
    expect(u.allocated).toBeLessThanOrEqual(64 * KiB);
    store = await openStore({ dir, key, cleanup: false });
    expect((await store.tasks.get("task-99"))?.title).toBe("Water the plants, week 99");
    expect(await store.tasks.count()).toBe(100);
    await store.close();
  });

  it("the journal doubles as it fills; a compaction's new journal starts as large as the old one (up to 1 MiB); all replays", async () => {
    const dir = path.join(tmp, "grow");
    const e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    const size = () => fs.statSync(path.join(dir, journals(dir).at(-1)!)).size;
    expect(size()).toBe(16 * KiB);
    const seen = new Set([size()]);
    for (let i = 0; i < 300; i++) {
      await e.write([put(`k${i}`, 1000)]);
      seen.add(size());
    }
    // ~300 KiB of frames, one at a time: 16 KiB doubled to 512 KiB, one extension per doubling (from 64 KiB on,
    // written ahead of the tail once a quarter of the step is left: 512 KiB → 1 MiB has not started).
    expect([...seen]).toEqual([16, 32, 64, 128, 256, 512].map((k) => k * KiB));
    await e.compact();
    expect(journals(dir)).toHaveLength(1);
    expect(size()).toBe(512 * KiB);
    await e.write([put("after", 10)]);
    await e.close();
    const r = await Engine.open({ dir, key: TEST_KEY });
    expect(r.recovery.truncatedTail).toBeNull();
    expect(r.recovery.damaged).toEqual([]);
    expect(r.count("e")).toBe(301);
    expect(Buffer.from(r.get("e", "k299")!.value).subarray(0, 4).toString()).toBe("k299");
    await r.close();
  });

  it("after a bulk load wrote the journal past its preallocation, the next small commit extends it by at most 1 MiB of zeros", async () => {
    const dir = path.join(tmp, "after-bulk");
    // The extension on the commit's path (the fill ahead off: an I/O without writeAsync, or after it failed).
    const { writeAsync: _, ...io } = nodeFileIO();
    const e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false }, io });
    const size = () => fs.statSync(path.join(dir, journals(dir).at(-1)!)).size;
    // Incompressible values (a bulk group ≥ 64 KiB is written past the end as it is): ~3 MiB of frames.
    for (let b = 0; b < 3; b++) {
      await e.write(Array.from({ length: 256 }, (_, i) => ({ ...put(`b${b}-${i}`, 0), value: new Uint8Array(crypto.getRandomValues(new Uint8Array(4096))) })));
    }
    const bulk = size();
    expect(bulk).toBeGreaterThan(3 * 1024 * KiB);
    await e.write([put("small", 100)]);
    // A doubling step would write as many zeros as the journal holds, on this commit's path (issue 15).
    expect(size() - bulk).toBeLessThanOrEqual(1024 * KiB);
    expect(size()).toBeGreaterThan(bulk);
    await e.close();
    const r = await Engine.open({ dir, key: TEST_KEY });
    expect(r.recovery.truncatedTail).toBeNull();
    expect(r.count("e")).toBe(3 * 256 + 1);
    await r.close();
  });

  it("a journal an earlier version preallocated to 1 MiB opens, keeps its size and takes new writes", async () => {
    const dir = path.join(tmp, "old");
    const e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    await e.write([{ op: "put", entity: "e", key: "a", version: 1, value: valueFor("a", 0), terms: [] }]);
    await e.close();
    // The bytes the earlier writer left: the same header, frames and end record, then zeros to 1 MiB.
    const file = path.join(dir, journals(dir)[0]!);
    fs.truncateSync(file, 1024 * KiB);
    const r = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    expect(r.recovery.truncatedTail).toBeNull();
    expect(r.recovery.damaged).toEqual([]);
    await r.write([{ op: "put", entity: "e", key: "b", version: 1, value: valueFor("b", 0), terms: [] }]);
    await r.close();
    expect(fs.statSync(file).size).toBe(1024 * KiB);
    const again = await Engine.open({ dir, key: TEST_KEY });
    expect(again.count("e")).toBe(2);
    await again.close();
  });

  it("extensions of 64 KiB or more are written ahead of the tail on the thread pool, never on a commit's path; all replays", async () => {
    const dir = path.join(tmp, "ahead");
    const real = nodeFileIO();
    const onPath: number[] = []; // zero fills written by a commit (synchronous writes of 16 KiB or more)
    let ahead = 0;
    const io = {
      ...real,
      write(fd: number, data: Uint8Array, position: number) {
        if (data.length >= 16 * KiB) onPath.push(data.length);
        real.write(fd, data, position);
      },
      writeAsync(fd: number, data: Uint8Array, position: number) {
        ahead += data.length;
        return real.writeAsync!(fd, data, position);
      },
    };
    const e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false }, io });
    onPath.length = 0; // the new journal's own 16 KiB
    for (let i = 0; i < 600; i++) await e.write([put(`k${i}`, 1000)]);
    await e.close();
    // ~630 KiB of frames: 16 → 32 and 32 → 64 KiB on the commit's path; 64 KiB → 1 MiB ahead (64 + 128 + 256 + 512 KiB).
    expect(onPath).toEqual([16 * KiB, 32 * KiB]);
    expect(ahead).toBe((64 + 128 + 256 + 512) * KiB);
    expect(fs.statSync(path.join(dir, journals(dir)[0]!)).size).toBe(1024 * KiB);
    const r = await Engine.open({ dir, key: TEST_KEY });
    expect(r.recovery.truncatedTail).toBeNull();
    expect(r.recovery.damaged).toEqual([]);
    expect(r.count("e")).toBe(600);
    await r.close();
  });

  it("a bulk load's large groups, written past the journal's end, start no fill ahead (the next group would wait for zeros it writes over)", async () => {
    const dir = path.join(tmp, "bulk-no-ahead");
    const real = nodeFileIO();
    let ahead = 0;
    const io = {
      ...real,
      writeAsync(fd: number, data: Uint8Array, position: number) {
        ahead += data.length;
        return real.writeAsync!(fd, data, position);
      },
    };
    const e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false }, io });
    for (let b = 0; b < 12; b++) await e.write(Array.from({ length: 200 }, (_, i) => put(`b${b}-${i}`, 1000))); // ~200 KB a group
    expect(ahead).toBe(0);
    await e.close();
    const r = await Engine.open({ dir, key: TEST_KEY });
    expect(r.count("e")).toBe(2400);
    await r.close();
  });

  it("a commit that would pass a fill ahead still running waits for it (a slow disk): no frame is written over, all replays", async () => {
    const dir = path.join(tmp, "ahead-slow");
    const real = nodeFileIO();
    let fills = 0;
    const io = {
      ...real,
      async writeAsync(fd: number, data: Uint8Array, position: number) {
        fills++;
        await new Promise((r) => setTimeout(r, 200)); // each chunk of zeros 200 ms late: commits catch up with the fill
        return real.writeAsync!(fd, data, position);
      },
    };
    const e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false }, io });
    await Promise.all(Array.from({ length: 20 }, (_, i) => e.write([put(`a${i}`, 1000)]))); // ~21 KiB: a 64 KiB journal
    let longest = 0;
    for (let i = 0; i < 120; i++) {
      const t = performance.now();
      await e.write([put(`k${i}`, 1000)]); // past 64 KiB while the fill to 128 KiB runs, and on
      longest = Math.max(longest, performance.now() - t);
    }
    expect(fills).toBeGreaterThan(0);
    expect(longest).toBeGreaterThan(50); // a commit waited for a fill
    await e.close();
    const r = await Engine.open({ dir, key: TEST_KEY });
    expect(r.recovery.truncatedTail).toBeNull();
    expect(r.recovery.damaged).toEqual([]);
    expect(r.count("e")).toBe(140);
    for (const k of ["a0", "a19", "k0", "k60", "k119"]) expect(Buffer.from(r.get("e", k)!.value).subarray(0, k.length).toString()).toBe(k);
    await r.close();
  });
});
