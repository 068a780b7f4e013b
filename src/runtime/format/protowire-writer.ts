/**
 * ProtoWriter and the encode-side helpers of the generated codecs (`<file>_codec.ts`): the growable
 * output buffer with protobuf's wire encodings, `encodeWith`, and the input checks the generated encoders
 * call. The contract and the fallback rules are in protowire.ts, which re-exports everything here;
 * generated code imports it through runtime/index.ts, and typed/record-codec.ts, typed/batch.ts and crypto/value.ts through protowire.ts.
 */

import { types } from "node:util";
import { SHORT_STRING_UNITS, type SliceableBuffer, writeShortString } from "./bytes.js";

const TWO_32 = 4294967296;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE_BIG = -MAX_SAFE_BIG;
const MASK_32 = BigInt(0xffffffff);
const BIG_32 = BigInt(32);
const BIG_1 = BigInt(1);
const BIG_63 = BigInt(63);

/** Growable output buffer with protobuf's wire encodings. */
export class ProtoWriter {
  buf: Buffer;
  /** The same memory as a plain Uint8Array (its `slice` copies without Buffer's overhead). */
  private u8: Uint8Array;
  pos = 0;
  /** Message nesting of the encoder using this writer. */
  depth = 0;
  /**
   * Values of the root message's key and indexed fields as the encoder read them (set afresh by
   * {@link encodeWith}): the store takes the key and index terms from here, never from a second read of
   * the input, which a getter or a Proxy could answer differently.
   */
  top: Record<string, unknown> = {};
  /** Low and high 32 bits of the last 64-bit value split by `split64`. */
  private lo = 0;
  private hi = 0;

  constructor(private readonly initial = 8192) {
    this.buf = Buffer.allocUnsafe(initial);
    this.u8 = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }

  reset(): void {
    this.pos = 0;
    this.depth = 0;
    // One huge record must not pin its size for the life of the store.
    if (this.buf.length > 1024 * 1024) {
      this.buf = Buffer.allocUnsafe(this.initial);
      this.u8 = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.buf.length);
    }
  }

  /** A copy of the bytes written from `start`. */
  copy(start = 0): Uint8Array {
    return this.u8.slice(start, this.pos);
  }

  /**
   * A view of the bytes written from `start`, for a writer used as an arena (never reset while views
   * live): growing moves later bytes to a new buffer and leaves earlier views on the old one, intact.
   */
  view(start: number): Uint8Array {
    return this.u8.subarray(start, this.pos);
  }

  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.u8 = new Uint8Array(next.buffer, next.byteOffset, next.length);
  }

  byte(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  /** Unsigned varint of a value in [0, 2^32). Also writes tags. */
  uint32(v: number): void {
    this.ensure(5);
    const b = this.buf;
    let p = this.pos;
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  /** int32 and enums: negative values take ten bytes (sign-extended to 64 bits). */
  int32(v: number): void {
    if (v >= 0) this.uint32(v);
    else this.varint64(v >>> 0, 0xffffffff);
  }

  sint32(v: number): void {
    this.uint32(((v << 1) ^ (v >> 31)) >>> 0);
  }

  bool(v: boolean): void {
    this.byte(v ? 1 : 0);
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  sfixed32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32LE(v | 0, this.pos);
    this.pos += 4;
  }

  float(v: number): void {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.pos);
    this.pos += 4;
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** Split a 64-bit integer (two's complement) into `lo`/`hi`. */
  private split64(v: bigint): void {
    if (v >= MIN_SAFE_BIG && v <= MAX_SAFE_BIG) {
      const n = Number(v);
      const a = n < 0 ? -n : n;
      let lo = a >>> 0;
      let hi = (a - lo) / TWO_32;
      if (n < 0) {
        lo = (~lo + 1) >>> 0;
        hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
      }
      this.lo = lo;
      this.hi = hi;
    } else {
      const u = BigInt.asUintN(64, v);
      this.lo = Number(u & MASK_32);
      this.hi = Number(u >> BIG_32);
    }
  }

  /** int64 and uint64 (values already range-checked). */
  int64(v: bigint): void {
    this.split64(v);
    this.varint64(this.lo, this.hi);
  }

  sint64(v: bigint): void {
    this.split64(BigInt.asIntN(64, (v << BIG_1) ^ (v >> BIG_63)));
    this.varint64(this.lo, this.hi);
  }

  fixed64(v: bigint): void {
    this.split64(v);
    this.ensure(8);
    this.buf.writeUInt32LE(this.lo, this.pos);
    this.buf.writeUInt32LE(this.hi, this.pos + 4);
    this.pos += 8;
  }

  private varint64(lo: number, hi: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    while (hi > 0 || lo > 0x7f) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    b[p++] = lo;
    this.pos = p;
  }

  /** Length-prefixed UTF-8 (lone surrogates become U+FFFD, as TextEncoder does). */
  string(s: string): void {
    if (s.length < SHORT_STRING_UNITS) {
      this.ensure(1 + s.length * 3);
      this.pos = writeShortString(this.buf, this.pos, s);
      return;
    }
    const len = Buffer.byteLength(s, "utf8");
    this.uint32(len);
    this.ensure(len);
    (this.buf as SliceableBuffer).utf8Write(s, this.pos, len);
    this.pos += len;
  }

  /** Length-prefixed bytes of a real Uint8Array (checked by the caller), measured by its internal length. */
  bytes(v: Uint8Array): void {
    const n = typedArrayLength.call(v) as number;
    this.uint32(n);
    this.ensure(n);
    this.buf.set(v, this.pos);
    this.pos += n;
  }

  /** Start a length-delimited body: returns where its (one-byte, for now) length goes. */
  fork(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** End a body started by `fork`: write its length, moving the body if the length needs more bytes. */
  join(at: number): void {
    const len = this.pos - at - 1;
    if (len < 0x80) {
      this.buf[at] = len;
      return;
    }
    const size = len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5;
    this.ensure(size - 1);
    this.buf.copyWithin(at + size, at + 1, this.pos);
    this.pos += size - 1;
    let p = at;
    let v = len;
    while (v > 0x7f) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
  }
}

/** Run a generated encoder from a clean start (`depth` 0). */
/** `%TypedArray%.prototype.length`: a typed array's internal length (an own `length` property cannot change it). */
const typedArrayLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), "length")!.get!;

/**
 * The length of a real `Uint8Array` (a Buffer too), read from its internal slot; -1 for anything else: a
 * Proxy of one, an object inheriting from `Uint8Array.prototype`, another typed array.
 */
export function bytesLength(v: unknown): number {
  return types.isUint8Array(v) ? (typedArrayLength.call(v) as number) : -1;
}

export function encodeWith(w: ProtoWriter, input: unknown, write: (w: ProtoWriter, o: any) => boolean): boolean {
  w.depth = 0;
  w.top = {};
  try {
    return write(w, input);
  } catch {
    // A getter that throws, a cycle that overflows the stack: let zod and protobuf-es report it.
    return false;
  }
}

/** An object the encoder may walk as an init object: a plain object or a protobuf-es message (no class instances). */
export function isPlainObject(o: unknown): o is Record<string, unknown> {
  if (typeof o !== "object" || o === null) return false;
  const p = Object.getPrototypeOf(o);
  return p === Object.prototype || p === null;
}

/** `$unknown` in an input: absent or empty (anything else goes through zod's check). */
export function noUnknownFields(v: unknown): boolean {
  return v === undefined || (Array.isArray(v) && v.length === 0);
}
