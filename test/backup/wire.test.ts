/** The schema-free protobuf check verify runs on every record agrees with protobuf-es's reader. */
import fc from "fast-check";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import { toBinary, create } from "@bufbuild/protobuf";
import { TaskSchema } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import { wellFormed } from "../../src/runtime/storage/restore.js";

function reference(b: Uint8Array): boolean {
  try {
    const r = new BinaryReader(b);
    while (r.pos < r.len) {
      const [no, wt] = r.tag();
      if (no < 1) return false;
      r.skip(wt, no);
    }
    return r.pos === r.len;
  } catch {
    return false;
  }
}

describe("wellFormed", () => {
  it("accepts real encodings and agrees with protobuf-es on random and mutated bytes", () => {
    const good = toBinary(TaskSchema, create(TaskSchema, { id: "t1", title: "x".repeat(300), tags: ["a", "b"], estimateMinutes: 5 }));
    expect(wellFormed(good)).toBe(true);
    expect(wellFormed(new Uint8Array(0))).toBe(true);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
        expect(wellFormed(b)).toBe(reference(b));
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(good.length), (at, v, cut) => {
        const b = good.slice(0, cut);
        if (at < b.length) b[at] = v;
        expect(wellFormed(b)).toBe(reference(b));
      }),
      { numRuns: 3000 },
    );
  });
});
