/**
 * Property test (fast-check): random sequences of put, update, delete, revert, batches and reopen on a
 * collection with `history: { keep: 4 }`, checked after every step against a model of each record's
 * value and history.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { entities } from "../../src/generated/index.js";
import { defineCollection, openStore } from "../../src/runtime/index.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-history-model-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(4);
const KEEP = 4;
const tasks = defineCollection({ ...entities.tasks, history: { keep: KEEP } });

type Cmd =
  | { kind: "put" | "update"; key: string; title: string }
  | { kind: "delete"; key: string }
  | { kind: "revert"; key: string; back: number }
  | { kind: "batch"; ops: { key: string; title: string | null }[] }
  | { kind: "reopen" };

const keyArb = fc.constantFrom("a", "b", "c");
const titleArb = fc.string({ minLength: 1, maxLength: 6 });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constantFrom("put" as const, "update" as const), key: keyArb, title: titleArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("revert" as const), key: keyArb, back: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("batch" as const), ops: fc.array(fc.record({ key: keyArb, title: fc.option(titleArb) }), { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "reopen" as const }) },
);

/** Per key: the current title (undefined: no record) and the titles each change replaced, oldest first. */
class Model {
  readonly current = new Map<string, string | undefined>();
  readonly history = new Map<string, (string | undefined)[]>();
  write(k: string, next: string | undefined): void {
    const prev = this.current.get(k);
    if (prev === undefined && next === undefined) return; // a delete of nothing changes nothing
    const h = this.history.get(k) ?? [];
    h.push(prev);
    this.history.set(k, h.slice(-KEEP));
    this.current.set(k, next);
  }
}

describe("record history against a model", () => {
  it("history() and get() match the model after every step", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 1, maxLength: 25 }), async (cmds) => {
        const dir = path.join(tmp, `run-${run++}`);
        const model = new Model();
        let store = await openStore({ tasks }, { dir, key });
        try {
          for (const c of cmds) {
            switch (c.kind) {
              case "put":
                await store.tasks.put({ id: c.key, title: c.title });
                model.write(c.key, c.title);
                break;
              case "update":
                if (model.current.get(c.key) === undefined) break;
                await store.tasks.update(c.key, { title: c.title });
                model.write(c.key, c.title);
                break;
              case "delete":
                await store.tasks.delete(c.key);
                model.write(c.key, undefined);
                break;
              case "revert": {
                const entries = await store.tasks.history(c.key);
                if (entries.length === 0) break;
                const entry = entries[Math.min(c.back, entries.length - 1)]!;
                await store.tasks.revert(c.key, entry.id);
                model.write(c.key, entry.value?.title);
                break;
              }
              case "batch":
                await store.batch((tx) => {
                  for (const o of c.ops) {
                    if (o.title === null) tx.tasks.delete(o.key);
                    else tx.tasks.put({ id: o.key, title: o.title });
                  }
                });
                for (const o of c.ops) model.write(o.key, o.title ?? undefined);
                break;
              case "reopen":
                await store.close();
                store = await openStore({ tasks }, { dir, key });
                break;
            }
            for (const k of ["a", "b", "c"]) {
              expect((await store.tasks.get(k))?.title).toBe(model.current.get(k));
              expect((await store.tasks.history(k)).map((e) => e.value?.title)).toEqual([...(model.history.get(k) ?? [])].reverse());
            }
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: 40 },
    );
  }, 60_000);
});
