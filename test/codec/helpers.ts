/**
 * Shared machinery of the codec property tests: input generators built from protobuf-es descriptors
 * (valid values and near misses), the oracles (zod, `create` + `toBinary`, `fromBinary`), and a real
 * `buf generate` of the kitchen-sink fixture plus an extra fixture of this folder.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create, getOption, hasOption, ScalarType, toBinary, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import type { ZodType } from "zod";
import { field as fieldExtension } from "../../src/generated/cellar/v1/options_pb.js";
import { ProtoWriter, type EntityCodec } from "../../src/runtime/format/protowire.js";
import { toInit } from "../../src/runtime/typed/values.js";
import { bufGenerate, genTemplate, repoRoot, runtimeImportFrom, scratchDir, writeWorkspace } from "../codegen/helpers.js";

// ------------------------------------------------------------------ oracles

/** The general path's plain deep copy without `$typeName` (the runtime's own, so the oracle is the path it models). */
export { toInit };

/** What the general path stores for an input zod accepted (or the error protobuf-es throws). */
export function generalBytes(schema: DescMessage, input: unknown): Uint8Array | Error {
  try {
    return toBinary(schema, create(schema, toInit(input) as never));
  } catch (e) {
    return e as Error;
  }
}

/** One entity under test: its descriptor, zod validator and generated codec. */
export interface Subject {
  readonly name: string;
  readonly schema: DescMessage;
  readonly zod: ZodType;
  readonly codec: EntityCodec;
}

/** A small writer, so growth and the moves of `join` are exercised. */
export const writer = new ProtoWriter(16);

/**
 * Run the encoder the way the store does (`reset`, a prefix byte or a few, `encode`, `copy`): the bytes it
 * wrote after the prefix, or `null` when it declined.
 */
export function fastEncode(codec: EntityCodec, input: unknown, prefix = 1): Uint8Array | null {
  writer.reset();
  for (let i = 0; i < prefix; i++) writer.byte(0xa0 + i);
  return codec.encode(writer, input) ? writer.copy(prefix) : null;
}

// ------------------------------------------------------------------ field facts

export interface Rules {
  required: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  min?: number;
  max?: number;
  maxItems?: number;
}

const rulesCache = new Map<DescField, Rules>();

/** `(cellar.v1.field)` of a field (read from the embedded descriptor). */
export function rulesOf(f: DescField): Rules {
  let r = rulesCache.get(f);
  if (r) return r;
  r = { required: false };
  if (hasOption(f, fieldExtension)) {
    const a = getOption(f, fieldExtension);
    r.required = a.required;
    if (a.minLength !== undefined) r.minLength = a.minLength;
    if (a.maxLength !== undefined) r.maxLength = a.maxLength;
    if (a.pattern !== "") r.pattern = a.pattern;
    if (a.min !== undefined) r.min = a.min;
    if (a.max !== undefined) r.max = a.max;
    if (a.maxItems !== undefined) r.maxItems = a.maxItems;
  }
  rulesCache.set(f, r);
  return r;
}

/** protobuf-es represents `google.protobuf.Struct` as a JSON object, except inside `google.protobuf.Value`. */
function isJsonStruct(f: DescField): boolean {
  return (
    (f.fieldKind === "message" || f.fieldKind === "list" || f.fieldKind === "map") &&
    f.message?.typeName === "google.protobuf.Struct" &&
    f.parent.typeName !== "google.protobuf.Value"
  );
}

/** An unboxed wrapper (`google.protobuf.StringValue` outside a oneof is a plain string in protobuf-es). */
function isUnboxedWrapper(f: DescField): boolean {
  return f.fieldKind === "message" && !f.oneof && isWrapperDesc(f.message);
}

/** A field the codec documents it does not take (a set one sends the input to the general path). */
export function isUnsupportedField(f: DescField): boolean {
  return f.fieldKind === "map" || isUnboxedWrapper(f) || isJsonStruct(f) || longAsString(f);
}

/** A 64-bit integer field with `jstype = JS_STRING` (singular or repeated). */
export function longAsString(f: DescField): boolean {
  return (f.fieldKind === "scalar" || (f.fieldKind === "list" && f.listKind === "scalar")) && f.longAsString;
}

const INT_RANGE: Partial<Record<ScalarType, [bigint, bigint]>> = {
  [ScalarType.INT32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SINT32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SFIXED32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.UINT32]: [0n, 2n ** 32n - 1n],
  [ScalarType.FIXED32]: [0n, 2n ** 32n - 1n],
  [ScalarType.INT64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SINT64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SFIXED64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.UINT64]: [0n, 2n ** 64n - 1n],
  [ScalarType.FIXED64]: [0n, 2n ** 64n - 1n],
};
const is64 = (s: ScalarType) => INT_RANGE[s] !== undefined && INT_RANGE[s]![1] > 2n ** 32n;
export const FLOAT32_MAX = 3.4028234663852886e38;

/** Integer range of a scalar after the field's min/max. */
function intRange(s: ScalarType, r: Rules): [bigint, bigint] {
  let [lo, hi] = INT_RANGE[s]!;
  if (r.min !== undefined && BigInt(r.min) > lo) lo = BigInt(r.min);
  if (r.max !== undefined && BigInt(r.max) < hi) hi = BigInt(r.max);
  return [lo, hi];
}

// ------------------------------------------------------------------ valid inputs

type G = fc.GeneratorValue;

export interface GenOptions {
  /** Also set fields the codec does not take (maps, unboxed wrappers, Struct, JS_STRING int64). */
  unsupported: boolean;
  /** Nesting budget for optional message fields. */
  depth: number;
}

const bool = (g: G, p = 0.5) => g(fc.double, { min: 0, max: 1, noNaN: true }) < p;
const int = (g: G, min: number, max: number) => g(fc.integer, { min, max });
function oneOf<T>(g: G, xs: readonly T[]): T {
  return xs[int(g, 0, xs.length - 1)]!;
}

const STRING_UNITS = ["grapheme-ascii", "grapheme", "binary", "binary-ascii"] as const;

/** Length in code points, as zod measures strings (a lone surrogate is one). */
export function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    if ((s.charCodeAt(i) & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n--;
      i++;
    }
  }
  return n;
}

/** A string within `[min, max]` code points, matching `pattern` when there is one. */
function validString(g: G, r: Rules, required: boolean): string {
  const min = Math.max(r.minLength ?? 0, required ? 1 : 0);
  const max = r.maxLength ?? (bool(g, 0.1) ? 300 : 50);
  const ok = (s: string) => codePoints(s) >= min && codePoints(s) <= max && (r.pattern === undefined || new RegExp(r.pattern).test(s));
  if (r.pattern !== undefined) {
    for (let i = 0; i < 5; i++) {
      const s = g(fc.stringMatching, new RegExp(r.pattern));
      if (ok(s)) return s;
      const cut = s.slice(0, max);
      if (ok(cut)) return cut;
    }
    return ""; // a near miss, then: the caller's checks still decide through zod
  }
  const special = ["😀".repeat(min), "😀".repeat(max), "😀a".repeat(Math.ceil(min / 2)), "", "é", "😀", "\u{10FFFF}", "\uD800", "\uDC00x", "\uFEFFbom", "a".repeat(42), "é".repeat(42), "a".repeat(43), "😀".repeat(21), "x".repeat(127), "x".repeat(128), "ü".repeat(64)];
  if (bool(g, 0.2)) {
    const s = oneOf(g, special);
    if (ok(s)) return s;
  }
  const unit = oneOf(g, STRING_UNITS);
  const s = g(fc.string, { unit, minLength: min, maxLength: Math.min(max, 200) });
  return ok(s) ? s : "a".repeat(min);
}

function validBytes(g: G, r: Rules, required: boolean): Uint8Array {
  const min = Math.max(r.minLength ?? 0, required ? 1 : 0);
  const max = Math.min(r.maxLength ?? 200, 300);
  const data = g(fc.uint8Array, { minLength: min, maxLength: max });
  switch (int(g, 0, 3)) {
    case 0:
      return Buffer.from(data);
    case 1: {
      // A view at an offset into a larger buffer.
      const big = new Uint8Array(data.length + 7).fill(0xee);
      big.set(data, 3);
      return big.subarray(3, 3 + data.length);
    }
    default:
      return data;
  }
}

function validFloat(g: G, s: ScalarType, r: Rules): number {
  if (r.min !== undefined || r.max !== undefined) {
    const v = g(fc.double, { min: r.min ?? -FLOAT32_MAX, max: r.max ?? FLOAT32_MAX, noNaN: true, noDefaultInfinity: true });
    return bool(g, 0.1) ? oneOf(g, [r.min ?? 0, r.max ?? 0, 0, -0]) : v;
  }
  if (s === ScalarType.FLOAT) {
    return bool(g, 0.5) ? g(fc.float) : g(fc.double, { min: -FLOAT32_MAX, max: FLOAT32_MAX });
  }
  return bool(g, 0.15) ? oneOf(g, [NaN, Infinity, -Infinity, -0, 0, Number.MIN_VALUE, Number.MAX_VALUE, 2 ** 53 + 2]) : g(fc.double);
}

function validInt(g: G, s: ScalarType, r: Rules): number | bigint {
  const [lo, hi] = intRange(s, r);
  const edges = [lo, hi, lo + 1n, hi - 1n, 0n, 1n, -1n, 127n, 128n, 2n ** 31n - 1n, -(2n ** 31n), 2n ** 32n - 1n, 2n ** 53n, -(2n ** 53n), 2n ** 53n + 1n].filter((x) => x >= lo && x <= hi);
  const v = bool(g, 0.3) ? oneOf(g, edges) : g(fc.bigInt, { min: lo, max: hi });
  if (is64(s)) return v;
  const n = Number(v);
  return n === 0 && bool(g, 0.1) ? -0 : n;
}

function validEnum(g: G, f: DescField, required: boolean): number {
  const values = f.enum!.values.map((v) => v.number).filter((n) => !(required && n === 0));
  const n = oneOf(g, values);
  return n === 0 && bool(g, 0.1) ? -0 : n;
}

function validScalar(g: G, f: DescField, s: ScalarType, longAsString: boolean, r: Rules, required: boolean): unknown {
  switch (s) {
    case ScalarType.STRING:
      return validString(g, r, required);
    case ScalarType.BYTES:
      return validBytes(g, r, required);
    case ScalarType.BOOL:
      return bool(g);
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return validFloat(g, s, r);
    default: {
      const v = validInt(g, s, r);
      return longAsString ? String(v) : v;
    }
  }
}

function jsonValue(g: G, depth: number): unknown {
  switch (int(g, 0, depth > 0 ? 5 : 3)) {
    case 0:
      return null;
    case 1:
      return g(fc.double, { noNaN: true, noDefaultInfinity: true });
    case 2:
      return g(fc.string, { maxLength: 5 });
    case 3:
      return bool(g);
    case 4:
      return [jsonValue(g, depth - 1)];
    default:
      return { k: jsonValue(g, depth - 1) };
  }
}

/** A valid value of one element (singular value, list element or map value) of `f`. */
function validElement(g: G, f: DescField, o: GenOptions, required: boolean): unknown {
  const r = rulesOf(f);
  if (isJsonStruct(f)) return { a: jsonValue(g, 2) };
  if (isUnboxedWrapper(f)) {
    const inner = f.message!.fields[0]!;
    return validScalar(g, inner, inner.scalar!, false, r, false);
  }
  switch (f.fieldKind) {
    case "scalar":
      return validScalar(g, f, f.scalar, f.longAsString, r, required);
    case "enum":
      return validEnum(g, f, required);
    case "message":
      return validMessage(g, f.message, o);
    case "list":
      if (f.listKind === "scalar") return validScalar(g, f, f.scalar, f.longAsString, r, false);
      if (f.listKind === "enum") return validEnum(g, f, false);
      return validMessage(g, f.message, o);
    case "map":
      if (f.mapKind === "scalar") return validScalar(g, f, f.scalar, false, r, false);
      if (f.mapKind === "enum") return validEnum(g, f, false);
      return validMessage(g, f.message, o);
  }
}

function mapKey(g: G, f: DescField & { fieldKind: "map" }): string {
  if (f.mapKey === ScalarType.STRING) return g(fc.string, { maxLength: 6 });
  if (f.mapKey === ScalarType.BOOL) return String(bool(g));
  const [lo, hi] = INT_RANGE[f.mapKey]!;
  return String(bool(g, 0.3) ? oneOf(g, [lo, hi, 0n]) : g(fc.bigInt, { min: lo, max: hi }));
}

function validField(g: G, f: DescField, o: GenOptions): unknown {
  const r = rulesOf(f);
  if (f.fieldKind === "list") {
    const max = Math.min(r.maxItems ?? 5, 5);
    const n = int(g, r.required ? 1 : 0, max);
    return Array.from({ length: n }, () => validElement(g, f, o, false));
  }
  if (f.fieldKind === "map") {
    const out: Record<string, unknown> = {};
    const max = Math.min(r.maxItems ?? 3, 3);
    for (let i = int(g, r.required ? 1 : 0, max); i > 0; i--) out[mapKey(g, f)] = validElement(g, f, o, false);
    if (r.required && Object.keys(out).length === 0) out["1"] = validElement(g, f, o, false);
    return out;
  }
  return validElement(g, f, o, r.required);
}

/** Whether a field must be set for a valid input (zod's `required`). */
const mustSet = (f: DescField) => rulesOf(f).required;

/**
 * A valid write input of `desc`: an init object, sometimes a message from `create()` or a spread of
 * one, sometimes with `$typeName` / an empty `$unknown`. With `unsupported: false` no field the codec
 * declines is set (entities that *require* such a field cannot be valid then).
 */
export function validMessage(g: G, desc: DescMessage, o: GenOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const inner: GenOptions = { ...o, depth: o.depth - 1 };
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      const roll = int(g, 0, 5);
      if (roll === 0) out[member.localName] = { case: undefined };
      else if (roll === 1) out[member.localName] = { case: undefined, value: undefined };
      else if (roll >= 3) {
        const choices = member.fields.filter((f) => (o.unsupported || !isUnsupportedField(f)) && (o.depth > 0 || f.fieldKind !== "message"));
        if (choices.length) {
          const f = oneOf(g, choices);
          out[member.localName] = { case: f.localName, value: validElement(g, f, inner, false) };
        }
      }
      continue;
    }
    const f = member;
    if (!o.unsupported && isUnsupportedField(f)) continue;
    const required = mustSet(f);
    if (!required) {
      if (f.fieldKind === "message" && o.depth <= 0) continue;
      if (bool(g, 0.4)) continue;
    }
    out[f.localName] = validField(g, f, inner);
  }
  switch (int(g, 0, 9)) {
    case 0:
      return create(desc, toInit(out) as never) as Record<string, unknown>;
    case 1:
      return { ...(create(desc, toInit(out) as never) as Record<string, unknown>) };
    case 2:
      return { $typeName: desc.typeName, ...out };
    case 3:
      return { ...out, $unknown: [] };
    case 4:
      return Object.assign(Object.create(null), out);
    default:
      return out;
  }
}

/** Whether any field the codec declines is set anywhere in `input` (a valid input of `desc`). */
export function setsUnsupported(desc: DescMessage, input: unknown): boolean {
  if (typeof input !== "object" || input === null) return false;
  const o = input as Record<string, unknown>;
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      const v = o[member.localName] as { case?: string; value?: unknown } | undefined;
      const f = member.fields.find((x) => x.localName === v?.case);
      if (f && (isUnsupportedField(f) || (f.fieldKind === "message" && setsUnsupported(f.message, v!.value)))) return true;
      continue;
    }
    const v = o[member.localName];
    if (v === undefined) continue;
    if (isUnsupportedField(member)) return true;
    if (member.fieldKind === "message" && setsUnsupported(member.message, v)) return true;
    if (member.fieldKind === "list" && member.listKind === "message" && (v as unknown[]).some((e) => setsUnsupported(member.message, e))) return true;
  }
  return false;
}

// ------------------------------------------------------------------ near misses

class Boxed {
  constructor(readonly value: unknown) {}
}

/** Odd values for any field: wrong types, edges of every numeric type, odd strings and objects. */
function oddValues(): unknown[] {
  return [
    undefined,
    null,
    "",
    "x",
    "1",
    "abc",
    "ABC",
    "a b",
    "\uD800",
    "é",
    "😀".repeat(3),
    "x".repeat(65),
    "x".repeat(501),
    0,
    -0,
    1,
    -1,
    1.5,
    -1.5000001,
    1.5000001,
    NaN,
    Infinity,
    -Infinity,
    2 ** 31,
    2 ** 31 - 1,
    -(2 ** 31) - 1,
    2 ** 32,
    2 ** 32 - 1,
    2 ** 53,
    2 ** 64,
    1e40,
    -1e40,
    3.4028235e38,
    FLOAT32_MAX,
    3.4028235677973366e38,
    0n,
    1n,
    -1n,
    2n ** 63n,
    2n ** 63n - 1n,
    -(2n ** 63n) - 1n,
    2n ** 64n,
    2n ** 64n - 1n,
    true,
    false,
    [],
    [1],
    ["x"],
    [undefined],
    {},
    { case: undefined },
    new Uint8Array(0),
    new Uint8Array(5),
    new Uint8Array(17),
    Buffer.from("hi"),
    new Uint16Array(2),
    new DataView(new ArrayBuffer(2)),
    // (Objects posing as bytes, a Proxy of a Uint8Array, are left out: zod's own string `max` check reads
    // their `length` and throws; the store's snapshot refuses them before zod, see test/store/validation-hardening.)
    // Well-known types just past their ranges (a Timestamp's nanos, a Duration's signs).
    { seconds: 0n, nanos: 1_000_000_000 },
    { seconds: 0n, nanos: -1 },
    { seconds: 253402300800n },
    { seconds: 1n, nanos: -1 },
    { kind: { case: undefined } },
    "a\uDC00",
    new Date(0),
    new Boxed(1),
    Object.create(null),
    () => 1,
    Symbol("s"),
  ];
}

/** Near-miss values for `f`: one past each rule, wrong element types inside lists, odd messages. */
function fieldMisses(g: G, f: DescField): unknown[] {
  const r = rulesOf(f);
  const out: unknown[] = [];
  if (r.maxLength !== undefined) {
    out.push("a".repeat(r.maxLength), "a".repeat(r.maxLength + 1), new Uint8Array(r.maxLength + 1), new Uint8Array(r.maxLength));
    // Code points, not UTF-16 units, are what zod counts.
    out.push("😀".repeat(r.maxLength), "😀".repeat(r.maxLength + 1), "a" + "😀".repeat(r.maxLength - 1), "\uD800".repeat(r.maxLength + 1), "\uDE00\uD83D".repeat(r.maxLength));
  }
  if (r.minLength !== undefined && r.minLength > 0) {
    out.push("a".repeat(r.minLength - 1), new Uint8Array(r.minLength - 1), "😀".repeat(r.minLength - 1), "😀".repeat(r.minLength), "\uD800".repeat(r.minLength));
  }
  if (r.pattern !== undefined) out.push("abc", "ab1", "a-b", "en", "en-US", "x@y", "http://x", "https://", " a@b", "Zed");
  if (r.min !== undefined) out.push(r.min, r.min - 1, r.min - 0.5, BigInt(Math.trunc(r.min)) - 1n, BigInt(Math.trunc(r.min)));
  if (r.max !== undefined) out.push(r.max, r.max + 1, r.max + 0.5, BigInt(Math.trunc(r.max)) + 1n, BigInt(Math.trunc(r.max)));
  if (f.fieldKind === "list") {
    const n = r.maxItems ?? 3;
    const el = (): unknown => {
      if (f.listKind === "message") return {};
      if (f.listKind === "enum") return 1;
      return f.scalar === ScalarType.STRING ? "a" : f.scalar === ScalarType.BYTES ? new Uint8Array(1) : f.scalar === ScalarType.BOOL ? true : is64(f.scalar) ? 1n : 1;
    };
    out.push(Array.from({ length: n }, el), Array.from({ length: n + 1 }, el), [el(), oneOf(g, oddValues())], [el(), , el()], new Set([el()]));
  }
  if (f.fieldKind === "enum" || (f.fieldKind === "list" && f.listKind === "enum")) {
    const ns = f.enum!.values.map((v) => v.number);
    out.push(Math.max(...ns) + 1, -1, 0, [Math.max(...ns) + 1], [-1], [0, 1]);
  }
  if (f.fieldKind === "message") out.push({}, { $typeName: "wrong.Type" }, { $typeName: f.message.typeName }, create(f.message), { ...create(f.message) }, new Boxed({}), Object.create(null), { bogus: 1 });
  if (f.fieldKind === "map") out.push({}, { a: undefined }, { "1": {} }, Object.create(null), new Map());
  return out;
}

/** A nested message value of `input` (an object in a message field, list or oneof) with its descriptor, or the input itself. */
function pickTarget(g: G, desc: DescMessage, input: Record<string, unknown>): { desc: DescMessage; obj: Record<string, unknown>; set: (v: unknown) => void } {
  let cur = { desc, obj: input, set: (_: unknown) => {} };
  for (let depth = 0; depth < 6 && bool(g, 0.5); depth++) {
    const slots: { desc: DescMessage; obj: Record<string, unknown>; set: (v: unknown) => void }[] = [];
    const { obj } = cur;
    for (const member of cur.desc.members) {
      const v = obj[member.localName];
      if (typeof v !== "object" || v === null) continue;
      if (member.kind === "oneof") {
        const c = v as { case?: unknown; value?: unknown };
        const f = member.fields.find((x) => x.localName === c.case);
        if (f?.fieldKind === "message" && typeof c.value === "object" && c.value !== null && !Object.isFrozen(c)) {
          slots.push({ desc: f.message, obj: c.value as Record<string, unknown>, set: (x) => ((c as Record<string, unknown>).value = x) });
        }
      } else if (member.fieldKind === "message" && !isUnboxedWrapper(member) && !isJsonStruct(member)) {
        slots.push({ desc: member.message, obj: v as Record<string, unknown>, set: (x) => (obj[member.localName] = x) });
      } else if (member.fieldKind === "list" && member.listKind === "message" && Array.isArray(v) && v.length > 0) {
        const i = int(g, 0, v.length - 1);
        if (typeof v[i] === "object" && v[i] !== null) slots.push({ desc: member.message, obj: v[i] as Record<string, unknown>, set: (x) => (v[i] = x) });
      }
    }
    if (slots.length === 0) break;
    cur = oneOf(g, slots);
  }
  return cur;
}

/** Make `input` (a fresh valid input of `desc`, mutated in place) a near miss, or sometimes leave it valid in an odd shape. */
export function mutate(g: G, desc: DescMessage, input: Record<string, unknown>): Record<string, unknown> {
  const t = pickTarget(g, desc, input);
  const { obj } = t;
  let replacement: unknown = obj;
  const members = t.desc.members;
  const kind = int(g, 0, 10);
  switch (kind) {
    case 0:
    case 1:
    case 2: {
      // One field set to an odd or near-miss value.
      if (members.length === 0) break;
      const m = oneOf(g, members);
      if (m.kind === "oneof") {
        const f = m.fields.length ? oneOf(g, m.fields) : undefined;
        const shapes: unknown[] = [
          {},
          { case: undefined, value: 1 },
          { case: "nope", value: 1 },
          { case: f?.localName },
          { case: f?.localName, value: oneOf(g, oddValues()) },
          { case: f?.localName, value: undefined },
          { case: f?.localName, value: f ? oneOf(g, fieldMisses(g, f).concat([undefined])) : 1 },
          { case: undefined, extra: 1 },
          { case: f?.localName, value: 1, extra: 2 },
          new Boxed(1),
          Object.assign(Object.create(null), { case: undefined }),
          [],
          null,
          "x",
        ];
        obj[m.localName] = oneOf(g, shapes);
      } else {
        obj[m.localName] = bool(g, 0.5) ? oneOf(g, oddValues()) : oneOf(g, fieldMisses(g, m).concat([undefined]));
      }
      break;
    }
    case 3: {
      // A required or other field left out.
      const req = members.filter((m) => m.kind === "field" && mustSet(m));
      const m = req.length && bool(g, 0.7) ? oneOf(g, req) : members.length ? oneOf(g, members) : undefined;
      if (m) {
        if (bool(g)) delete obj[m.localName];
        else obj[m.localName] = undefined;
      }
      break;
    }
    case 4: {
      // Extra keys: unknown names, a oneof member's own name, `$typeName` / `$unknown` variants.
      const oneofMembers = t.desc.oneofs.flatMap((o) => o.fields.map((f) => f.localName));
      const key = oneOf(g, ["bogus", "$typeName", "$unknown", "$typeName", "toString", "constructor", ...oneofMembers]);
      const values: unknown[] =
        key === "$typeName"
          ? [t.desc.typeName, "x.Y", undefined, null, t.desc.typeName + " "]
          : key === "$unknown"
            ? [[], undefined, null, [{ no: 99, wireType: 0, data: new Uint8Array([1]) }], [{}], {}]
            : [1, "x", undefined, {}];
      obj[key] = oneOf(g, values);
      break;
    }
    case 5: {
      // The same data behind another prototype.
      const ctor = class Record {};
      replacement = oneOf(g, [Object.assign(new ctor(), obj), Object.assign(Object.create(null), obj), Object.assign(Object.create({ inherited: 1 }), obj), Object.freeze({ ...obj }), [obj], null]);
      break;
    }
    case 6: {
      // A message from `create()`, or a spread of one, possibly holding a plain object inside.
      try {
        const msg = create(t.desc, toInit(obj) as never) as Record<string, unknown>;
        replacement = bool(g) ? msg : { ...msg };
      } catch {
        /* not a valid init: keep it */
      }
      break;
    }
    case 7: {
      // A `__proto__` own key (JSON.parse style), a symbol key, or a non-enumerable own property (zod reads
      // it, `toInit` does not copy it): a field, `$typeName`, or the `case` / `value` of a oneof.
      const roll = int(g, 0, 3);
      if (roll === 0) Object.defineProperty(obj, "__proto__", { value: {}, enumerable: true, configurable: true, writable: true });
      else if (roll === 1) (obj as Record<symbol, unknown>)[Symbol("x")] = 1;
      else {
        const names = [...members.map((m) => m.localName), "$typeName", "$unknown"];
        const key = oneOf(g, names);
        const oneof = t.desc.oneofs.find((o) => o.localName === key);
        const current = obj[key];
        if (oneof && roll === 3 && typeof current === "object" && current !== null && !Object.isFrozen(current)) {
          const prop = oneOf(g, ["case", "value"]);
          const v = (current as Record<string, unknown>)[prop];
          delete (current as Record<string, unknown>)[prop];
          Object.defineProperty(current, prop, { value: v, enumerable: false, configurable: true });
        } else {
          const value = current !== undefined && bool(g, 0.7) ? current : oneOf(g, key === "$typeName" ? ["x.Y", t.desc.typeName] : oddValues());
          delete obj[key];
          Object.defineProperty(obj, key, { value, enumerable: false, configurable: true, writable: true });
        }
      }
      break;
    }
    case 8: {
      // A getter (enumerable) over a valid value: read by zod, the codec and `toInit` alike.
      const fs = members.filter((m) => obj[m.localName] !== undefined);
      if (fs.length) {
        const m = oneOf(g, fs);
        const v = obj[m.localName];
        Object.defineProperty(obj, m.localName, { get: () => v, enumerable: true, configurable: true });
      }
      break;
    }
    default: {
      // Deep nesting through a recursive field: past the encoder's depth limit, or just under it.
      const rec = t.desc.fields.find((f) => f.fieldKind === "message" && f.message === t.desc) ?? t.desc.fields.find((f) => f.fieldKind === "list" && f.listKind === "message" && f.message === t.desc);
      if (rec) {
        let leaf: Record<string, unknown> = {};
        const n = oneOf(g, [50, 98, 99, 100, 101, 150]);
        for (let i = 0; i < n; i++) leaf = { [rec.localName]: rec.fieldKind === "list" ? [leaf] : leaf };
        Object.assign(obj, leaf);
      }
    }
  }
  if (replacement !== obj) {
    if (obj === input) return replacement as Record<string, unknown>;
    t.set(replacement);
  }
  return input;
}

// ------------------------------------------------------------------ bytes

/** Protobuf merge, as two concatenated encodings mean. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `bytes` as a view in the middle of a larger buffer with `pad` random bytes around it. */
export function embed(bytes: Uint8Array, before: Uint8Array, after: Uint8Array): Uint8Array {
  const big = concat(before, bytes, after);
  return big.subarray(before.length, before.length + bytes.length);
}

// ------------------------------------------------------------------ the kitchen sink, generated for real

/** Extra fixture: every scalar with explicit presence, unpacked lists, sint/fixed kinds, names that need care. */
export const EXTRA_PROTO = `syntax = "proto3";

package extra.v1;

import "cellar/v1/options.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

// Plain: nothing the codec declines, so its encoder takes every valid input.
message Plain {
  option (cellar.v1.entity) = {
    version: 1
    key: "id"
  };

  string id = 1 [(cellar.v1.field) = {
    required: true
    max_length: 8
  }];
  double d = 2;
  float f = 3;
  int32 i32 = 4;
  int64 i64 = 5 [(cellar.v1.field) = {
    min: -5
    max: 9007199254740993
  }];
  uint32 u32 = 6;
  uint64 u64 = 7;
  sint32 s32 = 8;
  sint64 s64 = 9;
  fixed32 fx32 = 10;
  fixed64 fx64 = 11;
  sfixed32 sfx32 = 12;
  sfixed64 sfx64 = 13;
  bool b = 14;
  string s = 15 [(cellar.v1.field) = {
    min_length: 2
    max_length: 200
  }];
  bytes by = 16 [(cellar.v1.field).min_length = 1];
  Color color = 17;

  optional double o_d = 20;
  optional float o_f = 21 [(cellar.v1.field) = {
    min: -1e30
    max: 1e30
  }];
  optional int32 o_i32 = 22;
  optional int64 o_i64 = 23;
  optional uint32 o_u32 = 24;
  optional uint64 o_u64 = 25;
  optional sint32 o_s32 = 26;
  optional sint64 o_s64 = 27;
  optional fixed32 o_fx32 = 28;
  optional fixed64 o_fx64 = 29;
  optional sfixed32 o_sfx32 = 30;
  optional sfixed64 o_sfx64 = 31;
  optional bool o_b = 32;
  optional string o_s = 33;
  optional bytes o_by = 34;
  optional Color o_color = 35;

  repeated double r_d = 40;
  repeated float r_f = 41;
  repeated int32 r_i32 = 42;
  repeated int64 r_i64 = 43;
  repeated uint32 r_u32 = 44;
  repeated uint64 r_u64 = 45;
  repeated sint32 r_s32 = 46;
  repeated sint64 r_s64 = 47;
  repeated fixed32 r_fx32 = 48;
  repeated fixed64 r_fx64 = 49;
  repeated sfixed32 r_sfx32 = 50;
  repeated sfixed64 r_sfx64 = 51;
  repeated bool r_b = 52;
  repeated string r_s = 53;
  repeated bytes r_by = 54;
  repeated Color r_color = 55;

  repeated double u_d = 60 [packed = false];
  repeated float u_f = 61 [packed = false];
  repeated int32 u_i32 = 62 [packed = false];
  repeated int64 u_i64 = 63 [packed = false];
  repeated uint32 u_u32 = 64 [packed = false];
  repeated sint32 u_s32 = 65 [packed = false];
  repeated sint64 u_s64 = 66 [packed = false];
  repeated fixed32 u_fx32 = 67 [packed = false];
  repeated fixed64 u_fx64 = 68 [packed = false];
  repeated sfixed32 u_sfx32 = 69 [packed = false];
  repeated sfixed64 u_sfx64 = 70 [packed = false];
  repeated bool u_b = 71 [packed = false];
  repeated Color u_color = 72 [packed = false];

  oneof pick {
    double p_d = 80;
    float p_f = 81;
    int64 p_i64 = 82;
    sint32 p_s32 = 83;
    fixed64 p_fx64 = 84;
    bool p_b = 85;
    string p_s = 86 [(cellar.v1.field).pattern = "^[a-z]*$"];
    bytes p_by = 87;
    Color p_color = 88;
    Tree p_tree = 89;
    google.protobuf.StringValue p_wrapped = 90;
    google.protobuf.Timestamp p_at = 91;
  }
  oneof other {
    uint32 q_u32 = 95;
    string q_s = 96;
  }

  Tree tree = 100;
  repeated Tree forest = 101 [(cellar.v1.field).max_items = 3];
  Req req = 102;
  google.protobuf.Timestamp at = 103;
  string constructor = 104;
  string to_string = 105;
  int32 big_number_field = 536870911;
}

enum Color {
  COLOR_UNSPECIFIED = 0;
  COLOR_RED = 1;
  COLOR_GREEN = -2;
  COLOR_BLUE = 2147483647;
}

message Tree {
  string name = 1;
  Tree left = 2;
  repeated Tree kids = 3;
  bytes blob = 4;
}

message Req {
  Color color = 1 [(cellar.v1.field).required = true];
  Tree tree = 2 [(cellar.v1.field).required = true];
  repeated int32 nums = 3 [(cellar.v1.field) = {
    required: true
    max_items: 3
    min: -3
    max: 3
  }];
  bytes data = 4 [(cellar.v1.field) = {
    required: true
    max_length: 3
  }];
  double ratio = 5 [(cellar.v1.field) = {
    min: 0
    max: 1
  }];
  uint64 big = 6 [(cellar.v1.field) = {
    min: 10
    max: 18446744073709551615
  }];
}
`;

export interface GeneratedFile {
  readonly pb: Record<string, unknown>;
  readonly zod: Record<string, unknown>;
  readonly codec: Record<string, unknown>;
  readonly cellar: Record<string, unknown>;
}

export interface Generated {
  readonly dir: string;
  readonly kitchen: GeneratedFile;
  readonly extra: GeneratedFile;
}

/** `buf generate` (protoc-gen-es + protoc-gen-cellar) the kitchen-sink fixture and EXTRA_PROTO into a scratch dir and import the output. */
export async function generateFixtures(): Promise<Generated> {
  const dir = scratchDir("codec");
  const kitchen = readFileSync(join(repoRoot, "test/fixtures/codegen/types/input/kitchen/v1/kitchen.proto"), "utf8");
  writeWorkspace(dir, { "kitchen/v1/kitchen.proto": kitchen, "extra/v1/extra.proto": EXTRA_PROTO });
  writeFileSync(join(dir, "buf.gen.yaml"), genTemplate("gen", runtimeImportFrom(join(dir, "gen"))));
  const r = bufGenerate(dir, "buf.gen.yaml");
  if (r.status !== 0) throw new Error(`buf generate failed:\n${r.output}`);
  const load = async (base: string) => ({
    pb: (await import(join(dir, "gen", `${base}_pb.ts`))) as Record<string, unknown>,
    zod: (await import(join(dir, "gen", `${base}_zod.ts`))) as Record<string, unknown>,
    codec: (await import(join(dir, "gen", `${base}_codec.ts`))) as Record<string, unknown>,
    cellar: (await import(join(dir, "gen", `${base}_cellar.ts`))) as Record<string, unknown>,
  });
  return { dir, kitchen: await load("kitchen/v1/kitchen"), extra: await load("extra/v1/extra") };
}
