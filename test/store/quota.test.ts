/**
 * Quota (`openStore({ quota: { maxBytes } })`): a write or batch that would take the data files past the
 * quota is refused with `E_QUOTA` before anything is written (the files stay byte for byte); deletes,
 * cleanup and compaction are always allowed, so a store at its quota can be freed. And `store.stats()`:
 * bytes per entity (live, dead, history, backups).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, it } from "vitest";
import { ConversationEntity } from "../../src/generated/examples/conversations/v1/conversations_cellar.js";
import { GridLayoutEntity } from "../../src/generated/examples/layouts/v1/layouts_cellar.js";
import { isCellarError, openStore, QuotaError } from "../../src/runtime/index.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import { storeSnapshot } from "../helpers/files.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-quota-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(8);
const DAY = 86_400_000;
let n = 0;
const freshDir = () => path.join(tmp, `q${n++}`);
const entities = { conversations: { ...ConversationEntity, retention: { maxAgeMs: 30 * DAY, timestampField: "updatedAt" } } as typeof ConversationEntity };
const conv = (id: string, ageDays = 1, size = 400) => ({ id, title: "x".repeat(Math.min(size, 300)), model: "m".repeat(Math.max(0, size - 300)), updatedAt: timestampFromMs(Date.now() - ageDays * DAY) });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    return isCellarError(e) ? e.code : String(e);
  }
}

describe("quota", () => {
  it("a put or batch that would pass the quota rejects with E_QUOTA and changes no file", async () => {
    const dir = freshDir();
    let store = await openStore(entities, { dir, key, cleanup: false });
    for (let i = 0; i < 20; i++) await store.conversations.put(conv(`c${i}`));
    const used = store.stats().fileBytes;
    await store.close();
    store = await openStore(entities, { dir, key, cleanup: false, quota: { maxBytes: used + 2000 } });
    await store.conversations.put(conv("fits")); // ~500 bytes
    const before = storeSnapshot(dir);
    const e = await store.conversations.put(conv("big", 1, 3000)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(QuotaError);
    const q = e as QuotaError;
    expect(q.code).toBe("E_QUOTA");
    expect(q.maxBytes).toBe(used + 2000);
    expect(q.usedBytes).toBe(store.stats().fileBytes);
    expect(q.usedBytes + q.writeBytes).toBeGreaterThan(q.maxBytes);
    expect(q.message).not.toContain("big");
    const batch = store.batch((tx) => {
      for (let i = 0; i < 10; i++) tx.conversations.put(conv(`b${i}`));
    });
    expect(await codeOf(batch)).toBe("E_QUOTA");
    expect(storeSnapshot(dir)).toEqual(before);
    expect(await store.conversations.has("big")).toBe(false);
    expect(await store.conversations.has("b0")).toBe(false);
    await store.close();
  });

  it("writes queued together are counted together: what was accepted fits", async () => {
    const dir = freshDir();
    const store = await openStore(entities, { dir, key, cleanup: false, quota: { maxBytes: 20_000 } });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => codeOf(store.conversations.put(conv(`c${i}`)))));
    expect(results).toContain("ok");
    expect(results).toContain("E_QUOTA");
    expect(results.every((r) => r === "ok" || r === "E_QUOTA")).toBe(true);
    expect(store.stats().fileBytes).toBeLessThanOrEqual(20_000);
    expect(await store.conversations.count()).toBe(results.filter((r) => r === "ok").length);
    await store.close();
  });

  it("at the quota, deletes, cleanup and compaction still work, and compaction makes room again", async () => {
    const dir = freshDir();
    const store = await openStore(entities, { dir, key, cleanup: false, quota: { maxBytes: 30_000 }, compaction: { auto: false } });
    let i = 0;
    while ((await codeOf(store.conversations.put(conv(`c${i}`, i % 2 ? 60 : 1)))) === "ok") i++;
    expect(i).toBeGreaterThan(10);
    expect(await codeOf(store.conversations.put(conv("more")))).toBe("E_QUOTA");
    // deletes and a cleanup (deletes too) pass
    expect(await store.conversations.delete("c0")).toBe(true);
    const report = await store.cleanup();
    expect(report.total).toBeGreaterThan(3);
    expect(await codeOf(store.batch((tx) => tx.conversations.delete("c2")))).toBe("ok");
    // the deletes grew the journal; compaction frees the dead bytes
    const before = store.stats();
    expect(before.deadBytes).toBeGreaterThan(0);
    await store.compact();
    expect(store.stats().fileBytes).toBeLessThan(before.fileBytes);
    expect(await codeOf(store.conversations.put(conv("more")))).toBe("ok");
    await store.close();
  });

  it("when dead bytes would make room, the refusal starts a compaction (automatic compaction on)", async () => {
    const dir = freshDir();
    const store = await openStore(entities, { dir, key, cleanup: false, quota: { maxBytes: 30_000 }, compaction: { minDeadBytes: 1 << 30 } });
    let i = 0;
    while ((await codeOf(store.conversations.put(conv(`c${i % 5}`)))) === "ok") i++; // overwrites: mostly dead bytes
    const e = (await store.conversations.put(conv("c0")).catch((x: unknown) => x)) as QuotaError;
    expect(e.code).toBe("E_QUOTA");
    expect(e.deadBytes).toBeGreaterThan(e.writeBytes);
    expect(e.message).toContain("a compaction frees them");
    // no explicit compact(): the refusal started one
    const until = Date.now() + 10_000;
    while ((await codeOf(store.conversations.put(conv("c0")))) !== "ok") {
      if (Date.now() > until) throw new Error("no room made");
      await new Promise((r) => setTimeout(r, 10));
    }
    await store.close();
  });

  it("the engine enforces it for every writer (engine-level writes, singletons); a write of deletes only always passes", async () => {
    const dir = freshDir();
    const engine = await Engine.open({ dir, encryption: "none", quota: { maxBytes: 4096 } });
    const put = (k: string, n: number) => engine.write([{ op: "put", entity: "e", key: k, version: 1, value: new Uint8Array(n), terms: [] }]);
    await put("a", 1000);
    await put("b", 1000);
    expect(await codeOf(put("c", 3000))).toBe("E_QUOTA");
    // a write with puts counts whole, deletes in it included
    expect(await codeOf(engine.write([{ op: "put", entity: "e", key: "c", version: 1, value: new Uint8Array(3000), terms: [] }, { op: "delete", entity: "e", key: "a" }]))).toBe("E_QUOTA");
    expect(engine.has("e", "a")).toBe(true);
    expect(await codeOf(engine.write([{ op: "delete", entity: "e", key: "a" }, { op: "delete", entity: "e", key: "b" }]))).toBe("ok");
    await engine.close();

    const { UserSettingsEntity } = await import("../../src/generated/examples/settings/v1/settings_cellar.js");
    const store = await openStore({ settings: UserSettingsEntity }, { dir: freshDir(), key, quota: { maxBytes: 100 } });
    expect(await codeOf(store.settings.update({ language: "de" }))).toBe("E_QUOTA");
    expect((await store.settings.get()).language).toBe("en");
    await store.settings.reset(); // a delete: allowed
    await store.close();
  });

  it("a bad quota is refused at open", async () => {
    for (const maxBytes of [0, -1, Number.NaN, "1mb" as unknown as number]) {
      expect(await codeOf(openStore(entities, { dir: freshDir(), key, quota: { maxBytes } }))).toBe("E_USAGE");
    }
  });
});

describe("store.stats() per entity", () => {
  it("live, dead, history and backup bytes per entity", async () => {
    const dir = freshDir();
    const store = await openStore({ ...entities, layouts: GridLayoutEntity }, { dir, key, cleanup: false, compaction: { auto: false } });
    for (let i = 0; i < 50; i++) await store.conversations.put(conv(`c${i}`));
    let s = store.stats();
    expect(Object.keys(s.entities).sort()).toEqual(["conversations", "grid_layouts"]);
    expect(s.entities.grid_layouts).toEqual({ records: 0, liveBytes: 0, deadBytes: 0, historyBytes: 0, backupBytes: 0, storedVersion: GridLayoutEntity.version });
    const c = s.entities.conversations!;
    expect(c.records).toBe(50);
    expect(c.liveBytes).toBeGreaterThan(50 * 400);
    expect(c.deadBytes).toBe(0);
    // the entities share the data files: their bytes add up to the files' (headers aside)
    expect(c.liveBytes + c.deadBytes).toBeLessThanOrEqual(s.fileBytes);
    expect(c.liveBytes + c.deadBytes).toBeGreaterThan(s.fileBytes - 200);

    // overwrites and deletes become dead bytes, until a compaction
    for (let i = 0; i < 25; i++) await store.conversations.put(conv(`c${i}`));
    for (let i = 25; i < 35; i++) await store.conversations.delete(`c${i}`);
    s = store.stats();
    expect(s.entities.conversations!.records).toBe(40);
    expect(s.entities.conversations!.deadBytes).toBeGreaterThan(25 * 400);
    await store.compact();
    s = store.stats();
    expect(s.entities.conversations!.deadBytes).toBe(0);
    expect(s.entities.conversations!.liveBytes).toBeGreaterThan(0);
    expect(s.entities.conversations!.liveBytes).toBeLessThanOrEqual(s.fileBytes);
    // segment and journal records both count: one more put lands in the journal
    const segLive = s.entities.conversations!.liveBytes;
    await store.conversations.put(conv("new"));
    expect(store.stats().entities.conversations!.liveBytes).toBeGreaterThan(segLive);

    // record history lives in the internal entity `~history:conversations`: counted as the entity's history
    const engine = (store as unknown as { engine: Engine }).engine;
    await engine.write([{ op: "put", entity: "~history:conversations", key: "c1@1", version: 1, value: new Uint8Array(2000).fill(1), terms: [] }]);
    s = store.stats();
    expect(s.entities.conversations!.historyBytes).toBeGreaterThan(2000);
    expect(Object.keys(s.entities).some((k) => k.startsWith("~"))).toBe(false);
    expect(s.entities.conversations!.records).toBe(41);

    // backups: this store's backup files in the backup directory (`<dir>.backups` by default, by the store id
    // in their headers), and legacy `backups/pre-migration-*` directories not moved yet
    const bdir = `${dir}.backups`;
    expect(s.backups).toEqual({ dir: bdir, files: 0, bytes: 0 });
    const info = await store.backup({ to: path.join(bdir, "mine.cellarbackup") });
    const other = freshDir();
    const o = await Engine.open({ dir: other, key });
    await o.backup({ to: path.join(bdir, "other-store.cellarbackup") });
    await o.close();
    fs.writeFileSync(path.join(bdir, "notes.txt"), new Uint8Array(66));
    fs.mkdirSync(path.join(dir, "backups", "pre-migration-20250101T000000Z"), { recursive: true });
    fs.writeFileSync(path.join(dir, "backups", "pre-migration-20250101T000000Z", "segment-000001.seg"), new Uint8Array(1234));
    expect(store.stats().backups).toEqual({ dir: bdir, files: 2, bytes: info.bytes + 1234 });
    await store.close();
  });
});
