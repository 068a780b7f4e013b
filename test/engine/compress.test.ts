/**
 * Segment blocks are deflated by fflate and inflated by Node's zlib (src/runtime/format/compress.ts): the two must
 * agree on every input, and the declared length must bound what inflate may produce.
 */
import fc from "fast-check";
import { deflateSync } from "fflate";
import { describe, expect, it } from "vitest";
import { DecodeError } from "../../src/runtime/format/bytes.js";
import { compress, decompress } from "../../src/runtime/format/compress.js";

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
