/**
 * `commitRecordIs` (format/records.ts) tells whether the bytes before a value in a commit payload are the
 * record a location names: entity, key, version, index terms and length, each compared exactly. ASCII
 * strings are compared char by char and others encoded first; both must give what comparing the UTF-8
 * bytes gives, for every kind of text (fast-check), and refuse any one field that differs.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { commitRecordIs, encodeCommit, opSize } from "../../src/runtime/format/records.js";

const text = fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom("k", "ü", "日本", "𝄞x", "a\u0000b", "\u007f\u0080"), fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }));

const op = fc.record({
  entity: text,
  key: text,
  version: fc.integer({ min: 1, max: 70000 }),
  terms: fc.array(text, { maxLength: 3 }),
  value: fc.uint8Array({ maxLength: 200 }),
});

describe("commitRecordIs", () => {
  it("accepts each record at its start and refuses any field that differs", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 4 }), fc.nat(), text, (ops, pick, other) => {
        const { plain, starts } = encodeCommit(ops.map((o) => ({ op: "put" as const, ...o })));
        ops.forEach((o, i) => {
          const s = starts[i]!;
          expect(commitRecordIs(plain, s, o.entity, o.key, o.version, o.terms, o.value.length)).toBe(true);
        });
        const i = pick % ops.length;
        const o = ops[i]!;
        const s = starts[i]!;
        const same = (a: string) => Buffer.from(a).equals(Buffer.from(other));
        if (!same(o.entity)) expect(commitRecordIs(plain, s, other, o.key, o.version, o.terms, o.value.length)).toBe(false);
        if (!same(o.key)) expect(commitRecordIs(plain, s, o.entity, other, o.version, o.terms, o.value.length)).toBe(false);
        if (o.terms.length && !same(o.terms[0]!)) expect(commitRecordIs(plain, s, o.entity, o.key, o.version, [other, ...o.terms.slice(1)], o.value.length)).toBe(false);
        expect(commitRecordIs(plain, s, o.entity, o.key, o.version + 1, o.terms, o.value.length)).toBe(false);
        expect(commitRecordIs(plain, s, o.entity, o.key, o.version, [...o.terms, "t"], o.value.length)).toBe(false);
        expect(commitRecordIs(plain, s, o.entity, o.key, o.version, o.terms, o.value.length + 1)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it("opSize bounds an op's bytes from above, and counts ASCII index terms at their size", () => {
    const long = fc.array(text, { minLength: 8, maxLength: 30 }).map((parts) => parts.join(""));
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 4 }), fc.array(long, { maxLength: 2 }), (ops, more) => {
        const puts = ops.map((o) => ({ op: "put" as const, ...o, terms: [...o.terms, ...more] }));
        const { plain } = encodeCommit(puts);
        expect(puts.reduce((n, o) => n + opSize(o), 0)).toBeGreaterThanOrEqual(plain.length);
      }),
      { numRuns: 100 },
    );
    // An indexed record's terms (ASCII, ~50 bytes) size the commit's buffer as they are, not at 3 bytes a unit.
    const terms = ["\u00012\u0000800000006957cd5a1dcd6500", "\u00015\u0000t1234\u0000", "\u000111\u000080000002"];
    const bare = { op: "put" as const, entity: "focus_sessions", key: "x0000001", version: 3, value: new Uint8Array(90), terms: [] };
    expect(opSize({ ...bare, terms }) - opSize(bare)).toBe(encodeCommit([{ ...bare, terms }]).plain.length - encodeCommit([bare]).plain.length);
  });
});
