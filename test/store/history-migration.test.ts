/**
 * Record history across a schema migration: the entries of an entity's history go through the same
 * migration steps as its records (in the same atomic rewrite), so `history()` lists them in the current
 * shape and `revert` writes them back as current records.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { defineCollection } from "../../src/runtime/index.js";
import { openStore, type StoreImpl } from "../../src/runtime/typed/store.js";
import { notesAt, step1to2, step2to3 } from "./helpers/notes-versions.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-history-migration-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(8);
const withHistory = (v: 1 | 3) => defineCollection({ ...notesAt(v), history: { keep: 10 } });

describe("record history and migrations", () => {
  it("entries are migrated with the records: listed and reverted in the current shape, sensitive parts kept", async () => {
    const dir = path.join(tmp, "migrate");
    let store = await openStore({ notes: withHistory(1) }, { dir, key });
    await store.notes.put({ id: "n1", text: "hello", tagsCsv: "a,urgent", secret: "s-one" });
    await store.notes.put({ id: "n1", text: "world", tagsCsv: "b", secret: "s-two" });
    await store.notes.delete("n1");
    await store.close();

    store = await openStore({ notes: withHistory(3) }, { dir, key, migrations: [step1to2, step2to3], backupBeforeMigration: false });
    const engine = (store as unknown as StoreImpl).engine;
    for (const [, loc] of engine.scan("~history:notes")) expect(loc.version).toBe(3);
    const h = await store.notes.history("n1");
    expect(h.map((e) => (e.value ? { body: e.value.body, tags: [...e.value.tags], secret: e.value.secret, priority: e.value.priority } : undefined))).toEqual([
      { body: "world", tags: ["b"], secret: "s-two", priority: 1 },
      { body: "hello", tags: ["a", "urgent"], secret: "s-one", priority: 2 },
      undefined,
    ]);
    const back = await store.notes.revert("n1", h[1]!.id);
    expect(back).toMatchObject({ body: "hello", tags: ["a", "urgent"], secret: "s-one", priority: 2 });
    expect(await store.notes.query({ tags: "urgent" })).toHaveLength(1);
    await store.close();
    // The manifest now lists the history entity at the new version too; the next open needs no migration.
    store = await openStore({ notes: withHistory(3) }, { dir, key });
    expect((store as unknown as StoreImpl).engine.storedVersions.get("~history:notes")).toBe(3);
    expect(store.migrationBackup).toBeNull();
    expect((await store.notes.history("n1")).map((e) => e.value?.body)).toEqual([undefined, "world", "hello", undefined]);
    await store.close();
  });
});
