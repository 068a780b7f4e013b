/** Little helpers to write and read the varints, integers and strings of docs/FORMAT.md. */
import { MAX_COUNT } from "./format.js";

const te = new TextEncoder();
const td = new TextDecoder("utf-8", { fatal: true });

export const utf8 = (s: string): Uint8Array => te.encode(s);
export const fromUtf8 = (b: Uint8Array): string => td.decode(b);

/**
 * Buffer's own slice decoders (what `toString(encoding, start, end)` calls after checking its arguments),
 * present in every Node release; called directly on hot paths.
 */
export type SliceableBuffer = Buffer & {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
  utf8Write(s: string, offset: number, length: number): number;
};

/** Thrown by {@link ByteReader} when bytes do not follow the grammar; callers turn it into a CorruptionError. */
export class DecodeError extends Error {}

/** Strings shorter than this (in UTF-16 units) take at most 126 UTF-8 bytes: a one-byte varint length. */
export const SHORT_STRING_UNITS = 43;

/**
 * Write a string shorter than {@link SHORT_STRING_UNITS} at `at` as its one-byte length and UTF-8 bytes,
 * copying ASCII by hand (keys, names, index terms and most short fields are ASCII: no view and no native
 * call per string); returns where it ends. `b` must have room for `1 + 3 * s.length` bytes from `at`.
 */
export function writeShortString(b: Uint8Array, at: number, s: string): number {
  let p = at + 1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      p = at + 1 + te.encodeInto(s, b.subarray(at + 1)).written;
      break;
    }
    b[p++] = c;
  }
  b[at] = p - at - 1;
  return p;
}

/** Growable byte buffer for building payloads. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  length = 0;
  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }
  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): this {
    this.ensure(1);
    this.buf[this.length++] = v;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
    return this;
  }
  /** Unsigned LEB128, for values up to 2^53 - 1. */
  varint(v: number): this {
    this.ensure(10);
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.length++] = v;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }
  /** `n` bytes at the end, for a caller to fill in place (valid until the next write). */
  reserve(n: number): Uint8Array {
    this.ensure(n);
    const at = this.length;
    this.length += n;
    return this.buf.subarray(at, at + n);
  }
  /** varint UTF-8 length, then the UTF-8 bytes, encoded in place (no intermediate array). */
  string(s: string): this {
    if (s.length < SHORT_STRING_UNITS) {
      this.ensure(1 + s.length * 3);
      this.length = writeShortString(this.buf, this.length, s);
      return this;
    }
    const len = Buffer.byteLength(s, "utf8");
    this.varint(len);
    this.ensure(len);
    te.encodeInto(s, this.buf.subarray(this.length, this.length + len));
    this.length += len;
    return this;
  }
  finish(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/**
 * Bounds-checked reader; every length it reads is checked against what is left and a caller's cap.
 * Strings decode through Buffer's native UTF-8 slice (several times faster than TextDecoder on short
 * strings); payloads are authenticated before they are decoded, and writers only write well-formed
 * UTF-8 (lone surrogates are refused), so no replacement can occur on data Cellar wrote.
 */
export class ByteReader {
  pos = 0;
  private readonly view: DataView;
  private readonly b: Buffer;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  u8(): number {
    if (this.pos >= this.buf.length) throw new DecodeError("unexpected end of payload");
    return this.buf[this.pos++]!;
  }
  u32(): number {
    if (this.pos + 4 > this.buf.length) throw new DecodeError("unexpected end of payload");
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  varint(max = Number.MAX_SAFE_INTEGER): number {
    const first = this.buf[this.pos];
    if (first !== undefined && first < 0x80) {
      // one byte: the common case, kept short so it inlines
      if (first > max) throw new DecodeError(`value ${first} exceeds bound ${max}`);
      this.pos++;
      return first;
    }
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (result > max) throw new DecodeError(`value ${result} exceeds bound ${max}`);
        return result;
      }
      mul *= 0x80;
    }
    throw new DecodeError("varint too long");
  }
  count(): number {
    return this.varint(MAX_COUNT);
  }
  bytes(n: number): Uint8Array {
    if (n > this.buf.length - this.pos) throw new DecodeError(`length ${n} runs past the end of the payload`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(n: number): void {
    if (n > this.buf.length - this.pos) throw new DecodeError(`length ${n} runs past the end of the payload`);
    this.pos += n;
  }
  string(max: number): string {
    const n = this.varint(max);
    if (n > this.buf.length - this.pos) throw new DecodeError(`length ${n} runs past the end of the payload`);
    const s = (this.b as SliceableBuffer).utf8Slice(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}


const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const nativeWellFormed = (String.prototype as { isWellFormed?: () => boolean }).isWellFormed;

/** False when `s` holds a lone surrogate, which UTF-8 cannot represent (it would come back as U+FFFD). */
export function isWellFormed(s: string): boolean {
  // String.prototype.isWellFormed (V8 11.1+, so Node 20) is native and many times faster than the regex.
  return nativeWellFormed ? nativeWellFormed.call(s) : !LONE_SURROGATE.test(s);
}

const ZEROS = Buffer.alloc(64 * 1024);

/** True when every byte of `b` is 0 (compared 64 KiB at a time with native memcmp). */
export function isAllZero(b: Uint8Array): boolean {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  for (let at = 0; at < buf.length; at += ZEROS.length) {
    const n = Math.min(ZEROS.length, buf.length - at);
    if (buf.compare(ZEROS, 0, n, at, at + n) !== 0) return false;
  }
  return true;
}
