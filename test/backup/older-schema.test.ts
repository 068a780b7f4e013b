/**
 * A backup of an older schema version restores as it was taken and migrates on the next open through the
 * registry, taking its own verified pre-migration backup first.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { restoreBackup, verifyBackup } from "../../src/runtime/index.js";
import { openStore } from "../../src/runtime/typed/store.js";
import { notesAt, step1to2, step2to3 } from "../store/helpers/notes-versions.js";
import { CHEAP, KEY, tempRoot } from "./helpers.js";

const { root, cleanup } = tempRoot("cellar-backup-schema-");
afterAll(cleanup);

describe("restoring a backup of an older schema version", () => {
  it("keeps version 1 in the backup's metadata and migrates v1 → v3 on the next open, sensitive fields included", async () => {
    const dir = path.join(root, "v1");
    const store = await openStore({ notes: notesAt(1) }, { dir, key: KEY });
    await store.batch((tx) => {
      for (let j = 0; j < 40; j++) tx.notes.put({ id: `n${j}`, text: `note ${j}`, tagsCsv: j % 2 ? "work,urgent" : "", secret: `pin-${j}` });
    });
    const file = path.join(root, "v1.cellarbackup");
    const info = await store.backup({ to: file, password: "pw", passwordCost: CHEAP });
    await store.close();
    expect(info.entities).toEqual([{ name: "notes", version: 1, records: 40 }, { name: "~indexes", version: 0, records: 1 }]);
    expect((await verifyBackup(file, { password: "pw" })).entities).toEqual(info.entities);

    const target = path.join(root, "new-machine");
    await restoreBackup(file, { dir: target, password: "pw", key: KEY });
    const v3 = await openStore({ notes: notesAt(3) }, { dir: target, key: KEY, migrations: [step1to2, step2to3] });
    try {
      expect(v3.migrationBackup).not.toBeNull();
      expect(fs.existsSync(v3.migrationBackup!)).toBe(true);
      expect(await v3.notes.count()).toBe(40);
      expect(await v3.notes.get("n1")).toMatchObject({ body: "note 1", tags: ["work", "urgent"], secret: "pin-1" });
    } finally {
      await v3.close();
    }
  });
});
