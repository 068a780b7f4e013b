/**
 * The index build at open (typed/index-build.ts): indexes added to an entity with records are built before
 * `openStore` resolves, with progress; removed ones leave `~indexes`' `built`; a store whose records carry
 * old-format terms and no `~indexes` record gets every record's terms rewritten; a follower engine never builds
 * and a query check on an index not built is `E_UNAVAILABLE`; a real child process SIGKILLed midway through a
 * build leaves a consistent checkpoint, and the next open resumes after it (not from zero) and ends consistent.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type Loc } from "../../src/runtime/storage/engine.js";
import { compareUtf8 } from "../../src/runtime/format/segment-index.js";
import { isCellarError } from "../../src/runtime/errors.js";
import { openStore, type StoreImpl } from "../../src/runtime/typed/store.js";
import { checkIndexBuilt, decodeIndexState, encodeIndexState, type IndexProgress, INDEXES_ENTITY, indexBuilt, readIndexState } from "../../src/runtime/typed/index-build.js";
import { indexKeyers } from "../../src/runtime/typed/index-keys.js";
import { startChild } from "../engine/helpers/spawn.js";
import { after, before, checkIndexes, ENTITY, KEY, record } from "../storage-index/helpers/index-build-defs.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-index-build-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const engineOf = (store: unknown): Engine => (store as StoreImpl).engine;
const opts = (dir: string, extra: Record<string, unknown> = {}) => ({ dir, key: KEY, sharing: false, compaction: { auto: false }, ...extra });

/** A store of `n` records written under `before` (one index). */
async function seed(dir: string, n: number): Promise<ReturnType<typeof record>[]> {
  const records = Array.from({ length: n }, (_, i) => record(i));
  const store = await openStore({ focus: before }, opts(dir));
  for (let i = 0; i < n; i += 1000) {
    await store.batch((tx) => {
      for (const r of records.slice(i, i + 1000)) (tx.focus as { put(v: unknown): void }).put(r);
    });
  }
  await store.close();
  return records;
}

describe("index build at open", () => {
  it("~indexes values round-trip, and anything else reads as no state", () => {
    const s = { built: ["5", "6,2"], building: { ids: ["2"], after: "s\u0000\u00e9" } };
    expect(decodeIndexState(encodeIndexState(s))).toEqual(s);
    expect(decodeIndexState(encodeIndexState({ built: [] }))).toEqual({ built: [] });
    const long = { built: Array.from({ length: 40 }, (_, i) => String(i)) }; // a length past one varint byte
    expect(decodeIndexState(encodeIndexState(long))).toEqual(long);
    for (const bad of [new Uint8Array(), Uint8Array.of(0, 0x0a, 1, 0x7b), Uint8Array.of(1, 0x0a, 2, 0x7b, 0x7d), Buffer.from('\u0000\u000a\u0008{"v":2}')]) {
      expect(decodeIndexState(bad)).toBeUndefined();
    }
  });

  it("builds indexes added to an entity with records before openStore resolves, reporting progress; drops removed ones; builds them again when they come back", async () => {
    const dir = path.join(tmp, "added");
    const records = await seed(dir, 3000);
    const progress: IndexProgress[] = [];
    let store = await openStore({ focus: after }, opts(dir, { onIndexProgress: (p: IndexProgress) => progress.push(p) }));
    let engine = engineOf(store);
    expect(readIndexState(engine, ENTITY)).toEqual({ built: ["5", "2", "6,2"] });
    checkIndexes(engine, after, records);
    // Progress: the two new indexes (not the one built), done growing to the total.
    expect(new Set(progress.map((p) => p.index))).toEqual(new Set(["started_at", "kind,started_at"]));
    for (const name of ["started_at", "kind,started_at"]) {
      const mine = progress.filter((p) => p.index === name);
      expect(mine.length).toBeGreaterThan(0);
      for (let i = 1; i < mine.length; i++) expect(mine[i]!.done).toBeGreaterThanOrEqual(mine[i - 1]!.done);
      expect(mine.at(-1)).toEqual({ entity: ENTITY, index: name, done: 3000, total: 3000 });
    }
    for (const k of indexKeyers(after)) expect(() => checkIndexBuilt(engine, after, k)).not.toThrow();
    await store.close();

    // Removed: out of `built` at the next open, nothing rebuilt, the records keep their terms (ignored).
    progress.length = 0;
    store = await openStore({ focus: before }, opts(dir, { onIndexProgress: (p: IndexProgress) => progress.push(p) }));
    engine = engineOf(store);
    expect(readIndexState(engine, ENTITY)).toEqual({ built: ["5"] });
    expect(progress).toEqual([]);
    expect(engine.termsOf(ENTITY, records[7]!.id)!.length).toBe(3);
    await store.close();

    // Declared again: built again (the records' terms already match: only the state is written).
    const seqBefore = await Engine.open(opts(dir)).then(async (e) => {
      const s = e.lastSeq;
      await e.close();
      return s;
    });
    store = await openStore({ focus: after }, opts(dir, { onIndexProgress: (p: IndexProgress) => progress.push(p) }));
    engine = engineOf(store);
    expect(readIndexState(engine, ENTITY)).toEqual({ built: ["5", "2", "6,2"] });
    expect(progress.filter((p) => p.index === "started_at").at(-1)?.done).toBe(3000);
    const slices = progress.filter((p) => p.index === "started_at").length;
    expect(engine.lastSeq - seqBefore).toBe(slices); // one write per slice, each only the state
    checkIndexes(engine, after, records);
    await store.close();
  });

  it("a store whose records carry old-format terms and no ~indexes record (the upgrade) gets every record's terms rewritten", async () => {
    const dir = path.join(tmp, "old-format");
    const records = await seed(dir, 500);
    // As an older Cellar wrote them: `field\0value` terms, no ~indexes.
    const e = await Engine.open(opts(dir));
    const ops = [...e.scan(ENTITY)].map(([key, loc]) => ({ op: "put" as const, entity: ENTITY, key, version: loc.version, value: e.read(ENTITY, loc).slice(), terms: [`taskId\u0000${records[Number(key.slice(1))]!.taskId}`] }));
    await e.write([...ops, { op: "delete", entity: INDEXES_ENTITY, key: ENTITY }]);
    await e.close();
    const store = await openStore({ focus: after }, opts(dir));
    checkIndexes(engineOf(store), after, records);
    expect(readIndexState(engineOf(store), ENTITY)).toEqual({ built: ["5", "2", "6,2"] });
    await store.close();
  });

  it("a follower engine never builds: a query check on an index the writer has not built is E_UNAVAILABLE until it has", async () => {
    const dir = path.join(tmp, "follower");
    const records = await seed(dir, 200);
    const follower = await Engine.openFollower(opts(dir));
    const [task, time] = indexKeyers(after);
    expect(indexBuilt(follower, after, task!.spec.id)).toBe(true);
    let err: unknown;
    try {
      checkIndexBuilt(follower, after, time!);
    } catch (e) {
      err = e;
    }
    expect(isCellarError(err, "E_UNAVAILABLE")).toBe(true);
    expect((err as Error).message).toBe("index `started_at` of `focus_sessions` is being built by the writer process: a query can use it once the build at open is done");
    const store = await openStore({ focus: after }, opts(dir));
    await follower.refresh();
    expect(() => checkIndexBuilt(follower, after, time!)).not.toThrow();
    checkIndexes(follower, after, records);
    await store.close();
    await follower.close();
  });

  it("a follower promoted to writer builds what the old writer had not, then its queries may use the new indexes", async () => {
    const dir = path.join(tmp, "promoted");
    const log = path.join(tmp, "promoted.log");
    const records = await seed(dir, 2000);
    const { child, exited } = startChild("../../storage-index/helpers/index-build-writer.ts", [dir, log]);
    const until = Date.now() + 30_000;
    while (Date.now() < until && !(fs.existsSync(log) && fs.readFileSync(log, "utf8").startsWith("OPEN"))) await new Promise((r) => setTimeout(r, 5));
    expect(fs.readFileSync(log, "utf8")).toBe("OPEN writer\n");
    const progress: IndexProgress[] = [];
    const store = await openStore({ focus: after }, { dir, key: KEY, compaction: { auto: false }, onIndexProgress: (p: IndexProgress) => progress.push(p) });
    try {
      expect(store.role).toBe("follower");
      const time = indexKeyers(after)[1]!;
      expect(() => checkIndexBuilt(engineOf(store), after, time)).toThrow(/is being built by the writer process/);
      expect(progress).toEqual([]);
      const promoted = new Promise<string>((resolve) => store.on("role", resolve));
      child.kill("SIGKILL");
      await exited;
      expect(await promoted).toBe("writer"); // announced once the writer's work at promotion (the build) is done
      expect(progress.filter((p) => p.index === "started_at").at(-1)).toEqual({ entity: ENTITY, index: "started_at", done: 2000, total: 2000 });
      expect(() => checkIndexBuilt(engineOf(store), after, time)).not.toThrow();
      checkIndexes(engineOf(store), after, records);
    } finally {
      await store.close();
    }
  });

  it("a build the quota refuses stops: the store opens, the error event says E_QUOTA, queries get E_UNAVAILABLE; the next open goes on", async () => {
    const dir = path.join(tmp, "quota");
    const records = await seed(dir, 3000);
    const probe = await openStore({ focus: before }, opts(dir));
    const fileBytes = probe.stats().fileBytes;
    await probe.close();
    const store = await openStore({ focus: after }, opts(dir, { quota: { maxBytes: fileBytes + 16 * 1024 } }));
    const errors: unknown[] = [];
    store.on("error", (e) => errors.push(e));
    await new Promise((r) => setImmediate(r));
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(["E_QUOTA"]);
    expect(readIndexState(engineOf(store), ENTITY)?.built).toEqual(["5"]);
    expect(() => checkIndexBuilt(engineOf(store), after, indexKeyers(after)[1]!)).toThrow(expect.objectContaining({ code: "E_UNAVAILABLE" }));
    expect((await store.focus.get(records[5]!.id))?.taskId).toBe(records[5]!.taskId);
    await store.close();
    const again = await openStore({ focus: after }, opts(dir));
    expect(readIndexState(engineOf(again), ENTITY)).toEqual({ built: ["5", "2", "6,2"] });
    checkIndexes(engineOf(again), after, records);
    await again.close();
  });

  it("a new entity's ~indexes says every declared index is built; records the app writes carry their terms; no build at the next open", async () => {
    const dir = path.join(tmp, "fresh");
    let store = await openStore({ focus: after }, opts(dir));
    expect(readIndexState(engineOf(store), ENTITY)).toEqual({ built: ["5", "2", "6,2"] });
    expect(store.stats().records).toBe(0);
    const records = Array.from({ length: 50 }, (_, i) => record(i));
    for (const r of records) await store.focus.put(r);
    expect(store.stats().records).toBe(50);
    await store.close();
    const progress: IndexProgress[] = [];
    store = await openStore({ focus: after }, opts(dir, { onIndexProgress: (p: IndexProgress) => progress.push(p) }));
    expect(progress).toEqual([]);
    checkIndexes(engineOf(store), after, records);
    await store.close();
  });

  it("a build SIGKILLed midway leaves a consistent checkpoint; the next open resumes after it and ends consistent", async () => {
    const dir = path.join(tmp, "killed");
    const log = path.join(tmp, "killed.log");
    const n = 40_000;
    const records = await seed(dir, n);
    const { child, exited } = startChild("../../storage-index/helpers/index-build-child.ts", [dir, log]);
    // Killed once a few slices are durable, at whatever point it has reached then.
    const until = Date.now() + 60_000;
    while (Date.now() < until && !(fs.existsSync(log) && fs.readFileSync(log, "utf8").split("\n").filter((l) => l.startsWith("P started_at ")).length >= 3)) {
      await new Promise((r) => setTimeout(r, 2));
    }
    child.kill("SIGKILL");
    const { signal, stderr } = await exited;
    expect(signal, stderr).toBe("SIGKILL");
    expect(fs.readFileSync(log, "utf8")).not.toContain("OPEN");

    // The checkpoint: building the two new indexes, `after` past the start; records up to it hold their new
    // terms already (written in the same commits as the checkpoint).
    const e = await Engine.open(opts(dir));
    const state = readIndexState(e, ENTITY)!;
    expect(state.built).toEqual(["5"]);
    expect(state.building?.ids).toEqual(["2", "6,2"]);
    const mark = state.building!.after!;
    expect(mark > records[0]!.id).toBe(true);
    const upTo = records.filter((r) => compareUtf8(r.id, mark) <= 0);
    expect(upTo.length).toBeGreaterThan(0);
    expect(upTo.length).toBeLessThan(n);
    const zeroTerms = (id: string) => e.termsOf(ENTITY, id)!.filter((t) => !t.startsWith("\u00015\u0000"));
    for (const r of upTo) expect(zeroTerms(r.id).length, r.id).toBe(2);
    const locs = new Map<string, Loc>(upTo.map((r) => [r.id, e.locate(ENTITY, r.id)!]));
    await e.close();

    const progress: IndexProgress[] = [];
    const store = await openStore({ focus: after }, opts(dir, { onIndexProgress: (p: IndexProgress) => progress.push(p) }));
    const engine = engineOf(store);
    // Resumed: progress starts past the checkpoint, and the records up to it were not written again.
    const first = progress.find((p) => p.index === "started_at")!;
    expect(first.done).toBeGreaterThan(upTo.length);
    expect(first.total).toBe(n);
    for (const [id, loc] of locs) {
      const now = engine.locate(ENTITY, id)!;
      expect([now.file, now.frameOffset], id).toEqual([loc.file, loc.frameOffset]);
    }
    expect(readIndexState(engine, ENTITY)).toEqual({ built: ["5", "2", "6,2"] });
    checkIndexes(engine, after, records);
    await store.close();
  });
});
