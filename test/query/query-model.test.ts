/**
 * Property test (fast-check) of queries on a real store: random index sets (single-field and compound, over
 * fields of every kind), random records, writes and deletes, and random queries (conditions, `orderBy`,
 * `reverse`, `limit`/`offset`, `queryPage` cursors, `count`) give exactly what a plain filter + sort over a
 * Map model gives (helpers/model.ts), before and after a compaction and a reopen.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { isCellarError, openStore, type QueryExplain, type QueryPage } from "../../src/runtime/index.js";
import { type SampleField, SAMPLE_FIELDS, sampleEntity } from "./helpers/sample.js";
import { conditionArb, IDS, modelQuery, recordArb, type SampleRec } from "./helpers/model.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-query-model-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(3);
let run = 0;

const SCALARS = SAMPLE_FIELDS.filter((f) => f !== "tags");
const indexArb: fc.Arbitrary<string[]> = fc.oneof(
  fc.constantFrom(...SAMPLE_FIELDS).map((f) => [f]),
  fc.uniqueArray(fc.constantFrom(...SCALARS), { minLength: 2, maxLength: 3 }),
);
const indexSetArb = fc.uniqueArray(indexArb, { minLength: 1, maxLength: 4, selector: (x) => x.join(",") });

interface Q {
  where: Record<string, unknown>;
  orderBy: SampleField | undefined;
  reverse: boolean;
  limit: number | undefined;
  offset: number;
  page: number;
}
function queryArb(fields: readonly SampleField[]): fc.Arbitrary<Q> {
  const scalars = fields.filter((f) => f !== "tags");
  return fc.record({
    where: fc.uniqueArray(fc.constantFrom(...fields), { maxLength: 3 }).chain((fs) => fc.tuple(...fs.map((f) => conditionArb(f).map((c) => [f, c] as const))).map((e) => Object.fromEntries(e))),
    orderBy: scalars.length ? fc.option(fc.constantFrom(...scalars), { nil: undefined }) : fc.constant(undefined),
    reverse: fc.boolean(),
    limit: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
    offset: fc.integer({ min: 0, max: 2 }),
    page: fc.integer({ min: 1, max: 4 }),
  });
}

type Op = { op: "put"; rec: SampleRec } | { op: "delete"; at: number };
const opsArb = fc.array(fc.oneof({ weight: 4, arbitrary: recordArb().map((rec) => ({ op: "put" as const, rec })) }, { weight: 1, arbitrary: fc.nat(40).map((at) => ({ op: "delete" as const, at })) }), { minLength: 1, maxLength: 30 });

/** A repository of samples, typed loosely (the random wheres are built at run time). */
interface Repo {
  put(v: object): Promise<unknown>;
  delete(k: string | number): Promise<boolean>;
  query(where: object, o?: object): Promise<unknown[]>;
  queryPage(where: object, o: object): Promise<QueryPage<unknown>>;
  count(where?: object, o?: object): Promise<number>;
  explain(where: object, o?: object): QueryExplain;
}
const toInput = (r: SampleRec) => ({ ...r });
const keyOf = (r: unknown, keyed: "id" | "seq") => (r as Record<string, unknown>)[keyed] as string | number;

/** What kinds of plans the random queries made (so the test is seen to cover each). */
const stats = { nonEmpty: 0, scan: 0, index: 0, sorted: 0, multiRange: 0, merged: 0, residual: 0 };

/** Check every query against the model; returns how many ran (not refused as no index serving them). */
async function check(repo: Repo, model: Map<string | number, SampleRec>, keyed: "id" | "seq", queries: readonly Q[]): Promise<number> {
  let ran = 0;
  for (const q of queries) {
    let scan = false;
    try {
      repo.explain(q.where, { orderBy: q.orderBy });
    } catch (e) {
      if (!isCellarError(e, "E_USAGE")) throw e;
      scan = true; // no index serves it: run it as a scan
    }
    const base = { ...(q.orderBy && { orderBy: q.orderBy }), reverse: q.reverse, ...(scan && { scan }) };
    // Every record is in every index (an unset Timestamp/Duration is the absent marker): any indexed field can be read.
    const all = await repo.query(q.where, base);
    ran++;
    const expected = modelQuery(model.values(), keyed, q.where, q.orderBy, q.reverse);
    if (expected.length > 0) stats.nonEmpty++;
    if (scan) stats.scan++;
    else {
      const ex = repo.explain(q.where, { orderBy: q.orderBy });
      stats[ex.order]++;
      if (ex.ranges > 1) stats.multiRange++;
      if (ex.ranges > 1 && ex.order === "index") stats.merged++;
      if (ex.residual.length > 0) stats.residual++;
    }
    const ctx = JSON.stringify(q, (_, v) => (typeof v === "bigint" ? `${v}n` : v));
    expect(all.map((r) => keyOf(r, keyed)), ctx).toEqual(expected);
    for (const r of all) expect(Object.isFrozen(r)).toBe(true);
    const limited = await repo.query(q.where, { ...base, offset: q.offset, ...(q.limit !== undefined && { limit: q.limit }) });
    expect(limited.map((r) => keyOf(r, keyed)), ctx).toEqual(expected.slice(q.offset, q.limit === undefined ? undefined : q.offset + q.limit));
    // Pages: their concatenation is the result, the last one has no cursor.
    const paged: unknown[] = [];
    let after: string | undefined;
    for (let i = 0; ; i++) {
      const p = await repo.queryPage(q.where, { ...base, limit: q.page, ...(after !== undefined && { after }) });
      paged.push(...p.records);
      expect(p.records.length).toBeLessThanOrEqual(q.page);
      if (p.cursor === undefined) break;
      expect(p.records.length).toBe(q.page);
      after = p.cursor;
      expect(i).toBeLessThan(100);
    }
    expect(paged.map((r) => keyOf(r, keyed)), ctx).toEqual(expected);
    if (q.orderBy === undefined) expect(await repo.count(q.where, { scan }), ctx).toBe(expected.length);
  }
  return ran;
}

/** Random writes and deletes (two rounds), `queries` checked after the first, a compaction, a reopen. */
async function modelRun(indexes: string[][], keyed: "id" | "seq", ops1: Op[], ops2: Op[], queries: readonly Q[]): Promise<{ ran: number; total: number }> {
  const def = sampleEntity(indexes, keyed);
  const dir = path.join(tmp, `s${run++}`);
  const model = new Map<string | number, SampleRec>();
  const apply = async (repo: Repo, ops: Op[]) => {
    for (const o of ops) {
      if (o.op === "put") {
        await repo.put(toInput(o.rec));
        model.set(o.rec[keyed], o.rec);
      } else {
        const k = [...model.keys()][o.at % Math.max(1, model.size)];
        if (k !== undefined) {
          await repo.delete(k);
          model.delete(k);
        }
      }
    }
  };
  let ran = 0;
  let store = await openStore({ samples: def }, { dir, key });
  await apply(store.samples as unknown as Repo, ops1);
  ran += await check(store.samples as unknown as Repo, model, keyed, queries);
  await store.compact();
  ran += await check(store.samples as unknown as Repo, model, keyed, queries);
  await apply(store.samples as unknown as Repo, ops2);
  await store.close();
  store = await openStore({ samples: def }, { dir, key });
  ran += await check(store.samples as unknown as Repo, model, keyed, queries);
  await store.close();
  return { ran, total: queries.length * 3 };
}

describe("queries agree with a filter + sort over a model", () => {
  it("random indexes, records, writes, deletes, queries; across a compaction and a reopen", async () => {
    let ran = 0;
    let total = 0;
    await fc.assert(
      fc.asyncProperty(indexSetArb, fc.constantFrom("id" as const, "seq" as const), opsArb, opsArb, async (indexes, keyed, ops1, ops2) => {
        const fields = [...new Set(indexes.flat())] as SampleField[];
        const r = await modelRun(indexes, keyed, ops1, ops2, fc.sample(queryArb(fields), { numRuns: 12, seed: run }));
        ran += r.ran;
        total += r.total;
      }),
      { numRuns: 25 },
    );
    // Every random query runs (as a scan when no index serves it).
    expect(ran).toBe(total);
    expect(stats.nonEmpty).toBeGreaterThan(ran * 0.25);
    for (const k of ["scan", "index", "sorted", "multiRange", "residual"] as const) expect(stats[k], k).toBeGreaterThan(ran * 0.02);
  }, 120_000);

  it("batches into built indexes: puts, overwrites of one key (indexed values changed or not), deletes and re-puts in one batch", async () => {
    // The first check builds the ordered indexes; the batches after it keep them up to date (adds left pending
    // and placed in sorted runs, removes, overwrites whose terms did not change), checked before any compaction.
    type BOp = { op: "put"; rec: SampleRec } | { op: "delete"; at: number } | { op: "touch"; at: number; other: number };
    const bop: fc.Arbitrary<BOp> = fc.oneof(
      { weight: 4, arbitrary: recordArb().map((rec) => ({ op: "put" as const, rec })) },
      { weight: 2, arbitrary: fc.nat(40).map((at) => ({ op: "delete" as const, at })) },
      { weight: 3, arbitrary: fc.record({ op: fc.constant("touch" as const), at: fc.nat(40), other: fc.integer({ min: -20, max: 20 }) }) },
    );
    const batches = fc.array(fc.array(bop, { minLength: 1, maxLength: 25 }), { minLength: 1, maxLength: 6 });
    let touched = 0;
    await fc.assert(
      fc.asyncProperty(indexSetArb, fc.constantFrom("id" as const, "seq" as const), opsArb, batches, async (indexes, keyed, ops1, bs) => {
        const def = sampleEntity(indexes, keyed);
        const dir = path.join(tmp, `s${run++}`);
        const model = new Map<string | number, SampleRec>();
        const fields = [...new Set(indexes.flat())] as SampleField[];
        const queries = fc.sample(queryArb(fields), { numRuns: 8, seed: run });
        const store = await openStore({ samples: def }, { dir, key });
        const repo = store.samples as unknown as Repo;
        try {
          for (const o of ops1) {
            if (o.op === "put") {
              await repo.put(toInput(o.rec));
              model.set(o.rec[keyed], o.rec);
            }
          }
          await check(repo, model, keyed, queries);
          for (const b of bs) {
            await store.batch((tx) => {
              const t = (tx as unknown as { samples: { put(v: object): void; delete(k: string | number): void } }).samples;
              for (const o of b) {
                if (o.op === "put") {
                  t.put(toInput(o.rec));
                  model.set(o.rec[keyed], o.rec);
                  continue;
                }
                const k = [...model.keys()][o.at % Math.max(1, model.size)];
                if (k === undefined) continue;
                if (o.op === "delete") {
                  t.delete(k);
                  model.delete(k);
                } else {
                  // An overwrite that changes only the field that is neither the key nor indexable: the same terms.
                  const prev = model.get(k)!;
                  const rec = keyed === "id" ? { ...prev, seq: o.other } : { ...prev, id: IDS[Math.abs(o.other) % IDS.length]! };
                  t.put(toInput(rec));
                  model.set(k, rec);
                  touched++;
                }
              }
            });
            await check(repo, model, keyed, queries);
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: 20 },
    );
    expect(touched).toBeGreaterThan(20);
  }, 120_000);

  it("several ranges of one index merged in order: `in` on leading components, then the order's", async () => {
    const merging = [["kind", "n"], ["kind", "u", "score"], ["tags"], ["flag"], ["name", "at"]];
    const sub = <T>(xs: readonly T[]) => fc.subarray([...xs], { minLength: 2 });
    const templates: fc.Arbitrary<Pick<Q, "where" | "orderBy">>[] = [
      fc.record({ where: sub([0, 1, 2, 3]).map((k) => ({ kind: { in: k } })), orderBy: fc.constantFrom(undefined, "n" as const) }),
      fc.record({ where: fc.tuple(sub([0, 1, 2, 3]), sub([0, 1, 2, 4294967295])).map(([k, u]) => ({ kind: { in: k }, u: { in: u } })), orderBy: fc.constantFrom(undefined, "score" as const) }),
      fc.record({ where: sub(["x", "y", "z", "xy"]).map((t) => ({ tags: { in: t } })), orderBy: fc.constant(undefined) }),
      fc.record({ where: fc.constant({ flag: { in: [true, false] } }), orderBy: fc.constant(undefined) }),
      fc.record({ where: sub(["", "a", "ab", "b", "z"]).map((n) => ({ name: { in: n }, at: { gte: new Date(-1000) } })), orderBy: fc.constant("at" as const) }),
    ];
    const q: fc.Arbitrary<Q> = fc.record({
      base: fc.oneof(...templates),
      residual: fc.option(fc.constantFrom({ n: { gte: 0 } }, { score: { lt: 1 } }), { nil: undefined }),
      reverse: fc.boolean(),
      limit: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
      offset: fc.integer({ min: 0, max: 2 }),
      page: fc.integer({ min: 1, max: 4 }),
    }).map(({ base, residual, ...rest }) => ({ ...rest, where: { ...base.where, ...(residual && base.orderBy === undefined && !("n" in base.where) ? residual : {}) }, orderBy: base.orderBy }));
    const before = stats.merged;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("id" as const, "seq" as const), opsArb, opsArb, async (keyed, ops1, ops2) => {
        await modelRun(merging, keyed, ops1, ops2, fc.sample(q, { numRuns: 10, seed: run }));
      }),
      { numRuns: 15 },
    );
    expect(stats.merged - before).toBeGreaterThan(200);
  }, 120_000);
});
