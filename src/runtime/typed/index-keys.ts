/**
 * Index terms: what a record's indexes store about it, and the sort keys queries compare. A term is
 * `"\u0001" + index id + "\u0000" + sk`, where the sort key `sk` concatenates each component's
 * order-preserving encoding, so JavaScript string order (UTF-16 code units) of two sks of one index is the
 * order of their value tuples (docs/FORMAT.md, "Index terms"). Pure functions over definitions and values:
 * record-codec.ts computes a write's terms here, the query plan encodes its bounds here, aggregates read
 * numbers back from sks here.
 */
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import type { CollectionDefinition, IndexSpec } from "./entity.js";
import { UsageError } from "../errors.js";
import { fieldOf } from "./values.js";
import { secondsNanosTerm } from "./term-bytes.js";

export type ComponentKind = "bool" | "int32" | "uint32" | "int64" | "uint64" | "double" | "string" | "timestamp" | "duration";

export interface IndexComponent {
  /** Local name of the field. */
  readonly field: string;
  readonly kind: ComponentKind;
  /** A repeated field: the index holds one entry per distinct element (single-field indexes only). */
  readonly repeated: boolean;
}

export interface IndexKeyer {
  readonly spec: IndexSpec;
  readonly components: readonly IndexComponent[];
  /** `"\u0001" + id + "\u0000"`: every term of this index starts with it. */
  readonly prefix: string;
  /** Where component i starts in every sk, when every component before it has a fixed width (else -1). */
  readonly offsets: readonly number[];
  /** Terms already built for this index's values (single-component indexes of few values; see {@link singleTerm}). */
  readonly terms: Map<unknown, string>;
}

/** The first character of a term in the current format; older terms (`field\u0000value`) do not have it. */
export const TERM_MARK = "\u0001";

const WIDTH: Record<ComponentKind, number> = { bool: 1, int32: 8, uint32: 8, int64: 16, uint64: 16, double: 16, string: -1, timestamp: 24, duration: 24 };

/**
 * An absent component (an unset `Timestamp`/`Duration` message field: the only fields an index may hold that
 * can be unset; scalars index their zero value) is encoded as `ABSENT` repeated to the kind's width: `"-"`
 * (0x2d) sorts before `"0"` (0x30), the lowest character of every present fixed-width encoding (hex digits,
 * `"0"`/`"1"`), so absent values sort first, like SQL's NULLS FIRST, and never equal a present one.
 */
export const ABSENT = "-";
/** A bound (compared as a prefix, see `SkRange`) every present fixed-width encoding is at or above, and no absent one. */
export const PRESENT_LOW = "0";
const ABSENT_TS = ABSENT.repeat(24);

/** Whether a component of this kind can be absent (be the `ABSENT` marker in an sk). */
export function canBeAbsent(kind: ComponentKind): boolean {
  return kind === "timestamp" || kind === "duration";
}

/**
 * The encoding of a component with no value: an unset Timestamp/Duration is absent (24 × `ABSENT`); a scalar
 * with explicit presence (proto3 `optional`) left unset indexes its kind's zero value, as every other scalar.
 */
export function absentComponent(kind: ComponentKind): string {
  if (canBeAbsent(kind)) return ABSENT_TS;
  return encodeComponent(kind, kind === "bool" ? false : kind === "string" ? "" : kind === "int64" || kind === "uint64" ? 0n : 0);
}

const keyersCache = new WeakMap<CollectionDefinition, readonly IndexKeyer[]>();

/** The definition's indexes (`def.indexSpecs`, or one single-field index per `def.indexes` field), cached. */
export function indexKeyers(def: CollectionDefinition): readonly IndexKeyer[] {
  let keyers = keyersCache.get(def);
  if (!keyers) {
    const specs = def.indexSpecs ?? def.indexes.map((f) => singleFieldSpec(def.schema, f));
    keyers = specs.map((spec) => keyerOf(def, spec));
    keyersCache.set(def, keyers);
  }
  return keyers;
}

function singleFieldSpec(schema: DescMessage, field: string): IndexSpec {
  const f = fieldByLocalName(schema, field);
  if (!f) throw new UsageError(`index \`${field}\` names no field of \`${schema.typeName}\``);
  return { id: String(f.number), fields: [field], name: f.name };
}

function fieldByLocalName(schema: DescMessage, name: string): DescField | undefined {
  return schema.fields.find((x) => x.localName === name);
}

function keyerOf(def: CollectionDefinition, spec: IndexSpec): IndexKeyer {
  const components = spec.fields.map((name): IndexComponent => {
    const f = fieldByLocalName(def.schema, name);
    const kind = f && componentKind(f);
    if (!f || !kind) throw new UsageError(`index \`${spec.name}\` of \`${def.name}\`: \`${name}\` cannot be indexed`);
    return { field: name, kind, repeated: f.fieldKind === "list" };
  });
  const offsets: number[] = [];
  let at = 0;
  for (const c of components) {
    offsets.push(at);
    at = at < 0 || WIDTH[c.kind] < 0 ? -1 : at + WIDTH[c.kind];
  }
  return { spec, components, prefix: `${TERM_MARK}${spec.id}\u0000`, offsets, terms: new Map() };
}

/** The component kind of a field, or undefined when it cannot be indexed. */
export function componentKind(f: DescField): ComponentKind | undefined {
  if (f.fieldKind === "enum" || (f.fieldKind === "list" && f.listKind === "enum")) return "int32";
  if (f.fieldKind === "message") {
    if (f.message.typeName === "google.protobuf.Timestamp") return "timestamp";
    if (f.message.typeName === "google.protobuf.Duration") return "duration";
    return undefined;
  }
  const scalar = f.fieldKind === "scalar" ? f.scalar : f.fieldKind === "list" && f.listKind === "scalar" ? f.scalar : undefined;
  switch (scalar) {
    case ScalarType.BOOL:
      return "bool";
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return "int32";
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return "uint32";
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return "int64";
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return "uint64";
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return "double";
    case ScalarType.STRING:
      return "string";
    default:
      return undefined;
  }
}

/**
 * Past this many distinct values, an index's values are not cached ({@link IndexKeyer.terms}): terms already
 * built for single-component indexes of few values (a status, a tag, a project) are shared, since every
 * record's terms stay in memory with its location.
 */
const TERM_CACHE_PER_INDEX = 4096;

function singleTerm(k: IndexKeyer, kind: ComponentKind, value: unknown): string {
  if (value === undefined || value === null) return k.prefix + absentComponent(kind);
  if (kind === "timestamp" || kind === "duration") return secondsNanosTerm(k.prefix, kind, value as { seconds?: unknown; nanos?: number }) ?? k.prefix + encodeComponent(kind, value);
  if (kind === "double") return k.prefix + encodeComponent(kind, value);
  const byValue = k.terms;
  let t = byValue.get(value);
  if (t === undefined) {
    t = k.prefix + encodeComponent(kind, value);
    if (byValue.size < TERM_CACHE_PER_INDEX) byValue.set(value, t);
  }
  return t;
}

/** The term of index `k` (neither repeated nor empty) for `source`. */
function termOf(k: IndexKeyer, source: Record<string, unknown>, zero: Record<string, unknown>): string {
  const comps = k.components;
  if (comps.length === 1) return singleTerm(k, comps[0]!.kind, fieldOf(source, zero, comps[0]!.field));
  let sk = "";
  for (const c of comps) {
    const v = fieldOf(source, zero, c.field);
    sk += v === undefined || v === null ? absentComponent(c.kind) : encodeComponent(c.kind, v);
  }
  return k.prefix + sk;
}

/**
 * Every index term of a record: `source` is a message or a checked write input, `zero` the entity's zero
 * message. Every record is in every index (one term each; a single-field index on a list: one per distinct
 * element, none for an empty list); an unset Timestamp/Duration component is the absent marker. The array is
 * made at its size where no index is on a list (it stays with the record's location: a `[]` grown by pushes
 * kept room for 17 terms, ~130 bytes more per record than three terms need).
 */
export function indexTerms(def: CollectionDefinition, source: Record<string, unknown>, zero: Record<string, unknown>): string[] {
  const keyers = indexKeyers(def);
  let n = 0;
  for (; n < keyers.length; n++) if (keyers[n]!.components[0]!.repeated) break;
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = termOf(keyers[i]!, source, zero);
  for (let i = n; i < keyers.length; i++) {
    const k = keyers[i]!;
    const c = k.components[0]!;
    if (!c.repeated) {
      out.push(termOf(k, source, zero));
      continue;
    }
    for (const e of (fieldOf(source, zero, c.field) ?? []) as unknown[]) {
      const t = singleTerm(k, c.kind, e);
      if (!out.includes(t)) out.push(t);
    }
  }
  return out;
}

const HEX = "0123456789abcdef";


function hex8(n: number): string {
  let s = "";
  for (let shift = 28; shift >= 0; shift -= 4) s += HEX[(n >>> shift) & 15];
  return s;
}

const SIGN64 = 1n << 63n;
const view = new DataView(new ArrayBuffer(8));

/** A 64-bit two's complement value (bigint, safe number or decimal string) as a bigint. */
function big(v: unknown): bigint {
  return typeof v === "bigint" ? v : BigInt(typeof v === "number" ? Math.trunc(v) : String(v));
}

function hex64(u: bigint): string {
  const s = u.toString(16);
  return s.length >= 16 ? s : "0".repeat(16 - s.length) + s;
}

/** One component's order-preserving encoding of a value of its kind (a stored value or a normalized query value). */
export function encodeComponent(kind: ComponentKind, value: unknown): string {
  switch (kind) {
    case "bool":
      return value ? "1" : "0";
    case "int32":
      return hex8(((value as number) ^ 0x80000000) >>> 0);
    case "uint32":
      return hex8((value as number) >>> 0);
    case "int64":
      return hex64(BigInt.asUintN(64, big(value)) ^ SIGN64);
    case "uint64":
      return hex64(BigInt.asUintN(64, big(value)));
    case "double":
      return encodeDouble(value as number);
    case "string":
      return encodeStringPrefix(value as string) + "\u0000";
    case "timestamp":
    case "duration": {
      const t = value as { seconds?: unknown; nanos?: number };
      const seconds = hex64(BigInt.asUintN(64, big(t.seconds ?? 0n)) ^ SIGN64);
      const nanos = t.nanos ?? 0;
      return seconds + hex8(kind === "timestamp" ? nanos >>> 0 : (nanos ^ 0x80000000) >>> 0);
    }
  }
}

function encodeDouble(v: number): string {
  if (Number.isNaN(v)) {
    view.setUint32(0, 0x7ff80000);
    view.setUint32(4, 0);
  } else view.setFloat64(0, v === 0 ? 0 : v);
  let hi = view.getUint32(0);
  let lo = view.getUint32(4);
  if (hi & 0x80000000) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
  } else hi = (hi | 0x80000000) >>> 0;
  return hex8(hi) + hex8(lo);
}

const NEEDS_ESCAPE = /[\u0000\u0001]/;

/** A string's encoding without its terminator: every sk whose component starts with `s` starts with it. */
export function encodeStringPrefix(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(/[\u0000\u0001]/g, (c) => (c === "\u0000" ? "\u0001\u0001" : "\u0001\u0002")) : s;
}

/** A term's index id and sk (undefined for an older-format term). */
export function splitTerm(term: string): { id: string; sk: string } | undefined {
  if (term[0] !== TERM_MARK) return undefined;
  const end = term.indexOf("\u0000", 1);
  return end < 0 ? undefined : { id: term.slice(1, end), sk: term.slice(end + 1) };
}

/** The sk of `keyer`'s first term among `terms` (undefined when the record is not in that index). */
export function skOf(keyer: IndexKeyer, terms: readonly string[]): string | undefined {
  for (const t of terms) if (t.startsWith(keyer.prefix)) return t.slice(keyer.prefix.length);
  return undefined;
}

/**
 * The components' values back from an sk: boolean, number (32-bit kinds, double), bigint (64-bit kinds),
 * string, or `{ seconds: bigint, nanos: number }` (timestamp, duration); `undefined` for an absent one.
 */
export function decodeComponents(keyer: IndexKeyer, sk: string): unknown[] {
  const out: unknown[] = [];
  let at = 0;
  for (const c of keyer.components) {
    const [v, next] = decodeAt(c.kind, sk, at);
    out.push(v);
    at = next;
  }
  return out;
}

function decodeAt(kind: ComponentKind, sk: string, at: number): [unknown, number] {
  switch (kind) {
    case "bool":
      return [sk[at] === "1", at + 1];
    case "int32":
      return [(parseInt(sk.substr(at, 8), 16) ^ 0x80000000) | 0, at + 8];
    case "uint32":
      return [parseInt(sk.substr(at, 8), 16), at + 8];
    case "int64":
      return [BigInt.asIntN(64, BigInt(`0x${sk.substr(at, 16)}`) ^ SIGN64), at + 16];
    case "uint64":
      return [BigInt(`0x${sk.substr(at, 16)}`), at + 16];
    case "double":
      return [decodeDouble(sk, at), at + 16];
    case "string": {
      const end = sk.indexOf("\u0000", at);
      const raw = sk.slice(at, end < 0 ? sk.length : end);
      const s = raw.includes("\u0001") ? raw.replace(/\u0001([\u0001\u0002])/g, (_m, c: string) => (c === "\u0001" ? "\u0000" : "\u0001")) : raw;
      return [s, end < 0 ? sk.length : end + 1];
    }
    case "timestamp":
    case "duration": {
      if (sk[at] === ABSENT) return [undefined, at + 24];
      const seconds = BigInt.asIntN(64, BigInt(`0x${sk.substr(at, 16)}`) ^ SIGN64);
      const n = parseInt(sk.substr(at + 16, 8), 16);
      return [{ seconds, nanos: kind === "timestamp" ? n : (n ^ 0x80000000) | 0 }, at + 24];
    }
  }
}

function decodeDouble(sk: string, at: number): number {
  let hi = parseInt(sk.substr(at, 8), 16);
  let lo = parseInt(sk.substr(at + 8, 8), 16);
  if (hi & 0x80000000) hi = (hi & 0x7fffffff) >>> 0;
  else {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
  }
  view.setUint32(0, hi);
  view.setUint32(4, lo);
  return view.getFloat64(0);
}

/** 8 lowercase hex digits at `at` as an unsigned number, read by char code (no substring, no parseInt). */
function hex8At(sk: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) {
    const c = sk.charCodeAt(i);
    v = v * 16 + (c <= 57 ? c - 48 : c - 87);
  }
  return v;
}

/** A signed 64-bit sk field (16 hex digits, sign-flipped) as a number (correctly rounded past 2^53). */
function signed64Number(sk: string, at: number): number {
  return (hex8At(sk, at) - 0x80000000) * 4294967296 + hex8At(sk, at + 8);
}

/**
 * Component `i` of an sk as a number, without decoding the others when their widths are fixed: numbers as
 * they are, 64-bit integers as `Number()`, bool as 0/1, a timestamp as epoch milliseconds and a duration as
 * seconds (both fractional). `NaN` for an absent component (ask `componentPresent` first: a double
 * component can hold NaN itself). Throws for a string component. The sk starts at `base` of `sk`: a whole
 * term is read in place with `base` = the keyer's prefix length (what the index-only aggregate's walk hands
 * over, OrderedIndex.visitNumbers), without slicing it.
 */
export function componentNumber(keyer: IndexKeyer, sk: string, i: number, base = 0): number {
  const c = keyer.components[i]!;
  const at = componentAt(keyer, sk, i, base);
  if (canBeAbsent(c.kind) && sk[at] === ABSENT) return NaN;
  switch (c.kind) {
    case "bool":
      return sk[at] === "1" ? 1 : 0;
    case "int32":
      return hex8At(sk, at) - 0x80000000;
    case "uint32":
      return hex8At(sk, at);
    case "int64":
      return signed64Number(sk, at);
    case "uint64":
      return hex8At(sk, at) * 4294967296 + hex8At(sk, at + 8);
    case "double":
      return decodeDouble(sk, at);
    case "timestamp":
      return signed64Number(sk, at) * 1000 + hex8At(sk, at + 16) / 1e6;
    case "duration":
      return signed64Number(sk, at) + (hex8At(sk, at + 16) - 0x80000000) / 1e9;
    case "string":
      throw new UsageError(`\`${c.field}\` is a string, not a number`);
  }
}

/** Where component `i` starts in `sk` (whose sk starts at `base`). */
function componentAt(keyer: IndexKeyer, sk: string, i: number, base = 0): number {
  const off = keyer.offsets[i]!;
  if (off >= 0) return base + off;
  let at = base;
  for (let j = 0; j < i; j++) at = decodeAt(keyer.components[j]!.kind, sk, at)[1];
  return at;
}

/** Whether component `i` of an sk has a value (false: the absent marker of an unset Timestamp/Duration). */
export function componentPresent(keyer: IndexKeyer, sk: string, i: number): boolean {
  return !canBeAbsent(keyer.components[i]!.kind) || sk[componentAt(keyer, sk, i)] !== ABSENT;
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/**
 * A query value checked and normalized for a component: numbers for 32-bit kinds and doubles, bigint for
 * 64-bit kinds, `{ seconds: bigint, nanos }` for timestamps (from a Date, a Timestamp or `{ seconds, nanos? }`)
 * and durations (also from a number of seconds). A value that cannot be the field's → `E_USAGE` naming the
 * entity, field and expected type, never the value.
 */
export function queryValue(def: CollectionDefinition, comp: IndexComponent, value: unknown): unknown {
  const v = normalize(comp.kind, value);
  if (v === undefined) {
    const got = value === null ? "null" : Array.isArray(value) ? "an array" : value instanceof Date ? "an invalid Date" : typeof value;
    throw new UsageError(`query on \`${def.name}\`: index field \`${comp.field}\` takes ${EXPECTED[comp.kind]}${comp.repeated ? " (an element of the list)" : ""}, got ${got}`);
  }
  return v;
}

const EXPECTED: Record<ComponentKind, string> = {
  bool: "a boolean",
  int32: "a 32-bit integer number",
  uint32: "an unsigned 32-bit integer number",
  int64: "a bigint, an integer number or a decimal string",
  uint64: "an unsigned bigint, integer number or decimal string",
  double: "a number",
  string: "a string",
  timestamp: "a Date or a Timestamp ({ seconds, nanos })",
  duration: "a Duration ({ seconds, nanos }) or a number of seconds",
};

function normalize(kind: ComponentKind, v: unknown): unknown {
  switch (kind) {
    case "bool":
      return typeof v === "boolean" ? v : undefined;
    case "int32":
      return typeof v === "number" && Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff ? v : undefined;
    case "uint32":
      return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? v : undefined;
    case "int64":
    case "uint64": {
      const b = toBigInt(v);
      if (b === undefined) return undefined;
      return kind === "int64" ? (b >= INT64_MIN && b <= INT64_MAX ? b : undefined) : b >= 0n && b <= UINT64_MAX ? b : undefined;
    }
    case "double":
      return typeof v === "number" && !Number.isNaN(v) ? v : undefined;
    case "string":
      return typeof v === "string" ? v : undefined;
    case "timestamp":
      if (v instanceof Date) {
        const ms = v.getTime();
        if (Number.isNaN(ms)) return undefined;
        const seconds = Math.floor(ms / 1000);
        return { seconds: BigInt(seconds), nanos: (ms - seconds * 1000) * 1e6 };
      }
      return secondsNanos(v, true);
    case "duration":
      if (typeof v === "number") {
        if (!Number.isFinite(v)) return undefined;
        const seconds = Math.trunc(v);
        return { seconds: BigInt(seconds), nanos: Math.round((v - seconds) * 1e9) };
      }
      return secondsNanos(v, false);
  }
}

function toBigInt(v: unknown): bigint | undefined {
  if (typeof v === "bigint") return v;
  if (typeof v === "number") return Number.isSafeInteger(v) ? BigInt(v) : undefined;
  if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v);
  return undefined;
}

function secondsNanos(v: unknown, timestamp: boolean): { seconds: bigint; nanos: number } | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as { seconds?: unknown; nanos?: unknown };
  const seconds = o.seconds === undefined ? 0n : toBigInt(o.seconds);
  const nanos = o.nanos === undefined ? 0 : o.nanos;
  if (seconds === undefined || seconds < INT64_MIN || seconds > INT64_MAX) return undefined;
  if (typeof nanos !== "number" || !Number.isInteger(nanos)) return undefined;
  if (timestamp ? nanos < 0 || nanos > 999_999_999 : nanos < -999_999_999 || nanos > 999_999_999) return undefined;
  if (!timestamp && ((seconds > 0n && nanos < 0) || (seconds < 0n && nanos > 0))) return undefined;
  return { seconds, nanos };
}
