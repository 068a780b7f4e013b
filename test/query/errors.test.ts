/**
 * What a query refuses, and how: E_USAGE naming the entity, field or option at fault and never a value,
 * for a bad where (field not indexed, unknown operator, wrong value type), bad options, a query no index
 * serves (naming the indexes that could serve it, unless `scan: true`), and a cursor that is not one; and
 * E_UNAVAILABLE for a query that reads an index the store has not built yet.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isCellarError, openStore } from "../../src/runtime/index.js";
import { encodeIndexState, INDEXES_ENTITY } from "../../src/runtime/typed/index-build.js";
import { sampleEntity, spec } from "./helpers/sample.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-query-errors-"));
const key = new Uint8Array(32).fill(6);
const def = sampleEntity([["name"], ["kind", "at"], ["tags"], ["n", "score"]]);
let store: Awaited<ReturnType<typeof open>>;
const open = () => openStore({ samples: def }, { dir: path.join(tmp, "s"), key });
// Plain JavaScript's view: no types.
type Loose = { [m in "query" | "queryPage" | "count" | "explain" | "put"]: (...a: unknown[]) => any };
let repo: Loose;

beforeAll(async () => {
  store = await open();
  repo = store.samples as unknown as Loose;
  for (let i = 0; i < 10; i++) {
    await repo.put({ id: `r${i}`, name: `secret-${i}`, n: i, kind: i % 3, score: i / 2, tags: [`t${i % 2}`], at: { seconds: BigInt(i) } });
  }
});
afterAll(async () => {
  await store.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function usage(call: () => unknown): Promise<string> {
  let e: unknown;
  try {
    await call();
  } catch (x) {
    e = x;
  }
  expect(isCellarError(e, "E_USAGE"), String(call)).toBe(true);
  return (e as Error).message;
}

describe("a bad where", () => {
  it("is E_USAGE naming entity and field, never the value", async () => {
    expect(await usage(() => repo.query({ id: "r1" }))).toMatch(/`id`.*`samples`|`samples`.*`id`/);
    expect(await usage(() => repo.query({ flag: true }))).toContain("not an indexed field");
    for (const where of [{ name: 7 }, { name: { gte: 7 } }, { n: "secret-1" }, { n: 1.5 }, { kind: { in: ["secret-1"] } }, { name: null }, { tags: ["t1"] }, { n: { prefix: "1" } }, { name: { prefix: 1 } }, { n: { in: 1 } }, { at: "secret-1" }, { at: { gte: "secret-1" } }]) {
      const m = await usage(() => repo.query(where));
      expect(m, JSON.stringify(where)).toContain("`samples`");
      expect(m).not.toContain("secret");
      expect(m).toContain(`\`${Object.keys(where)[0]}\``);
    }
  });
  it("an unknown operator is E_USAGE listing the operators", async () => {
    const m = await usage(() => repo.query({ n: { gte: 1, between: [1, 2] } }));
    expect(m).toContain("`between`");
    expect(m).toContain("gte");
    expect(await usage(() => repo.query({ at: { seconds: 1n, lt: 2 } }))).toContain("`seconds`");
  });
  it("a where that is not an object, and bad options, are E_USAGE", async () => {
    for (const where of [null, "name", 5, ["name"]]) await usage(() => repo.query(where));
    for (const o of [{ limit: -1 }, { offset: -1 }, { offset: Infinity }, { limit: "5" }, { after: 5 }, { orderBy: "flag" }, { orderBy: "tags" }, { orderBy: 3 }]) {
      await usage(() => repo.query({ name: "x" }, o));
    }
    await usage(() => repo.queryPage({ name: "x" }, {}));
    expect(await usage(() => repo.query({ name: "x" }, { orderby: "name" }))).toContain("`orderby`");
    expect(await usage(() => repo.count({ name: "x" }, { limit: 1 }))).toContain("`limit`");
  });
});

describe("a query no index serves", () => {
  it("is refused naming the indexes that would serve it, unless scan: true", async () => {
    // `score` is only the second component of `n,score`: a condition on `n` serves it, alone it is refused.
    expect(repo.explain({ n: 3, score: { gte: 1 } })).toMatchObject({ index: "n,score", uses: ["n", "score"], residual: [], order: "sorted" });
    expect((await repo.query({ n: 3, score: { gte: 1 } })).map((r: { id: string }) => r.id)).toEqual(["r3"]);
    const refused = await usage(() => repo.query({ score: { gte: 1 } }));
    expect(refused).toContain("no index of `samples` serves");
    expect(refused).toContain("`n,score`");
    expect(refused).toContain("scan: true");
    const scanned = await repo.query({ score: { gte: 1 } }, { scan: true });
    expect(scanned.map((r: { id: string }) => r.id)).toEqual(["r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"]);
    expect(repo.explain({ score: { gte: 1 } }, { scan: true })).toMatchObject({ index: undefined, scan: true, residual: ["score"] });
    expect(await repo.count({ score: { gte: 1 } }, { scan: true })).toBe(8);
    await usage(() => repo.count({ score: { gte: 1 } }));
    // orderBy a field no index starts with: the same.
    expect(await usage(() => repo.query({}, { orderBy: "score" }))).toContain("scan: true");
  });
  it("a compound index serves a query on its leading component alone: every record is in it, with or without `at`", async () => {
    expect((await repo.query({ kind: 1, at: { gte: new Date(0) } })).map((r: { id: string }) => r.id)).toEqual(["r1", "r4", "r7"]);
    expect((await repo.query({ kind: 1 })).map((r: { id: string }) => r.id)).toEqual(["r1", "r4", "r7"]);
    expect(repo.explain({ kind: 1 })).toMatchObject({ index: "kind,at", scan: false, uses: ["kind"] });
  });
});

describe("cursors", () => {
  it("a malformed cursor, or one of another query, is E_USAGE", async () => {
    const page = await repo.queryPage({ n: { gte: 0 } }, { limit: 3 });
    expect(page.cursor).toBeTypeOf("string");
    for (const after of ["", "x", "!!!", Buffer.from("{}").toString("base64url"), Buffer.from('{"v":2,"m":"i3","s":"","k":"r"}').toString("base64url")]) {
      expect(await usage(() => repo.queryPage({ n: { gte: 0 } }, { limit: 3, after }))).toContain("`after`");
    }
    expect(await usage(() => repo.queryPage({ n: { gte: 0 } }, { limit: 3, after: page.cursor, orderBy: "name" }))).toContain("another query");
    const next = await repo.queryPage({ n: { gte: 0 } }, { limit: 3, after: page.cursor });
    expect(next.records.map((r: { id: string }) => r.id)).toEqual(["r3", "r4", "r5"]);
  });
});

describe("an index the store has not built yet", () => {
  it("is E_UNAVAILABLE for a query, a page, a count or a watch that reads it; other indexes serve", async () => {
    const s = await openStore({ samples: def }, { dir: path.join(tmp, "unbuilt"), key });
    const r = s.samples as unknown as Loose & { watch: (w: object) => { close(): void } };
    await r.put({ id: "a", name: "x", n: 1, score: 2, kind: 1, at: { seconds: 5n } });
    // What a follower sees while the writer builds `n,score` (the `~indexes` record, storage's index-build.ts).
    const engine = (s as unknown as { engine: { write(ops: unknown[]): Promise<void> } }).engine;
    const built = [spec(["name"]).id, spec(["kind", "at"]).id, spec(["tags"]).id];
    await engine.write([{ op: "put", entity: INDEXES_ENTITY, key: "samples", version: 1, value: encodeIndexState({ built, building: { ids: ["3,6"] } }), terms: [] }]);
    for (const call of [() => r.query({ n: 1 }), () => r.queryPage({ n: { gte: 0 } }, { limit: 1 }), () => r.count({ n: 1 }), () => r.watch({ n: 1 }), () => r.query({ name: "x", score: 2 }, { scan: true })]) {
      let e: unknown;
      try {
        await call();
      } catch (x) {
        e = x;
      }
      expect(isCellarError(e, "E_UNAVAILABLE"), String(call)).toBe(true);
      expect((e as Error).message).toContain("`n,score`");
    }
    expect((await r.query({ name: "x" })).map((x: { id: string }) => x.id)).toEqual(["a"]);
    expect(await r.count({ kind: 1, at: { gte: new Date(0) } })).toBe(1);
    expect(r.explain({ n: 1 })).toMatchObject({ index: "n,score" }); // explain says how it will run
    await s.close();
  });
});
