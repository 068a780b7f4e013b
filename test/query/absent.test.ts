/**
 * Absent index components (docs/QUERIES.md "Absent values"): a record whose indexed Timestamp/Duration is
 * unset is in every index, its component the absent marker (index-keys.ts `ABSENT`), so `orderBy` such a
 * field returns every record (absent first, last with `reverse`, like SQL's NULLS FIRST), a condition on it
 * never matches an absent value, and a compound index serves queries and buckets on its leading component
 * alone (the example `focus_sessions` index `started_at,duration`). Aggregates put a record without the
 * bucket field in no bucket and skip an absent metric. A store whose terms were written before (no term for
 * an absent component, `~indexes` at `v: 1`) is rebuilt at open.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/runtime/index.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import { FocusSessionEntity } from "../../src/generated/examples/focus/v1/focus_cellar.js";
import { decodeComponents, indexKeyers, indexTerms, splitTerm } from "../../src/runtime/typed/index-keys.js";
import { decodeIndexState, INDEXES_ENTITY, readIndexState } from "../../src/runtime/typed/index-build.js";
import type { StoreImpl } from "../../src/runtime/typed/store.js";
import { planIndexAggregate } from "../../src/runtime/typed/aggregate-index.js";
import { sampleEntity } from "./helpers/sample.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-absent-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(9);
const opts = (dir: string) => ({ dir, key, sharing: false as const, compaction: { auto: false } });

type Loose = { [m in "query" | "queryPage" | "count" | "explain" | "put" | "aggregate"]: (...a: unknown[]) => any };
const ids = (rs: unknown[]) => rs.map((r) => (r as { id: string }).id);

const def = sampleEntity([["at"], ["kind", "dur"]]);
/** r0…r9: `at` = i seconds except r2, r5, r8; `dur` = i seconds except r3, r6, r9; kind i % 2. */
const samples = Array.from({ length: 10 }, (_, i) => ({
  id: `r${i}`,
  kind: i % 2,
  ...(i % 3 !== 2 && { at: { seconds: BigInt(i), nanos: 0 } }),
  ...(i % 3 !== 0 || i === 0 ? { dur: { seconds: BigInt(i), nanos: 0 } } : {}),
}));
const noAt = ["r2", "r5", "r8"];

async function seed(dir: string) {
  const store = await openStore({ samples: def }, opts(dir));
  const repo = store.samples as unknown as Loose;
  for (const s of samples) await repo.put(s);
  return { store, repo };
}

describe("records with an unset indexed Timestamp/Duration", () => {
  it("orderBy such a field returns every record, the absent ones first (last with reverse)", async () => {
    const { store, repo } = await seed(path.join(tmp, "order"));
    try {
      const present = ["r0", "r1", "r3", "r4", "r6", "r7", "r9"];
      expect(ids(await repo.query({}, { orderBy: "at" }))).toEqual([...noAt, ...present]);
      expect(ids(await repo.query({}, { orderBy: "at", reverse: true }))).toEqual([...noAt, ...present].reverse());
      expect(repo.explain({}, { orderBy: "at" })).toMatchObject({ index: "at", order: "index" });
      // Pages walk across the absent ones and on.
      const paged: unknown[] = [];
      let after: string | undefined;
      do {
        const p = await repo.queryPage({}, { orderBy: "at", limit: 2, ...(after && { after }) });
        paged.push(...p.records);
        after = p.cursor;
      } while (after);
      expect(ids(paged)).toEqual([...noAt, ...present]);
      // Ordered by a field read from another index (sorted): the same rule.
      expect(ids(await repo.query({ kind: 1 }, { orderBy: "dur" }))).toEqual(["r3", "r9", "r1", "r5", "r7"]);
      expect(ids(await repo.query({ kind: 1 }, { orderBy: "at" }))).toEqual(["r5", "r1", "r3", "r7", "r9"]);
    } finally {
      await store.close();
    }
  });

  it("a condition on the field never matches an absent value (an upper bound alone included); count agrees", async () => {
    const { store, repo } = await seed(path.join(tmp, "conditions"));
    try {
      expect(ids(await repo.query({ at: { lt: new Date(5000) } }))).toEqual(["r0", "r1", "r3", "r4"]);
      expect(ids(await repo.query({ at: { lte: { seconds: 4n } } }, { reverse: true }))).toEqual(["r4", "r3", "r1", "r0"]);
      expect(await repo.count({ at: { lt: new Date(5000) } })).toBe(4);
      expect(await repo.count({ at: {} })).toBe(7);
      expect(ids(await repo.query({ at: { in: [{ seconds: 2n }, { seconds: 3n }] } }))).toEqual(["r3"]);
      expect(ids(await repo.query({ dur: { lte: 9 } }, { scan: true }))).toEqual(["r0", "r1", "r2", "r4", "r5", "r7", "r8"]);
      expect(ids(await repo.query({ kind: 1, dur: { lt: 6 } }))).toEqual(["r1", "r5"]);
      expect(await repo.count({ kind: 1, dur: { lt: 6 } })).toBe(2);
    } finally {
      await store.close();
    }
  });

  it("a compound index serves its leading component alone, with every record", async () => {
    const { store, repo } = await seed(path.join(tmp, "leading"));
    try {
      expect(ids(await repo.query({ kind: 1 }))).toEqual(["r1", "r3", "r5", "r7", "r9"]);
      expect(repo.explain({ kind: 1 })).toMatchObject({ index: "kind,dur", scan: false, exactCount: true });
      expect(await repo.count({ kind: 0 })).toBe(5);
    } finally {
      await store.close();
    }
  });
});

describe("the example focus_sessions index `started_at,duration`", () => {
  it("serves a startedAt range and daily buckets, sessions without a duration included (counted, not summed)", async () => {
    const store = await openStore({ focus_sessions: FocusSessionEntity }, opts(path.join(tmp, "focus")));
    const repo = store.focus_sessions as unknown as Loose;
    try {
      const day = Date.UTC(2026, 2, 10);
      for (let i = 0; i < 12; i++) {
        const ms = day + i * 6 * 3_600_000; // 4 a day over 3 days
        await repo.put({ id: `s${i}`, startedAt: { seconds: BigInt(ms / 1000), nanos: 0 }, ...(i % 4 !== 3 && { duration: { seconds: BigInt(60 * (i + 1)), nanos: 0 } }) });
      }
      const range = { startedAt: { gte: new Date(day + 86_400_000), lt: new Date(day + 2 * 86_400_000) } };
      expect(repo.explain(range)).toMatchObject({ index: "started_at,duration", scan: false, uses: ["startedAt"] });
      expect(ids(await repo.query(range))).toEqual(["s4", "s5", "s6", "s7"]);
      expect(await repo.count(range)).toBe(4);
      expect(ids(await repo.query({}, { orderBy: "startedAt", reverse: true, limit: 2 }))).toEqual(["s11", "s10"]);
      // Counted and summed from that index alone (aggregate-index.ts), no record read.
      expect(planIndexAggregate(FocusSessionEntity, "startedAt", ["duration"])).toMatchObject({ countKeyer: { spec: { name: "started_at,duration" } } });
      const buckets = await repo.aggregate({ bucket: { field: "startedAt", by: "day" }, count: true, sum: ["duration"], avg: ["duration"], max: ["duration"] });
      expect(buckets.map((b: { label: string; count: number; sum: { duration: number }; avg: { duration: number }; max: { duration: number } }) => [b.label, b.count, b.sum.duration, b.avg.duration, b.max.duration])).toEqual([
        ["2026-03-10", 4, 60 + 120 + 180, 120, 180],
        ["2026-03-11", 4, 300 + 360 + 420, 360, 420],
        ["2026-03-12", 4, 540 + 600 + 660, 600, 660],
      ]);
    } finally {
      await store.close();
    }
  });
});

describe("a store written before absent components had a term", () => {
  it("is rebuilt at open: `~indexes` at v 1 reads as no state, every record gets its marker term", async () => {
    const dir = path.join(tmp, "old");
    const { store } = await seed(dir);
    const declared = indexKeyers(def).map((k) => k.spec.id);
    await store.close();
    // As the code before wrote them: no term for an index with an absent component, `~indexes` at v 1.
    const e = await Engine.open(opts(dir));
    const keyers = indexKeyers(def);
    const oldTerms = (terms: readonly string[]) =>
      terms.filter((t) => {
        const s = splitTerm(t)!;
        return !decodeComponents(keyers.find((k) => k.spec.id === s.id)!, s.sk).includes(undefined);
      });
    const ops = [...e.scan("samples")].map(([k, loc]) => ({ op: "put" as const, entity: "samples", key: k, version: loc.version, value: e.read("samples", loc).slice(), terms: oldTerms(e.termsOf("samples", k)!) }));
    const json = Buffer.from(JSON.stringify({ v: 1, built: declared }));
    const v1 = Uint8Array.of(0, 0x0a, json.length, ...json);
    expect(decodeIndexState(v1)).toBeUndefined();
    await e.write([...ops, { op: "put", entity: INDEXES_ENTITY, key: "samples", version: 1, value: v1, terms: [] }]);
    expect(e.termsOf("samples", "r2")!.length).toBe(1); // `kind,dur` only
    await e.close();

    const reopened = await openStore({ samples: def }, opts(dir));
    try {
      const engine = (reopened as unknown as StoreImpl).engine;
      expect(readIndexState(engine, "samples")).toEqual({ built: declared });
      for (const s of samples) expect([...engine.termsOf("samples", s.id)!].sort()).toEqual(indexTerms(def, s, {}).sort());
      expect(ids(await (reopened.samples as unknown as Loose).query({}, { orderBy: "at" })).slice(0, 3)).toEqual(noAt);
    } finally {
      await reopened.close();
    }
  });
});
