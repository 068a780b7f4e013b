/**
 * `repo.archive({ olderThan })` (typed/archive.ts): the records older than a time by a Timestamp field move
 * into a new archive file (a backup file: listed, verified and restored like one) and are deleted from the
 * store; records written meanwhile stay; bad options are typed errors that change nothing; sensitive fields
 * stay sealed in the file, under the store's key or a password. The SIGKILL tests are archive-crash.test.ts.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, it } from "vitest";
import { ConversationEntity } from "../../src/generated/examples/conversations/v1/conversations_cellar.js";
import { UserProfileEntity } from "../../src/generated/examples/profile/v1/profile_cellar.js";
import {
  type CellarError,
  type ChangeEvent,
  isCellarError,
  keys,
  listBackups,
  openStore,
  restoreBackup,
  verifyBackup,
} from "../../src/runtime/index.js";
import { historyEntityName } from "../../src/runtime/typed/history.js";
import type { Engine } from "../../src/runtime/storage/engine.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-archive-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(3);
const DAY = 86_400_000;
const CHEAP = { opsLimit: 1, memLimit: 8192 };
let n = 0;
const freshDir = () => path.join(tmp, `s${n++}`);

const convs = { conversations: { ...ConversationEntity, retention: { maxAgeMs: 365 * DAY, timestampField: "updatedAt" } } as typeof ConversationEntity };
const open = (dir: string, extra: object = {}) => openStore(convs, { dir, key, cleanup: false, ...extra });
const conv = (id: string, ageDays: number | null, title = "t") => ({ id, title, ...(ageDays === null ? {} : { updatedAt: timestampFromMs(Date.now() - ageDays * DAY) }) });

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isCellarError(e)) return (e as CellarError).code;
    throw e;
  }
  return "resolved";
}

/** The records of `entity` in the store restored from `file` into a fresh directory, as JSON by key. */
async function restored(file: string, opts: { key?: Uint8Array; password?: string }, entities: object = convs): Promise<Map<string, unknown>> {
  const dir = freshDir();
  await restoreBackup(file, { dir, ...opts });
  const store = await openStore(entities as typeof convs, { dir, key: opts.password !== undefined ? keys.passphrase(opts.password) : opts.key!, cleanup: false });
  const repo = Object.values(store).find((r) => typeof (r as { list?: unknown } | null)?.list === "function") as typeof store.conversations;
  const out = new Map((await repo.list()).map((r) => [(r as { id: string }).id, repo.toJson(r)] as const));
  await store.close();
  return out;
}

describe("repo.archive()", () => {
  it("moves the records older than `olderThan` into a backup file in the backup directory and deletes them, one change event each", async () => {
    const dir = freshDir();
    const store = await open(dir);
    await store.batch((tx) => {
      for (let i = 0; i < 10; i++) tx.conversations.put(conv(`c${i}`, i < 4 ? 100 + i : 80 - i, `title ${i}`));
      tx.conversations.put(conv("never", null));
    });
    const before = new Map((await store.conversations.list()).map((r) => [r.id, store.conversations.toJson(r)] as const));
    const events: ChangeEvent[] = [];
    store.on("change", (e) => events.push(e));

    const r = await store.conversations.archive({ olderThan: "90d" });
    expect(r.count).toBe(4);
    expect(r.kept).toBe(0);
    expect(path.dirname(r.file!)).toBe(`${path.resolve(dir)}.backups`);
    expect(path.basename(r.file!)).toMatch(/^s\d+-archive-conversations-\d{8}T\d{9}Z\.cellarbackup$/);
    expect(r.info!.label).toMatch(/^cellar:archive conversations older than \d{4}-\d\d-\d\dT[\d:.]+Z$/);
    expect(r.info!.protection).toBe("store-key");
    expect(r.info!.entities).toEqual([{ name: "conversations", version: 1, records: 4 }]);
    expect((await store.conversations.keys()).sort()).toEqual(["c4", "c5", "c6", "c7", "c8", "c9", "never"]);
    expect(events.map((e) => `${e.op} ${String(e.key)}`).sort()).toEqual(["delete c0", "delete c1", "delete c2", "delete c3"]);
    expect(JSON.stringify({ ...r, info: null })).not.toMatch(/"c\d"/); // counts and the file, no key

    // A backup like any other: listed, verified, restored: exactly the archived records, as they were.
    const listed = listBackups(path.dirname(r.file!));
    expect(listed.map((b) => [b.file, b.damaged])).toEqual([[r.file, null]]);
    expect((await verifyBackup(r.file!, { key })).entities).toEqual(r.info!.entities);
    const back = await restored(r.file!, { key });
    expect([...back.keys()].sort()).toEqual(["c0", "c1", "c2", "c3"]);
    for (const [k, json] of back) expect(json).toEqual(before.get(k));

    // Nothing left to archive: no file.
    expect(await store.conversations.archive({ olderThan: "90d" })).toEqual({ count: 0, file: null, info: null, kept: 0 });
    expect(fs.readdirSync(path.dirname(r.file!))).toEqual([path.basename(r.file!)]);
    await store.close();
  });

  it("takes a Date and a file of the app's choosing; another archive goes into a new file", async () => {
    const store = await open(freshDir());
    await store.batch((tx) => {
      for (let i = 0; i < 6; i++) tx.conversations.put(conv(`d${i}`, 10 * i));
    });
    const to = path.join(tmp, "mine", "old.cellarbackup");
    const r = await store.conversations.archive({ olderThan: new Date(Date.now() - 35 * DAY), to });
    expect(r).toMatchObject({ count: 2, file: to, kept: 0 }); // 40 and 50 days
    expect([...(await restored(to, { key })).keys()].sort()).toEqual(["d4", "d5"]);
    // The same file again: refused, nothing deleted.
    expect(await code(store.conversations.archive({ olderThan: "1d", to }))).toBe("E_USAGE");
    expect(await store.conversations.count()).toBe(4);
    const r2 = await store.conversations.archive({ olderThan: "1d" });
    expect(r2.count).toBe(3);
    expect(r2.file).not.toBe(to);
    expect((await store.conversations.keys())).toEqual(["d0"]);
    await store.close();
  });

  it("an entity without a retention time field needs `field`; bad options are E_USAGE (E_CLOSED after close) and change nothing", async () => {
    const dir = freshDir();
    const store = await openStore({ profiles: UserProfileEntity, conversations: convs.conversations }, { dir, key, cleanup: false });
    await store.profiles.put({ id: "p1", displayName: "a", createdAt: timestampFromMs(Date.now() - 400 * DAY) });
    await store.conversations.put(conv("c", 400));
    expect(await code(store.profiles.archive({ olderThan: "1d" }))).toBe("E_USAGE");
    // @ts-expect-error `displayName` is not a Timestamp field
    expect(await code(store.profiles.archive({ olderThan: "1d", field: "displayName" }))).toBe("E_USAGE");
    // @ts-expect-error no such field
    expect(await code(store.profiles.archive({ olderThan: "1d", field: "nope" }))).toBe("E_USAGE");
    // @ts-expect-error a number is not a Date nor a duration (epoch ms or a duration? refused)
    expect(await code(store.conversations.archive({ olderThan: 5000 }))).toBe("E_USAGE");
    // @ts-expect-error not a duration
    expect(await code(store.conversations.archive({ olderThan: "90x" }))).toBe("E_USAGE");
    expect(await code(store.conversations.archive({ olderThan: "1.5d" }))).toBe("E_USAGE"); // whole numbers only (typed as any number)
    expect(await code(store.conversations.archive({ olderThan: new Date(Number.NaN) }))).toBe("E_USAGE");
    // @ts-expect-error olderThan is required
    expect(await code(store.conversations.archive({}))).toBe("E_USAGE");
    // @ts-expect-error unknown option
    expect(await code(store.conversations.archive({ olderThan: "1d", entities: {} }))).toBe("E_USAGE");
    expect(await code(store.conversations.archive({ olderThan: "1d", password: "" }))).toBe("E_USAGE");
    expect(await code(store.conversations.archive({ olderThan: "1d", to: path.join(dir, "inside.cellarbackup") }))).toBe("E_USAGE");
    expect(await store.profiles.count()).toBe(1);
    expect(await store.conversations.count()).toBe(1);
    expect(fs.existsSync(`${dir}.backups`)).toBe(false);
    // With `field`, a Timestamp field of the entity, it works.
    expect((await store.profiles.archive({ olderThan: "1d", field: "createdAt" })).count).toBe(1);
    await store.close();
    expect(await code(store.conversations.archive({ olderThan: "1d" }))).toBe("E_CLOSED");

    // A read-only (redactSensitive) store cannot archive; a plaintext store cannot take a password.
    const ro = await openStore({ conversations: convs.conversations }, { dir, key, redactSensitive: true });
    expect(await code(ro.conversations.archive({ olderThan: "1d" }))).toBe("E_USAGE");
    await ro.close();
    const plainDir = freshDir();
    const plain = await openStore(convs, { dir: plainDir, encryption: "none", cleanup: false });
    await plain.conversations.put(conv("x", 400));
    expect(await code(plain.conversations.archive({ olderThan: "1d", password: "pw" }))).toBe("E_USAGE");
    expect(await plain.conversations.count()).toBe(1);
    expect(fs.existsSync(`${plainDir}.backups`) ? fs.readdirSync(`${plainDir}.backups`) : []).toEqual([]); // no file left behind
    const r = await plain.conversations.archive({ olderThan: "1d" });
    expect(r).toMatchObject({ count: 1, info: { protection: "none" } });
    await plain.close();
    await verifyBackup(r.file!);
  });

  it("uses `backups.dir` when the store has one", async () => {
    const backups = path.join(tmp, "elsewhere");
    const store = await open(freshDir(), { backups: { dir: backups, every: "1d", keep: { last: 1 } } });
    await store.conversations.put(conv("a", 400));
    const r = await store.conversations.archive({ olderThan: "1d" });
    expect(path.dirname(r.file!)).toBe(backups);
    await store.close();
  });

  it("writes during the archive survive: records written after its selection stay in the store with their new values", async () => {
    const store = await open(freshDir());
    const N = 3000;
    for (let b = 0; b < N; b += 1000) {
      await store.batch((tx) => {
        for (let i = b; i < b + 1000; i++) tx.conversations.put(conv(`o${String(i).padStart(4, "0")}`, 200 + (i % 50), "x".repeat(200)));
      });
    }
    const archiving = store.conversations.archive({ olderThan: "100d" });
    // Meanwhile: old records made new, new records, deletes, and updates that keep a record old.
    const written = new Map<string, string>();
    let settled = false;
    void archiving.finally(() => (settled = true));
    for (let i = 0; !settled; i++) {
      const k = `o${String((i * 37) % N).padStart(4, "0")}`;
      if (i % 3 === 0) {
        await store.conversations.put(conv(k, 1, `new ${i}`));
        written.set(k, `new ${i}`);
      } else if (i % 3 === 1) {
        await store.conversations.put(conv(`fresh${i}`, 1, `fresh ${i}`));
        written.set(`fresh${i}`, `fresh ${i}`);
      } else {
        await store.conversations.update(k, { title: `upd ${i}` }).catch((e: unknown) => {
          if (!isCellarError(e, "E_NOT_FOUND")) throw e; // archived already
        });
        if (await store.conversations.has(k)) written.set(k, `upd ${i}`);
      }
    }
    const r = await archiving;
    expect(written.size).toBeGreaterThan(0);
    const left = new Set((await store.conversations.keys()) as string[]);
    const back = await restored(r.file!, { key });
    // Every acknowledged write is in the store as written; an update that left a record old and landed before
    // the archive's selection may have been archived: then the file holds it as written.
    for (const [k, title] of written) {
      if (title.startsWith("upd") && !left.has(k)) expect((back.get(k) as { title: string }).title, k).toBe(title);
      else expect((await store.conversations.get(k))?.title, k).toBe(title);
    }
    // Every original record that is gone is in the file; the file holds count + kept records.
    for (let i = 0; i < N; i++) {
      const k = `o${String(i).padStart(4, "0")}`;
      if (!left.has(k)) expect(back.has(k), k).toBe(true);
    }
    expect(back.size).toBe(r.count + r.kept);
    expect(N - [...left].filter((k) => k.startsWith("o")).length).toBe(r.count);
    expect(r.count).toBeGreaterThan(N / 2);
    await store.close();
  }, 30_000);

  it("close() during an archive stops it: nothing deleted, no file left", async () => {
    const dir = freshDir();
    const store = await open(dir);
    for (let b = 0; b < 4; b++) {
      await store.batch((tx) => {
        for (let i = b * 1000; i < (b + 1) * 1000; i++) tx.conversations.put(conv(`k${i}`, 200, "x".repeat(250)));
      });
    }
    // Its outcome is awaited from the start: it may reject while close() is still running.
    const archiving = code(store.conversations.archive({ olderThan: "100d" }));
    await store.close(); // the archive is past its first slice: it stops at its next check, before any delete
    expect(await archiving).toBe("E_CLOSED");
    const again = await open(dir);
    expect(await again.conversations.count()).toBe(4000);
    await again.close();
    expect(fs.existsSync(`${dir}.backups`) ? fs.readdirSync(`${dir}.backups`) : []).toEqual([]);
  });

  it("deletes past 8 MiB go in several atomic writes, every one after the verified file", async () => {
    const store = await open(freshDir());
    // ~3 KB per delete as the engine counts it (3 bytes per key character): 3,000 of them need two writes
    const long = (i: number) => `${String(i).padStart(5, "0")}${"k".repeat(1000)}`;
    for (let b = 0; b < 3; b++) {
      await store.batch((tx) => {
        for (let i = b * 1000; i < (b + 1) * 1000; i++) tx.conversations.put(conv(long(i), 200));
      });
    }
    await store.conversations.put(conv("fresh", 1));
    const engine = (store as unknown as { engine: Engine }).engine;
    const writes: { deletes: number; fileThere: boolean }[] = [];
    const write = engine.write.bind(engine);
    let target = "";
    engine.write = (ops) => {
      writes.push({ deletes: ops.filter((o) => o.op === "delete").length, fileThere: fs.existsSync(target) });
      return write(ops);
    };
    target = path.join(tmp, "split.cellarbackup");
    const r = await store.conversations.archive({ olderThan: "100d", to: target });
    expect(r).toMatchObject({ count: 3000, kept: 0 });
    expect(writes.length).toBe(2);
    expect(writes.every((w) => w.fileThere)).toBe(true);
    expect(writes.reduce((n, w) => n + w.deletes, 0)).toBe(3000);
    expect(await store.conversations.keys()).toEqual(["fresh"]);
    await store.close();
    expect((await verifyBackup(target, { key })).entities[0]!.records).toBe(3000);
  });

  it("keeps sensitive fields sealed in the file, under the store's key or a password; restores them with either", async () => {
    const profiles = { profiles: UserProfileEntity };
    const store = await openStore(profiles, { dir: freshDir(), key, cleanup: false });
    const email = "very.secret.address@example.org";
    const token = "tok-SECRET-0123456789abcdef";
    for (let i = 0; i < 5; i++) await store.profiles.put({ id: `p${i}`, displayName: `user ${i}`, email, authToken: token, createdAt: timestampFromMs(Date.now() - (i + 1) * 100 * DAY) });
    const byKey = await store.profiles.archive({ olderThan: "250d", field: "createdAt" }); // p2, p3, p4
    const byPassword = await store.profiles.archive({ olderThan: "150d", field: "createdAt", password: "correct horse", passwordCost: CHEAP }); // p1
    expect([byKey.count, byPassword.count]).toEqual([3, 1]);
    expect(byPassword.info!.protection).toBe("password");
    expect((await store.profiles.keys())).toEqual(["p0"]);
    await store.close();
    for (const f of [byKey.file!, byPassword.file!]) {
      const bytes = fs.readFileSync(f);
      expect(bytes.includes(email)).toBe(false);
      expect(bytes.includes(token)).toBe(false);
    }
    const a = await restored(byKey.file!, { key }, profiles);
    expect([...a.keys()].sort()).toEqual(["p2", "p3", "p4"]);
    expect(a.get("p2")).toMatchObject({ email, authToken: token });
    expect(await code(verifyBackup(byPassword.file!, { password: "wrong" }))).toBe("E_KEY");
    const b = await restored(byPassword.file!, { password: "correct horse" }, profiles);
    expect([...b.keys()]).toEqual(["p1"]);
    expect(b.get("p1")).toMatchObject({ email, authToken: token });
  });

  it("writes no record history for its deletes, and leaves the history there was", async () => {
    const withHistory = { conversations: { ...convs.conversations, history: { keep: 5 } } as typeof ConversationEntity };
    const store = await openStore(withHistory, { dir: freshDir(), key, cleanup: false });
    await store.conversations.put(conv("h", 400, "first"));
    await store.conversations.put(conv("h", 400, "second"));
    const engine = (store as unknown as { engine: Engine }).engine;
    const hist = historyEntityName("conversations");
    expect(engine.count(hist)).toBe(2);
    const r = await store.conversations.archive({ olderThan: "1d" });
    expect(r.count).toBe(1);
    expect(r.info!.entities.map((e) => e.name)).toEqual(["conversations"]);
    expect(engine.count(hist)).toBe(2);
    expect((await store.conversations.history("h")).map((e) => (e.value as { title?: string } | undefined)?.title)).toEqual(["first", undefined]);
    await store.close();
  });
});
