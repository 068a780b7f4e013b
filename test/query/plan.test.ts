/**
 * The plan without a store: `matchesTerms` (what a change event is checked with: may a put alter a
 * query's result?) agrees with the model's filter for random indexes, records and wheres, computed from the
 * record's index terms alone; and the planner's choice of index (docs/QUERIES.md, "The planner's choice").
 */
import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isCellarError } from "../../src/runtime/index.js";
import { indexTerms } from "../../src/runtime/typed/index-keys.js";
import { planQuery } from "../../src/runtime/typed/query-plan.js";
import { SAMPLE_FIELDS, SampleSchema, sampleEntity, type SampleField } from "./helpers/sample.js";
import { conditionArb, modelMatches, recordArb } from "./helpers/model.js";

const SCALARS = SAMPLE_FIELDS.filter((f) => f !== "tags");
const indexSetArb = fc.uniqueArray(
  fc.oneof(fc.constantFrom(...SAMPLE_FIELDS).map((f) => [f]), fc.uniqueArray(fc.constantFrom(...SCALARS), { minLength: 2, maxLength: 3 })),
  { minLength: 1, maxLength: 4, selector: (x) => x.join(",") },
);
const zero = create(SampleSchema) as unknown as Record<string, unknown>;

describe("matchesTerms", () => {
  it("says whether a record matches a where from its index terms, as the model's filter does", () => {
    let checked = 0;
    let matched = 0;
    fc.assert(
      fc.property(
        indexSetArb.chain((indexes) => {
          const fields = [...new Set(indexes.flat())] as SampleField[];
          const where = fc
            .uniqueArray(fc.constantFrom(...fields), { maxLength: 3 })
            .chain((fs) => fc.tuple(...fs.map((f) => conditionArb(f).map((c) => [f, c] as const))).map((e) => Object.fromEntries(e)));
          return fc.tuple(fc.constant(indexes), where, fc.array(recordArb(), { minLength: 1, maxLength: 8 }));
        }),
        ([indexes, where, records]) => {
          const def = sampleEntity(indexes);
          let plan;
          try {
            plan = planQuery(def, where, { scan: true });
          } catch (e) {
            if (isCellarError(e, "E_USAGE")) return; // a field only a compound index leaving records out holds
            throw e;
          }
          for (const r of records) {
            const terms = indexTerms(def, create(SampleSchema, r as never) as unknown as Record<string, unknown>, zero);
            const want = modelMatches(r, where);
            expect(plan.matchesTerms(terms), JSON.stringify(where, (_, v) => (typeof v === "bigint" ? `${v}n` : v))).toBe(want);
            checked++;
            if (want) matched++;
          }
        },
      ),
      { numRuns: 400 },
    );
    expect(checked).toBeGreaterThan(1000);
    expect(matched).toBeGreaterThan(checked * 0.1);
  });
});

describe("the planner's choice", () => {
  const def = sampleEntity([["name"], ["n"], ["n", "score"], ["kind", "n", "score"], ["at"], ["tags"]]);
  const explain = (where: object, o: { orderBy?: string; scan?: boolean } = {}) => planQuery(def, where, o).explain();
  it("takes the index serving the most leading components: equalities, then one range", () => {
    expect(explain({ n: 3 })).toMatchObject({ index: "n", order: "index", exactCount: true });
    expect(explain({ n: 3, score: { gt: 1 } })).toMatchObject({ index: "n,score", uses: ["n", "score"], residual: [], exactCount: true });
    expect(explain({ kind: 1, n: { in: [1, 2] }, score: 0.5 })).toMatchObject({ index: "kind,n,score", ranges: 2, residual: [] });
    expect(explain({ kind: 1, n: { gte: 1 }, score: 0.5 })).toMatchObject({ index: "kind,n,score", uses: ["kind", "n"], residual: ["score"], exactCount: false });
    // `in` values multiply ranges up to 256; past that, the next component is checked per entry instead.
    const many = Array.from({ length: 100 }, (_, i) => i);
    expect(explain({ kind: { in: [0, 1] }, n: { in: many }, score: 1 })).toMatchObject({ index: "kind,n,score", ranges: 200, uses: ["kind", "n", "score"], residual: [] });
    expect(planQuery(sampleEntity([["kind", "n"]]), { kind: { in: [0, 1, 2] }, n: { in: many } }).explain()).toMatchObject({ index: "kind,n", ranges: 3, uses: ["kind"], residual: ["n"] });
    expect(explain({ name: { prefix: "a" }, n: { lt: 0 } })).toMatchObject({ index: "name", uses: ["name"], residual: ["n"] }); // a tie: the first declared
  });
  it("prefers the index whose order is the result's", () => {
    expect(explain({ n: 3 }, { orderBy: "score" })).toMatchObject({ index: "n,score", order: "index" });
    expect(explain({}, { orderBy: "at" })).toMatchObject({ index: "at", order: "index", ranges: 1 });
    expect(explain({ at: { gte: new Date(0) } }, { orderBy: "at" })).toMatchObject({ index: "at", order: "index" });
    expect(explain({ at: { gte: new Date(0) } })).toMatchObject({ index: "at", order: "sorted" }); // key order: gathered and sorted
  });
  it("an unconditioned query reads every record in key order; a condition no index starts with needs scan", () => {
    expect(explain({})).toMatchObject({ index: undefined, scan: true, exactCount: true, order: "index" });
    expect(() => explain({ score: 1 })).toThrow(/no index of `samples` serves this query/);
    expect(explain({ score: 1 }, { scan: true })).toMatchObject({ scan: true, residual: ["score"] });
    expect(explain({ kind: 1, n: { in: [] } })).toMatchObject({ index: "kind,n,score" });
    expect(planQuery(def, { n: { gt: 3, lt: 2 } }).empty).toBe(true);
    expect(planQuery(def, { n: { in: [] } }).empty).toBe(true);
  });
});
