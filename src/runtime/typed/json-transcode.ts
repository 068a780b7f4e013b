/**
 * A record's protobuf bytes straight to its protobuf JSON as UTF-8 bytes, written into the export's output
 * buffer: no message object, no JSON text string. Export (export.ts) tries it first for every record and,
 * whenever it answers {@link BAIL}, takes the general path (decode, json-writer.ts), whose output it must
 * equal byte for byte (test/store/json-transcode.test.ts compares the two on random messages and wire
 * variants). It takes only bytes whose JSON can be written while reading them:
 *
 * - fields in increasing field-number order (what the generated encoders and `toBinary` write for messages
 *   declared in number order), a repeated field's elements one after another, no singular field twice
 *   (protobuf's last-one-wins and message merging need the whole message) and one member per oneof;
 * - every field in the schema (an unknown field, a map, a group or a well-known type other than Timestamp
 *   bails), each with its declared wire type (or packed / unpacked for repeated scalars);
 * - strings that are valid UTF-8 (else protobuf-es refuses them: the general path reports it).
 *
 * Values are read by the generated decoders' own `ProtoReader` (same varint, length and depth limits);
 * zero values of implicit-presence fields are left out as `toJson` does. A string that needs no escaping
 * is copied as its bytes; others go through `JSON.stringify`.
 */
import { isUtf8 } from "node:buffer";
import { type DescEnum, type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { MAX_DEPTH, ProtoReader } from "../format/protowire.js";
import { timestampText } from "./json-writer.js";

/** Answer of {@link Transcoder}: written, or take the general path, or the output buffer is too small. */
export const OK = 0;
export const BAIL = 1;
export const ROOM = 2;

/** Where the JSON goes: `buf` from `pos` on (advanced by what is written). */
export interface JsonOut {
  buf: Buffer;
  pos: number;
}

/** Write the JSON of the message in `bytes` at `out.pos`; on BAIL or ROOM `out.pos` is left anywhere after it. */
export type Transcoder = (bytes: Uint8Array, out: JsonOut) => number;

const BAIL_ERR = new Error("transcode: general path");
const ROOM_ERR = new Error("transcode: output full");

const enum Kind {
  scalar,
  enumeration,
  message,
  timestamp,
  unsupported,
}

interface Field {
  number: number;
  /** `"jsonName":` as bytes. */
  key: Buffer;
  kind: Kind;
  scalar: ScalarType;
  repeated: boolean;
  /** Zero values are left out (implicit presence, not in a oneof, not repeated). */
  implicit: boolean;
  /** Index of its oneof in the message, or -1. */
  oneof: number;
  /** Wire type of one value (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32). */
  wire: number;
  /** Enum values as JSON bytes (`"NAME"`), by number; the first value's number (the implicit zero). */
  names: Map<number, Buffer> | null;
  enumZero: number;
  msg: Plan | null;
}

interface Plan {
  /** Fields by number (sparse). */
  fields: (Field | undefined)[];
}

const plans = new WeakMap<DescMessage, Plan>();
const transcoders = new WeakMap<DescMessage, Transcoder>();

/** The transcoder of messages of `desc` (see the file comment). */
export function jsonTranscoder(desc: DescMessage): Transcoder {
  let t = transcoders.get(desc);
  if (t) return t;
  const plan = planOf(desc);
  const r = new ProtoReader();
  t = (bytes, out) => {
    const b = bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    r.reset(b);
    try {
      message(r, b, b.length, plan, out, 0);
      return OK;
    } catch (e) {
      if (e === ROOM_ERR) return ROOM;
      // A malformation the reader found (its FALLBACK), a refused value, or anything this path does not take.
      return BAIL;
    }
  };
  transcoders.set(desc, t);
  return t;
}

function planOf(desc: DescMessage): Plan {
  let p = plans.get(desc);
  if (p) return p;
  p = { fields: [] };
  plans.set(desc, p); // before its fields: a recursive type finds it
  const oneofs = desc.oneofs;
  for (const f of desc.fields) p.fields[f.number] = field(f, oneofs.indexOf(f.oneof as never));
  return p;
}

const WIRE: Record<number, number> = {
  [ScalarType.DOUBLE]: 1,
  [ScalarType.FIXED64]: 1,
  [ScalarType.SFIXED64]: 1,
  [ScalarType.FLOAT]: 5,
  [ScalarType.FIXED32]: 5,
  [ScalarType.SFIXED32]: 5,
  [ScalarType.STRING]: 2,
  [ScalarType.BYTES]: 2,
};

function field(f: DescField, oneof: number): Field {
  const out: Field = {
    number: f.number,
    key: Buffer.from(JSON.stringify(f.jsonName) + ":"),
    kind: Kind.unsupported,
    scalar: ScalarType.INT32,
    repeated: f.fieldKind === "list",
    implicit: f.fieldKind !== "list" && !f.oneof && f.presence === 2 /* IMPLICIT */,
    oneof,
    wire: 0,
    names: null,
    enumZero: 0,
    msg: null,
  };
  const kind = f.fieldKind === "list" ? f.listKind : f.fieldKind;
  if (f.fieldKind === "map" || (f as { delimitedEncoding?: boolean }).delimitedEncoding) return out;
  if (kind === "scalar") {
    out.kind = Kind.scalar;
    out.scalar = (f as { scalar: ScalarType }).scalar;
    out.wire = WIRE[out.scalar] ?? 0;
  } else if (kind === "enum") {
    const e = (f as { enum: DescEnum }).enum;
    if (!e.open || e.typeName === "google.protobuf.NullValue") return out;
    out.kind = Kind.enumeration;
    out.names = new Map(e.values.map((v) => [v.number, Buffer.from(JSON.stringify(v.name))]));
    out.enumZero = e.values[0]!.number;
  } else if (kind === "message") {
    const m = (f as { message: DescMessage }).message;
    out.wire = 2;
    if (m.typeName === "google.protobuf.Timestamp") out.kind = Kind.timestamp;
    else if (!m.typeName.startsWith("google.protobuf.")) {
      out.kind = Kind.message;
      out.msg = planOf(m);
    }
  }
  return out;
}

// ---------------------------------------------------------------- writing

function room(out: JsonOut, n: number): void {
  if (out.pos + n > out.buf.length) throw ROOM_ERR;
}

function byte(out: JsonOut, c: number): void {
  if (out.pos >= out.buf.length) throw ROOM_ERR;
  out.buf[out.pos++] = c;
}

function bytes(out: JsonOut, src: Uint8Array, from = 0, to = src.length): void {
  const n = to - from;
  room(out, n);
  const buf = out.buf;
  let p = out.pos;
  if (n < 32) for (let i = from; i < to; i++) buf[p++] = src[i]!;
  else {
    buf.set(src.subarray(from, to), p);
    p += n;
  }
  out.pos = p;
}

/** ASCII text (numbers, base64, quoted decimal strings). */
function ascii(out: JsonOut, s: string): void {
  room(out, s.length);
  const buf = out.buf;
  let p = out.pos;
  for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i);
  out.pos = p;
}

/** Any text, as UTF-8 (JSON.stringify's output of a valid string: no lone surrogates). */
function text(out: JsonOut, s: string): void {
  room(out, s.length * 3);
  out.pos += out.buf.write(s, out.pos, "utf8");
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** A string field's bytes `b[s..e)` as a JSON string (what `JSON.stringify` of the decoded string gives). */
function string(out: JsonOut, b: Buffer, s: number, e: number): void {
  let ascii = true;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c < 0x20 || c === QUOTE || c === BACKSLASH) {
      // Needs escaping: decoded (strictly, as protobuf-es does) and stringified.
      if (!isUtf8(b.subarray(s, e))) throw BAIL_ERR;
      text(out, JSON.stringify(b.toString("utf8", s, e)));
      return;
    }
    if (c >= 0x80) ascii = false;
  }
  if (!ascii && !isUtf8(b.subarray(s, e))) throw BAIL_ERR;
  room(out, e - s + 2);
  out.buf[out.pos++] = QUOTE;
  bytes(out, b, s, e);
  out.buf[out.pos++] = QUOTE;
}

// ---------------------------------------------------------------- reading

/** The message in `b` up to `end`, as a JSON object. */
function message(r: ProtoReader, b: Buffer, end: number, plan: Plan, out: JsonOut, depth: number): void {
  if (depth >= MAX_DEPTH) throw BAIL_ERR;
  byte(out, 0x7b); // {
  let last = 0; // field number of the last field read
  let first = true; // nothing written yet
  let list = false; // a repeated field's `[` is open
  let oneofs = 0; // bits of the oneofs that have a member
  while (r.pos < end) {
    const tag = r.tag();
    const number = tag >>> 3;
    const wt = tag & 7;
    const f = plan.fields[number];
    if (!f || number < last || (number === last && !f.repeated)) throw BAIL_ERR;
    if (number !== last && list) {
      byte(out, 0x5d); // ]
      list = false;
    }
    if (f.oneof >= 0) {
      if (f.oneof > 30 || oneofs & (1 << f.oneof)) throw BAIL_ERR;
      oneofs |= 1 << f.oneof;
    }
    const continuing = number === last;
    last = number;
    if (f.repeated) {
      if (wt === 2 && f.wire !== 2 && f.kind !== Kind.unsupported && f.kind !== Kind.message && f.kind !== Kind.timestamp) {
        // Packed scalars or enums: their values one after another.
        const e = r.len(end);
        while (r.pos < e) {
          if (!list) {
            open(out, f, first);
            first = false;
            list = true;
          } else byte(out, 0x2c);
          value(r, b, e, f, out, depth);
        }
        if (r.pos !== e) throw BAIL_ERR;
        continue;
      }
      if (wt !== f.wire) throw BAIL_ERR;
      if (!list) {
        open(out, f, first);
        first = false;
        list = true;
      } else byte(out, 0x2c);
      value(r, b, end, f, out, depth);
      continue;
    }
    if (continuing) throw BAIL_ERR;
    if (wt !== f.wire) throw BAIL_ERR;
    if (f.implicit) {
      // Written only when not the zero value: written, then taken back when it is.
      const at = out.pos;
      if (!first) byte(out, 0x2c);
      bytes(out, f.key);
      const from = out.pos;
      if (value(r, b, end, f, out, depth, from)) first = false;
      else out.pos = at;
      continue;
    }
    if (!first) byte(out, 0x2c);
    bytes(out, f.key);
    first = false;
    value(r, b, end, f, out, depth);
  }
  if (r.pos !== end) throw BAIL_ERR;
  if (list) byte(out, 0x5d);
  byte(out, 0x7d); // }
}

function open(out: JsonOut, f: Field, first: boolean): void {
  if (!first) byte(out, 0x2c);
  bytes(out, f.key);
  byte(out, 0x5b); // [
}

/**
 * One value of `f` at `r.pos`, written; false when it is the zero value of an implicit-presence field
 * (`zeroFrom`: where the value starts in `out`, given for those fields).
 */
function value(r: ProtoReader, b: Buffer, end: number, f: Field, out: JsonOut, depth: number, zeroFrom = -1): boolean {
  switch (f.kind) {
    case Kind.scalar:
      return scalar(r, b, end, f, out, zeroFrom >= 0);
    case Kind.enumeration: {
      const v = r.int32();
      if (zeroFrom >= 0 && v === f.enumZero) return false;
      const name = f.names!.get(v);
      if (name) bytes(out, name);
      else ascii(out, String(v));
      return true;
    }
    case Kind.message: {
      const e = r.len(end);
      message(r, b, e, f.msg!, out, depth + 1);
      return true;
    }
    case Kind.timestamp: {
      const e = r.len(end);
      timestamp(r, e, out);
      return true;
    }
    default:
      throw BAIL_ERR;
  }
}

function scalar(r: ProtoReader, b: Buffer, end: number, f: Field, out: JsonOut, implicit: boolean): boolean {
  switch (f.scalar) {
    case ScalarType.STRING: {
      const e = r.len(end);
      const s = r.pos;
      r.pos = e;
      if (implicit && e === s) return false;
      string(out, b, s, e);
      return true;
    }
    case ScalarType.BYTES: {
      const e = r.len(end);
      const s = r.pos;
      r.pos = e;
      if (implicit && e === s) return false;
      ascii(out, '"' + b.toString("base64", s, e) + '"');
      return true;
    }
    case ScalarType.BOOL: {
      const v = r.bool();
      if (implicit && !v) return false;
      ascii(out, v ? "true" : "false");
      return true;
    }
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT: {
      const v = f.scalar === ScalarType.DOUBLE ? r.double() : r.float();
      if (implicit && Object.is(v, 0)) return false;
      ascii(out, Number.isNaN(v) ? '"NaN"' : v === Infinity ? '"Infinity"' : v === -Infinity ? '"-Infinity"' : String(v));
      return true;
    }
    case ScalarType.INT32:
    case ScalarType.UINT32:
    case ScalarType.SINT32:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32: {
      const t = f.scalar;
      const v = t === ScalarType.INT32 ? r.int32() : t === ScalarType.UINT32 ? r.uint32() : t === ScalarType.SINT32 ? r.sint32() : t === ScalarType.FIXED32 ? r.fixed32() : r.sfixed32();
      if (implicit && v === 0) return false;
      ascii(out, String(v));
      return true;
    }
    default: {
      const t = f.scalar;
      const v =
        t === ScalarType.INT64 ? r.int64() : t === ScalarType.UINT64 ? r.uint64() : t === ScalarType.SINT64 ? r.sint64() : t === ScalarType.FIXED64 ? r.fixed64() : r.sfixed64();
      if (implicit && v === 0n) return false;
      ascii(out, '"' + v.toString() + '"');
      return true;
    }
  }
}

/** A google.protobuf.Timestamp (seconds = 1, nanos = 2) as its RFC 3339 string; what toJson refuses bails. */
function timestamp(r: ProtoReader, end: number, out: JsonOut): void {
  let seconds = 0n;
  let nanos = 0;
  let last = 0;
  while (r.pos < end) {
    const tag = r.tag();
    if (tag === 8 && last < 1) {
      seconds = r.int64();
      last = 1;
    } else if (tag === 16 && last < 2) {
      nanos = r.int32();
      last = 2;
    } else throw BAIL_ERR;
  }
  if (r.pos !== end) throw BAIL_ERR;
  const s = timestampText(Number(seconds), nanos);
  if (s === null) throw BAIL_ERR;
  ascii(out, s);
}
