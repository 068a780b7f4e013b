/**
 * The held writes of an import (typed/import-held.ts): the sort in slices is the native stable sort, across
 * the slice size; held writes come back as they went in, and sorted per entity in UTF-8 key order with the
 * last write of a key winning, whether the file was in key order or not; and the same after their values were
 * spilled to a real staging file at any points and read back (fast-check).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { Spill } from "../../src/runtime/typed/import-staging.js";
import { compareUtf8 } from "../../src/runtime/format/segment-index.js";
import { HeldWrites, type PutOp, sortInSlices } from "../../src/runtime/typed/import-held.js";

describe("sortInSlices", () => {
  it("sorts as the native stable sort does, whatever the length (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(0, 1, 2, 1000, 16_383, 16_384, 16_385, 40_000, 70_001), fc.integer({ min: 1, max: 1 << 20 }), async (n, range) => {
        const a = Array.from({ length: n }, (_, i) => (Math.imul(i + 1, 2654435761) >>> 0) % (range * 16));
        // Compare by value / 16 only: equal elements keep their order (stable) or the result differs.
        const cmp = (x: number, y: number) => (x >> 4) - (y >> 4);
        expect(await sortInSlices(a, cmp)).toEqual([...a].sort(cmp));
      }),
      { numRuns: 25 },
    );
  });
});

describe("HeldWrites", () => {
  const op = (entity: string, key: string, n: number): PutOp => ({ op: "put", entity, key, version: 1 + (n % 3), value: Uint8Array.from([n & 255, n >> 8]), terms: n % 2 ? [`t${n % 5}`] : [] });

  it("gives its writes back, and per entity in UTF-8 key order with the last write of a key winning (fast-check)", async () => {
    const key = fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom("a", "b", "\uffff", "\u{10000}", "é"));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom("x", "y"), key), { maxLength: 300 }), fc.boolean(), async (writes, inOrder) => {
        if (inOrder) writes.sort((a, b) => compareUtf8(a[1], b[1]));
        const held = new HeldWrites();
        const ops = writes.map(([e, k], i) => op(e, k, i));
        ops.forEach((o, i) => held.push(o, i % 7 === 0));
        expect(held.count).toBe(ops.length);
        expect([...held.ops()]).toEqual(ops);
        expect([...held.ops(true)]).toEqual(ops.filter((_, i) => i % 7 !== 0));
        const sorted = await held.sorted();
        held.clear(); // what was handed out stays valid
        for (const e of ["x", "y"]) {
          const last = new Map<string, PutOp>();
          for (const o of ops) if (o.entity === e) last.set(o.key, o);
          const want = [...last.values()].sort((a, b) => compareUtf8(a.key, b.key)).map(({ key, version, value, terms }) => ({ key, version, value, terms }));
          expect([...(sorted.get(e) ?? [])]).toEqual(want);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("gives the same writes back after their values were spilled (several values per buffer, at any points) and loaded (fast-check)", async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-held-spill-"));
    afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), fc.boolean()), { minLength: 1, maxLength: 120 }), async (writes) => {
        const dir = path.join(tmp, String(run++));
        fs.mkdirSync(dir);
        const spill = await Spill.open(dir);
        try {
          const held = new HeldWrites();
          const ops: PutOp[] = [];
          // An arena: values side by side in 256-byte buffers; a new buffer after each spill (as import.ts does).
          let arena = new Uint8Array(256);
          let pos = 7;
          for (const [i, [len, spillAfter]] of writes.entries()) {
            if (pos + len > arena.length) [arena, pos] = [new Uint8Array(256), 3];
            const value = arena.subarray(pos, pos + len);
            for (let j = 0; j < len; j++) value[j] = (i * 31 + j) & 255;
            pos += len;
            const o: PutOp = { op: "put", entity: i % 3 ? "x" : "y", key: `k${String(i).padStart(3, "0")}`, version: 1, value, terms: [] };
            ops.push({ ...o, value: value.slice() });
            held.push(o, false);
            if (spillAfter) {
              await held.spill(spill);
              value.fill(0); // the memory it left is not read again
              [arena, pos] = [new Uint8Array(256), 0];
            }
          }
          await held.load(spill);
          expect([...held.ops()].map((o) => ({ ...o, value: o.value.slice() }))).toEqual(ops);
          const sorted = await held.sorted();
          expect([...(sorted.get("x") ?? [])].map((r) => r.key)).toEqual(ops.filter((o) => o.entity === "x").map((o) => o.key));
        } finally {
          await spill.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
