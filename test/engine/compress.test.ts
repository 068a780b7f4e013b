/**
 * Segment blocks are deflated by fflate and inflated by Node's zlib (src/runtime/format/compress.ts): the two must
 * agree on every input, and the declared length must bound what inflate may produce. A segment writer deflates
 * its blocks on a worker thread (src/runtime/platform/deflate-aside.ts): the same bytes, and a failed worker
 * costs nothing but speed.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { deflateSync } from "fflate";
import { afterAll, describe, expect, it } from "vitest";
import { DecodeError } from "../../src/runtime/format/bytes.js";
import { compress, decompress } from "../../src/runtime/format/compress.js";
import { ASIDE_MIN_BYTES, compressAside, deflateAsideStats, stopDeflateWorker } from "../../src/runtime/platform/deflate-aside.js";
import { Engine } from "../../src/runtime/storage/engine.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe("compress / decompress", () => {
  it("zlib inflates exactly what fflate deflated, at every level, for any bytes (and for text-like bytes)", () => {
    const textLike = fc.array(fc.constantFrom(..."the quick brown fox jumps over the lazy dog 0123456789{}\":,"), { maxLength: 5000 }).map((cs) => new TextEncoder().encode(cs.join("")));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 5000 }), textLike), fc.integer({ min: 0, max: 9 }), (bytes, level) => {
        const packed = compress(bytes, level as 0);
        expect(Buffer.from(decompress(packed, bytes.length)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("a stream that inflates to more or fewer bytes than declared is a DecodeError, and the declared length is bounded first", () => {
    const plain = new Uint8Array(10_000).fill(7);
    const body = deflateSync(plain);
    const lie = (n: number) => {
      const out = new Uint8Array(4 + body.length);
      new DataView(out.buffer).setUint32(0, n, true);
      out.set(body, 4);
      return out;
    };
    expect(() => decompress(lie(100), 1 << 20)).toThrow(DecodeError); // would inflate past 100 bytes
    expect(() => decompress(lie(20_000), 1 << 20)).toThrow(/inflated 10000 bytes, header said 20000/);
    expect(() => decompress(lie(0xffffffff), 1 << 20)).toThrow(/exceeds bound/);
    expect(() => decompress(lie(10_000).subarray(0, 20), 1 << 20)).toThrow(DecodeError); // truncated stream
    expect(Buffer.from(decompress(lie(10_000), 1 << 20)).equals(Buffer.from(plain))).toBe(true);
  });
});

describe("deflate on a worker thread", () => {
  const text = (n: number, seed: number) => new TextEncoder().encode(Array.from({ length: n }, (_, i) => `record ${(i * 7919 + seed) % 1000} of task ${seed}; `).join("").slice(0, n));

  it("gives exactly compress()'s bytes, for blocks below and above the worker's threshold and for a view into a larger buffer", async () => {
    const before = deflateAsideStats().aside;
    const big = text(200_000, 1);
    const inputs = [text(100, 2), text(ASIDE_MIN_BYTES - 1, 3), text(ASIDE_MIN_BYTES, 4), text(64 * 1024, 5), big.subarray(1000, 1000 + 40_000), crypto.getRandomValues(new Uint8Array(30_000))];
    const outs = await Promise.all(inputs.map((b) => compressAside(b)));
    for (const [i, b] of inputs.entries()) expect(Buffer.from(outs[i]!).equals(Buffer.from(compress(b)))).toBe(true);
    expect(deflateAsideStats().aside - before).toBe(4); // the four of at least ASIDE_MIN_BYTES went to the worker
  });

  it("a worker that ends with blocks in flight: they are deflated here, the next ones start a new worker; a worker out of use leaves everything here", async () => {
    const blocks = Array.from({ length: 8 }, (_, i) => text(50_000, 10 + i));
    const pending = blocks.map((b) => compressAside(b));
    await stopDeflateWorker(); // as if it had died with all eight in flight
    const outs = await Promise.all(pending);
    for (const [i, b] of blocks.entries()) expect(Buffer.from(outs[i]!).equals(Buffer.from(compress(b)))).toBe(true);
    let before = deflateAsideStats().aside;
    expect(Buffer.from(await compressAside(blocks[0]!)).equals(Buffer.from(compress(blocks[0]!)))).toBe(true);
    expect(deflateAsideStats().aside).toBe(before + 1); // a new worker
    await stopDeflateWorker(false);
    before = deflateAsideStats().aside;
    expect(Buffer.from(await compressAside(blocks[1]!)).equals(Buffer.from(compress(blocks[1]!)))).toBe(true);
    expect(deflateAsideStats()).toEqual({ aside: before, broken: true });
    await stopDeflateWorker(true);
  });

  it("a compaction deflates its segment's blocks on the worker, and every record reads back", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-deflate-"));
    dirs.push(dir);
    const e = await Engine.open({ dir, key: Buffer.alloc(32, 9), compaction: { auto: false } });
    const value = (i: number) => text(300, i);
    for (let i = 0; i < 2000; i += 500) await e.write(Array.from({ length: 500 }, (_, j) => ({ op: "put" as const, entity: "rec", key: `k${i + j}`, version: 1, value: value(i + j), terms: [] })));
    const before = deflateAsideStats().aside;
    await e.compact();
    expect(deflateAsideStats().aside - before).toBeGreaterThanOrEqual(8); // 2,000 × ~300 bytes: about ten 64 KiB blocks
    await e.close();
    const again = await Engine.open({ dir, key: Buffer.alloc(32, 9), verifyOnOpen: true });
    for (let i = 0; i < 2000; i++) expect(Buffer.from(again.get("rec", `k${i}`)!.value).equals(Buffer.from(value(i)))).toBe(true);
    await again.close();
  });
});
