/**
 * A query's conditions on one field (docs/QUERIES.md, "The query language"): parsed from a `where`
 * (a value, or operators), checked and encoded for the field's index component (index-keys.ts), and
 * evaluated against a component's encoding, read from a sort key (`componentSlice`). query-plan.ts builds
 * its ranges and residual checks from them.
 */
import { UsageError } from "../errors.js";
import type { CollectionDefinition } from "./entity.js";
import { canBeAbsent, type ComponentKind, type IndexComponent, type IndexKeyer, encodeComponent, encodeStringPrefix, PRESENT_LOW, queryValue } from "./index-keys.js";
import type { SkBound } from "../storage/ordered-index.js";

/** One field's conditions, as encodings of its index component (every part must hold). */
export interface FieldCond {
  readonly field: string;
  readonly comp: IndexComponent;
  /** eq / in: the encodings allowed (sorted, distinct; bounds and prefix applied already). */
  readonly points: readonly string[] | undefined;
  readonly lo: SkBound | undefined;
  readonly hi: SkBound | undefined;
  /** `prefix`: the string encoding without terminator. */
  readonly prefix: string | undefined;
  /** No value can satisfy it. */
  readonly empty: boolean;
}

export const OPERATORS = new Set(["eq", "gt", "gte", "lt", "lte", "in", "prefix"]);

/** The index component of an indexed field (E_USAGE when no index has it). */
export function componentOf(def: CollectionDefinition, keyers: readonly IndexKeyer[], field: string, what = "a condition"): IndexComponent {
  if (def.indexes.includes(field)) {
    for (const k of keyers) for (const c of k.components) if (c.field === field) return c;
  }
  const names = keyers.map((k) => `\`${k.spec.name}\``).join(", ") || "none";
  throw new UsageError(`${what} of a query of \`${def.name}\` names \`${field}\`, which is not an indexed field (indexes: ${names})`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v) || "$typeName" in v) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** One field's condition: a value (equal), or an object of operators; encoded for its component. */
export function parseCondition(def: CollectionDefinition, comp: IndexComponent, value: unknown): FieldCond {
  const enc = (v: unknown) => encodeComponent(comp.kind, queryValue(def, comp, v));
  const where = `the condition on \`${comp.field}\` of a query of \`${def.name}\``;
  let ops: Record<string, unknown>;
  if (isPlainObject(value) && isOperators(value, comp.kind)) ops = value;
  else ops = { eq: value };
  let points: string[] | undefined;
  let lo: SkBound | undefined;
  let hi: SkBound | undefined;
  let prefix: string | undefined;
  const allow = (list: string[]) => (points = points === undefined ? list : points.filter((p) => list.includes(p)));
  for (const [op, v] of Object.entries(ops)) {
    if (v === undefined) continue;
    switch (op) {
      case "eq":
        allow([enc(v)]);
        break;
      case "in":
        if (!Array.isArray(v)) throw new UsageError(`${where}: \`in\` takes an array of values`);
        allow(v.map(enc));
        break;
      case "gt":
      case "gte":
        lo = tighter(lo, { sk: enc(v), exclusive: op === "gt" }, 1);
        break;
      case "lt":
      case "lte":
        hi = tighter(hi, { sk: enc(v), exclusive: op === "lt" }, -1);
        break;
      case "prefix":
        if (comp.kind !== "string") throw new UsageError(`${where}: \`prefix\` applies to string fields only`);
        if (typeof v !== "string") throw new UsageError(`${where}: \`prefix\` takes a string`);
        prefix = encodeStringPrefix(v);
        break;
    }
  }
  // A condition never matches an absent value (the marker sorts below every present one): a range on a
  // Timestamp/Duration without a lower bound gets one just above the marker.
  if (points === undefined && lo === undefined && canBeAbsent(comp.kind)) lo = { sk: PRESENT_LOW };
  const base: FieldCond = { field: comp.field, comp, points: undefined, lo, hi, prefix, empty: false };
  if (points !== undefined) {
    const kept = [...new Set(points)].filter((p) => holds(base, p)).sort();
    return { field: comp.field, comp, points: kept, lo: undefined, hi: undefined, prefix: undefined, empty: kept.length === 0 };
  }
  const empty = lo !== undefined && hi !== undefined && (lo.sk > hi.sk || (lo.sk === hi.sk && (lo.exclusive === true || hi.exclusive === true)));
  return { ...base, empty };
}

/** Whether an object is operators (every key one) rather than a Timestamp/Duration value; E_USAGE for a key that is neither. */
function isOperators(o: Record<string, unknown>, kind: ComponentKind): boolean {
  const keys = Object.keys(o);
  const unknown = keys.filter((k) => !OPERATORS.has(k));
  if (unknown.length === 0) return true;
  if ((kind === "timestamp" || kind === "duration") && unknown.length === keys.length) return false; // { seconds, nanos }
  throw new UsageError(`unknown query operator \`${unknown[0]}\` (operators: ${[...OPERATORS].join(", ")})`);
}

/** The stricter of two lower (`dir` 1) or upper (`dir` -1) bounds. */
function tighter(a: SkBound | undefined, b: SkBound, dir: 1 | -1): SkBound {
  if (!a) return b;
  if (a.sk === b.sk) return a.exclusive ? a : b;
  return (a.sk > b.sk) === (dir === 1) ? a : b;
}

/** Whether a component's whole encoding `e` satisfies a condition. */
export function holds(c: FieldCond, e: string): boolean {
  if (c.empty) return false;
  if (c.points !== undefined) return binaryHas(c.points, e);
  if (c.lo && (c.lo.exclusive ? e <= c.lo.sk : e < c.lo.sk)) return false;
  if (c.hi && (c.hi.exclusive ? e >= c.hi.sk : e > c.hi.sk)) return false;
  return c.prefix === undefined || e.startsWith(c.prefix);
}

function binaryHas(sorted: readonly string[], e: string): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < e) lo = mid + 1;
    else hi = mid;
  }
  return sorted[lo] === e;
}

const WIDTH: Record<Exclude<ComponentKind, "string">, number> = { bool: 1, int32: 8, uint32: 8, int64: 16, uint64: 16, double: 16, timestamp: 24, duration: 24 };

/** The encoding of component `i` inside `sk` (strings: up to and with the unescaped terminator). */
export function componentSlice(keyer: IndexKeyer, sk: string, i: number): string {
  const at = componentsEnd(keyer, sk, i);
  return sk.slice(at, componentsEnd(keyer, sk, 1, i, at));
}

/** Where in `sk` the `n` components from component `from` (at offset `at`) end. */
export function componentsEnd(keyer: IndexKeyer, sk: string, n: number, from = 0, at = 0): number {
  for (let j = from; j < from + n; j++) {
    const kind = keyer.components[j]!.kind;
    if (kind !== "string") {
      at += WIDTH[kind];
      continue;
    }
    while (at < sk.length) {
      const ch = sk.charCodeAt(at);
      if (ch === 0) break;
      at += ch === 1 ? 2 : 1;
    }
    at++;
  }
  return at;
}
