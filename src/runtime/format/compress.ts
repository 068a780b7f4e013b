/**
 * Raw DEFLATE. A compressed payload is `u32 LE plaintext length ‖ deflate stream`: knowing the size lets
 * inflate allocate once, and the length is bounded before anything is allocated.
 *
 * Compression is fflate's `deflateSync`. Decompression is Node's native zlib (`inflateRawSync`, the same
 * DEFLATE format, RFC 1951): measured here on a 64 KiB segment block of task records, fflate's `inflateSync`
 * took 5–10 ms in a fresh process and ~2.4 ms once warm, zlib ~0.9 ms; reading a block is on the path of a
 * cold open's first record and of every block cache miss. fflate stays the compressor: compression runs in
 * compaction, off the commit path, and its level-4 output is what FORMAT.md documents.
 */
import { inflateRawSync } from "node:zlib";
import { deflateSync } from "fflate";
import { DecodeError } from "./bytes.js";

/**
 * Level 4 by default: measured here on task records, fflate level 4 deflates ~1.6x faster than level 6 for a
 * ratio within 5% of it, and its output inflates as fast (level 1 output inflated ~7x slower).
 */
export const DEFLATE_LEVEL = 4;

export function compress(plain: Uint8Array, level: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 = DEFLATE_LEVEL): Uint8Array {
  const body = deflateSync(plain, { level });
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, plain.length, true);
  out.set(body, 4);
  return out;
}

export function decompress(data: Uint8Array, maxLength: number): Uint8Array {
  if (data.length < 4) throw new DecodeError("compressed payload too short");
  const n = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
  if (n > maxLength) throw new DecodeError(`declared plaintext length ${n} exceeds bound ${maxLength}`);
  let out: Uint8Array;
  try {
    // maxOutputLength bounds the allocation by the declared length: a stream that inflates to more fails.
    // One output chunk of the declared size: no chunk list to concatenate (measured 58 vs 73 µs per 64 KiB block).
    out = inflateRawSync(data.subarray(4), { maxOutputLength: Math.max(n, 1), chunkSize: Math.max(n, 64) });
  } catch {
    throw new DecodeError("invalid deflate stream");
  }
  if (out.length !== n) throw new DecodeError(`inflated ${out.length} bytes, header said ${n}`);
  return out;
}
