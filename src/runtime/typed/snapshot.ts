/**
 * What the general write path validates and encodes: a plain-data copy of a write input, each property read
 * exactly once, and the depth of the message it makes.
 *
 * - A getter or a Proxy read twice (once by zod, once by `create`/`toBinary`) could answer a valid value the
 *   first time and another the second: the store would keep what it did not check, or under another key.
 *   The copy holds own enumerable properties only (a property inherited through a prototype does not satisfy
 *   `required`), real `Uint8Array`s are copied by their internal length, and anything that is not plain data
 *   (a `Date`, a `Map`, a Proxy posing as a `Uint8Array`, a cycle) is refused with a path.
 * - protobuf-es reads at most 100 nested messages (`fromBinary`'s `recursionLimit`; the generated decoders
 *   use the same `MAX_DEPTH`): a message nested deeper would be stored and never read back. A
 *   `google.protobuf.Struct` counts two levels per JSON level (Struct, then Value).
 *
 * The generated codecs (the fast path) read each property once already and check depth themselves; this
 * module serves the general path (zod, `create`, `toBinary`), which the codec hands what it does not take.
 */
import { types } from "node:util";
import { type DescMessage, isMessage } from "@bufbuild/protobuf";
import type { ValidationIssue } from "../errors.js";
import { MAX_DEPTH } from "../format/protowire.js";

/**
 * Object and array levels a write input may have. Every message level is at least one object level, and a
 * message can add at most three more (a oneof, a map or a list, a JSON list) below the message limit; this
 * bound only keeps zod's recursion safe, the exact rule is {@link messageDepthIssue}.
 */
const MAX_INPUT_LEVELS = 4 * MAX_DEPTH;

/** Thrown inside the copy; the caller turns it into a `ValidationError`. */
export class InputIssue {
  constructor(readonly issue: ValidationIssue) {}
}

/**
 * A plain-data copy of `input` (objects with `Object.prototype`, arrays, copied `Uint8Array`s, primitives),
 * reading each own enumerable property once. Throws {@link InputIssue} for what is not plain data.
 */
export function snapshotInput(input: unknown): unknown {
  return copy(input, [], []);
}

function fail(path: (string | number)[], code: string, message: string): never {
  throw new InputIssue({ path: path.slice(), code, message });
}

function copy(v: unknown, path: (string | number)[], stack: object[]): unknown {
  if (typeof v !== "object" || v === null) return v;
  // A real Uint8Array (a Buffer too): copied through its internal length, whatever `length` says.
  if (types.isUint8Array(v)) return new Uint8Array(v);
  if (ArrayBuffer.isView(v) || v instanceof Uint8Array) {
    fail(path, "invalid_type", "Invalid input: expected Uint8Array (a Proxy of one or an object posing as one cannot be stored)");
  }
  if (types.isDate(v)) {
    fail(
      path,
      "invalid_type",
      "Invalid input: got a Date; a `google.protobuf.Timestamp` is `{ seconds, nanos }` (convert with `timestampFromDate()` from @bufbuild/protobuf/wkt)",
    );
  }
  if (
    types.isMap(v) ||
    types.isSet(v) ||
    types.isWeakMap(v) ||
    types.isWeakSet(v) ||
    types.isRegExp(v) ||
    types.isBoxedPrimitive(v) ||
    types.isAnyArrayBuffer(v) ||
    types.isPromise(v) ||
    types.isNativeError(v)
  ) {
    fail(path, "invalid_type", `Invalid input: expected plain data, got ${Object.prototype.toString.call(v).slice(8, -1)}`);
  }
  if (stack.includes(v)) fail(path, "invalid_type", "Invalid input: the value contains itself (a cycle)");
  if (stack.length >= MAX_INPUT_LEVELS) fail(path, "too_big", `Too big: nested more than ${MAX_INPUT_LEVELS} levels`);
  stack.push(v);
  let out: unknown;
  if (Array.isArray(v)) {
    const n = v.length;
    const a: unknown[] = [];
    for (let i = 0; i < n; i++) {
      path.push(i);
      a.push(copy(v[i], path, stack));
      path.pop();
    }
    out = a;
  } else {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      path.push(k);
      const x = copy((v as Record<string, unknown>)[k], path, stack);
      // A JSON-parsed `__proto__` key is data: define it, do not set the prototype.
      if (k === "__proto__") Object.defineProperty(o, k, { value: x, enumerable: true, writable: true, configurable: true });
      else o[k] = x;
      path.pop();
    }
    out = o;
  }
  stack.pop();
  return out;
}

/**
 * An issue when `msg` (a message of `desc`, as `create` built it) nests more messages than protobuf-es
 * reads back (the record's message is level 1), else undefined.
 */
export function messageDepthIssue(desc: DescMessage, msg: unknown): ValidationIssue | undefined {
  const path: (string | number)[] = [];
  return messageDepth(desc, msg, 1, path) > MAX_DEPTH
    ? { path, code: "too_big", message: `Too big: nested more than ${MAX_DEPTH} messages deep (the most a record can be read back with)` }
    : undefined;
}

/** The deepest message level under `m` (at level `d`); on passing the limit, `path` is where. */
function messageDepth(desc: DescMessage, m: unknown, d: number, path: (string | number)[]): number {
  if (d > MAX_DEPTH) return d;
  const r = m as Record<string, unknown>;
  let max = d;
  for (const f of desc.fields) {
    let v: unknown;
    if (f.oneof) {
      const o = r[f.oneof.localName] as { case?: string; value?: unknown } | undefined;
      if (!o || o.case !== f.localName) continue;
      v = o.value;
    } else v = r[f.localName];
    if (v === undefined || v === null) continue;
    const sub =
      f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message") || (f.fieldKind === "map" && f.mapKind === "message")
        ? f.message
        : undefined;
    if (!sub) continue;
    path.push(f.localName);
    if (f.fieldKind === "list") {
      const list = v as unknown[];
      for (let i = 0; i < list.length && max <= MAX_DEPTH; i++) {
        path.push(i);
        max = Math.max(max, valueDepth(sub, list[i], d + 1, path));
        if (max <= MAX_DEPTH) path.pop();
      }
    } else if (f.fieldKind === "map") {
      for (const [k, x] of Object.entries(v as object)) {
        path.push(k);
        max = Math.max(max, valueDepth(sub, x, d + 1, path));
        if (max > MAX_DEPTH) break;
        path.pop();
      }
    } else max = Math.max(max, valueDepth(sub, v, d + 1, path));
    if (max > MAX_DEPTH) return max;
    path.pop();
  }
  return max;
}

/** A field value of message type `desc` at level `d`: a message, a Struct as JSON, or an unboxed wrapper. */
function valueDepth(desc: DescMessage, v: unknown, d: number, path: (string | number)[]): number {
  if (isMessage(v, desc)) return messageDepth(desc, v, d, path);
  if (desc.typeName === "google.protobuf.Struct") return structDepth(v, d, path);
  return d; // an unboxed wrapper value (its message is one level)
}

/** A `google.protobuf.Struct` given as a JSON object, at level `d`: its values are `Value`s one below. */
function structDepth(obj: unknown, d: number, path: (string | number)[]): number {
  if (d > MAX_DEPTH || typeof obj !== "object" || obj === null) return d;
  let max = d;
  for (const [k, x] of Object.entries(obj)) {
    path.push(k);
    max = Math.max(max, jsonValueDepth(x, d + 1, path));
    if (max > MAX_DEPTH) return max;
    path.pop();
  }
  return max;
}

/** A `google.protobuf.Value` given as JSON, at level `d`: an object is a Struct and a list a ListValue one below. */
function jsonValueDepth(v: unknown, d: number, path: (string | number)[]): number {
  if (d > MAX_DEPTH || typeof v !== "object" || v === null) return d;
  if (!Array.isArray(v)) return structDepth(v, d + 1, path);
  // ListValue at d + 1, its values at d + 2.
  let max = d + 1;
  for (let i = 0; i < v.length; i++) {
    path.push(i);
    max = Math.max(max, jsonValueDepth(v[i], d + 2, path));
    if (max > MAX_DEPTH) return max;
    path.pop();
  }
  return max;
}
