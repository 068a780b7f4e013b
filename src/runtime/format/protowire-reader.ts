/**
 * ProtoReader and the decode-side helpers of the generated codecs (`<file>_codec.ts`): protobuf's wire
 * decodings, where any malformation throws FALLBACK and `decodeWith` answers `undefined` so that the
 * runtime calls `fromBinary`. The contract is in protowire.ts, which re-exports everything here; generated
 * code imports it through runtime/index.ts.
 */

import type { SliceableBuffer } from "./bytes.js";

/** Thrown inside a generated decoder when the bytes need the general path. */
const FALLBACK = new Error("codec fallback");

/** Recursion limit of generated encoders and decoders (protobuf-es uses 100 for decoding too). */
export const MAX_DEPTH = 100;

const TWO_32 = 4294967296;
const BIG_32 = BigInt(32);
const BIG_1 = BigInt(1);

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Reads protobuf's wire encodings; any malformation throws, and the generated decoder gives up. */
export class ProtoReader {
  /** The bytes being read, as given: bytes fields are views of it (a Buffer's are Buffers), as with `fromBinary`. */
  private input: Uint8Array = new Uint8Array(0);
  /** The same bytes as a Buffer (for its native string slicing). */
  private buf: Buffer = Buffer.alloc(0);
  pos = 0;
  /** Where the bytes being read end. */
  limit = 0;
  depth = 0;
  private lo = 0;
  private hi = 0;

  /**
   * Start reading `bytes`. A store's decrypted or inflated records are Buffers already, and then no view
   * is built per record.
   */
  reset(bytes: Uint8Array): void {
    this.input = bytes;
    this.buf = bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
    this.limit = bytes.byteLength;
    this.depth = 0;
  }

  /** A varint's low 32 bits, unsigned (tags, lengths, uint32). */
  uint32(): number {
    const b = this.buf;
    let p = this.pos;
    let c = b[p++]!;
    let v = c & 0x7f;
    if (c >= 0x80) {
      c = b[p++]!;
      v |= (c & 0x7f) << 7;
      if (c >= 0x80) {
        c = b[p++]!;
        v |= (c & 0x7f) << 14;
        if (c >= 0x80) {
          c = b[p++]!;
          v |= (c & 0x7f) << 21;
          if (c >= 0x80) {
            c = b[p++]!;
            v |= c << 28;
            // Up to five more bytes of a 64-bit varint: their bits are above 32.
            for (let i = 0; c >= 0x80 && i < 5; i++) c = b[p++]!;
            if (c >= 0x80) throw FALLBACK;
          }
        }
      }
    }
    if (p > this.limit) throw FALLBACK;
    this.pos = p;
    return v >>> 0;
  }

  /** A field tag: a varint of at most five bytes that fits 32 bits (protobuf-es refuses longer ones). */
  tag(): number {
    const start = this.pos;
    const v = this.uint32();
    const n = this.pos - start;
    if (n > 5 || (n === 5 && this.buf[start + 4]! > 0x0f)) throw FALLBACK;
    return v;
  }

  int32(): number {
    return this.uint32() | 0;
  }

  sint32(): number {
    const z = this.uint32();
    return (z >>> 1) ^ -(z & 1);
  }

  bool(): boolean {
    this.varint64();
    return this.lo !== 0 || this.hi !== 0;
  }

  /** The end of a length-delimited body starting here, checked against `end`. */
  len(end: number): number {
    const n = this.uint32();
    const e = this.pos + n;
    if (e > end) throw FALLBACK;
    return e;
  }

  string(end: number): string {
    const e = this.len(end);
    const b = this.buf;
    const s = this.pos;
    this.pos = e;
    if (e - s < 8) {
      // Short: by hand, when ASCII.
      let i = s;
      while (i < e && b[i]! < 0x80) i++;
      if (i === e) return shortAscii(b, s, e);
    } else {
      // Node's UTF-8 slice replaces invalid sequences with U+FFFD where protobuf-es's strict decoder throws:
      // a result holding U+FFFD (never one from ASCII, rare in text) is decoded again, strictly.
      const str = (b as SliceableBuffer).utf8Slice(s, e);
      if (str.indexOf("\uFFFD") === -1) return str;
    }
    return strictUtf8.decode(this.input.subarray(s, e));
  }

  bytes(end: number): Uint8Array {
    const e = this.len(end);
    const v = this.input.subarray(this.pos, e);
    this.pos = e;
    return v;
  }

  fixed32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  sfixed32(): number {
    this.need(4);
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  float(): number {
    this.need(4);
    const v = this.buf.readFloatLE(this.pos);
    this.pos += 4;
    return v;
  }

  double(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  int64(): bigint {
    this.varint64();
    return toInt64(this.lo, this.hi);
  }

  uint64(): bigint {
    this.varint64();
    return toUint64(this.lo, this.hi);
  }

  sint64(): bigint {
    this.varint64();
    const lo = this.lo;
    const hi = this.hi;
    if (hi < 0x200000) {
      const z = hi * TWO_32 + lo;
      return BigInt(z % 2 === 0 ? z / 2 : -(z + 1) / 2);
    }
    const u = (BigInt(hi) << BIG_32) | BigInt(lo);
    return (u >> BIG_1) ^ -(u & BIG_1);
  }

  fixed64(): bigint {
    this.need(8);
    const lo = this.buf.readUInt32LE(this.pos);
    const hi = this.buf.readUInt32LE(this.pos + 4);
    this.pos += 8;
    return toUint64(lo, hi);
  }

  sfixed64(): bigint {
    this.need(8);
    const lo = this.buf.readUInt32LE(this.pos);
    const hi = this.buf.readUInt32LE(this.pos + 4);
    this.pos += 8;
    return toInt64(lo, hi);
  }

  private need(n: number): void {
    if (this.pos + n > this.limit) throw FALLBACK;
  }

  private varint64(): void {
    const b = this.buf;
    let p = this.pos;
    let lo = 0;
    let hi = 0;
    let c = 0;
    let shift = 0;
    for (; shift < 28; shift += 7) {
      c = b[p++]!;
      lo |= (c & 0x7f) << shift;
      if (c < 0x80) break;
    }
    if (c >= 0x80) {
      c = b[p++]!;
      lo |= (c & 0x0f) << 28;
      hi = (c & 0x7f) >> 4;
      for (shift = 3; c >= 0x80 && shift < 32; shift += 7) {
        c = b[p++]!;
        hi |= (c & 0x7f) << shift;
      }
      if (c >= 0x80) throw FALLBACK;
    }
    if (p > this.limit) throw FALLBACK;
    this.pos = p;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** Enter a nested message (depth-limited, like protobuf-es). */
  enter(): void {
    if (++this.depth > MAX_DEPTH) throw FALLBACK;
  }

  /** A field the generated decoder does not take: the general path decides. */
  static unexpected(): never {
    throw FALLBACK;
  }
}

function shortAscii(b: Buffer, s: number, e: number): string {
  let out = "";
  for (let i = s; i < e; i++) out += String.fromCharCode(b[i]!);
  return out;
}

function toInt64(lo: number, hi: number): bigint {
  if (hi < 0x200000) return BigInt(hi * TWO_32 + lo);
  if (hi >= 0xffe00000) return BigInt((hi - TWO_32) * TWO_32 + lo);
  return BigInt.asIntN(64, (BigInt(hi) << BIG_32) | BigInt(lo));
}

function toUint64(lo: number, hi: number): bigint {
  if (hi < 0x200000) return BigInt(hi * TWO_32 + lo);
  return (BigInt(hi) << BIG_32) | BigInt(lo);
}

const sharedReader = new ProtoReader();

/** Run a generated decoder: the message, or `undefined` when the bytes need `fromBinary`. */
export function decodeWith<T>(
  bytes: Uint8Array,
  read: (r: ProtoReader, end: number, m: T) => T,
  zero: () => T,
  /** Deep-freezes the message (generated per type); decoded records are returned frozen. */
  freeze: (m: T) => T = (m) => m,
): T | undefined {
  // Decoding never reenters (no user code runs inside), so one reader serves every call.
  const r = sharedReader;
  r.reset(bytes);
  try {
    const m = read(r, r.limit, zero());
    return r.pos === r.limit ? freeze(m) : undefined;
  } catch {
    // FALLBACK, a TypeError from strict UTF-8, a RangeError from a read past the end or the stack:
    // protobuf-es decides what these bytes are.
    return undefined;
  }
}
