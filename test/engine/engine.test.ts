import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { FILE_HEADER_SIZE } from "../../src/runtime/format/format.js";
import { decodeFileHeader } from "../../src/runtime/format/frame.js";
import { renameWithRetry } from "../../src/runtime/platform/io.js";
import { scanJournal } from "../../src/runtime/storage/journal-reader.js";
import { StorePaths } from "../../src/runtime/format/filenames.js";
import { nodeFileIO } from "../../src/runtime/platform/io.js";
import { Keyring } from "../../src/runtime/crypto/keyring.js";
import { keys as keyProviders } from "../../src/runtime/crypto/keys.js";
import { TEST_KEY, valueFor } from "./helpers/model.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-engine-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const put = (key: string, n: number): Extract<WriteOp, { op: "put" }> => ({ op: "put", entity: "e", key, version: 1, value: valueFor(key, n), terms: [] });
const text = (e: Engine, k: string) => {
  const g = e.get("e", k);
  return g ? Buffer.from(g.value).toString() : undefined;
};

describe("engine", () => {
  it("a large commit group is written past the journal's preallocation without zeros ahead of it; small commits get preallocated space again; all replays", async () => {
    const dir = path.join(tmp, "direct");
    // The zero fill ahead off (an I/O without writeAsync), so that the file's size shows each commit's own bytes.
    const { writeAsync: _, ...io } = nodeFileIO();
    const e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false }, io });
    const journal = () => {
      const name = fs.readdirSync(dir).find((f) => f.startsWith("journal-"))!;
      return path.join(dir, name);
    };
    expect(fs.statSync(journal()).size).toBe(16 * 1024); // header + zeros (JOURNAL_PREALLOC_INITIAL)
    // ~2 MB in one batch: past the first MiB, written as it is.
    const big = Array.from({ length: 2000 }, (_, i) => ({ ...put(`b${i}`, 0), value: Buffer.alloc(1000, `b${i}#0#`) }));
    await e.write(big);
    const afterBig = fs.statSync(journal()).size;
    expect(afterBig).toBeGreaterThan(1024 * 1024);
    // The file ends where the group ends (its last bytes are the frame's tag, not zero fill).
    const tail = fs.readFileSync(journal()).subarray(afterBig - 32);
    expect(tail.some((b) => b !== 0)).toBe(true);
    // A small commit past the end extends the preallocation with zeros again.
    await e.write([put("small", 1)]);
    const afterSmall = fs.statSync(journal()).size;
    expect(afterSmall).toBeGreaterThanOrEqual(afterBig + 1024 * 1024);
    await e.close();
    const r = await Engine.open({ dir, key: TEST_KEY });
    expect(r.recovery.truncatedTail).toBeNull();
    expect(r.recovery.damaged).toEqual([]);
    expect(r.count("e")).toBe(2001);
    expect(text(r, "b1999")).toContain("b1999#0#");
    expect(text(r, "small")).toContain("small#1#");
    await r.close();
  });

  it("an open lets the event loop turn between its steps: a setImmediate queued before it runs before it resolves (issue 15)", async () => {
    const dir = path.join(tmp, "open-turns");
    const first = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    await first.write([put("a", 0), put("b", 0)]);
    await first.compact(); // a segment to load, and a journal to replay
    await first.write([put("c", 0)]);
    await first.close();
    let turned = 0;
    const tick = () => {
      turned++;
      if (turned < 100) setImmediate(tick);
    };
    setImmediate(tick);
    const e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    const atOpen = turned;
    turned = 100; // stop the chain
    // Turns after the lock, the keyring and manifest, the directory settled, the segment, the journals.
    expect(atOpen).toBeGreaterThanOrEqual(4);
    expect(text(e, "c")).toBeDefined();
    await e.close();
  });

  it("reads and writes go on while a compaction runs, and everything written is there afterwards and after reopen", async () => {
    const dir = path.join(tmp, "concurrent");
    const e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    for (let i = 0; i < 40; i++) await e.write(Array.from({ length: 250 }, (_, j) => put(`k${i * 250 + j}`, 0)));
    const compaction = e.compact();
    let during = 0;
    let compactionDone = false;
    void compaction.then(() => (compactionDone = true));
    // overwrite, delete and add while the segment is being written (compaction yields between blocks)
    for (let i = 0; i < 200 && !compactionDone; i++) {
      await e.write([put(`k${i}`, 1), { op: "delete", entity: "e", key: `k${5000 + i}` }, put(`new${i}`, 1)]);
      expect(text(e, `k${9000 + i}`)).toContain("#0#");
      during++;
    }
    await compaction;
    expect(during).toBeGreaterThan(0);
    const check = (x: Engine) => {
      for (let i = 0; i < during; i++) {
        expect(text(x, `k${i}`)).toContain("#1#");
        expect(x.has("e", `k${5000 + i}`)).toBe(false);
        expect(text(x, `new${i}`)).toContain("#1#");
      }
      expect(x.count("e")).toBe(10_000); // `during` deleted, `during` added
    };
    check(e);
    await e.close();
    const r = await Engine.open({ dir, key: TEST_KEY });
    check(r);
    await r.close();
  });

  it("relaxed durability acknowledges writes before fsync and still persists them on close and reopen", async () => {
    const dir = path.join(tmp, "relaxed");
    const e = await Engine.open({ dir, key: TEST_KEY, durability: "relaxed", relaxedSyncMs: 10 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => e.write([put(`r${i}`, i)])));
    await new Promise((r) => setTimeout(r, 30)); // the interval fsync runs
    await e.close();
    const r = await Engine.open({ dir, key: TEST_KEY });
    for (let i = 0; i < 100; i++) expect(text(r, `r${i}`)).toContain(`r${i}#${i}#`);
    await r.close();
  });

  it("automatic compaction runs once dead bytes pass the threshold and reclaims them", async () => {
    const dir = path.join(tmp, "auto");
    const e = await Engine.open({ dir, key: TEST_KEY, compaction: { minDeadBytes: 64 * 1024 } });
    for (let round = 0; round < 30; round++) await e.write(Array.from({ length: 100 }, (_, i) => put(`k${i}`, round)));
    await new Promise((r) => setTimeout(r, 50));
    await e.compact(); // waits for a running compaction, or runs one
    const st = e.stats();
    expect(st.deadBytes).toBe(0);
    expect(fs.readdirSync(dir).some((n) => n.startsWith("segment-"))).toBe(true);
    for (let i = 0; i < 100; i++) expect(text(e, `k${i}`)).toContain("#29#");
    await e.close();
  });

  it("a follower can tail the journal from the last offset it saw, frame by frame", async () => {
    const dir = path.join(tmp, "follow");
    const e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    await e.write([put("a", 1)]);
    const journal = path.join(dir, fs.readdirSync(dir).find((n) => n.startsWith("journal-"))!);
    // A follower holds the keyring's meta keys only: enough for keys and positions, not for values.
    const ring = await Keyring.load(nodeFileIO(), new StorePaths(dir), keyProviders.raw(TEST_KEY), "records", () => {});
    const keys = (id: number) => ring.meta(id);
    let bytes = new Uint8Array(fs.readFileSync(journal));
    const bound = decodeFileHeader(bytes, 0x4a).bound;
    const first = scanJournal(bytes, bound, 1, keys, true, FILE_HEADER_SIZE);
    expect(first.frames.map((f) => f.entries.map((x) => x.key))).toEqual([["a"]]);
    await e.write([put("b", 2), put("c", 3)]);
    await e.write([{ op: "delete", entity: "e", key: "a" }]);
    bytes = new Uint8Array(fs.readFileSync(journal));
    const next = scanJournal(bytes, bound, first.nextSeq, keys, true, first.end);
    expect(next.frames.map((f) => f.entries.map((x) => `${x.op}:${x.key}`))).toEqual([["put:b", "put:c"], ["delete:a"]]);
    expect(next.damage).toEqual([]);
    ring.destroy();
    await e.close();
  });

  it("renames retry with backoff on EPERM/EBUSY and give up after 8 retries, never falling back", () => {
    let calls = 0;
    const slept: number[] = [];
    renameWithRetry(
      () => {
        if (++calls < 4) throw Object.assign(new Error("busy"), { code: calls % 2 ? "EPERM" : "EBUSY" });
      },
      (ms) => slept.push(ms),
    );
    expect(calls).toBe(4);
    expect(slept).toEqual([10, 20, 40]);
    calls = 0;
    expect(() =>
      renameWithRetry(
        () => {
          calls++;
          throw Object.assign(new Error("held"), { code: "EPERM" });
        },
        () => {},
      ),
    ).toThrow("held");
    expect(calls).toBe(9);
    expect(() =>
      renameWithRetry(() => {
        throw Object.assign(new Error("gone"), { code: "ENOENT" });
      }),
    ).toThrow("gone");
  });

  it("rejects oversized keys, values and batches with E_LIMIT and writes nothing", async () => {
    const dir = path.join(tmp, "limits");
    const e = await Engine.open({ dir, key: TEST_KEY });
    await expect(e.write([{ ...put("x", 1), key: "k".repeat(2000) }])).rejects.toMatchObject({ code: "E_LIMIT" });
    await expect(e.write([{ ...put("x", 1), value: new Uint8Array(17 * 1024 * 1024) }])).rejects.toMatchObject({ code: "E_LIMIT" });
    const many = Array.from({ length: 3 }, (_, i) => ({ ...put(`b${i}`, 1), value: new Uint8Array(12 * 1024 * 1024) }));
    await expect(e.write(many)).rejects.toMatchObject({ code: "E_LIMIT" });
    expect(e.count("e")).toBe(0);
    // a lone surrogate cannot be encoded as UTF-8: it would come back as U+FFFD, another key
    await expect(e.write([{ ...put("x", 1), key: "bad\uD800key" }])).rejects.toMatchObject({ code: "E_USAGE" });
    await e.write([{ ...put("x", 1), key: "ok\uD83D\uDE00key" }]); // a surrogate pair is fine
    await e.close();
    const r = await Engine.open({ dir, key: TEST_KEY });
    expect([...r.keys("e")]).toEqual(["ok\uD83D\uDE00key"]);
    await r.close();
  });
});
