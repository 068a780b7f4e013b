/**
 * `watch(where)` with range conditions: the result is what `query(where)` returns after each commit, in
 * key order; a put moving a record into or out of the range updates it; a commit that cannot change the
 * result (a record outside the range, not in the result) does not re-read it.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/runtime/index.js";
import { sampleEntity } from "./helpers/sample.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-query-watch-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(8);
const settle = () => new Promise<void>((r) => setImmediate(r));
const def = sampleEntity([["at"], ["kind", "n"], ["tags"]]);
const at = (s: number) => ({ seconds: BigInt(s), nanos: 0 });

describe("watch(where) with a range", () => {
  it("follows records into and out of the range, and skips commits that cannot change it", async () => {
    const store = await openStore({ samples: def }, { dir: path.join(tmp, "w"), key });
    const repo = store.samples as unknown as { put(v: object): Promise<unknown>; delete(k: string): Promise<boolean>; query(w: object): Promise<{ id: string }[]>; watch(w: object): { subscribe(cb: (u: { value: readonly { id: string }[] }) => void): () => void; close(): void } };
    await repo.put({ id: "a", at: at(5) });
    await repo.put({ id: "b", at: at(15) });
    const where = { at: { gte: new Date(10_000), lt: new Date(20_000) }, kind: { in: [0, 2] } };
    const seen: string[][] = [];
    const w = repo.watch(where);
    // Count the re-reads: the watch's select walks an index; a commit its plan rules out does not.
    const reads = { n: 0 };
    const engine = (store as unknown as { engine: { orderedIndex: (...a: unknown[]) => unknown } }).engine;
    const orderedIndex = engine.orderedIndex.bind(engine);
    engine.orderedIndex = (...a: unknown[]) => {
      reads.n++;
      return orderedIndex(...a);
    };
    w.subscribe(({ value }) => seen.push(value.map((r) => r.id)));
    const step = async (write: () => Promise<unknown>, reread: boolean) => {
      const before = reads.n;
      await write();
      await settle();
      expect(seen.at(-1)).toEqual((await repo.query(where)).map((r) => r.id));
      expect(reads.n > before + 1, String(write)).toBe(reread); // query() above reads once
    };
    expect(seen).toEqual([["b"]]);
    await step(() => repo.put({ id: "c", at: at(12), kind: 2 }), true); // into the range
    expect(seen.at(-1)).toEqual(["b", "c"]);
    await step(() => repo.put({ id: "d", at: at(25) }), false); // outside: no re-read
    await step(() => repo.put({ id: "e", at: at(12), kind: 1 }), false); // in the time range, kind not
    await step(() => repo.put({ id: "f", tags: ["x"] }), false); // no `at`
    await step(() => repo.put({ id: "b", at: at(30) }), true); // out of the range (it was in the result)
    expect(seen.at(-1)).toEqual(["c"]);
    await step(() => repo.put({ id: "a", at: at(19) }), true); // a record moved in
    expect(seen.at(-1)).toEqual(["a", "c"]);
    await step(() => repo.delete("c"), true);
    expect(seen.at(-1)).toEqual(["a"]);
    await step(() => repo.delete("d"), false);
    expect(seen).toEqual([["b"], ["b", "c"], ["c"], ["a", "c"], ["a"]]);
    w.close();
    await store.close();
  });
});
