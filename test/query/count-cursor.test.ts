/**
 * `count(where)` reads the index, never a record's value (the codec is never called, no value byte is
 * read), and agrees with a model across writes and a reopen; cursors are stable across writes between
 * pages: no record twice, none skipped that matched and was left alone throughout.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { openStore } from "../../src/runtime/index.js";
import { ValueCodec } from "../../src/runtime/crypto/value.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import { sampleEntity, type SampleField } from "./helpers/sample.js";
import { IDS, modelMatches, modelQuery, recordArb, type SampleRec } from "./helpers/model.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-query-count-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());
const key = new Uint8Array(32).fill(7);
let run = 0;

type Loose = { [m in "query" | "queryPage" | "count" | "explain" | "put" | "delete"]: (...a: any[]) => any };
const def = sampleEntity([["name"], ["n", "score"], ["tags"], ["at"], ["kind", "u"]]);

function rec(i: number): SampleRec {
  return {
    id: `k${String(i).padStart(4, "0")}`,
    seq: i,
    name: ["a", "ab", "b", "c"][i % 4]!,
    n: i % 7,
    kind: i % 4,
    flag: i % 2 === 0,
    score: (i % 11) / 2 - 2,
    at: i % 5 === 0 ? undefined : { seconds: BigInt(i % 13), nanos: 0 },
    big: BigInt(i),
    tags: [["x"], ["y"], ["x", "y"], []][i % 4]!,
    dur: undefined,
    u: i % 3,
  };
}

const WHERES: { where: Record<string, unknown>; scan?: boolean }[] = [
  { where: {} },
  { where: { name: "ab" } },
  { where: { name: { prefix: "a" } } },
  { where: { n: { gte: 2, lt: 5 } } },
  { where: { n: { in: [1, 3] }, score: { gt: 0 } } },
  { where: { n: 2, score: { lte: 1 } } },
  { where: { tags: { in: ["x", "y"] } } },
  { where: { tags: "y", name: { prefix: "a" } } },
  { where: { at: { gte: new Date(3000), lt: new Date(9000) } } },
  { where: { at: { gte: new Date(0) } } },
  { where: { kind: 2, u: { gte: 1 } } },
  { where: { score: { gte: 1 } }, scan: true },
  { where: { u: 2 }, scan: true },
];

describe("count(where)", () => {
  it("agrees with the model without decoding or reading a record's value, across writes and a reopen", async () => {
    const dir = path.join(tmp, "count");
    const model = new Map<string, SampleRec>();
    let store = await openStore({ samples: def }, { dir, key });
    for (let i = 0; i < 300; i++) {
      await (store.samples as unknown as Loose).put(rec(i));
      model.set(rec(i).id, rec(i));
    }
    await store.close();
    store = await openStore({ samples: def }, { dir, key });
    const decode = vi.spyOn(ValueCodec.prototype, "decode");
    const read = vi.spyOn(Engine.prototype, "read");
    const check = async () => {
      const repo = store.samples as unknown as Loose;
      const before = [decode.mock.calls.length, read.mock.calls.length];
      for (const { where, scan } of WHERES) {
        const want = [...model.values()].filter((r) => modelMatches(r, where)).length;
        expect(await repo.count(where, { scan }), JSON.stringify(where)).toBe(want);
      }
      // Where the ranges say it all, count adds up their sizes.
      expect(repo.explain({ n: { gte: 2, lt: 5 } }).exactCount).toBe(true);
      expect(repo.explain({ tags: { in: ["x", "y"] } }).exactCount).toBe(false); // a record with both is in two ranges
      expect([decode.mock.calls.length, read.mock.calls.length]).toEqual(before);
    };
    await check();
    for (let i = 0; i < 300; i += 7) {
      await (store.samples as unknown as Loose).delete(rec(i).id);
      model.delete(rec(i).id);
    }
    for (let i = 300; i < 340; i++) {
      await (store.samples as unknown as Loose).put(rec(i));
      model.set(rec(i).id, rec(i));
    }
    await check();
    await store.compact();
    await check();
    await store.close();
    store = await openStore({ samples: def }, { dir, key });
    await check();
    expect(decode.mock.calls.length + read.mock.calls.length).toBeGreaterThan(0); // the spies see the puts' reads
    await store.close();
  });
});

describe("a small page of a large result gathered and sorted", () => {
  it("is the model's, by key or by orderBy, forward and reversed, page after page", async () => {
    const store = await openStore({ samples: def }, { dir: path.join(tmp, "small"), key });
    const repo = store.samples as unknown as Loose;
    const model = new Map<string, SampleRec>();
    for (let i = 0; i < 300; i++) {
      await repo.put(rec(i));
      model.set(rec(i).id, rec(i));
    }
    const cases: { where: Record<string, unknown>; orderBy?: SampleField }[] = [
      { where: { n: { gte: 2 } } },
      { where: { tags: { in: ["x", "y"] } }, orderBy: "score" },
      { where: { n: { gte: 1, lt: 5 } }, orderBy: "score" },
      { where: { kind: { in: [1, 3] }, u: { gte: 1 } }, orderBy: "name" },
    ];
    for (const { where, orderBy } of cases) {
      expect(repo.explain(where, { orderBy }).order).toBe("sorted");
      for (const reverse of [false, true]) {
        const want = modelQuery(model.values(), "id", where, orderBy, reverse) as string[];
        expect(want.length).toBeGreaterThan(90); // far more than a page: the smallest are selected, not all sorted
        const o = { reverse, ...(orderBy && { orderBy }) };
        expect((await repo.query(where, { ...o, offset: 3, limit: 5 })).map((r: SampleRec) => r.id)).toEqual(want.slice(3, 8));
        const seen: string[] = [];
        let after: string | undefined;
        for (let i = 0; i < 5; i++) {
          const page = await repo.queryPage(where, { ...o, limit: 9, ...(after && { after }) });
          seen.push(...page.records.map((r: SampleRec) => r.id));
          after = page.cursor;
        }
        expect(seen).toEqual(want.slice(0, 45));
      }
    }
    await store.close();
  });
});

type Between = { op: "put"; rec: SampleRec } | { op: "delete"; at: number } | { op: "none" };

describe("queryPage cursors across writes", () => {
  it("never return a record twice, and never skip one that matched and was not written meanwhile", async () => {
    const queries: { where: Record<string, unknown>; orderBy?: SampleField }[] = [
      { where: {} },
      { where: { n: { gte: 1, lte: 5 } } },
      { where: { n: { gte: 1 } }, orderBy: "n" },
      { where: { name: { prefix: "a" } }, orderBy: "name" },
      { where: { tags: { in: ["x", "y"] } } },
      { where: {}, orderBy: "at" },
      { where: { kind: 1 }, orderBy: "u" },
      { where: { at: { gte: new Date(2000) } }, orderBy: "at" },
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.array(recordArb(), { minLength: 5, maxLength: 40 }),
        fc.constantFrom(...queries),
        fc.boolean(),
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.oneof(recordArb().map((rec) => ({ op: "put" as const, rec })), fc.nat(50).map((at) => ({ op: "delete" as const, at })), fc.constant({ op: "none" as const })), { maxLength: 40 }),
        async (initial, q, reverse, limit, between) => {
          const store = await openStore({ samples: def }, { dir: path.join(tmp, `c${run++}`), key });
          const repo = store.samples as unknown as Loose;
          const model = new Map<string, SampleRec>();
          for (const r of initial) {
            await repo.put(r);
            model.set(r.id, r);
          }
          // Keys that match now; a write to one takes it out of what must be returned.
          const stable = new Set(modelQuery(model.values(), "id", q.where, q.orderBy, false) as string[]);
          const seen: string[] = [];
          const written = new Set<string>();
          let after: string | undefined;
          for (let i = 0; ; i++) {
            const page = await repo.queryPage(q.where, { limit, reverse, ...(q.orderBy && { orderBy: q.orderBy }), ...(after && { after }) });
            seen.push(...page.records.map((r: SampleRec) => r.id));
            if (!page.cursor) break;
            after = page.cursor;
            const w = between[i % Math.max(1, between.length)];
            if (w?.op === "put") {
              await repo.put(w.rec);
              model.set(w.rec.id, w.rec);
              stable.delete(w.rec.id);
              written.add(w.rec.id);
            } else if (w?.op === "delete") {
              const k = IDS[w.at % IDS.length]!;
              await repo.delete(k);
              model.delete(k);
              stable.delete(k);
              written.add(k);
            }
            expect(i).toBeLessThan(60);
          }
          // In key order a record never moves: never twice. By `orderBy`, a record written between pages with a
          // value after the cursor's comes again, with its new value (as `iterate` sees a key written ahead of it);
          // one not written meanwhile never does.
          const twice = seen.filter((k, i) => seen.indexOf(k) !== i);
          if (q.orderBy === undefined) expect(twice).toEqual([]);
          for (const k of twice) expect(written.has(k)).toBe(true);
          for (const k of stable) expect(seen.filter((x) => x === k)).toHaveLength(1);
          await store.close();
        },
      ),
      { numRuns: 40 },
    );
  }, 60_000);
});
