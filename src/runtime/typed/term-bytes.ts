/**
 * A Timestamp or Duration index term built from its numbers (index-keys.ts `singleTerm` calls it): the same string
 * as `prefix + encodeComponent(kind, value)`, made as one flat Latin-1 string without bigint arithmetic or string
 * concatenation. A record's terms are kept with its location, so a term is one string, not a tree of pieces.
 */
import type { SliceableBuffer } from "../format/bytes.js";

/** Room for a prefix (`"\u0001" + id + "\u0000"`, ids of ≤ 40 characters) and a 24-digit component. */
const termBytes = Buffer.alloc(64) as SliceableBuffer;
const HEX_CODES = Uint8Array.from("0123456789abcdef", (c) => c.charCodeAt(0));
/** The 24 hex digits' char codes, filled by {@link digits}. */
const d = new Uint8Array(24);

function hex8Into(b: Uint8Array, at: number, n: number): void {
  for (let i = 7; i >= 0; i--) {
    b[at + i] = HEX_CODES[n & 15]!;
    n >>>= 4;
  }
}

/**
 * `prefix` and the 24 hex digits of a Timestamp/Duration (docs/FORMAT.md, "Index terms": seconds as a signed 64-bit
 * value with its sign bit flipped, then nanos, a Duration's sign-flipped too), or undefined when seconds are past
 * ±2^53 or not a safe integer, or the prefix does not fit or is not Latin-1: the caller encodes those the general way.
 * Seconds within ±2^53 (every real date) are split into 32-bit halves as numbers. The prefixes of ids of one to three
 * characters (field numbers up to 999) are made by one `String.fromCharCode` of every code (~55 ns; a Buffer's
 * `latin1Slice`, a call into the runtime, took ~100 ns), others from the bytes.
 */
export function secondsNanosTerm(prefix: string, kind: "timestamp" | "duration", t: { seconds?: unknown; nanos?: number }): string | undefined {
  const sec = t.seconds ?? 0n;
  // Number() of a bigint past ±2^53 is not a safe integer (it rounds to 2^53 or beyond): those go the general way.
  const s = typeof sec === "bigint" || typeof sec === "number" ? Number(sec) : NaN;
  const p = prefix.length;
  if (!Number.isSafeInteger(s) || p > termBytes.length - 24) return undefined;
  const hi = Math.floor(s / 4294967296);
  hex8Into(d, 0, (hi ^ 0x80000000) >>> 0);
  hex8Into(d, 8, (s - hi * 4294967296) >>> 0);
  const nanos = t.nanos ?? 0;
  hex8Into(d, 16, kind === "timestamp" ? nanos >>> 0 : (nanos ^ 0x80000000) >>> 0);
  const c0 = prefix.charCodeAt(0);
  const c1 = prefix.charCodeAt(1);
  const c2 = prefix.charCodeAt(2);
  const c3 = prefix.charCodeAt(3);
  const c4 = prefix.charCodeAt(4);
  if (p === 3) {
    return String.fromCharCode(c0, c1, c2, d[0]!, d[1]!, d[2]!, d[3]!, d[4]!, d[5]!, d[6]!, d[7]!, d[8]!, d[9]!, d[10]!, d[11]!, d[12]!, d[13]!, d[14]!, d[15]!, d[16]!, d[17]!, d[18]!, d[19]!, d[20]!, d[21]!, d[22]!, d[23]!);
  }
  if (p === 4) {
    return String.fromCharCode(c0, c1, c2, c3, d[0]!, d[1]!, d[2]!, d[3]!, d[4]!, d[5]!, d[6]!, d[7]!, d[8]!, d[9]!, d[10]!, d[11]!, d[12]!, d[13]!, d[14]!, d[15]!, d[16]!, d[17]!, d[18]!, d[19]!, d[20]!, d[21]!, d[22]!, d[23]!);
  }
  if (p === 5) {
    return String.fromCharCode(c0, c1, c2, c3, c4, d[0]!, d[1]!, d[2]!, d[3]!, d[4]!, d[5]!, d[6]!, d[7]!, d[8]!, d[9]!, d[10]!, d[11]!, d[12]!, d[13]!, d[14]!, d[15]!, d[16]!, d[17]!, d[18]!, d[19]!, d[20]!, d[21]!, d[22]!, d[23]!);
  }
  const b = termBytes;
  for (let i = 0; i < p; i++) {
    const c = prefix.charCodeAt(i);
    if (c > 0xff) return undefined;
    b[i] = c;
  }
  b.set(d, p);
  return b.latin1Slice(0, p + 24);
}
