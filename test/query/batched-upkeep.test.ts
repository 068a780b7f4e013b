/**
 * Index upkeep of large batches on a real store (files in a temp dir), against a Map model: batches of
 * hundreds of puts into built ordered indexes, so adds wait pending and are placed at the flush bound in the
 * middle of a batch (256 pending adds while an index holds under ~1,000 entries, docs/QUERIES.md), overwrites of
 * records whose adds are still pending (a remove of a pending key places them first), updates of indexed fields,
 * deletes, string or integer keys (string keys are packed into the search numbers), a list field and a compound
 * index (a record's terms are not always one per index, in one order: the keyspace's routing of terms to indexes
 * must still find each one's index), then queries and counts compared with a plain filter + sort over the model.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/runtime/index.js";
import { type SampleField, sampleEntity } from "./helpers/sample.js";
import { conditionArb, modelQuery, recordArb, type SampleRec } from "./helpers/model.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-batched-upkeep-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(5);
let run = 0;

/** Keys 0..KEYS-1 (as `seq`, or `r<seq>` as `id`): batches of hundreds of puts overwrite some of them. */
const KEYS = 1500;
const rec: fc.Arbitrary<SampleRec> = fc.tuple(recordArb(), fc.nat(KEYS - 1)).map(([r, k]) => ({ ...r, seq: k, id: `r${k}` }));
type BOp = { op: "put"; rec: SampleRec } | { op: "delete"; at: number };
const bop: fc.Arbitrary<BOp> = fc.oneof({ weight: 6, arbitrary: rec.map((r) => ({ op: "put" as const, rec: r })) }, { weight: 1, arbitrary: fc.nat().map((at) => ({ op: "delete" as const, at })) });
/** A batch of `n` operations, n chosen first (a length of hundreds, not fast-check's small default). */
const batch = fc.integer({ min: 150, max: 700 }).chain((n) => fc.array(bop, { minLength: n, maxLength: n }));
/** Index sets: single fields (a Timestamp, a string, an int32, a list) and a compound one; their first fields are queried. */
const INDEXES: string[][] = [["at"], ["name"], ["n"], ["tags"], ["kind", "at"], ["u"]];
const indexSet = fc.uniqueArray(fc.constantFrom(...INDEXES), { minLength: 1, maxLength: 4, selector: (x) => x.join(",") });

interface Repo {
  put(v: object): Promise<unknown>;
  query(where: object, o?: object): Promise<unknown[]>;
  count(where?: object): Promise<number>;
}
interface Tx {
  samples: { put(v: object): void; delete(k: string | number): void };
}

describe("index upkeep of large batches agrees with a model", () => {
  it("batches of hundreds of puts, overwrites, updates of indexed fields and deletes into built indexes, then queries", async () => {
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(indexSet, fc.constantFrom("id" as const, "seq" as const), fc.array(batch, { minLength: 2, maxLength: 4 }), async (indexes, keyed, batches) => {
        const def = sampleEntity(indexes, keyed);
        const fields = [...new Set(indexes.map((ix) => ix[0]!))] as SampleField[];
        const queries = fc.sample(fc.tuple(fc.constantFrom(...fields), fc.boolean()).chain(([f, rev]) => conditionArb(f).map((c) => ({ f, c, rev }))), { numRuns: 6, seed: run });
        const model = new Map<string | number, SampleRec>();
        const store = await openStore({ samples: def }, { dir: path.join(tmp, `s${run++}`), key });
        const repo = store.samples as unknown as Repo;
        const check = async (): Promise<void> => {
          for (const { f, c, rev } of queries) {
            const where = { [f]: c };
            // A list field (tags) cannot order: its queries run in key order.
            const order = f === "tags" ? {} : { orderBy: f };
            const ctx = JSON.stringify({ f, c, rev }, (_, v) => (typeof v === "bigint" ? `${v}n` : v));
            const got = (await repo.query(where, { ...order, reverse: rev })).map((r) => (r as Record<string, unknown>)[keyed]);
            expect(got, ctx).toEqual(modelQuery(model.values(), keyed, where, f === "tags" ? undefined : f, rev));
            expect(await repo.count(where), ctx).toBe(got.length);
            checked++;
          }
          expect(await repo.count()).toBe(model.size);
        };
        try {
          // The first check builds the ordered indexes (on an empty entity): every batch after goes through their upkeep.
          await check();
          for (const b of batches) {
            await store.batch((tx) => {
              const t = (tx as unknown as Tx).samples;
              for (const o of b) {
                if (o.op === "put") {
                  t.put({ ...o.rec });
                  model.set(o.rec[keyed], o.rec);
                } else if (model.size > 0) {
                  const k = [...model.keys()][o.at % model.size]!;
                  t.delete(k);
                  model.delete(k);
                }
              }
            });
            await check();
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: 6 },
    );
    expect(checked).toBeGreaterThan(0);
  }, 120_000);
});
