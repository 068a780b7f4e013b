/**
 * A message's protobuf JSON as text, in one pass: the same text as `JSON.stringify(toJson(schema, msg))`
 * (protobuf-es v2, default options), without building the JSON object first. Export (export.ts) writes every
 * record through it: `toJson` and `JSON.stringify` were half of an export's time (100,000 tasks: 1.4 of
 * 2.7 s here). Compiled once per message type from its descriptor, mirroring protobuf-es's `toJson`: fields in
 * field-number order, implicit-presence fields at their zero value left out, explicit ones when set, oneofs
 * by case; 64-bit integers as strings, enums by name (unknown numbers as numbers), bytes as padded base64,
 * NaN and infinities as strings. Well-known types go through `toJson` itself (a Timestamp through a copy of
 * its formatting, with `toJson` for the values it refuses, so the same errors are thrown).
 * test/store/json-writer.test.ts compares the two on random messages of every example entity.
 */
import { type DescEnum, type DescField, type DescMessage, enumToJson, type Message, ScalarType, toJson } from "@bufbuild/protobuf";

type Writer = (value: unknown) => string;

const writers = new WeakMap<DescMessage, Writer>();

/** The JSON text writer of messages of `desc`. */
export function jsonWriter(desc: DescMessage): (msg: Message) => string {
  return messageWriter(desc) as (msg: Message) => string;
}

function messageWriter(desc: DescMessage): Writer {
  let w = writers.get(desc);
  if (w) return w;
  if (desc.typeName.startsWith("google.protobuf.")) {
    w = desc.typeName === "google.protobuf.Timestamp" ? timestampWriter(desc) : (m) => JSON.stringify(toJson(desc, m as Message));
    writers.set(desc, w);
    return w;
  }
  const parts: ((msg: Record<string, unknown>) => string | undefined)[] = [];
  // Registered before its fields are compiled: a recursive message type finds this writer.
  w = (m) => {
    const msg = m as Record<string, unknown>;
    let out = "";
    for (let i = 0; i < parts.length; i++) {
      const s = parts[i]!(msg);
      if (s !== undefined) out += out === "" ? s : "," + s;
    }
    return "{" + out + "}";
  };
  writers.set(desc, w);
  for (const f of desc.fields.concat().sort((a, b) => a.number - b.number)) parts.push(fieldWriter(f));
  return w;
}

/** `"jsonName":value` of a field when it is set, else undefined. */
function fieldWriter(f: DescField): (msg: Record<string, unknown>) => string | undefined {
  const key = JSON.stringify(f.jsonName) + ":";
  const name = f.localName;
  if (f.fieldKind === "list") {
    const item = singular(f, f.listKind);
    return (msg) => {
      const v = msg[name] as unknown[];
      if (v.length === 0) return undefined;
      let out = "";
      for (let i = 0; i < v.length; i++) out += (i ? "," : "") + item(v[i]);
      return key + "[" + out + "]";
    };
  }
  if (f.fieldKind === "map") {
    const value = singular(f, f.mapKind);
    return (msg) => {
      const v = msg[name] as Record<string, unknown>;
      const keys = Object.keys(v);
      if (keys.length === 0) return undefined;
      let out = "";
      for (let i = 0; i < keys.length; i++) out += (i ? "," : "") + JSON.stringify(keys[i]) + ":" + value(v[keys[i]!]);
      return key + "{" + out + "}";
    };
  }
  const value = singular(f, f.fieldKind);
  if (f.oneof) {
    const group = f.oneof.localName;
    return (msg) => {
      const o = msg[group] as { case: string | undefined; value?: unknown };
      return o.case === name ? key + value(o.value) : undefined;
    };
  }
  if (f.presence !== 2 /* IMPLICIT */) {
    return (msg) => {
      const v = msg[name];
      return v !== undefined && Object.prototype.hasOwnProperty.call(msg, name) ? key + value(v) : undefined;
    };
  }
  if (f.fieldKind === "enum") {
    const zero = f.enum.values[0]!.number;
    return (msg) => (msg[name] !== zero ? key + value(msg[name]) : undefined);
  }
  if (f.fieldKind === "message") return (msg) => (msg[name] !== undefined ? key + value(msg[name]) : undefined);
  switch (f.scalar) {
    case ScalarType.BOOL:
      return (msg) => (msg[name] !== false ? key + value(msg[name]) : undefined);
    case ScalarType.STRING:
      return (msg) => (msg[name] !== "" ? key + value(msg[name]) : undefined);
    case ScalarType.BYTES:
      return (msg) => {
        const v = msg[name];
        return !(v instanceof Uint8Array) || v.byteLength > 0 ? key + value(v) : undefined;
      };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return (msg) => (!Object.is(msg[name], 0) ? key + value(msg[name]) : undefined);
    default:
      // Loose comparison matches 0n, 0 and "0" (as protobuf-es does).
      // eslint-disable-next-line eqeqeq
      return (msg) => (msg[name] != 0 ? key + value(msg[name]) : undefined);
  }
}

/** The writer of one value of a field (or of an element of a list, or a value of a map). */
function singular(f: DescField, kind: "scalar" | "enum" | "message" | undefined): Writer {
  if (kind === "message") return messageWriter((f as { message: DescMessage }).message);
  if (kind === "enum") return enumWriter((f as { enum: DescEnum }).enum);
  return scalarWriter(f, (f as { scalar: ScalarType }).scalar);
}

function enumWriter(desc: DescEnum): Writer {
  if (desc.typeName === "google.protobuf.NullValue") return () => "null";
  const names = new Map<number, string>();
  for (const v of desc.values) names.set(v.number, JSON.stringify(enumToJson(desc, v.number)));
  return (v) => {
    if (typeof v !== "number") return JSON.stringify(enumToJson(desc, v as number)); // throws as toJson does
    return names.get(v) ?? String(v);
  };
}

function scalarWriter(f: DescField, scalar: ScalarType): Writer {
  const bad = (v: unknown): never => {
    throw new Error(`cannot encode field ${f.parent.typeName}.${f.name} to JSON: unexpected ${typeof v}`);
  };
  switch (scalar) {
    case ScalarType.INT32:
    case ScalarType.SFIXED32:
    case ScalarType.SINT32:
    case ScalarType.FIXED32:
    case ScalarType.UINT32:
      return (v) => (typeof v === "number" ? String(v) : bad(v));
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return (v) => {
        if (typeof v !== "number") return bad(v);
        if (Number.isNaN(v)) return '"NaN"';
        if (v === Infinity) return '"Infinity"';
        if (v === -Infinity) return '"-Infinity"';
        return String(v);
      };
    case ScalarType.STRING:
      return (v) => (typeof v === "string" ? JSON.stringify(v) : bad(v));
    case ScalarType.BOOL:
      return (v) => (typeof v === "boolean" ? (v ? "true" : "false") : bad(v));
    case ScalarType.BYTES:
      return (v) => (v instanceof Uint8Array ? '"' + Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") + '"' : bad(v));
    default:
      // 64-bit integers: decimal strings.
      return (v) => (typeof v === "bigint" || typeof v === "string" || (typeof v === "number" && Number.isInteger(v)) ? '"' + v.toString() + '"' : bad(v));
  }
}

const MS_MIN = Date.parse("0001-01-01T00:00:00Z");
const MS_MAX = Date.parse("9999-12-31T23:59:59Z");

/** protobuf-es's `timestampToJson`, quoted; what it refuses goes to `toJson` (which throws its error). */
function timestampWriter(desc: DescMessage): Writer {
  return (m) => {
    const t = m as { seconds: bigint; nanos: number };
    return timestampText(Number(t.seconds), t.nanos) ?? JSON.stringify(toJson(desc, m as Message));
  };
}

/**
 * A Timestamp's JSON string, quoted, as protobuf-es's `timestampToJson` writes it; null for what it refuses
 * (outside years 1 to 9999, nanos outside 0 to 999,999,999). Also used by json-transcode.ts.
 */
export function timestampText(seconds: number, nanos: number): string | null {
  const ms = seconds * 1000;
  if (!(ms >= MS_MIN && ms <= MS_MAX) || !(nanos >= 0 && nanos <= 999999999)) return null;
  let z = "Z";
  if (nanos > 0) {
    const n = (nanos + 1000000000).toString().substring(1);
    z = n.substring(3) === "000000" ? "." + n.substring(0, 3) + "Z" : n.substring(6) === "000" ? "." + n.substring(0, 6) + "Z" : "." + n + "Z";
  }
  return '"' + isoSeconds(seconds) + z + '"';
}

/** "00" to "99". */
const TWO = Array.from({ length: 100 }, (_, i) => (i < 10 ? "0" : "") + i);

/**
 * `new Date(seconds * 1000).toISOString()` up to the seconds (`YYYY-MM-DDTHH:MM:SS`), for years 1 to 9999,
 * without a Date (Hinnant's days-to-civil): a third of the export's JSON time went to `toISOString`.
 */
function isoSeconds(seconds: number): string {
  const days = Math.floor(seconds / 86400);
  let sod = seconds - days * 86400;
  const z = days + 719468; // days since 0000-03-01 (positive from year 1 on)
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  const h = Math.floor(sod / 3600);
  sod -= h * 3600;
  const min = Math.floor(sod / 60);
  return TWO[Math.floor(y / 100)]! + TWO[y % 100]! + "-" + TWO[m]! + "-" + TWO[d]! + "T" + TWO[h]! + ":" + TWO[min]! + ":" + TWO[sod - min * 60]!;
}
