/**
 * Protobuf wire primitives for the per-entity codecs that protoc-gen-cellar emits (`<file>_codec.ts`).
 *
 * A generated codec is a fast path beside protobuf-es, never a second meaning of the bytes:
 * - its encoder takes a write's *input* (init object, message or spread), checks it exactly as the
 *   entity's zod validator would, and writes the same bytes as `toBinary(create(schema, input))`; for
 *   anything it does not handle (a map, a `Struct`, an unexpected prototype, a failing check) it answers
 *   `false` and the runtime takes the general path (zod, `create`, `toBinary`), which also produces the
 *   validation error;
 * - its decoder builds the same object as `fromBinary(schema, bytes)`; for anything it does not handle
 *   (an unknown field, a wire type it does not expect, malformed bytes) it answers `undefined` and the
 *   runtime calls `fromBinary`, which decodes or throws as it always did.
 * test/codec tests both claims with property tests against protobuf-es and zod.
 */

import { types } from "node:util";
import { SHORT_STRING_UNITS, type SliceableBuffer, writeShortString } from "./bytes.js";

/** What protoc-gen-cellar emits per entity (`TaskCodec`). */
export interface EntityCodec {
  /**
   * Validate `input` as the entity's zod validator does and append its protobuf encoding to `w`.
   * `false` when this input needs the general path; what was appended is then to be discarded.
   */
  readonly encode: (w: ProtoWriter, input: unknown) => boolean;
  /**
   * The message `fromBinary` would return, deeply frozen, or `undefined` when these bytes need `fromBinary`.
   */
  readonly decode: (bytes: Uint8Array) => object | undefined;
}

/** Thrown inside a generated decoder when the bytes need the general path. */
const FALLBACK = new Error("codec fallback");

/** Recursion limit of generated encoders and decoders (protobuf-es uses 100 for decoding too). */
export const MAX_DEPTH = 100;

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

/** `%TypedArray%.prototype.length`: a typed array's internal length (an own `length` property cannot change it). */
const typedArrayLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), "length")!.get!;

/**
 * The length of a real `Uint8Array` (a Buffer too), read from its internal slot; -1 for anything else: a
 * Proxy of one, an object inheriting from `Uint8Array.prototype`, another typed array.
 */
export function bytesLength(v: unknown): number {
  return types.isUint8Array(v) ? (typedArrayLength.call(v) as number) : -1;
}

/** Run a generated encoder from a clean start (`depth` 0). */
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
