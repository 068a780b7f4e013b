/**
 * A follower engine (storage/follower.ts) changes no file, whatever it finds (leftovers open would remove, a
 * torn tail open would cut), tells a frame being written ("not yet") from damage, and keeps reading files the
 * writer unlinked.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { TEST_KEY, valueFor } from "../engine/helpers/model.js";
import { mirror, snapshot, view } from "./helpers/follower-engine.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-follower-files-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const put = (key: string, n: number): WriteOp => ({ op: "put", entity: "e", key, version: 1, value: valueFor(key, n), terms: [] });
const journals = (dir: string) => fs.readdirSync(dir).filter((n) => n.endsWith(".log")).sort();
/** Offset of the single journal's tail (its end record), from the engine's stats. */
const tailOf = (e: Engine) => 32 + e.stats().journalBytes;

describe("a follower changes no file", () => {
  it("leaves leftovers, a torn tail and a superseded journal as they are, where open would act on each", async () => {
    const dir = path.join(tmp, "untouched");
    const w = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    for (let i = 0; i < 20; i++) await w.write([put(`k${i}`, i)]);
    const old = journals(dir)[0]!;
    const oldBytes = fs.readFileSync(path.join(dir, old));
    await w.compact();
    for (let i = 20; i < 30; i++) await w.write([put(`k${i % 25}`, i)]);
    const tail = tailOf(w);
    await w.close();
    // Leftovers: a manifest temp, a journal the manifest no longer names, garbage where the end record was.
    fs.writeFileSync(path.join(dir, "MANIFEST.tmp"), "half a manifest");
    fs.writeFileSync(path.join(dir, old), oldBytes);
    const last = path.join(dir, journals(dir).at(-1)!);
    const fd = fs.openSync(last, "r+");
    fs.writeSync(fd, Buffer.alloc(48, 0xab), 0, 48, tail);
    fs.closeSync(fd);
    const before = snapshot(dir);

    const f = await Engine.openFollower({ dir, key: TEST_KEY });
    await f.refresh();
    expect(view(f).size).toBe(25);
    expect(Buffer.from(f.get("e", "k3")!.value).toString()).toBe(Buffer.from(valueFor("k3", 28)).toString());
    expect(f.recovery).toEqual({ truncatedTail: null, damaged: [], removedFiles: [], created: false });
    await f.close();
    expect(snapshot(dir)).toEqual(before);

    // The same directory opened by a writer: each of them acted on (so the check above could fail).
    const again = await Engine.open({ dir, key: TEST_KEY });
    expect(again.recovery.removedFiles).toEqual(expect.arrayContaining(["MANIFEST.tmp", old]));
    expect(again.recovery.truncatedTail).not.toBeNull();
    expect(view(again).size).toBe(25);
    await again.close();
  });

  it("takes a frame being written for 'not yet': no damage, no change, and the commit once the write completes", async () => {
    const dir = path.join(tmp, "torn");
    const w = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    for (let i = 0; i < 5; i++) await w.write([put(`k${i}`, i)]);
    const at = tailOf(w);
    await w.write([put("k1", 100), put("new", 100)]);
    const end = tailOf(w) + 32; // the frame and the end record after it
    await w.close();
    const file = path.join(dir, journals(dir)[0]!);
    const whole = fs.readFileSync(file).subarray(at, end);
    const fd = fs.openSync(file, "r+");
    try {
      // Half the frame written, the rest still the zeros of preallocation: a pwrite in progress.
      const partial = Buffer.alloc(whole.length);
      whole.copy(partial, 0, 0, whole.length >> 1);
      fs.writeSync(fd, partial, 0, partial.length, at);
      const before = snapshot(dir);
      const f = await Engine.openFollower({ dir, key: TEST_KEY });
      const events = mirror(f);
      expect(f.lastSeq).toBe(5);
      expect(await f.refresh()).toBe(5);
      expect(f.has("e", "new")).toBe(false);
      expect(f.recovery.damaged).toEqual([]);
      expect(f.recovery.truncatedTail).toBeNull();
      expect(snapshot(dir)).toEqual(before);
      // A header whose checksum does not match yet: the same.
      fs.writeSync(fd, Buffer.from(whole.subarray(0, 40)), 0, 40, at);
      expect(await f.refresh()).toBe(5);
      // The write completes: the commit is applied and reported once, with its seq.
      fs.writeSync(fd, whole, 0, whole.length, at);
      expect(await f.refresh()).toBe(6);
      expect(Buffer.from(f.get("e", "new")!.value).toString()).toBe(Buffer.from(valueFor("new", 100)).toString());
      expect(Buffer.from(f.get("e", "k1")!.value).toString()).toBe(Buffer.from(valueFor("k1", 100)).toString());
      expect(events.commits).toBe(1);
      expect(events.records).toEqual(view(f));
      expect(events.problems).toEqual([]);
      await f.close();
    } finally {
      fs.closeSync(fd);
    }
  });

  it("never reads past a frame being written, even when a later one is already whole (no resync at the tail)", async () => {
    const dir = path.join(tmp, "torn-middle");
    const w = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    for (let i = 0; i < 3; i++) await w.write([put(`k${i}`, i)]);
    const at = tailOf(w);
    await w.write([put("first", 1)]);
    const mid = tailOf(w);
    await w.write([put("second", 2)]);
    await w.close();
    const file = path.join(dir, journals(dir)[0]!);
    const first = fs.readFileSync(file).subarray(at, mid);
    const fd = fs.openSync(file, "r+");
    try {
      // The pages of one pwrite reach a reader in any order: the first frame's second half not yet there.
      fs.writeSync(fd, Buffer.alloc(first.length - 40), 0, first.length - 40, at + 40);
      const f = await Engine.openFollower({ dir, key: TEST_KEY });
      const events = mirror(f);
      expect(await f.refresh()).toBe(3);
      expect(f.has("e", "second")).toBe(false);
      expect(f.recovery.damaged).toEqual([]);
      fs.writeSync(fd, first, 0, first.length, at);
      expect(await f.refresh()).toBe(5);
      expect(events.commits).toBe(2);
      expect(events.records).toEqual(view(f));
      expect(events.problems).toEqual([]);
      await f.close();
    } finally {
      fs.closeSync(fd);
    }
  });

  it("keeps reading records in files the writer unlinked, until its refresh moves to the new ones", async () => {
    const dir = path.join(tmp, "unlinked");
    const w = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    for (let i = 0; i < 10; i++) await w.write([put(`k${i}`, i)]);
    const f = await Engine.openFollower({ dir, key: TEST_KEY });
    const first = journals(dir)[0]!;
    await w.compact();
    await w.write([put("k0", 50)]);
    expect(fs.existsSync(path.join(dir, first))).toBe(false);
    f.cache.clear(); // nothing read from memory: the value comes from the unlinked journal
    expect(Buffer.from(f.get("e", "k4")!.value).toString()).toBe(Buffer.from(valueFor("k4", 4)).toString());
    // Calls while a refresh runs share the next one, which starts after it and sees everything written before them.
    const running = f.refresh();
    const [second, third] = [f.refresh(), f.refresh()];
    expect(second).toBe(third);
    expect(second).not.toBe(running);
    expect(await Promise.all([running, second, third])).toEqual([w.lastSeq, w.lastSeq, w.lastSeq]);
    expect(view(f)).toEqual(view(w));
    await f.close();
    await w.close();
  });
});
