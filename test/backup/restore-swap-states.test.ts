/**
 * The states a power loss can leave around a restore's switch now that it fsyncs the parent directory twice
 * (after the marker, after the renames) instead of four times (docs/FORMAT.md, "Backup file", "Restore"):
 * the marker durable without the staging directory's entry, and a marker (with or without the old store
 * aside) that comes back after a finished switch. The next open settles each to one whole store.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/runtime/storage/engine.js";
import { restoreBackup } from "../../src/runtime/index.js";
import { KEY, tempRoot, text, val } from "./helpers.js";

const { root, cleanup } = tempRoot("cellar-restore-swap-states-");
afterAll(cleanup);

async function storeWith(dir: string, tag: string): Promise<void> {
  const e = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
  await e.write([{ op: "put", entity: "e", key: "k", version: 1, value: val(tag), terms: [] }]);
  await e.close();
}

async function valueIn(dir: string): Promise<string> {
  const e = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
  try {
    return text(e.get("e", "k")!.value);
  } finally {
    await e.close();
  }
}

/** Write the marker a restore of `dir` writes, naming `staged` and `aside`. */
function marker(dir: string, staged: string, aside: string): string {
  const file = path.join(path.dirname(dir), `.${path.basename(dir)}.cellar-restore`);
  fs.writeFileSync(file, JSON.stringify({ staged, aside }));
  return file;
}

describe("restore switch: states left by a power loss", () => {
  it("a marker whose staging directory's entry was lost: the old store stays, the marker goes", async () => {
    const dir = path.join(root, "lost-staging", "store");
    await storeWith(dir, "old");
    const m = marker(dir, ".store.restore-aaaaaaaaaaaa", ".store.replaced-bbbbbbbbbbbb");
    expect(await valueIn(dir)).toBe("old");
    expect(fs.existsSync(m)).toBe(false);
    expect(fs.readdirSync(path.dirname(dir))).toEqual(["store"]);
  });

  it("a marker back after a finished switch, the old store aside still there: both removed, the restored store stays", async () => {
    const parent = path.join(root, "finished-aside");
    const dir = path.join(parent, "store");
    await storeWith(dir, "new");
    await storeWith(path.join(parent, ".store.replaced-cccccccccccc"), "old");
    const m = marker(dir, ".store.restore-dddddddddddd", ".store.replaced-cccccccccccc");
    expect(await valueIn(dir)).toBe("new");
    expect(fs.existsSync(m)).toBe(false);
    expect(fs.readdirSync(parent)).toEqual(["store"]);
  });

  it("a marker back after a finished switch and its cleanup: removed by the next restore, which restores", async () => {
    const parent = path.join(root, "finished-restore");
    const dir = path.join(parent, "store");
    await storeWith(dir, "new");
    const e = await Engine.open({ dir, key: KEY });
    const file = path.join(root, "finished-restore.cellarbackup");
    await e.backup({ to: file });
    await e.write([{ op: "put", entity: "e", key: "k", version: 1, value: val("later"), terms: [] }]);
    await e.close();
    const m = marker(dir, ".store.restore-eeeeeeeeeeee", ".store.replaced-ffffffffffff");
    await restoreBackup(file, { dir, key: KEY });
    expect(fs.existsSync(m)).toBe(false);
    expect(fs.readdirSync(parent)).toEqual(["store"]);
    expect(await valueIn(dir)).toBe("new");
  });
});
