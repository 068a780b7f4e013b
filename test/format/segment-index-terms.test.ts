// The segment index's term table (docs/FORMAT.md, "Segment"): walked at open, decoded on first use (issue 15,
// cold open: the benchmark's 100,000 records have 100,017 distinct terms, 3.8 MB of a 9.3 MB index). Every
// slot's terms still come back as written, a location asked without them lists none, and a term whose
// length runs past the payload is still refused by parse, before any lookup.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeIndex, type IndexBlock } from "../../src/runtime/format/records.js";
import { SegmentIndex } from "../../src/runtime/format/segment-index.js";
import { DecodeError } from "../../src/runtime/format/bytes.js";

const term = fc.oneof(fc.string({ maxLength: 6 }), fc.string({ minLength: 126, maxLength: 300 })); // one- and two-byte lengths
const blocks = fc.array(
  fc.record({
    offset: fc.constant(0),
    frameLength: fc.integer({ min: 1, max: 1000 }),
    entity: fc.constantFrom("tasks", "notes"),
    slots: fc.uniqueArray(fc.record({ key: fc.string({ minLength: 1, maxLength: 8 }), terms: fc.array(term, { maxLength: 3 }) }), { selector: (s) => s.key, maxLength: 20 }),
  }),
  { maxLength: 6 },
);

/** Blocks laid out as a segment has them: contiguous from 32, one entity's blocks together, keys sorted. */
function layout(bs: { frameLength: number; entity: string; slots: { key: string; terms: string[] }[] }[]): IndexBlock[] {
  const byEntity = [...bs].sort((a, b) => (a.entity < b.entity ? -1 : a.entity > b.entity ? 1 : 0));
  const seen = new Map<string, Set<string>>();
  let at = 32;
  return byEntity.map((b) => {
    const keys = seen.get(b.entity) ?? new Set<string>();
    seen.set(b.entity, keys);
    const slots = b.slots.filter((s) => !keys.has(s.key)).map((s, i) => ({ key: s.key, version: 1, start: i, length: 1, terms: s.terms }));
    for (const s of slots) keys.add(s.key);
    const out = { offset: at, frameLength: b.frameLength, entity: b.entity, slots };
    at += b.frameLength;
    return out;
  });
}

describe("segment index terms", () => {
  it("every slot's terms come back as written; without terms, none", () => {
    fc.assert(
      fc.property(blocks, (bs) => {
        const laid = layout(bs);
        const ix = SegmentIndex.parse(encodeIndex(laid), 7);
        let slot = 0;
        for (const b of laid) {
          for (const s of b.slots) {
            const at = laid.filter((x) => x.entity === b.entity).flatMap((x) => x.slots).indexOf(s) + ix.range(b.entity)!.from;
            expect(ix.loc(at).terms).toEqual(s.terms);
            expect(ix.loc(at, false).terms).toEqual([]);
            slot++;
          }
        }
        expect(slot).toBe(laid.reduce((n, b) => n + b.slots.length, 0));
      }),
      { seed: 20261207, numRuns: 200 },
    );
  });

  it("a term whose length runs past the payload is refused at parse", () => {
    const plain = encodeIndex([{ offset: 32, frameLength: 10, entity: "tasks", slots: [{ key: "a", version: 1, start: 0, length: 1, terms: ["xyz"] }] }]);
    // nterms = 1, then the term's length byte: claim 127 bytes (one-byte form) and then 2^20 (three-byte form).
    for (const len of [[0x7f], [0x80, 0x80, 0x40]]) {
      const bad = Uint8Array.from([plain[0]!, ...len, ...plain.subarray(2)]);
      expect(() => SegmentIndex.parse(bad, 7)).toThrow(DecodeError);
    }
  });
});
