/**
 * The query tests' oracle: a sample record's field values, and a plain filter + sort over them (no index,
 * no encoding) giving what `query` must return. Written from the query language of docs/QUERIES.md only.
 */
import fc from "fast-check";
import type { SampleField } from "./sample.js";

export interface Ts {
  seconds: bigint;
  nanos: number;
}
/** A sample as written (the input of a put). */
export interface SampleRec {
  id: string;
  seq: number;
  name: string;
  n: number;
  kind: number;
  flag: boolean;
  score: number;
  at: Ts | undefined;
  big: bigint;
  tags: string[];
  dur: Ts | undefined;
  u: number;
}

export const NAMES = ["", "a", "ab", "abc", "b", "a\u0000", "a\u0001b", "é", "\u{1F600}", "z"];
const TAGS = ["x", "y", "z", "xy"];
const NS = [-2147483648, -3, -1, 0, 1, 2, 3, 2147483647];
const SCORES = [-Infinity, -1.5, -0, 0, 0.5, 2, 1e300, Infinity];
const BIGS = [-(2n ** 63n), -1n, 0n, 1n, 5n, 2n ** 63n - 1n];
const US = [0, 1, 2, 4294967295];
const TSS: Ts[] = [-2n, -1n, 0n, 1n, 2n].flatMap((seconds) => [0, 500_000_000].map((nanos) => ({ seconds, nanos })));
const DURS: Ts[] = [
  { seconds: -2n, nanos: 0 },
  { seconds: -1n, nanos: -500_000_000 },
  { seconds: 0n, nanos: 0 },
  { seconds: 1n, nanos: 0 },
  { seconds: 1n, nanos: 500_000_000 },
  { seconds: 3n, nanos: 0 },
];
export const IDS = ["a", "b", "ab", "B", "é", "z\u{1F600}", "m", "a0", "k", "q", "zz", "é2"];

export const recordArb = (): fc.Arbitrary<SampleRec> =>
  fc.record({
    id: fc.constantFrom(...IDS),
    seq: fc.integer({ min: -20, max: 20 }),
    name: fc.constantFrom(...NAMES),
    n: fc.constantFrom(...NS),
    kind: fc.integer({ min: 0, max: 3 }),
    flag: fc.boolean(),
    score: fc.constantFrom(...SCORES),
    at: fc.option(fc.constantFrom(...TSS), { nil: undefined, freq: 3 }),
    big: fc.constantFrom(...BIGS),
    tags: fc.subarray(TAGS),
    dur: fc.option(fc.constantFrom(...DURS), { nil: undefined, freq: 3 }),
    u: fc.constantFrom(...US),
  });

/** A query value for a field, in one of the forms the API takes. */
export function valueArb(field: SampleField): fc.Arbitrary<unknown> {
  switch (field) {
    case "name":
      return fc.constantFrom(...NAMES, "aa");
    case "tags":
      return fc.constantFrom(...TAGS, "w");
    case "n":
      return fc.constantFrom(...NS, 4);
    case "kind":
      return fc.integer({ min: 0, max: 3 });
    case "flag":
      return fc.boolean();
    case "score":
      return fc.constantFrom(...SCORES, 1);
    case "big":
      return fc.oneof(fc.constantFrom(...BIGS), fc.constantFrom(-1, 0, 5));
    case "u":
      return fc.constantFrom(...US, 3);
    case "at":
      return fc.oneof(
        fc.constantFrom(...TSS),
        fc.constantFrom(...TSS).map((t) => new Date(Number(t.seconds) * 1000 + t.nanos / 1e6)),
      );
    case "dur":
      return fc.oneof(fc.constantFrom(...DURS), fc.constantFrom(-2, -1.5, 0, 1, 1.5, 3, 2));
  }
}

/** A condition: a value, or operators. */
export function conditionArb(field: SampleField): fc.Arbitrary<unknown> {
  const v = valueArb(field);
  const ops: fc.Arbitrary<unknown>[] = [
    v,
    fc.record({ eq: v }),
    fc.record({ in: fc.array(v, { maxLength: 3 }) }),
    fc.record({ lo: fc.constantFrom("gt", "gte"), hi: fc.constantFrom("lt", "lte"), a: v, b: v }).map(({ lo, hi, a, b }) => ({ [lo]: a, [hi]: b })),
    fc.record({ op: fc.constantFrom("gt", "gte", "lt", "lte"), a: v }).map(({ op, a }) => ({ [op]: a })),
    fc.record({ in: fc.array(v, { minLength: 1, maxLength: 3 }), op: fc.constantFrom("gt", "lte"), a: v }).map(({ op, a, ...r }) => ({ ...r, [op]: a })),
  ];
  if (field === "name" || field === "tags") {
    const p = fc.constantFrom("", "a", "ab", "a\u0000", "a\u0001", "z", "\u{1F600}");
    ops.push(p.map((prefix) => ({ prefix })));
    ops.push(fc.record({ prefix: p, lt: v }));
  }
  return fc.oneof(...ops);
}

/** A field's value normalized for comparison (undefined: absent). */
type Norm = string | number | bigint | boolean | [bigint, number];

function norm(field: SampleField, v: unknown): Norm {
  if (field === "at" || field === "dur") {
    if (v instanceof Date) {
      const ms = v.getTime();
      const s = Math.floor(ms / 1000);
      return [BigInt(s), (ms - s * 1000) * 1e6];
    }
    if (typeof v === "number") {
      const s = Math.trunc(v);
      return [BigInt(s), Math.round((v - s) * 1e9)];
    }
    const t = v as Ts;
    return [t.seconds, t.nanos ?? 0];
  }
  if (field === "big") return BigInt(v as bigint | number);
  if (field === "score" && Object.is(v, -0)) return 0;
  return v as Norm;
}

export function compare(a: Norm, b: Norm): number {
  if (Array.isArray(a) && Array.isArray(b)) return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1];
  if (typeof a === "boolean") return Number(a) - Number(b as boolean);
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

/** Whether one (non-absent) value satisfies every operator of a condition. */
function satisfies(field: SampleField, x: Norm, cond: unknown): boolean {
  const isOps = typeof cond === "object" && cond !== null && !(cond instanceof Date) && !("seconds" in cond);
  const ops = (isOps ? cond : { eq: cond }) as Record<string, unknown>;
  for (const [op, v] of Object.entries(ops)) {
    if (v === undefined) continue;
    if (op === "prefix") {
      if (!(x as string).startsWith(v as string)) return false;
      continue;
    }
    if (op === "in") {
      if (!(v as unknown[]).some((e) => compare(x, norm(field, e)) === 0)) return false;
      continue;
    }
    const c = compare(x, norm(field, v));
    if (op === "eq" ? c !== 0 : op === "gt" ? c <= 0 : op === "gte" ? c < 0 : op === "lt" ? c >= 0 : c > 0) return false;
  }
  return true;
}

export function modelMatches(r: SampleRec, where: Record<string, unknown>): boolean {
  for (const [f, cond] of Object.entries(where)) {
    const field = f as SampleField;
    const raw = r[field];
    if (raw === undefined) return false;
    const values = field === "tags" ? (raw as string[]) : [raw];
    if (!values.some((v) => satisfies(field, norm(field, v), cond))) return false;
  }
  return true;
}

/** UTF-8 byte order of string keys. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** What `query(where, { orderBy, reverse })` returns: the records' keys, in order. */
export function modelQuery(
  records: Iterable<SampleRec>,
  keyed: "id" | "seq",
  where: Record<string, unknown>,
  orderBy: SampleField | undefined,
  reverse: boolean,
): (string | number)[] {
  const cmpKey = (a: SampleRec, b: SampleRec) => (keyed === "id" ? compareUtf8(a.id, b.id) : a.seq - b.seq);
  // Every matching record, an absent `orderBy` value first (SQL's NULLS FIRST; last with `reverse`).
  const out = [...records].filter((r) => modelMatches(r, where));
  out.sort((a, b) => {
    if (orderBy !== undefined) {
      const x = a[orderBy];
      const y = b[orderBy];
      const c = x === undefined || y === undefined ? Number(y === undefined) - Number(x === undefined) : compare(norm(orderBy, x), norm(orderBy, y));
      if (c !== 0) return c;
    }
    return cmpKey(a, b);
  });
  if (reverse) out.reverse();
  return out.map((r) => r[keyed]);
}
