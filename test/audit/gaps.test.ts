/**
 * The audit log's entries for a singleton's `export()` / `import()` and for `repo.archive()` (records moved out
 * of the store into a file: an `export` with `archive: true`), on real stores: names and counts, never a value;
 * a failed call is recorded with its error code, as the store-level operations are.
 */
import path from "node:path";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { decodedText, key, rawAudit, tempRoot } from "./helpers.js";

const tmp = tempRoot("gaps");
afterAll(tmp.cleanup);
const API_KEY = "sk-SINGLETON-SECRET-9";
const DAY = 86_400_000;

describe("audit log: singleton export/import and archive", () => {
  it("records a singleton's export (with includeSensitive) and import, a failed import with its code, and no value", async () => {
    const dir = tmp.fresh("singleton");
    const store = await openStore({ dir, key, audit: { actor: "user:1", flushMs: 60_000 } });
    await store.settings.update({ language: "fr-CA", aiProvider: { model: "m", apiKey: API_KEY } });
    const plain = await store.settings.export();
    const secret = await store.settings.export({ includeSensitive: true });
    expect(secret).toContain(API_KEY);
    await store.settings.import(plain);
    await expect(store.settings.import("not an export")).rejects.toMatchObject({ code: expect.any(String) });
    const list = await store.audit.list();
    await store.close();

    const ops = list.filter((e) => e.entity === "settings" && (e.action === "export" || e.action === "import"));
    expect(ops.map((e) => [e.action, e.actor, e.detail.includeSensitive ?? null])).toEqual([
      ["export", "user:1", false],
      ["export", "user:1", true],
      ["import", "user:1", null],
      ["import", "user:1", null],
    ]);
    expect(ops[2]!.detail.failed).toBeUndefined();
    expect(ops[3]!.detail.failed).toMatch(/^E_/);
    const text = decodedText(await rawAudit(dir));
    expect(text).not.toContain(API_KEY);
    expect(text).not.toContain("fr-CA");
  });

  it("records repo.archive() as an export of the moved records (entity, count, file, archive: true)", async () => {
    const dir = tmp.fresh("archive");
    const store = await openStore({ dir, key, audit: { actor: "ops", flushMs: 60_000 } });
    await store.batch((tx) => {
      for (let i = 0; i < 5; i++) tx.conversations.put({ id: `c${i}`, title: `secret title ${i}`, updatedAt: timestampFromMs(Date.now() - (i < 3 ? 200 : 10) * DAY) });
    });
    const to = path.join(tmp.root, "old.cellarbackup");
    const r = await store.conversations.archive({ olderThan: "90d", field: "updatedAt", to });
    expect(r.count).toBe(3);
    await expect(store.conversations.archive({ olderThan: "90d", field: "updatedAt", to })).rejects.toMatchObject({ code: expect.any(String) }); // the file exists
    const list = await store.audit.list();
    await store.close();

    const archives = list.filter((e) => e.action === "export" && e.detail.archive === true);
    expect(archives).toHaveLength(2);
    expect(archives[0]).toMatchObject({ entity: "conversations", count: 3, actor: "ops", detail: { archive: true, file: r.file, protection: "store-key", kept: 0 } });
    expect(archives[1]!.detail.failed).toMatch(/^E_/);
    expect(decodedText(await rawAudit(dir))).not.toContain("secret title");
  });
});
