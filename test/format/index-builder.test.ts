// IndexBuilder (format/records.ts): the segment index encoded a block at a time, as compaction writes its
// blocks (issue 15: no single step encodes a 100,000-record index), must be the very bytes encodeIndex
// writes for the same blocks (docs/FORMAT.md, "Segment index"): the on-disk format does not change.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type BlockSlot, encodeIndex, type IndexBlock, IndexBuilder } from "../../src/runtime/format/records.js";
import { SegmentIndex } from "../../src/runtime/format/segment-index.js";

const slot = fc.record({
  key: fc.string({ minLength: 1, maxLength: 12 }),
  version: fc.nat(300),
  start: fc.nat(1 << 20),
  length: fc.nat(1 << 16),
  terms: fc.array(fc.constantFrom("\u0001a\u0000x", "\u0001a\u0000y", "\u0001b\u00001", "\u0001c\u0000é", "t"), { maxLength: 4 }),
});
const blocks = fc.array(
  fc.record({ offset: fc.nat(1 << 30), frameLength: fc.nat(1 << 20), entity: fc.constantFrom("tasks", "notes", "é"), slots: fc.array(slot, { maxLength: 20 }) }),
  { maxLength: 12 },
);

describe("IndexBuilder", () => {
  it("writes the bytes encodeIndex writes, for any blocks", () => {
    fc.assert(
      fc.property(blocks, (bs) => {
        const b = new IndexBuilder();
        for (const block of bs) b.add(block as IndexBlock<BlockSlot>);
        expect(Buffer.from(b.finish()).equals(Buffer.from(encodeIndex(bs as IndexBlock<BlockSlot>[])))).toBe(true);
      }),
      { seed: 20261207, numRuns: 300 },
    );
  });

  it("a 20,000-slot index parses back to every key, in place", () => {
    const b = new IndexBuilder();
    const all: string[] = [];
    for (let blk = 0; blk < 100; blk++) {
      const slots = Array.from({ length: 200 }, (_, i) => {
        const key = `k${String(blk * 200 + i).padStart(6, "0")}`;
        all.push(key);
        return { key, version: 1, start: i * 10, length: 10, terms: [`\u0001s\u0000${i % 7}`] };
      });
      b.add({ offset: 32 + blk * 4000, frameLength: 4000, entity: "tasks", slots });
    }
    const ix = SegmentIndex.parse(b.finish(), 3);
    const r = ix.range("tasks")!;
    expect(r.to - r.from).toBe(20_000);
    expect(ix.key(r.from + 12_345)).toBe(all[12_345]);
  });

  it("every slot's terms read back as written (decoded at their first use, not at parse)", () => {
    const long = "é".repeat(512); // 1,024 bytes of UTF-8: the longest term, its length a 2-byte varint
    const term = fc.constantFrom("\u0001a\u0000x", "\u0001b\u0000ü", "t", "", long, "\u{1F600}");
    const slots = fc.array(fc.record({ key: fc.string({ maxLength: 6 }), terms: fc.array(term, { maxLength: 4 }) }), { minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(fc.array(slots, { minLength: 1, maxLength: 6 }), (perBlock) => {
        const b = new IndexBuilder();
        let offset = 32;
        for (const ss of perBlock) {
          b.add({ offset, frameLength: 100, entity: "tasks", slots: ss.map((s, i) => ({ key: s.key, version: 1, start: i, length: 1, terms: s.terms })) });
          offset += 100;
        }
        const ix = SegmentIndex.parse(b.finish(), 1);
        const want = perBlock.flat().map((s) => s.terms);
        // Read twice: the second read comes from the decoded terms.
        for (let round = 0; round < 2; round++) want.forEach((terms, slot) => expect([...ix.loc(slot).terms]).toEqual(terms));
      }),
      { seed: 20261207, numRuns: 200 },
    );
  });
});
