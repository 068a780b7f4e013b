/**
 * Re-encoded backups: a selection of entities (record history going with its entity), and a password backup
 * without the keys of sensitive fields, whose records carry no sensitive part and whose data key is its own.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { AiProviderKind, Theme } from "../../src/generated/examples/settings/v1/settings_pb.js";
import { isCellarError, keys, restoreBackup, verifyBackup } from "../../src/runtime/index.js";
import { unpackBackup } from "../../src/runtime/storage/backup.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import { nodeFileIO } from "../../src/runtime/platform/io.js";
import { CHEAP, KEY, task, tempRoot, text, val } from "./helpers.js";

const { root, cleanup } = tempRoot("cellar-backup-sel-");
afterAll(cleanup);

async function seeded(dir: string) {
  const store = await openStore({ dir, key: KEY });
  await store.batch((tx) => {
    for (let i = 0; i < 80; i++) tx.tasks.put(task(i));
  });
  await store.settings.update({ theme: Theme.DARK, aiProvider: { kind: AiProviderKind.ANTHROPIC, model: "m", apiKey: "sk-secret" } });
  await store.compact();
  await store.tasks.put(task(1, " edited"));
  await store.settings.update({ language: "fr" });
  return store;
}

describe("selective backups", () => {
  it("include and exclude keep only the chosen entities, restored with the store's key", async () => {
    const store = await seeded(path.join(root, "s1"));
    const only = path.join(root, "only-tasks.cellarbackup");
    const info = await store.backup({ to: only, entities: { include: ["tasks"] } });
    // `~indexes` (which index terms the records hold) goes with any selection.
    expect(info.entities.map((e) => e.name)).toEqual(["tasks", "~indexes"]);
    const without = path.join(root, "no-tasks.cellarbackup");
    const rest = (await store.backup({ to: without, entities: { exclude: ["tasks"] } })).entities;
    expect(rest.some((e) => e.name === "tasks")).toBe(false);
    // The settings singleton keeps record history: its `~history:settings` entries go along with it.
    expect(rest.filter((e) => e.records > 0).map((e) => e.name)).toEqual(["settings", "~history:settings", "~indexes"]);
    await expect(store.backup({ to: without, entities: { include: ["nope"] } })).rejects.toSatisfy((e) => isCellarError(e, "E_USAGE"));
    await store.close();
    await verifyBackup(only, { key: KEY });

    const a = path.join(root, "r-only");
    await restoreBackup(only, { dir: a, key: KEY });
    let s = await openStore({ dir: a, key: KEY });
    expect(await s.tasks.count()).toBe(80);
    expect((await s.tasks.get(task(1).id))?.title).toBe("task 1 edited");
    expect((await s.settings.get()).language).not.toBe("fr"); // the defaults: no settings record was restored
    expect((await s.settings.get()).aiProvider?.apiKey ?? "").toBe("");
    await s.close();
    const b = path.join(root, "r-without");
    await restoreBackup(without, { dir: b, key: KEY });
    s = await openStore({ dir: b, key: KEY });
    expect(await s.tasks.count()).toBe(0);
    expect((await s.settings.get()).aiProvider?.apiKey).toBe("sk-secret");
    expect((await s.settings.get()).language).toBe("fr");
    await s.close();
  });

  it("record history `~history:E` goes with `E`, and the point is consistent under writes and a compaction", async () => {
    const dir = path.join(root, "engine");
    const e = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
    const put = (entity: string, key: string, v: string) => e.write([{ op: "put", entity, key, version: 1, value: val(v), terms: [] }]);
    for (let i = 0; i < 50; i++) await put("tasks", `t${i}`, "before");
    await put("~history:tasks", "t1", "old");
    await put("notes", "n1", "x");
    await e.compact();
    await put("tasks", "t0", "acknowledged");
    const file = path.join(root, "engine.cellarbackup");
    const backup = e.backup({ to: file, entities: { include: ["tasks"] } });
    const later = [put("tasks", "t1", "after"), put("tasks", "late", "after"), e.compact()];
    const info = await backup;
    await Promise.all(later);
    await e.close();
    expect(info.entities.map((x) => x.name)).toEqual(["tasks", "~history:tasks"]);
    const target = path.join(root, "engine-restored");
    await restoreBackup(file, { dir: target, key: KEY });
    const r = await Engine.open({ dir: target, key: KEY });
    const got = new Map([...r.scan("tasks")].map(([k, loc]) => [k, text(r.read("tasks", loc))]));
    expect(got.size).toBe(50);
    expect(got.get("t0")).toBe("acknowledged");
    expect(got.get("t1")).toBe("before");
    expect(r.count("~history:tasks")).toBe(1);
    expect(r.count("notes")).toBe(0);
    await r.close();
  });
});

describe("a password backup without the keys of sensitive fields", () => {
  it("restores with the password alone, every sensitive field unset, and its keys open nothing of the store", async () => {
    const dir = path.join(root, "s2");
    const store = await seeded(dir);
    const file = path.join(root, "nosens.cellarbackup");
    await expect(store.backup({ to: file, includeSensitive: false })).rejects.toSatisfy((e) => isCellarError(e, "E_USAGE"));
    const info = await store.backup({ to: file, password: "pw", passwordCost: CHEAP, includeSensitive: false });
    expect(info.protection).toBe("password");
    await store.close();
    expect(fs.readFileSync(file).includes(Buffer.from("sk-secret"))).toBe(false);
    await verifyBackup(file, { password: "pw" });

    const target = path.join(root, "r-nosens");
    await restoreBackup(file, { dir: target, password: "pw" });
    const s = await openStore({ dir: target, key: keys.passphrase("pw") });
    expect(await s.tasks.count()).toBe(80);
    const settings = await s.settings.get();
    expect(settings.theme).toBe(Theme.DARK);
    expect(settings.aiProvider?.model).toBe("m");
    expect(settings.aiProvider?.apiKey).toBe("");
    await s.close();

    // The backup's keyring with the store's own files: its data key is not the store's.
    const unpacked = path.join(root, "unpacked");
    unpackBackup(nodeFileIO(), file, unpacked);
    const mixed = path.join(root, "mixed");
    fs.mkdirSync(mixed);
    for (const n of fs.readdirSync(dir)) if (/^(MANIFEST|journal-|segment-)/.test(n)) fs.copyFileSync(path.join(dir, n), path.join(mixed, n));
    fs.copyFileSync(path.join(unpacked, "KEYRING"), path.join(mixed, "KEYRING"));
    await expect(Engine.open({ dir: mixed, key: keys.passphrase("pw") })).rejects.toSatisfy((e) => isCellarError(e, "E_KEY"));
  });
});
