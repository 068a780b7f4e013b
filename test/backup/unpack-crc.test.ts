/**
 * The frame crcs restore's unpack checks on the way (storage/unpack-crc.ts) and the file crc it derives by
 * combining them (format/crc32-combine.ts): the backup file's crc must come out exactly as one crc32 pass over
 * its bytes, however the bytes are chunked and whatever damage they hold, and a frame is listed as checked
 * only when its crc matched, walking no further than a frame whose crc or length is wrong.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { crc32Combine } from "../../src/runtime/format/crc32-combine.js";
import { FILE_HEADER_SIZE, FRAME_HEADER_SIZE, SEGMENT_FOOTER_SIZE } from "../../src/runtime/format/format.js";
import { readFrameHeader } from "../../src/runtime/format/frame.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import { SegmentCrcWalk } from "../../src/runtime/storage/unpack-crc.js";
import { KEY, tempRoot, val } from "./helpers.js";

const { root, cleanup } = tempRoot("cellar-unpack-crc-");
afterAll(cleanup);

describe("crc32Combine", () => {
  it("gives the crc32 of a concatenation, for lengths across each byte digit and past 2^24", () => {
    for (const n of [0, 1, 3, 255, 256, 257, 4096, 65_535, 65_536, 65_537, 1_000_003, 16_777_215, 16_777_216, 20_000_001]) {
      const a = randomBytes(13);
      const b = randomBytes(n);
      expect(crc32Combine(crc32(a), crc32(b), n)).toBe(crc32(Buffer.concat([a, b])));
    }
    expect(crc32Combine(crc32(Buffer.alloc(0)), crc32(Buffer.from("abc")), 3)).toBe(crc32(Buffer.from("abc")));
  });
});

describe("SegmentCrcWalk", () => {
  let seg: Buffer;
  /** Every frame of the segment (blocks, then the index), by the file's own lengths. */
  const frames: { offset: number; length: number }[] = [];

  beforeAll(async () => {
    const dir = path.join(root, "store");
    const e = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
    for (let i = 0; i < 40; i++) await e.write([{ op: "put", entity: "e", key: `k${i}`, version: 1, value: val(randomBytes(30_000).toString("hex")), terms: [] }]);
    await e.compact();
    await e.close();
    const name = fs.readdirSync(dir).find((n) => n.startsWith("segment-"))!;
    seg = fs.readFileSync(path.join(dir, name));
    for (let o = FILE_HEADER_SIZE; o < seg.length - SEGMENT_FOOTER_SIZE; ) {
      const length = FRAME_HEADER_SIZE + readFrameHeader(seg.subarray(o)).length;
      frames.push({ offset: o, length });
      o += length;
    }
  });

  /** Feed `b` to a walk in pieces of the sizes `sizes` gives, after a prefix of the backup file with crc `start`. */
  function walk(b: Buffer, sizes: () => number, start = 0): { crc: number; checked: Map<number, number> } {
    const w = new SegmentCrcWalk(b.length);
    let crc = start;
    for (let i = 0; i < b.length; ) {
      const n = Math.min(b.length - i, Math.max(1, sizes()));
      crc = w.feed(b.subarray(i, i + n), crc);
      i += n;
    }
    return { crc: w.end(crc), checked: w.checked };
  }

  const chunkings: [string, () => number][] = [
    ["1 MiB", () => 1024 * 1024],
    ["1 byte", () => 1],
    ["7 bytes", () => 7],
    ["random", () => Math.floor(Math.random() * 70_000)],
  ];

  it("lists every frame and gives the crc of one pass, however the bytes are chunked", () => {
    expect(frames.length).toBeGreaterThan(5);
    const prefix = randomBytes(100);
    for (const [, sizes] of chunkings) {
      const { crc, checked } = walk(seg, sizes, crc32(prefix));
      expect(crc).toBe(crc32(Buffer.concat([prefix, seg])));
      expect([...checked]).toEqual(frames.map((f) => [f.offset, f.length]));
    }
  });

  it("stops at a frame whose crc does not match (its length is not trusted), the file crc still exact", () => {
    const k = 3;
    const bad = Buffer.from(seg);
    bad[frames[k]!.offset + FRAME_HEADER_SIZE + 100]! ^= 0x01;
    for (const [, sizes] of chunkings) {
      const { crc, checked } = walk(bad, sizes);
      expect(crc).toBe(crc32(bad));
      expect([...checked]).toEqual(frames.slice(0, k).map((f) => [f.offset, f.length]));
    }
  });

  it("stops at a length field that runs past the footer or is cut, the file crc still exact", () => {
    const k = 2;
    const long = Buffer.from(seg);
    long.writeUInt32LE(seg.length, frames[k]!.offset + 4);
    const cut = seg.subarray(0, frames[k]!.offset + 6); // cut inside a frame's length field
    const short = seg.subarray(0, FILE_HEADER_SIZE + 3); // too short for any frame
    for (const [, sizes] of chunkings) {
      const a = walk(long, sizes);
      expect(a.crc).toBe(crc32(long));
      expect([...a.checked]).toEqual(frames.slice(0, k).map((f) => [f.offset, f.length]));
      const b = walk(cut, sizes);
      expect(b.crc).toBe(crc32(cut));
      expect(b.checked.size).toBeLessThanOrEqual(k);
      const c = walk(short, sizes);
      expect([c.crc, c.checked.size]).toEqual([crc32(short), 0]);
    }
  });
});
