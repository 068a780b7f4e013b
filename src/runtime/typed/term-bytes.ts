/**
 * A Timestamp or Duration index term built from its bytes (index-keys.ts `singleTerm` calls it): the same string
 * as `prefix + encodeComponent(kind, value)`, made as one flat Latin-1 string without bigint arithmetic or string
 * concatenation. A record's terms are kept with its location, so a term is one string, not a tree of pieces.
 */
import type { SliceableBuffer } from "../format/bytes.js";

/** Room for a prefix (`"\u0001" + id + "\u0000"`, ids of ≤ 40 characters) and a 24-digit component. */
const termBytes = Buffer.alloc(64) as SliceableBuffer;
const HEX_CODES = Uint8Array.from("0123456789abcdef", (c) => c.charCodeAt(0));
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

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
 * Seconds within ±2^53 (every real date) are split into 32-bit halves as numbers.
 */
export function secondsNanosTerm(prefix: string, kind: "timestamp" | "duration", t: { seconds?: unknown; nanos?: number }): string | undefined {
  const sec = t.seconds ?? 0n;
  const s = typeof sec === "bigint" ? (sec >= -MAX_SAFE && sec <= MAX_SAFE ? Number(sec) : NaN) : typeof sec === "number" && Number.isSafeInteger(sec) ? sec : NaN;
  const p = prefix.length;
  if (Number.isNaN(s) || p > termBytes.length - 24) return undefined;
  const b = termBytes;
  for (let i = 0; i < p; i++) {
    const c = prefix.charCodeAt(i);
    if (c > 0xff) return undefined;
    b[i] = c;
  }
  const hi = Math.floor(s / 4294967296);
  hex8Into(b, p, (hi ^ 0x80000000) >>> 0);
  hex8Into(b, p + 8, (s - hi * 4294967296) >>> 0);
  const nanos = t.nanos ?? 0;
  hex8Into(b, p + 16, kind === "timestamp" ? nanos >>> 0 : (nanos ^ 0x80000000) >>> 0);
  return b.latin1Slice(0, p + 24);
}
