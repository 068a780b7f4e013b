/**
 * Index sort keys (typed/index-keys.ts): each component's encoding keeps the order of its values under
 * plain JavaScript string comparison, compound sks order by their tuples, and every sk decodes back to the
 * values it was made from.
 */
import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FocusSessionEntity } from "../../src/generated/examples/focus/v1/focus_cellar.js";
import { FocusSessionSchema } from "../../src/generated/examples/focus/v1/focus_pb.js";
import {
  type ComponentKind,
  type IndexKeyer,
  ABSENT,
  absentComponent,
  componentNumber,
  componentPresent,
  decodeComponents,
  encodeComponent,
  encodeStringPrefix,
  indexKeyers,
  indexTerms,
  queryValue,
  splitTerm,
} from "../../src/runtime/typed/index-keys.js";
import { defineCollection } from "../../src/runtime/typed/entity.js";
import { SampleSchema, sampleEntity } from "./helpers/sample.js";

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const sign = (n: number | bigint) => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** A keyer over any component kinds (decoding needs only the kinds). */
function keyer(...kinds: ComponentKind[]): IndexKeyer {
  const offsets: number[] = [];
  let at = 0;
  const width: Record<ComponentKind, number> = { bool: 1, int32: 8, uint32: 8, int64: 16, uint64: 16, double: 16, string: -1, timestamp: 24, duration: 24 };
  for (const k of kinds) {
    offsets.push(at);
    at = at < 0 || width[k] < 0 ? -1 : at + width[k];
  }
  return {
    spec: { id: kinds.map((_, i) => i + 1).join(","), fields: kinds.map((_, i) => `f${i}`), name: "test" },
    components: kinds.map((kind, i) => ({ field: `f${i}`, kind, repeated: false })),
    prefix: "\u0001t\u0000",
    offsets,
    terms: new Map(),
  };
}

const arbSeconds = fc.bigInt({ min: -(1n << 40n), max: 1n << 40n });
const arbTimestamp = fc.record({ seconds: arbSeconds, nanos: fc.integer({ min: 0, max: 999_999_999 }) });
/** Seconds and nanos never of opposite signs (protobuf's rule); nanos alone may be negative. */
const arbDuration = fc
  .tuple(arbSeconds, fc.integer({ min: 0, max: 999_999_999 }), fc.boolean())
  .map(([s, n, neg]) => ({ seconds: s, nanos: n === 0 ? 0 : s < 0n || (s === 0n && neg) ? -n : n }));

const exact = (t: { seconds: bigint; nanos: number }) => t.seconds * 1_000_000_000n + BigInt(t.nanos);

const KINDS: { kind: ComponentKind; arb: fc.Arbitrary<unknown>; compare: (a: any, b: any) => number }[] = [
  { kind: "bool", arb: fc.boolean(), compare: (a: boolean, b: boolean) => Number(a) - Number(b) },
  { kind: "int32", arb: fc.integer({ min: -0x80000000, max: 0x7fffffff }), compare: (a: number, b: number) => a - b },
  { kind: "uint32", arb: fc.integer({ min: 0, max: 0xffffffff }), compare: (a: number, b: number) => a - b },
  { kind: "int64", arb: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), compare: (a: bigint, b: bigint) => sign(a - b) },
  { kind: "uint64", arb: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), compare: (a: bigint, b: bigint) => sign(a - b) },
  { kind: "double", arb: fc.double({ noNaN: true }), compare: (a: number, b: number) => (a < b ? -1 : a > b ? 1 : 0) },
  { kind: "string", arb: fc.string({ unit: fc.constantFrom("a", "b", "\u0000", "\u0001", "\u0002", "é", "\uffff") }), compare: cmp },
  { kind: "timestamp", arb: arbTimestamp, compare: (a, b) => sign(exact(a) - exact(b)) },
  { kind: "duration", arb: arbDuration, compare: (a, b) => sign(exact(a) - exact(b)) },
];

describe("index sort keys", () => {
  for (const { kind, arb, compare } of KINDS) {
    it(`${kind}: string order of encodings is value order, and decoding gives the value back`, () => {
      const k = keyer(kind);
      fc.assert(
        fc.property(arb, arb, (a, b) => {
          const ea = encodeComponent(kind, a);
          const eb = encodeComponent(kind, b);
          expect(sign(cmp(ea, eb))).toBe(sign(compare(a, b)));
          const back = decodeComponents(k, ea)[0];
          if (kind === "double") expect(back).toBe((a as number) === 0 ? 0 : a);
          else expect(back).toEqual(a);
        }),
        { numRuns: 300 },
      );
    });
  }

  it("compound sks order by their tuples and decode to them (strings in any position)", () => {
    const k = keyer("string", "int32", "string", "timestamp");
    const arbTuple = fc.tuple(KINDS[6]!.arb, KINDS[1]!.arb, KINDS[6]!.arb, arbTimestamp);
    const compare = (a: any[], b: any[]) => {
      const parts = [KINDS[6]!.compare, KINDS[1]!.compare, KINDS[6]!.compare, KINDS[7]!.compare];
      for (let i = 0; i < parts.length; i++) {
        const c = sign(parts[i]!(a[i], b[i]));
        if (c !== 0) return c;
      }
      return 0;
    };
    const enc = (t: any[]) => encodeComponent("string", t[0]) + encodeComponent("int32", t[1]) + encodeComponent("string", t[2]) + encodeComponent("timestamp", t[3]);
    fc.assert(
      fc.property(arbTuple, arbTuple, (a, b) => {
        expect(sign(cmp(enc(a), enc(b)))).toBe(compare(a, b));
        expect(decodeComponents(k, enc(a))).toEqual(a);
        expect(componentNumber(k, enc(a), 1)).toBe(a[1]);
      }),
      { numRuns: 300 },
    );
  });

  it("a string prefix's encoding starts every sk whose string starts with it", () => {
    fc.assert(
      fc.property(KINDS[6]!.arb as fc.Arbitrary<string>, KINDS[6]!.arb as fc.Arbitrary<string>, (p, rest) => {
        expect(encodeComponent("string", p + rest).startsWith(encodeStringPrefix(p))).toBe(true);
      }),
    );
  });

  it("componentNumber gives timestamps in epoch ms, durations in seconds, 64-bit integers as numbers", () => {
    const k = keyer("int32", "timestamp", "duration", "int64", "uint64", "bool");
    const sk =
      encodeComponent("int32", -7) +
      encodeComponent("timestamp", { seconds: 1_700_000_000n, nanos: 250_000_000 }) +
      encodeComponent("duration", { seconds: -90n, nanos: -500_000_000 }) +
      encodeComponent("int64", -(2n ** 40n)) +
      encodeComponent("uint64", 2n ** 52n) +
      encodeComponent("bool", true);
    expect([0, 1, 2, 3, 4, 5].map((i) => componentNumber(k, sk, i))).toEqual([-7, 1_700_000_000_250, -90.5, -(2 ** 40), 2 ** 52, 1]);
  });

  it("a record's terms: one per index, compound ones from every component, an absent one as the marker", () => {
    const def = defineCollection({
      ...FocusSessionEntity,
      indexes: ["kind", "startedAt", "duration"],
      indexSpecs: [
        { id: "6", fields: ["kind"], name: "kind" },
        { id: "2,10", fields: ["startedAt", "duration"], name: "started_at,duration" },
      ],
    });
    const ks = indexKeyers(def);
    expect(ks.map((k) => k.components.map((c) => c.kind))).toEqual([["int32"], ["timestamp", "duration"]]);
    const zero = create(FocusSessionSchema) as unknown as Record<string, unknown>;
    const full = create(FocusSessionSchema, { id: "a", kind: 2, startedAt: { seconds: 100n, nanos: 5 }, duration: { seconds: 60n } });
    const terms = indexTerms(def, full as unknown as Record<string, unknown>, zero);
    expect(terms.map((t) => splitTerm(t)!.id)).toEqual(["6", "2,10"]);
    expect(decodeComponents(ks[1]!, splitTerm(terms[1]!)!.sk)).toEqual([{ seconds: 100n, nanos: 5 }, { seconds: 60n, nanos: 0 }]);
    const noDuration = create(FocusSessionSchema, { id: "b", startedAt: { seconds: 100n } });
    const partial = indexTerms(def, noDuration as unknown as Record<string, unknown>, zero);
    expect(partial.map((t) => splitTerm(t)!.id)).toEqual(["6", "2,10"]);
    expect(splitTerm(partial[1]!)!.sk).toBe(encodeComponent("timestamp", { seconds: 100n, nanos: 0 }) + "-".repeat(24));
    expect(decodeComponents(ks[1]!, splitTerm(partial[1]!)!.sk)).toEqual([{ seconds: 100n, nanos: 0 }, undefined]);
    expect(componentPresent(ks[1]!, splitTerm(partial[1]!)!.sk, 0)).toBe(true);
    expect(componentPresent(ks[1]!, splitTerm(partial[1]!)!.sk, 1)).toBe(false);
    expect(componentNumber(ks[1]!, splitTerm(partial[1]!)!.sk, 1)).toBeNaN();
    const none = indexTerms(def, create(FocusSessionSchema, { id: "c" }) as unknown as Record<string, unknown>, zero);
    expect(decodeComponents(ks[1]!, splitTerm(none[1]!)!.sk)).toEqual([undefined, undefined]);
    // A scalar missing from the source and the zero message (proto3 `optional`, unset) indexes its zero value.
    expect(indexTerms(def, {}, {})).toEqual([`\u00016\u0000${encodeComponent("int32", 0)}`, `\u00012,10\u0000${"-".repeat(48)}`]);
    // A single-field index on a Timestamp holds the record too.
    const single = defineCollection({ ...FocusSessionEntity, indexes: ["startedAt"], indexSpecs: [{ id: "2", fields: ["startedAt"], name: "started_at" }] });
    expect(indexTerms(single, zero, zero)).toEqual([`\u00012\u0000${"-".repeat(24)}`]);
    expect(splitTerm("kind\u00002")).toBeUndefined();
  });

  it("two entities' indexes with the same id (field number) but other kinds each get their own terms (kept terms are per index)", () => {
    // Field 3 is an int32 in one message and a uint32 in another: the kept terms were once shared by prefix
    // ("\u00013\u0000"), so the uint32 index got the int32 encoding of a value the other entity had indexed first.
    const a = sampleEntity([["n"]], "id", "a");
    const b = { ...sampleEntity([["u"]], "id", "b"), indexSpecs: [{ id: "3", fields: ["u"], name: "u" }] };
    const zero = create(SampleSchema) as unknown as Record<string, unknown>;
    for (const v of [1, 5, 7]) {
      expect(indexTerms(a, { n: v }, zero)).toEqual([`\u00013\u0000${encodeComponent("int32", v)}`]);
      expect(indexTerms(b, { u: v }, zero)).toEqual([`\u00013\u0000${encodeComponent("uint32", v)}`]);
    }
    // A list field's terms: one per distinct element, after the other indexes' terms.
    const c = sampleEntity([["tags"], ["n"]], "id", "c");
    expect(indexTerms(c, { tags: ["x", "y", "x"], n: 2 }, zero)).toEqual([`\u00019\u0000x\u0000`, `\u00019\u0000y\u0000`, `\u00013\u0000${encodeComponent("int32", 2)}`]);
  });

  it("a single-field Timestamp/Duration term (built from its bytes) is the prefix and encodeComponent, for any seconds", () => {
    const def = defineCollection({
      ...FocusSessionEntity,
      indexes: ["startedAt", "duration"],
      indexSpecs: [
        { id: "2", fields: ["startedAt"], name: "started_at" },
        { id: "10", fields: ["duration"], name: "duration" },
        // Prefixes of 5 characters (one call with every code) and of 7 (made from bytes).
        { id: "123", fields: ["startedAt"], name: "s3" },
        { id: "12345", fields: ["duration"], name: "d5" },
      ],
    });
    const edge = 2n ** 53n;
    // Seconds around ±2^53 (where the number path ends), ±2^32 (the halves' boundary) and across int64.
    const seconds = fc.oneof(
      fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
      fc.bigInt({ min: edge - 3n, max: edge + 3n }).chain((b) => fc.constantFrom(b, -b)),
      fc.bigInt({ min: -(1n << 33n), max: 1n << 33n }),
    );
    fc.assert(
      fc.property(seconds, fc.integer({ min: 0, max: 999_999_999 }), fc.boolean(), fc.boolean(), (s, n, neg, asNumber) => {
        const sec = asNumber && s >= -(2n ** 53n) + 1n && s <= 2n ** 53n - 1n ? Number(s) : s;
        const startedAt = { seconds: sec, nanos: n };
        const duration = { seconds: sec, nanos: s < 0n || (s === 0n && neg) ? -n : n };
        const terms = indexTerms(def, { startedAt, duration }, {});
        expect(terms).toEqual([
          `\u00012\u0000${encodeComponent("timestamp", startedAt)}`,
          `\u000110\u0000${encodeComponent("duration", duration)}`,
          `\u0001123\u0000${encodeComponent("timestamp", startedAt)}`,
          `\u000112345\u0000${encodeComponent("duration", duration)}`,
        ]);
        expect(decodeComponents(indexKeyers(def)[0]!, splitTerm(terms[0]!)!.sk)).toEqual([{ seconds: s, nanos: n }]);
      }),
      { numRuns: 2000 },
    );
  });

  it("an absent Timestamp/Duration sorts before every present value of its component, in any position of a compound sk", () => {
    expect(ABSENT < "0").toBe(true);
    const present = (kind: "timestamp" | "duration") => (kind === "timestamp" ? arbTimestamp : arbDuration);
    const comp = fc.constantFrom("timestamp" as const, "duration" as const).chain((kind) => fc.tuple(fc.constant(kind), fc.option(present(kind), { nil: undefined })));
    fc.assert(
      fc.property(fc.array(fc.tuple(comp, comp), { minLength: 2, maxLength: 2 }), fc.constantFrom("int32" as const, "string" as const), fc.integer({ min: -5, max: 5 }), (pair, tail, t) => {
        // Same kinds for both tuples: (kind0, kind1) from the first, values from each.
        const kinds = [pair[0]![0][0], pair[0]![1][0]] as const;
        const values = pair.map((p) => [p[0][0] === kinds[0] ? p[0][1] : undefined, p[1][0] === kinds[1] ? p[1][1] : undefined]);
        const k = keyer(kinds[0], kinds[1], tail);
        const tailValue = tail === "string" ? String(t) : t;
        const sks = values.map((v) => v.map((x, i) => (x === undefined ? absentComponent(kinds[i]!) : encodeComponent(kinds[i]!, x))).join("") + encodeComponent(tail, tailValue));
        // Tuple order with undefined first.
        const cmpOne = (x: { seconds: bigint; nanos: number } | undefined, y: { seconds: bigint; nanos: number } | undefined) =>
          x === undefined || y === undefined ? Number(y === undefined) - Number(x === undefined) : sign(exact(x) - exact(y));
        const expected = cmpOne(values[0]![0], values[1]![0]) || cmpOne(values[0]![1], values[1]![1]);
        expect(cmp(sks[0]!, sks[1]!)).toBe(expected);
        for (let j = 0; j < 2; j++) {
          expect(decodeComponents(k, sks[j]!)).toEqual([...values[j]!, tailValue]);
          for (let i = 0; i < 2; i++) expect(componentPresent(k, sks[j]!, i)).toBe(values[j]![i] !== undefined);
          if (tail === "int32") expect(componentNumber(k, sks[j]!, 2)).toBe(t);
        }
      }),
    );
    // Scalars always have a value: an unset one (explicit presence) indexes its zero value.
    expect(absentComponent("int32")).toBe(encodeComponent("int32", 0));
    expect(absentComponent("string")).toBe(encodeComponent("string", ""));
    expect(componentPresent(keyer("string"), encodeComponent("string", "-x"), 0)).toBe(true);
  });

  it("query values are checked against the component's kind, the message never naming the value", () => {
    const def = defineCollection({ ...FocusSessionEntity, indexes: ["startedAt"], indexSpecs: [{ id: "2", fields: ["startedAt"], name: "started_at" }] });
    const comp = indexKeyers(def)[0]!.components[0]!;
    expect(queryValue(def, comp, new Date(1500))).toEqual({ seconds: 1n, nanos: 500_000_000 });
    expect(queryValue(def, comp, { seconds: 5n })).toEqual({ seconds: 5n, nanos: 0 });
    expect(() => queryValue(def, comp, "secret-2026")).toThrow(/`startedAt` takes a Date or a Timestamp.*got string/);
    expect(() => queryValue(def, comp, "secret-2026")).not.toThrow(/secret/);
    expect(() => queryValue(def, comp, new Date(NaN))).toThrow(/an invalid Date/);
  });
});
