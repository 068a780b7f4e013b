/**
 * A line's protobuf JSON `record` straight to the write input a `put` takes (import.ts): no message object.
 * The general path is `fromJson` then `toInput` (import-records.ts), whose result this one must equal
 * (test/store/import-json.test.ts compares the two on random messages and JSON variants); the write input
 * is then validated and encoded exactly as a `put` (the generated codec, or zod). It answers `undefined`,
 * and the import takes the general path (which also finds the field at fault), for anything but:
 *
 * - a JSON object whose keys are fields of the message (by JSON name or proto name, not both), no oneof
 *   member given `null` and no oneof set twice;
 * - strings that are well-formed UTF-16 (else protobuf-es refuses them: the general path says so), booleans,
 *   32-bit integers and floats given as JSON numbers in range (floats also as `"NaN"`, `"Infinity"`,
 *   `"-Infinity"`), 64-bit integers as decimal strings or safe integer numbers, bytes as base64, open enums
 *   by name or number;
 * - nested messages, lists of any of these, and `google.protobuf.Timestamp` as `YYYY-MM-DDTHH:MM:SS[.f]Z`
 *   (an offset, or a date the arithmetic below does not take, goes through `Date.parse` on the general path).
 *
 * Maps, closed enums, `jstype = JS_STRING` and well-known types other than Timestamp take the general path
 * whenever the line sets them. A field set to `null` is left out (as `fromJson` resets it), zero values of
 * implicit-presence fields and empty lists are left out (as `toInput` leaves out what is not set).
 */
import { type DescEnum, type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";

/** Read the JSON `record` of a message as a write input, or `undefined`: take the general path. */
export type InputReader = (json: unknown) => Record<string, unknown> | undefined;

/** Thrown inside a reader: this value takes the general path. */
const BAIL = new Error("import: general path");
/** Messages `fromJson` reads nested (its `recursionLimit`); deeper takes the general path (which refuses it). */
const MAX_MESSAGES = 100;
const IMPLICIT = 2;

const enum Kind {
  string,
  bool,
  int32,
  uint32,
  int64,
  uint64,
  double,
  float,
  bytes,
  enumeration,
  message,
  timestamp,
  unsupported,
}

interface Field {
  localName: string;
  /** The other spelling of its key (proto name vs JSON name), or null when both are the same. */
  alias: string | null;
  kind: Kind;
  list: boolean;
  /** Zero values are left out (implicit presence, not in a oneof, not a list). */
  implicit: boolean;
  /** Local name of its oneof, or null. */
  oneof: string | null;
  /** Enum numbers by JSON name and proto name. */
  names: Map<string, number> | null;
  enumZero: number;
  msg: Plan | null;
}

interface Plan {
  /** Fields by JSON name and by proto name. */
  byKey: Map<string, Field>;
}

const plans = new WeakMap<DescMessage, Plan>();
const readers = new WeakMap<DescMessage, InputReader>();

/** The reader of `desc`'s records (see the file comment). */
export function inputReader(desc: DescMessage): InputReader {
  let r = readers.get(desc);
  if (r) return r;
  const plan = planOf(desc);
  r = (json) => {
    try {
      return message(plan, json, 1);
    } catch (e) {
      if (e === BAIL) return undefined;
      throw e;
    }
  };
  readers.set(desc, r);
  return r;
}

function planOf(desc: DescMessage): Plan {
  let p = plans.get(desc);
  if (p) return p;
  p = { byKey: new Map() };
  plans.set(desc, p); // before its fields: a recursive type finds it
  for (const f of desc.fields) {
    const field = fieldOf(f);
    if (f.name === f.jsonName) p.byKey.set(f.name, field);
    else p.byKey.set(f.jsonName, { ...field, alias: f.name }).set(f.name, { ...field, alias: f.jsonName });
  }
  return p;
}

const SCALAR: Partial<Record<ScalarType, Kind>> = {
  [ScalarType.STRING]: Kind.string,
  [ScalarType.BOOL]: Kind.bool,
  [ScalarType.INT32]: Kind.int32,
  [ScalarType.SINT32]: Kind.int32,
  [ScalarType.SFIXED32]: Kind.int32,
  [ScalarType.UINT32]: Kind.uint32,
  [ScalarType.FIXED32]: Kind.uint32,
  [ScalarType.INT64]: Kind.int64,
  [ScalarType.SINT64]: Kind.int64,
  [ScalarType.SFIXED64]: Kind.int64,
  [ScalarType.UINT64]: Kind.uint64,
  [ScalarType.FIXED64]: Kind.uint64,
  [ScalarType.DOUBLE]: Kind.double,
  [ScalarType.FLOAT]: Kind.float,
  [ScalarType.BYTES]: Kind.bytes,
};

function fieldOf(f: DescField): Field {
  const out: Field = {
    localName: f.localName,
    alias: null,
    kind: Kind.unsupported,
    list: f.fieldKind === "list",
    implicit: f.fieldKind !== "list" && !f.oneof && f.presence === IMPLICIT,
    oneof: f.oneof ? f.oneof.localName : null,
    names: null,
    enumZero: 0,
    msg: null,
  };
  const kind = f.fieldKind === "list" ? f.listKind : f.fieldKind;
  if (kind === "scalar") {
    if (!(f as { longAsString?: boolean }).longAsString) out.kind = SCALAR[(f as { scalar: ScalarType }).scalar] ?? Kind.unsupported;
  } else if (kind === "enum") {
    const e = (f as { enum: DescEnum }).enum;
    if (e.open && e.typeName !== "google.protobuf.NullValue") {
      out.kind = Kind.enumeration;
      out.names = new Map();
      // As `fromJson`: a value's JSON name, then its proto name (which wins where they collide).
      for (const v of e.values) out.names.set(v.jsonName, v.number);
      for (const v of e.values) out.names.set(v.name, v.number);
      out.enumZero = e.values[0]!.number;
    }
  } else if (kind === "message") {
    const m = (f as { message: DescMessage }).message;
    if (m.typeName === "google.protobuf.Timestamp") out.kind = Kind.timestamp;
    else if (!m.typeName.startsWith("google.protobuf.")) {
      out.kind = Kind.message;
      out.msg = planOf(m);
    }
  }
  return out;
}

function message(plan: Plan, json: unknown, depth: number): Record<string, unknown> {
  if (typeof json !== "object" || json === null || Array.isArray(json) || depth > MAX_MESSAGES) throw BAIL;
  const obj = json as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  // (`for…in` walks no array of keys; a key inherited through the prototype is no field: general path)
  for (const key in obj) {
    const f = plan.byKey.get(key);
    // An unknown key, or one field given by both its names (`fromJson` refuses both).
    if (f === undefined || (f.alias !== null && Object.hasOwn(obj, f.alias))) throw BAIL;
    const v = obj[key];
    if (f.oneof !== null) {
      if (v === null || out[f.oneof] !== undefined) throw BAIL;
      out[f.oneof] = { case: f.localName, value: value(f, v, depth) };
      continue;
    }
    if (v === null) continue; // `fromJson` resets the field: not set
    if (f.list) {
      if (!Array.isArray(v)) throw BAIL;
      if (v.length === 0) continue;
      const items = new Array<unknown>(v.length);
      for (let i = 0; i < v.length; i++) {
        const x = v[i];
        if (x === null) throw BAIL;
        items[i] = value(f, x, depth);
      }
      out[f.localName] = items;
      continue;
    }
    const x = value(f, v, depth);
    if (f.implicit && isZero(f, x)) continue;
    out[f.localName] = x;
  }
  return out;
}

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const UINT32_MAX = 0xffffffff;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const DECIMAL = /^-?[0-9]{1,20}$/;

/** One value (not null) of field `f`. */
function value(f: Field, v: unknown, depth: number): unknown {
  switch (f.kind) {
    case Kind.string:
      if (typeof v !== "string" || !(v as unknown as { isWellFormed(): boolean }).isWellFormed()) throw BAIL;
      return v;
    case Kind.bool:
      if (typeof v !== "boolean") throw BAIL;
      return v;
    case Kind.int32:
      if (typeof v !== "number" || !Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) throw BAIL;
      return v;
    case Kind.uint32:
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > UINT32_MAX) throw BAIL;
      return v;
    case Kind.int64:
    case Kind.uint64: {
      let b: bigint;
      if (typeof v === "string" && DECIMAL.test(v)) b = BigInt(v);
      else if (typeof v === "number" && Number.isSafeInteger(v)) b = BigInt(v);
      else throw BAIL;
      if (f.kind === Kind.int64 ? b < INT64_MIN || b > INT64_MAX : b < 0n || b > UINT64_MAX) throw BAIL;
      return b;
    }
    case Kind.double:
    case Kind.float:
      if (typeof v !== "number") return special(v);
      // A JSON number past a double's range parses as ±Infinity: `fromJson` refuses it, as a float that rounds to one.
      if (!Number.isFinite(v) || (f.kind === Kind.float && !Number.isFinite(Math.fround(v)))) throw BAIL;
      return v;
    case Kind.bytes:
      if (typeof v !== "string") throw BAIL;
      if (v === "") return new Uint8Array(0);
      try {
        return base64Decode(v);
      } catch {
        throw BAIL;
      }
    case Kind.enumeration:
      if (typeof v === "string") {
        const n = f.names!.get(v);
        if (n === undefined) throw BAIL;
        return n;
      }
      if (typeof v !== "number" || !Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) throw BAIL;
      return v;
    case Kind.message:
      return message(f.msg!, v, depth + 1);
    case Kind.timestamp:
      if (depth + 1 > MAX_MESSAGES) throw BAIL;
      return timestamp(v);
    default:
      throw BAIL;
  }
}

/** The strings `toJson` writes for a float that is not a finite number (other numeric strings: general path). */
function special(v: unknown): number {
  if (v === "NaN") return Number.NaN;
  if (v === "Infinity") return Number.POSITIVE_INFINITY;
  if (v === "-Infinity") return Number.NEGATIVE_INFINITY;
  throw BAIL;
}

function isZero(f: Field, v: unknown): boolean {
  switch (f.kind) {
    case Kind.string:
      return v === "";
    case Kind.bool:
      return v === false;
    case Kind.bytes:
      return (v as Uint8Array).byteLength === 0;
    case Kind.double:
    case Kind.float:
      return Object.is(v, 0); // -0 is set, as protobuf-es has it
    case Kind.int64:
    case Kind.uint64:
      return v === 0n;
    case Kind.int32:
    case Kind.uint32:
      return v === 0;
    case Kind.enumeration:
      return v === f.enumZero;
    default:
      return false;
  }
}

const TIMESTAMP = "google.protobuf.Timestamp";
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Digits `s[at..at+n)` as a number, or -1 when one is not an ASCII digit. */
function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/**
 * `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (what `toJson` writes) as the Timestamp message `fromJson` makes. Takes
 * only dates that exist and times of 00:00:00–23:59:59 in years 1–9999, where the arithmetic below is
 * `Date.parse`'s; anything else (an offset, `24:00:00`, February 30) takes the general path.
 */
function timestamp(v: unknown): Record<string, unknown> {
  if (typeof v !== "string") throw BAIL;
  const len = v.length;
  if (len < 20 || len > 30 || v.charCodeAt(len - 1) !== 90 /* Z */) throw BAIL;
  if (v.charCodeAt(4) !== 45 || v.charCodeAt(7) !== 45 || v.charCodeAt(10) !== 84 || v.charCodeAt(13) !== 58 || v.charCodeAt(16) !== 58) throw BAIL; // - - T : :
  const year = digits(v, 0, 4);
  const month = digits(v, 5, 2);
  const day = digits(v, 8, 2);
  const hour = digits(v, 11, 2);
  const minute = digits(v, 14, 2);
  const second = digits(v, 17, 2);
  if (year < 1 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) throw BAIL;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : DAYS[month - 1]!)) throw BAIL;
  let nanos = 0;
  if (len > 20) {
    const n = len - 21; // digits of the fraction: 1 to 9
    if (v.charCodeAt(19) !== 46 /* . */ || n < 1 || n > 9) throw BAIL;
    const f = digits(v, 20, n);
    if (f < 0) throw BAIL;
    nanos = f * 10 ** (9 - n);
  }
  const seconds = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  return { $typeName: TIMESTAMP, seconds: BigInt(seconds), nanos };
}

/** Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
