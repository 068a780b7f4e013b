// The segment index switches from binary search to a hash table after 1,024 lookups: both must find
// exactly the same records (two entities sharing keys, non-ASCII and long keys, misses, keys shadowed by
// the journal), before and after the switch, and after a compaction builds a new index.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { TEST_KEY } from "./helpers/model.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-seghash-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const put = (entity: string, key: string): Extract<WriteOp, { op: "put" }> => ({ op: "put", entity, key, version: 1, value: Buffer.from(`${entity}:${key}`), terms: [] });

function keyFor(i: number): string {
  switch (i % 5) {
    case 0:
      return `k${i}`;
    case 1:
      return `ключ-${i}`; // two-byte UTF-8
    case 2:
      return `🔑${i}`; // four-byte UTF-8 (a surrogate pair)
    case 3:
      return `${"long-".repeat(40)}${i}`; // past the one-byte length prefix
    default:
      return String(i).padStart(8, "0");
  }
}

describe("segment index lookups (binary search, then hash table)", () => {
  it("find the same records as a Map model across the switch, for hits, misses and keys of another entity", async () => {
    const dir = path.join(tmp, "model");
    const e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    const model = new Map<string, string>();
    const ops: WriteOp[] = [];
    for (let i = 0; i < 3000; i++) {
      // "a" holds every key, "b" every third one: the same key in two entities.
      ops.push(put("a", keyFor(i)));
      model.set(`a\0${keyFor(i)}`, `a:${keyFor(i)}`);
      if (i % 3 === 0) {
        ops.push(put("b", keyFor(i)));
        model.set(`b\0${keyFor(i)}`, `b:${keyFor(i)}`);
      }
    }
    await e.write(ops);
    await e.compact();
    // Shadow some segment records from the journal: an overwrite and a delete.
    await e.write([{ ...put("a", keyFor(7)), value: Buffer.from("newer") }, { op: "delete", entity: "a", key: keyFor(8) }]);
    model.set(`a\0${keyFor(7)}`, "newer");
    model.delete(`a\0${keyFor(8)}`);

    const check = (entity: string, key: string) => {
      const got = e.get(entity, key);
      expect(got === undefined ? undefined : Buffer.from(got.value).toString(), `${entity} ${key}`).toBe(model.get(`${entity}\0${key}`));
    };
    // Well past the 1,024 lookups after which the table is built: random hits and misses.
    fc.assert(
      fc.property(fc.constantFrom("a", "b", "c"), fc.integer({ min: 0, max: 3500 }), (entity, i) => check(entity, keyFor(i))),
      { numRuns: 4000, seed: 11 },
    );
    for (let i = 0; i < 3000; i++) check("a", keyFor(i));
    for (let i = 0; i < 3000; i++) check("b", keyFor(i));
    check("a", "");
    check("a", "x".repeat(2000)); // longer than any key can be
    await e.compact(); // a new index: binary search again, then its own table
    for (let r = 0; r < 2; r++) for (let i = 0; i < 3000; i++) check(r ? "b" : "a", keyFor(i));
    await e.close();
  });
});
