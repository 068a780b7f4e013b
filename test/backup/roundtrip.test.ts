/**
 * Backups end to end on the real engine: a full backup (sealed bytes copied), verified, listed and restored,
 * under the store's key and under a password on a fresh directory with nothing but the password.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { AiProviderKind, Theme } from "../../src/generated/examples/settings/v1/settings_pb.js";
import { isCellarError, keys, listBackups, restoreBackup, verifyBackup } from "../../src/runtime/index.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import { CHEAP, KEY, OTHER_KEY, task, tempRoot, val } from "./helpers.js";

const { root, cleanup } = tempRoot("cellar-backup-rt-");
afterAll(cleanup);

async function seeded(dir: string, n = 300) {
  const store = await openStore({ dir, key: KEY });
  for (let i = 0; i < n; i += 50) await store.batch((tx) => { for (let j = i; j < Math.min(i + 50, n); j++) tx.tasks.put(task(j)); });
  await store.settings.update({ theme: Theme.DARK, aiProvider: { kind: AiProviderKind.ANTHROPIC, model: "m", apiKey: "sk-secret" } });
  await store.compact(); // records in a segment, and more in the journal after it
  for (let i = 0; i < 20; i++) await store.tasks.put(task(i, " (edited)"));
  await store.tasks.delete(task(n - 1).id);
  return store;
}

describe("backup, verify, list, restore", () => {
  it("a store-key backup holds exactly the store's records and restores them with the same key", async () => {
    const dir = path.join(root, "a");
    const store = await seeded(dir);
    const file = path.join(root, "out", "a.cellarbackup");
    const info = await store.backup({ to: file, label: "before the update" });
    expect(info.protection).toBe("store-key");
    expect(info.label).toBe("before the update");
    expect(info.entities.find((e) => e.name === "tasks")).toEqual({ name: "tasks", version: 1, records: 299 });
    expect(info.bytes).toBe(fs.statSync(file).size);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(`${file}.tmp`)).toBe(false);
    // A write after the call is not in the backup.
    await store.tasks.put(task(1000));
    await store.close();

    expect((await verifyBackup(file, { key: KEY })).storeId).toBe(info.storeId);
    const listed = listBackups(path.dirname(file));
    expect(listed).toHaveLength(1);
    expect(listed[0]!.damaged).toBeNull();

    const target = path.join(root, "a-restored");
    await restoreBackup(file, { dir: target, key: KEY });
    const back = await openStore({ dir: target, key: KEY });
    expect(await back.tasks.count()).toBe(299);
    expect((await back.tasks.get(task(3).id))?.title).toBe("task 3 (edited)");
    expect(await back.tasks.get(task(1000).id)).toBeUndefined();
    expect((await back.settings.get()).aiProvider?.apiKey).toBe("sk-secret");
    await back.close();
  });

  it("a password backup restores on a fresh directory with the password alone, and under a new key when given", async () => {
    const dir = path.join(root, "p");
    const store = await seeded(dir, 120);
    const file = path.join(root, "p.cellarbackup");
    const info = await store.backup({ to: file, password: "correct horse", passwordCost: CHEAP });
    expect(info.protection).toBe("password");
    await store.close();
    fs.rmSync(dir, { recursive: true }); // "another computer": nothing of the store is left

    await expect(verifyBackup(file, { key: KEY })).rejects.toSatisfy((e) => isCellarError(e, "E_KEY") || isCellarError(e, "E_USAGE"));
    await verifyBackup(file, { password: "correct horse" });

    const fresh = path.join(root, "p-fresh");
    await restoreBackup(file, { dir: fresh, password: "correct horse" });
    let back = await openStore({ dir: fresh, key: keys.passphrase("correct horse") });
    expect(await back.tasks.count()).toBe(119);
    expect((await back.settings.get()).aiProvider?.apiKey).toBe("sk-secret");
    await back.close();

    const rekeyed = path.join(root, "p-rekeyed");
    await restoreBackup(file, { dir: rekeyed, password: "correct horse", key: OTHER_KEY });
    back = await openStore({ dir: rekeyed, key: OTHER_KEY });
    expect(await back.tasks.count()).toBe(119);
    expect((await back.settings.get()).aiProvider?.apiKey).toBe("sk-secret");
    await back.close();
  });

  it("close waits for a backup running (a re-encoded one reads through the store's keys)", async () => {
    const store = await seeded(path.join(root, "c"), 400);
    const full = path.join(root, "c-full.cellarbackup");
    const part = path.join(root, "c-part.cellarbackup");
    const backups = [store.backup({ to: full }), store.backup({ to: part, entities: { include: ["tasks"] } })];
    await store.close();
    await Promise.all(backups);
    expect((await verifyBackup(full, { key: KEY })).entities.find((e) => e.name === "tasks")?.records).toBe(399);
    expect((await verifyBackup(part, { key: KEY })).entities.find((e) => e.name === "tasks")).toEqual({ name: "tasks", version: 1, records: 399 });
  });

  it("restore replaces an existing store of the same id and refuses one that is open", async () => {
    const dir = path.join(root, "r");
    const store = await seeded(dir, 60);
    const file = path.join(root, "r.cellarbackup");
    await store.backup({ to: file });
    await store.tasks.put(task(5000));
    await expect(restoreBackup(file, { dir, key: KEY })).rejects.toSatisfy((e) => isCellarError(e, "E_LOCKED"));
    await store.close();
    await restoreBackup(file, { dir, key: KEY });
    const back = await openStore({ dir, key: KEY });
    expect(await back.tasks.get(task(5000).id)).toBeUndefined();
    expect(await back.tasks.count()).toBe(59);
    await back.close();
    expect(fs.readdirSync(root).filter((n) => n.startsWith(".r."))).toEqual([]);
  });
});

describe("a backup of a store whose open found a damaged segment", () => {
  it("waits for the compaction that retires the damage, then takes its point, and verifies", async () => {
    const dir = path.join(root, "damaged-seg");
    const e = await Engine.open({ dir, key: KEY });
    for (let i = 0; i < 300; i += 100) await e.write(Array.from({ length: 100 }, (_, j) => ({ op: "put" as const, entity: "e", key: `k${i + j}`, version: 1, value: val(`v${i + j}`.repeat(40)), terms: [] })));
    await e.compact();
    await e.write([{ op: "put", entity: "e", key: "after", version: 1, value: val("in the journal"), terms: [] }]);
    await e.close();
    const seg = fs.readdirSync(dir).find((n) => n.endsWith(".seg"))!;
    const bytes = fs.readFileSync(path.join(dir, seg));
    bytes[100]! ^= 0xff; // inside the first data block
    fs.writeFileSync(path.join(dir, seg), bytes);
    const damaged = await Engine.open({ dir, key: KEY, verifyOnOpen: true });
    expect(damaged.recovery.damaged.length).toBeGreaterThan(0);
    const file = path.join(root, "damaged-seg.cellarbackup");
    const taking = damaged.backup({ to: file }); // at once: the compaction retiring the damage has just begun
    expect(fs.readdirSync(dir).filter((n) => n.endsWith(".seg"))).toContain(seg); // still live at the call
    const count = damaged.count("e");
    await taking;
    await damaged.close();
    expect((await verifyBackup(file, { key: KEY })).entities).toEqual([{ name: "e", version: 0, records: count }]);
  });
});
