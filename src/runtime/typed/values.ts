/**
 * Values as the typed layer stores and returns them, pure functions with no store state: keys as stored
 * strings (`encodeKey`, `decodeKey`), index terms (`term`, `indexTerms` and their shared-string cache),
 * plain copies of write inputs (`toInit`) and frozen messages (`deepFreeze`). Called by record-codec.ts (encode
 * and decode), the repositories (collection.ts, singleton.ts), batch.ts and store.ts (change events).
 */
import { type DescField, ScalarType } from "@bufbuild/protobuf";
import type { CollectionDefinition, KeyKind, KeyValue } from "./entity.js";
import { UsageError } from "../errors.js";

/** Keys are stored as strings: strings as they are, integers in decimal. */
export function encodeKey(k: unknown, kind: KeyKind): string {
  switch (kind) {
    case "string":
      if (typeof k !== "string") throw keyTypeError(kind, k);
      return k;
    case "int32":
    case "uint32":
      if (typeof k !== "number" || !Number.isInteger(k)) throw keyTypeError(kind, k);
      return String(k);
    case "int64":
    case "uint64":
      if (typeof k === "bigint") return k.toString();
      if (typeof k === "number" && Number.isSafeInteger(k)) return String(k);
      if (typeof k === "string" && /^-?\d+$/.test(k)) return BigInt(k).toString();
      throw keyTypeError(kind, k);
  }
}

export function decodeKey(k: string, kind: KeyKind): KeyValue {
  return kind === "string" ? k : kind === "int32" || kind === "uint32" ? Number(k) : BigInt(k);
}

function keyTypeError(kind: KeyKind, k: unknown): UsageError {
  return new UsageError(`expected a ${kind} key, got ${typeof k}`);
}

/** The index term for field = value: `field` NUL canonical value. */
export function term(field: string, value: unknown): string {
  return `${field}\u0000${typeof value === "bigint" ? value.toString() : String(value)}`;
}

/**
 * Refuse a query value whose type cannot be the indexed field's (an element's, for a repeated field): from
 * JavaScript, `query({ tags: 5 })` on a string list would match nothing, silently. The message names the
 * entity, field and types, never the value.
 */
export function checkQueryValue(def: CollectionDefinition, field: string, value: unknown): void {
  const f = def.schema.fields.find((x: DescField) => x.localName === field);
  if (!f) return;
  const scalar = f.fieldKind === "scalar" || (f.fieldKind === "list" && f.listKind === "scalar") ? f.scalar : undefined;
  const isEnum = f.fieldKind === "enum" || (f.fieldKind === "list" && f.listKind === "enum");
  let expected: string;
  let ok: boolean;
  if (isEnum || (scalar !== undefined && INT32.has(scalar))) {
    expected = isEnum ? "an enum number" : "an integer number";
    ok = typeof value === "number" && Number.isInteger(value);
  } else if (scalar === ScalarType.DOUBLE || scalar === ScalarType.FLOAT) {
    expected = "a number";
    ok = typeof value === "number";
  } else if (scalar !== undefined && INT64.has(scalar)) {
    expected = "a bigint or an integer number";
    ok = typeof value === "bigint" || (typeof value === "number" && Number.isSafeInteger(value)) || (f.fieldKind === "scalar" && f.longAsString && typeof value === "string" && /^-?\d+$/.test(value));
  } else if (scalar === ScalarType.BOOL) {
    expected = "a boolean";
    ok = typeof value === "boolean";
  } else if (scalar === ScalarType.STRING) {
    expected = "a string";
    ok = typeof value === "string";
  } else return;
  if (!ok) {
    const got = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    throw new UsageError(`query on \`${def.name}\`: index \`${field}\` takes ${expected}${f.fieldKind === "list" ? " (an element of the list)" : ""}, got ${got}`);
  }
}

const INT32: ReadonlySet<ScalarType> = new Set([ScalarType.INT32, ScalarType.UINT32, ScalarType.SINT32, ScalarType.FIXED32, ScalarType.SFIXED32]);
const INT64: ReadonlySet<ScalarType> = new Set([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64]);

/** A field of a write: its value in `source` (a message or a checked input), else the zero message's. */
export function fieldOf(source: Record<string, unknown>, zero: Record<string, unknown>, field: string): unknown {
  const v = source[field];
  return v !== undefined ? v : zero[field];
}

/**
 * Terms already built, per field and value: index values repeat (a status, a tag, a project), and every
 * record's terms stay in memory with its location, so records share one string per term instead of each
 * holding its own copy. Values beyond `TERM_CACHE_PER_FIELD` distinct ones per field are not cached.
 */
const termCache = new Map<string, Map<unknown, string>>();
const TERM_CACHE_PER_FIELD = 4096;

function cachedTerm(field: string, value: unknown): string {
  let byValue = termCache.get(field);
  if (!byValue) termCache.set(field, (byValue = new Map()));
  let t = byValue.get(value);
  if (t === undefined) {
    t = term(field, value);
    if (byValue.size < TERM_CACHE_PER_FIELD) byValue.set(value, t);
  }
  return t;
}

export function indexTerms(def: CollectionDefinition, source: Record<string, unknown>, zero: Record<string, unknown>): string[] {
  // Distinct terms in first-seen order (a list scan is cheaper than a Set for the few terms records have).
  const out: string[] = [];
  for (const f of def.indexes) {
    const v = fieldOf(source, zero, f);
    if (Array.isArray(v)) {
      for (const e of v) {
        const t = cachedTerm(f, e);
        if (!out.includes(t)) out.push(t);
      }
    } else if (v !== undefined) out.push(cachedTerm(f, v));
  }
  return out;
}

/** A deep copy of plain objects and arrays without `$typeName`, so `create()` converts every level. */
export function toInit(v: unknown): unknown {
  if (typeof v !== "object" || v === null || ArrayBuffer.isView(v)) return v;
  if (Array.isArray(v)) return v.map(toInit);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (k !== "$typeName") out[k] = toInit(x);
  return out;
}

/**
 * Freeze a decoded message and every object in it (messages, lists, maps, oneofs; byte arrays cannot be
 * frozen). Messages have no cycles. A `for…in` walk without `Object.values` arrays measured 0.36 µs per
 * task record against 0.89 µs.
 */
export function deepFreeze<T>(o: T): T {
  if (typeof o !== "object" || o === null || ArrayBuffer.isView(o)) return o;
  if (Array.isArray(o)) {
    for (let i = 0; i < o.length; i++) {
      const v: unknown = o[i];
      if (typeof v === "object" && v !== null) deepFreeze(v);
    }
  } else {
    const r = o as Record<string, unknown>;
    for (const k in r) {
      const v = r[k];
      if (typeof v === "object" && v !== null) deepFreeze(v);
    }
  }
  return Object.freeze(o);
}
