/** `update(key, patch | fn)`: atomic read-modify-write of one record; `getMany(keys)`: records in the keys' order. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { isCellarError, NotFoundError, openStore as openStore2, ValidationError } from "../../src/runtime/index.js";
import { sampleEntity } from "../query/helpers/sample.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-update-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(3);
const fail = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);

describe("update", () => {
  it("many concurrent increments of one record lose nothing, and the result is durable", async () => {
    const dir = path.join(tmp, "increments");
    let store = await openStore({ dir, key });
    await store.tasks.put({ id: "t1", title: "counter", estimateMinutes: 0 });
    await store.tasks.put({ id: "t2", title: "other", estimateMinutes: 0 });
    const n = 300;
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      all.push(store.tasks.update("t1", (c) => ({ estimateMinutes: c.estimateMinutes + 1 })));
      if (i % 3 === 0) all.push(store.tasks.update("t2", (c) => ({ estimateMinutes: c.estimateMinutes + 2, title: `other ${i}` })));
    }
    const results = (await Promise.all(all)) as { id: string; estimateMinutes: number }[];
    // Each update resolved with the record it stored: t1's counters are 1..n, each once.
    const t1 = results.filter((r) => r.id === "t1").map((r) => r.estimateMinutes);
    expect(t1.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect((await store.tasks.get("t1"))?.estimateMinutes).toBe(n);
    expect((await store.tasks.get("t2"))?.estimateMinutes).toBe(2 * Math.ceil(n / 3));
    await store.close();
    store = await openStore({ dir, key });
    expect((await store.tasks.get("t1"))?.estimateMinutes).toBe(n);
    expect((await store.tasks.get("t1"))?.title).toBe("counter");
    await store.close();
  });

  it("a cached record is replaced at commit by the record the write resolved with (no decode on the next read), and a key never read stays uncached", async () => {
    const store = await openStore({ dir: path.join(tmp, "write-through"), key });
    await store.settings.get(); // defaults: nothing stored, nothing cached
    const first = await store.settings.update({ theme: 1, aiProvider: { model: "m", apiKey: "sk-secret" } });
    const read = await store.settings.get();
    expect(read).toEqual(first);
    const second = await store.settings.update({ language: "pt-BR" });
    expect(await store.settings.get()).toBe(second); // the same object: cached at commit
    expect(second).toMatchObject({ theme: 1, language: "pt-BR", aiProvider: { model: "m", apiKey: "sk-secret" } });
    const put = await store.tasks.put({ id: "w1", title: "never read before" });
    const got = await store.tasks.get("w1");
    expect(got).toEqual(put);
    expect(got).not.toBe(put); // decoded by the read: a put does not fill the cache for a key nobody read
    expect(await store.tasks.put({ id: "w1", title: "read before" })).toBe(await store.tasks.get("w1"));
    await store.close();
  });

  it("a batch's put of a cached key: the next read gets the stored record decoded and frozen, not the message the batch encoded", async () => {
    // A record the generated codec declines (an int64 at its minimum, a -Infinity double) is encoded from a
    // message made with `create`; a batch's put resolves with nothing, and that message (unfrozen) was once
    // what the cache kept at commit (query-model.test.ts found it).
    const samples = sampleEntity([["name", "score"]], "id");
    const store = await openStore2({ samples }, { dir: path.join(tmp, "batch-cached"), key });
    const repo = store.samples as unknown as { put(v: object): Promise<unknown>; get(k: string): Promise<Record<string, unknown> | undefined> };
    const rec = { id: "a", seq: 0, name: "", n: -2147483648, kind: 0, flag: false, score: Number.NEGATIVE_INFINITY, big: -9223372036854775808n, tags: [], u: 0 };
    await repo.put(rec);
    expect(Object.isFrozen(await repo.get("a"))).toBe(true); // read: now cached
    await store.batch((tx) => void (tx as unknown as { samples: { put(v: object): void } }).samples.put({ ...rec, seq: 7 }));
    const got = await repo.get("a");
    expect(got?.seq).toBe(7);
    expect(Object.isFrozen(got)).toBe(true);
    await store.close();
  });

  it("an update reads the result of every write to its key issued before it: put and delete", async () => {
    const store = await openStore({ dir: path.join(tmp, "ordered"), key });
    await store.tasks.put({ id: "t1", title: "a", estimateMinutes: 1 });
    const inc = () => store.tasks.update("t1", (c) => ({ estimateMinutes: c.estimateMinutes + 1 }));
    // A put, then updates issued before it is committed: they apply on it.
    await Promise.all([store.tasks.put({ id: "t1", title: "b", estimateMinutes: 100 }), inc(), inc()]);
    expect(await store.tasks.get("t1")).toMatchObject({ title: "b", estimateMinutes: 102 });
    // A delete, then an update issued before it is committed: the record is gone.
    const del = store.tasks.delete("t1");
    const after = inc();
    expect(await del).toBe(true);
    expect(isCellarError(await fail(after), "E_NOT_FOUND")).toBe(true);
    await store.close();
  });

  it("a patch merges over the record (shallow); a missing key is E_NOT_FOUND; invalid results and key changes are refused", async () => {
    const store = await openStore({ dir: path.join(tmp, "rules"), key });
    await store.tasks.put({ id: "t1", title: "a", tags: ["x"], notes: "keep" });
    const r = await store.tasks.update("t1", { title: "b", tags: ["y", "z"] });
    expect(r).toMatchObject({ id: "t1", title: "b", tags: ["y", "z"], notes: "keep" });
    expect(Object.isFrozen(r)).toBe(true);
    expect(await store.tasks.query({ tags: "y" })).toHaveLength(1);
    expect(await store.tasks.query({ tags: "x" })).toHaveLength(0);

    const missing = await fail(store.tasks.update("secret-id-7", { title: "c" }));
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(isCellarError(missing, "E_NOT_FOUND")).toBe(true);
    expect((missing as NotFoundError).key).toBe("secret-id-7");
    expect((missing as NotFoundError).entity).toBe("tasks");
    expect((missing as Error).message).not.toContain("secret-id-7");
    expect(await store.tasks.has("secret-id-7")).toBe(false);

    const invalid = await fail(store.tasks.update("t1", { title: "x".repeat(501) }));
    expect(invalid).toBeInstanceOf(ValidationError);
    expect((invalid as ValidationError).issues[0]?.path).toEqual(["title"]);
    const rekey = await fail(store.tasks.update("t1", { id: "t2" }));
    expect(isCellarError(rekey, "E_VALIDATION")).toBe(true);
    expect(await store.tasks.keys()).toEqual(["t1"]);
    const thrown = await fail(store.tasks.update("t1", () => { throw new RangeError("app"); }));
    expect(thrown).toBeInstanceOf(RangeError);
    expect(isCellarError(await fail(store.tasks.update("t1", null as never)), "E_VALIDATION")).toBe(true);
    expect(await store.tasks.get("t1")).toMatchObject({ title: "b", notes: "keep" });
    await store.close();
  });
});

describe("getMany", () => {
  it("returns records in the order of the keys, undefined for missing ones, duplicates repeated", async () => {
    const store = await openStore({ dir: path.join(tmp, "many"), key });
    await store.batch((tx) => {
      for (let i = 0; i < 50; i++) tx.tasks.put({ id: `t${i}`, title: `task ${i}` });
    });
    const keys = ["t7", "nope", "t0", "t49", "t7", "", "t12"];
    const got = await store.tasks.getMany(keys);
    expect(got.map((r) => r?.title)).toEqual(["task 7", undefined, "task 0", "task 49", "task 7", undefined, "task 12"]);
    expect(await store.tasks.getMany([])).toEqual([]);
    expect(got[0]).toBe(await store.tasks.get("t7")); // the same frozen record the cache holds
    expect(isCellarError(await fail(store.tasks.getMany([1 as never])), "E_USAGE")).toBe(true);
    expect(isCellarError(await fail(store.tasks.getMany("t1" as never)), "E_USAGE")).toBe(true);
    await store.close();
  });
});
