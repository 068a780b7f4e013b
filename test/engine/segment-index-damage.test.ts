// A plaintext segment index damaged under a matching checksum (a crc32 is no authentication): reads that
// depend on it report E_CORRUPT every time instead of answering from a half-built term index or listing
// keys that a read then does not find (issue 19, found by the store fuzzer: query() returned undefined).
import { crc32 } from "node:zlib";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TaskEntity } from "../../src/generated/examples/tasks/v1/tasks_cellar.js";
import { isCellarError } from "../../src/runtime/errors.js";
import { openStore } from "../../src/runtime/typed/store.js";
import { setSegmentWriteVersion } from "../../src/runtime/storage/segment.js";

// These edit a version 3 index frame (one frame of every slot), as the previous release wrote it: still read.
beforeAll(() => setSegmentWriteVersion(3));
afterAll(() => setSegmentWriteVersion(4));

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const KEYS = ["t-a", "t-b", "t-c", "t-d"];

async function compactedStore(): Promise<{ dir: string; segment: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-segidx-"));
  dirs.push(dir);
  const s = await openStore({ tasks: TaskEntity }, { dir, encryption: "none", compaction: { auto: false } });
  for (const id of KEYS) await s.tasks.put({ id, title: id, status: 1, tags: ["x"] });
  await s.compact();
  await s.close();
  const segment = fs.readdirSync(dir).find((n) => n.startsWith("segment-"))!;
  return { dir, segment: path.join(dir, segment) };
}

/** Edit the index plaintext of a segment in place (same length) and recompute the index frame's crc32. */
function editIndex(file: string, edit: (plain: Buffer, slotPos: (i: number) => number) => void): void {
  const b = fs.readFileSync(file);
  const footer = b.length - 24;
  const at = Number(b.readBigUInt64LE(footer));
  const len = b.readUInt32LE(footer + 8);
  const plain = b.subarray(at + 24, at + len);
  const table = plain.length - 4 * (KEYS.length + 1); // a slot per task, and `~indexes`' record of `tasks` (last)
  edit(plain, (i) => plain.readUInt32LE(table + 4 * i));
  b.writeUInt32LE(crc32(b.subarray(at + 4, at + len)), at);
  fs.writeFileSync(file, b);
}

async function outcome(f: () => Promise<unknown>): Promise<string> {
  try {
    const v = await f();
    return Array.isArray(v) && v.some((x) => x === undefined) ? "array with undefined" : "value";
  } catch (e) {
    return isCellarError(e) ? e.code : `untyped ${(e as Error).name}`;
  }
}

describe("damaged plaintext segment index", () => {
  it("a term id out of range: every query reports E_CORRUPT, the first and the next ones alike", async () => {
    const { dir, segment } = await compactedStore();
    // The third slot's last byte is its term id (a one-byte varint): point it past the term table.
    editIndex(segment, (plain, slotPos) => {
      plain[slotPos(3) - 1] = 0x7f;
    });
    const s = await openStore({ tasks: TaskEntity }, { dir, encryption: "none" });
    try {
      expect(await outcome(() => s.tasks.query({ status: 1 }))).toBe("E_CORRUPT");
      // The term index was not left half-built by the first failure.
      expect(await outcome(() => s.tasks.query({ status: 1 }))).toBe("E_CORRUPT");
      expect(await outcome(() => s.tasks.query({ tags: "x" }))).toBe("E_CORRUPT");
      // A record whose slot is intact is still read.
      expect((await s.tasks.get("t-a"))?.title).toBe("t-a");
    } finally {
      await s.close();
    }
  });

  it("keys out of order: walks report E_CORRUPT instead of listing a key that get() cannot find", async () => {
    const { dir, segment } = await compactedStore();
    // The first slot's key `t-a` becomes `t-z`: it now sorts after the keys that follow it.
    editIndex(segment, (plain, slotPos) => {
      const p = slotPos(0);
      expect(plain.toString("utf8", p + 1, p + 4)).toBe("t-a");
      plain[p + 3] = "z".charCodeAt(0);
    });
    const s = await openStore({ tasks: TaskEntity }, { dir, encryption: "none" });
    try {
      expect(await outcome(() => s.tasks.keys())).toBe("E_CORRUPT");
      expect(await outcome(() => s.tasks.list())).toBe("E_CORRUPT");
      expect(await outcome(() => s.tasks.query({ status: 1 }))).toBe("E_CORRUPT");
      expect(await outcome(async () => {
        const out = [];
        for await (const t of s.tasks.iterate()) out.push(t);
        return out;
      })).toBe("E_CORRUPT");
    } finally {
      await s.close();
    }
  });
});
