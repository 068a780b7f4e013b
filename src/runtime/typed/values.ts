/**
 * Values as the typed layer stores and returns them, pure functions with no store state: keys as stored
 * strings (`encodeKey`, `decodeKey`), a write's field values (`fieldOf`), plain copies of write inputs
 * (`toInit`) and frozen messages (`deepFreeze`). Called by record-codec.ts (encode and decode), the
 * repositories (collection.ts, singleton.ts), batch.ts and store.ts (change events).
 */
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

/** A field of a write: its value in `source` (a message or a checked input), else the zero message's. */
export function fieldOf(source: Record<string, unknown>, zero: Record<string, unknown>, field: string): unknown {
  const v = source[field];
  return v !== undefined ? v : zero[field];
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

/** The key field of a collection write input, when it holds a key of the right type (else undefined). */
export function keyOf(def: CollectionDefinition, v: unknown): KeyValue | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  try {
    const k = (v as Record<string, unknown>)[def.key];
    encodeKey(k, def.keyKind);
    return k as KeyValue;
  } catch {
    return undefined; // a getter that throws, or a value of another type
  }
}
