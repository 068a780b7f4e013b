/**
 * Record history (`(cellar.v1.entity).history`): `repo.history(key)` and `repo.revert(key, at)` over real
 * stores: puts, updates, deletes and batches each keep the version they replaced, in the same engine write;
 * `keep` and `maxAgeMs` prune; entries are sealed like records (sensitive parts under the history entity's
 * own key) and survive rotation + re-encryption, compaction and reopen.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, expectTypeOf, it, vi } from "vitest";
import { entities } from "../../src/generated/index.js";
import { defineCollection, type HistoryEntry, isCellarError, openStore, type StoredRecord, type StoreOptions } from "../../src/runtime/index.js";
import type { UserSettingsSchema } from "../../src/generated/examples/settings/v1/settings_pb.js";
import type { TaskSchema } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import type { TaskIndex, TaskKey } from "../../src/generated/examples/tasks/v1/tasks_cellar.js";
import type { StoreImpl } from "../../src/runtime/typed/store.js";
import { notesAt } from "./helpers/notes-versions.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-history-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => void vi.useRealTimers());
const key = new Uint8Array(32).fill(7);
const fail = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);

const tasks = defineCollection<typeof TaskSchema, TaskKey, TaskIndex>({ ...entities.tasks, history: { keep: 3 } });
const profiles = defineCollection({ ...entities.profiles, history: { keep: 10, maxAgeMs: 30 * 86_400_000 } });
const app = { tasks, profiles, settings: entities.settings, notes: entities.conversations };
const open = (dir: string, extra: Partial<StoreOptions> = {}) => openStore(app, { dir: path.join(tmp, dir), key, ...extra });

/** Engine records of the hidden history entity of `entity`. */
function entryCount(store: unknown, entity: string): number {
  return (store as StoreImpl).engine.count(`~history:${entity}`);
}

/** Every file of a store directory, concatenated. */
function allBytes(dir: string): Buffer {
  const out: Buffer[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(fs.readFileSync(p));
    }
  };
  walk(dir);
  return Buffer.concat(out);
}

describe("record history of a collection", () => {
  it("puts, updates and deletes each keep the version they replaced, newest first, with the time of the change", async () => {
    const store = await open("basic");
    const t0 = Date.now();
    await store.tasks.put({ id: "t1", title: "first" });
    await store.tasks.update("t1", { title: "second" });
    expect(await store.tasks.delete("t1")).toBe(true);
    const h = await store.tasks.history("t1");
    expectTypeOf(h).toEqualTypeOf<HistoryEntry<StoredRecord<typeof TaskSchema> | undefined>[]>();
    expectTypeOf(store.tasks.revert).parameters.toEqualTypeOf<[string, string | Date]>();
    expectTypeOf(await store.settings.history()).toEqualTypeOf<HistoryEntry<StoredRecord<typeof UserSettingsSchema>>[]>();
    // @ts-expect-error a key of the wrong type
    void (() => store.tasks.history(1));
    // @ts-expect-error entries are read-only
    void (() => (h[0]!.changedAt = new Date()));
    expect(h.map((e) => e.value?.title)).toEqual(["second", "first", undefined]);
    for (const e of h) {
      expect(Object.isFrozen(e)).toBe(true);
      expect(e.id).toMatch(/^[0-9a-f]{16}$/);
      expect(e.changedAt.getTime()).toBeGreaterThanOrEqual(t0);
      expect(e.changedAt.getTime()).toBeLessThanOrEqual(Date.now());
    }
    expect(Object.isFrozen(h[0]!.value)).toBe(true);
    // Ids (and times) never go down: the newest entry first.
    expect([...h].map((e) => e.id).sort().reverse()).toEqual(h.map((e) => e.id));
    // A delete of a missing record changes nothing: no entry.
    expect(await store.tasks.delete("t1")).toBe(false);
    expect(await store.tasks.history("t1")).toHaveLength(3);
    // Other records have their own history; a record never written has none.
    await store.tasks.put({ id: "t2", title: "other" });
    expect((await store.tasks.history("t2")).map((e) => e.value)).toEqual([undefined]);
    expect(await store.tasks.history("nope")).toEqual([]);
    await store.close();
  });

  it("`keep` prunes the oldest entries in the same write", async () => {
    const store = await open("keep");
    for (let i = 0; i < 6; i++) await store.tasks.put({ id: "t1", title: `v${i}` });
    expect((await store.tasks.history("t1")).map((e) => e.value?.title)).toEqual(["v4", "v3", "v2"]);
    expect(entryCount(store, "tasks")).toBe(3);
    await store.close();
  });

  it("concurrent writes to one key, issued before any commits, each record the one before", async () => {
    const store = await open("concurrent");
    const email = "p@example.com";
    await store.profiles.put({ id: "p", displayName: "a", email });
    await Promise.all([
      store.profiles.put({ id: "p", displayName: "b", email }),
      store.profiles.put({ id: "p", displayName: "c", email }),
      store.profiles.update("p", { displayName: "d" }),
      store.profiles.put({ id: "p", displayName: "e", email }),
    ]);
    // `update` waits for the writes to its key in flight, so it applies last: a, b, c, e, then d.
    expect((await store.profiles.get("p"))?.displayName).toBe("d");
    expect((await store.profiles.history("p")).map((e) => e.value?.displayName)).toEqual(["e", "c", "b", "a", undefined]);
    await store.close();
  });

  it("a batch records every write it makes, in order, in its one commit", async () => {
    const store = await open("batch");
    await store.tasks.put({ id: "a", title: "a0" });
    await store.batch((tx) => {
      tx.tasks.put({ id: "a", title: "a1" });
      tx.tasks.put({ id: "b", title: "b1" });
      tx.tasks.put({ id: "a", title: "a2" });
      tx.tasks.delete("zz"); // missing: no entry
      tx.settings.update({ language: "fr" });
      tx.settings.update({ language: "de" });
    });
    expect((await store.tasks.history("a")).map((e) => e.value?.title)).toEqual(["a1", "a0", undefined]);
    expect((await store.tasks.history("b")).map((e) => e.value?.title)).toEqual([undefined]);
    expect(await store.tasks.history("zz")).toEqual([]);
    // The batch's two updates of the singleton come to one write: one entry, the defaults it replaced.
    expect((await store.settings.history()).map((e) => e.value.language)).toEqual(["en"]);
    await store.close();
  });

  it("revert writes an old version back as a new write, by entry id or by time", async () => {
    const store = await open("revert");
    await store.tasks.put({ id: "t", title: "one", tags: ["x"] });
    await store.tasks.put({ id: "t", title: "two" });
    const [last] = await store.tasks.history("t");
    const back = await store.tasks.revert("t", last!.id);
    expect(back).toMatchObject({ title: "one", tags: ["x"] });
    expect(await store.tasks.get("t")).toEqual(back);
    expect(await store.tasks.query({ tags: "x" })).toHaveLength(1); // index terms written as by a put
    // The revert is a change like any other: the version it replaced is in the history.
    expect((await store.tasks.history("t")).map((e) => e.value?.title)).toEqual(["two", "one", undefined]);
    await store.close();
  });

  it("revert by time writes back the version the record had then", async () => {
    const store = await open("revert-time");
    const p = (displayName: string) => ({ id: "p", displayName, email: `${displayName}@example.com` });
    await store.profiles.put(p("one"));
    await new Promise((r) => setTimeout(r, 5));
    const between = new Date();
    await new Promise((r) => setTimeout(r, 5));
    await store.profiles.put(p("two"));
    await store.profiles.put(p("three"));
    expect(await store.profiles.revert("p", between)).toMatchObject({ displayName: "one" });
    // A time after the last change: nothing changed since, nothing written.
    const n = (await store.profiles.history("p")).length;
    expect(await store.profiles.revert("p", new Date(Date.now() + 60_000))).toMatchObject({ displayName: "one" });
    expect(await store.profiles.history("p")).toHaveLength(n);
    // Before the oldest entry (here the record's creation): what came before is not known (entries may
    // have been pruned), so E_NOT_FOUND rather than a guess.
    const created = (await store.profiles.history("p")).at(-1)!;
    expect(created.value).toBeUndefined();
    const err = await fail(store.profiles.revert("p", new Date(created.changedAt.getTime() - 1)));
    expect(isCellarError(err, "E_NOT_FOUND")).toBe(true);
    expect(await store.profiles.has("p")).toBe(true);
    await store.close();
  });

  it("`keep` bounds how far back a time reaches: older than the oldest kept entry is E_NOT_FOUND", async () => {
    const store = await open("revert-keep");
    await store.tasks.put({ id: "t", title: "0" });
    await new Promise((r) => setTimeout(r, 5));
    const early = new Date();
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 1; i < 5; i++) await store.tasks.put({ id: "t", title: String(i) });
    const err = await fail(store.tasks.revert("t", early));
    expect(isCellarError(err, "E_NOT_FOUND")).toBe(true);
    expect((await store.tasks.get("t"))?.title).toBe("4");
    await store.close();
  });

  it("reverting to the entry of the change that created the record deletes it; unknown entries are E_NOT_FOUND", async () => {
    const store = await open("revert-create");
    await store.profiles.put({ id: "p", displayName: "x", email: "x@example.com" });
    const [created] = await store.profiles.history("p");
    expect(created!.value).toBeUndefined();
    expect(await store.profiles.revert("p", created!.id)).toBeUndefined();
    expect(await store.profiles.has("p")).toBe(false);
    // ...and the deleted version is in the history, so the delete can be undone in turn.
    const [deleted] = await store.profiles.history("p");
    expect(deleted!.value?.displayName).toBe("x");
    expect(await store.profiles.revert("p", deleted!.id)).toMatchObject({ displayName: "x" });

    const err = await fail(store.profiles.revert("p", "00000000000a0000"));
    expect(isCellarError(err, "E_NOT_FOUND")).toBe(true);
    expect((err as Error).message).not.toContain("00000000000a0000");
    // Before the oldest entry: the history does not reach back there.
    expect(isCellarError(await fail(store.profiles.revert("p", new Date(0))), "E_NOT_FOUND")).toBe(true);
    expect(isCellarError(await fail(store.profiles.revert("p", new Date(NaN))), "E_USAGE")).toBe(true);
    await store.close();
  });

  it("an entity without a history rule refuses history() and revert() (E_USAGE) and writes no entry", async () => {
    const store = await open("off");
    await store.notes.put({ id: "c1", title: "hello" });
    await store.notes.put({ id: "c1", title: "again" });
    expect(isCellarError(await fail(store.notes.history("c1")), "E_USAGE")).toBe(true);
    expect(isCellarError(await fail(store.notes.revert("c1", new Date())), "E_USAGE")).toBe(true);
    expect(entryCount(store, "conversations")).toBe(0);
    await store.close();
  });

  it("a key too long for its entry keys is E_LIMIT before anything is written; the longest allowed works", async () => {
    const store = await open("long-key");
    const err = await fail(store.profiles.put({ id: "k".repeat(1024 - 16), displayName: "x" }));
    expect(isCellarError(err, "E_LIMIT")).toBe(true);
    expect((err as Error).message).toContain("at most 1007 bytes");
    expect(await store.profiles.count()).toBe(0);
    const longest = "k".repeat(1007);
    await store.profiles.put({ id: longest, displayName: "a" });
    await store.profiles.put({ id: longest, displayName: "b" });
    expect((await store.profiles.history(longest)).map((e) => e.value?.displayName)).toEqual(["a", undefined]);
    // A batch with one such key writes nothing, and leaves nothing behind for the next write of its other keys.
    await store.profiles.put({ id: "t", displayName: "1" });
    const batch = store.batch((tx) => {
      tx.profiles.put({ id: "t", displayName: "2" });
      tx.profiles.put({ id: "k".repeat(1010), displayName: "x" });
    });
    expect(isCellarError(await fail(batch), "E_LIMIT")).toBe(true);
    await store.profiles.put({ id: "t", displayName: "3" });
    expect((await store.profiles.history("t")).map((e) => e.value?.displayName)).toEqual(["1", undefined]);
    await store.close();
  });

  it("a write the engine refuses leaves no trace: the next write of its key, issued at once, records the stored version", async () => {
    const notes = defineCollection({ ...notesAt(1), history: { keep: 2 } });
    const store = await openStore({ notes }, { dir: path.join(tmp, "refused"), key });
    await store.notes.put({ id: "n", text: "a" });
    await store.notes.put({ id: "n", text: "b" });
    const big = store.notes.put({ id: "n", text: "x".repeat(16 * 1024 * 1024) }); // over the record size limit
    const next = store.notes.put({ id: "n", text: "c" });
    expect(isCellarError(await fail(big), "E_LIMIT")).toBe(true);
    await next;
    expect((await store.notes.history("n")).map((e) => e.value?.text)).toEqual(["b", "a"]);
    expect(entryCount(store, "notes")).toBe(2); // the entry the refused write would have pruned was pruned by the next
    await store.close();
  });

  it("history entries fire no change events", async () => {
    const store = await open("events");
    const seen: string[] = [];
    store.on("change", (e) => seen.push(`${e.entity}:${e.op}`));
    await store.tasks.put({ id: "t", title: "a" });
    await store.tasks.put({ id: "t", title: "b" });
    await store.tasks.delete("t");
    expect(seen).toEqual(["tasks:put", "tasks:put", "tasks:delete"]);
    await store.close();
  });

  it("hand-written entity names starting with `~` and bad history rules are refused", async () => {
    const hidden = defineCollection({ ...entities.tasks, name: "~history:tasks" });
    expect(isCellarError(await fail(openStore({ hidden }, { dir: path.join(tmp, "tilde"), key })), "E_USAGE")).toBe(true);
    for (const history of [{ keep: 0 }, { keep: 1.5 }, { maxAgeMs: -1 }, {}]) {
      const bad = defineCollection({ ...entities.tasks, history });
      expect(isCellarError(await fail(openStore({ bad }, { dir: path.join(tmp, "bad-rule"), key })), "E_USAGE")).toBe(true);
    }
    expect(fs.existsSync(path.join(tmp, "tilde"))).toBe(false);
  });
});

describe("max age", () => {
  const day = 86_400_000;
  it("entries older than maxAgeMs are pruned on the next write of the record, hidden from history() until then, and swept at open", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.UTC(2026, 0, 1);
    vi.setSystemTime(t0);
    let store = await open("max-age");
    await store.profiles.put({ id: "a", displayName: "a1" });
    await store.profiles.put({ id: "b", displayName: "b1" });
    vi.setSystemTime(t0 + 10 * day);
    await store.profiles.put({ id: "a", displayName: "a2" });
    expect(entryCount(store, "profiles")).toBe(3);
    vi.setSystemTime(t0 + 35 * day);
    // Not written since: the 35-day-old entries of `b` and the first of `a` are no longer listed...
    expect(await store.profiles.history("b")).toEqual([]);
    expect((await store.profiles.history("a")).map((e) => e.value?.displayName)).toEqual(["a1"]);
    // ...and a write of `a` deletes its expired entry in the same write.
    await store.profiles.put({ id: "a", displayName: "a3" });
    expect((await store.profiles.history("a")).map((e) => e.value?.displayName)).toEqual(["a2", "a1"]);
    expect(entryCount(store, "profiles")).toBe(3); // b's expired entry is still stored
    await store.close();
    // Open sweeps what expired (b's entry).
    store = await open("max-age");
    expect(entryCount(store, "profiles")).toBe(2);
    expect((await store.profiles.history("a")).map((e) => e.value?.displayName)).toEqual(["a2", "a1"]);
    await store.close();
  });

  it("a clock that goes back never reorders the entries", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.UTC(2026, 5, 1);
    vi.setSystemTime(t0);
    const store = await open("clock-back");
    await store.tasks.put({ id: "t", title: "1" });
    vi.setSystemTime(t0 - 60_000);
    await store.tasks.put({ id: "t", title: "2" });
    await store.tasks.put({ id: "t", title: "3" });
    const h = await store.tasks.history("t");
    expect(h.map((e) => e.value?.title)).toEqual(["2", "1", undefined]);
    expect(h.map((e) => e.changedAt.getTime())).toEqual([t0, t0, t0]);
    await store.close();
  });
});

describe("singleton history: undo my last settings change", () => {
  it("history() lists previous values (the defaults before the first change); revert(last.id) undoes the last change", async () => {
    const store = await open("settings");
    expect(await store.settings.history()).toEqual([]);
    await store.settings.update({ language: "fr" });
    await store.settings.set("ui.fontSize", 18);
    await store.settings.update({ language: "de" });
    const h = await store.settings.history();
    expect(h.map((e) => [e.value.language, e.value.ui?.fontSize])).toEqual([
      ["fr", 18],
      ["fr", 14],
      ["en", 14],
    ]);
    // Undo the last change.
    const [last] = h;
    expect(await store.settings.revert(last!.id)).toMatchObject({ language: "fr", ui: { fontSize: 18 } });
    expect((await store.settings.get()).language).toBe("fr");
    // Undo everything: back to the entry of the first change, the never-set value: a reset.
    const first = (await store.settings.history()).at(-1)!;
    expect((await store.settings.revert(first.id)).language).toBe("en");
    expect((store as unknown as StoreImpl).engine.has("settings", "")).toBe(false);
    // A reset is a change too.
    await store.settings.update({ language: "it" });
    await store.settings.reset();
    expect((await store.settings.history())[0]!.value.language).toBe("it");
    await store.close();
  });
});

describe("history is stored data", () => {
  it("sensitive fields in entries are sealed under the history entity's own key: never in the files, redacted without the keys, readable after rotation + reencrypt", async () => {
    const dir = "sealed";
    const email = "alice.history.secret@example.com";
    const token = "tok-HISTORY-9f8e7d6c5b4a";
    let store = await open(dir);
    await store.profiles.put({ id: "p1", displayName: "Alice", email, authToken: token });
    await store.profiles.put({ id: "p1", displayName: "Alice B", email: "new@example.com" });
    await store.compact(); // the entry in the segment as well as the journal
    await store.profiles.put({ id: "p1", displayName: "Alice C" });
    await store.close();
    const bytes = allBytes(path.join(tmp, dir));
    expect(bytes.includes(Buffer.from(email))).toBe(false);
    expect(bytes.includes(Buffer.from(token))).toBe(false);
    expect(bytes.includes(Buffer.from("Alice B"))).toBe(false);

    // Without the sensitive-field keys: the public part reads, the sealed part does not open.
    const ro = await open(dir, { redactSensitive: true });
    const redacted = await ro.profiles.history("p1");
    expect(redacted.map((e) => [e.value?.displayName, e.value?.email])).toEqual([
      ["Alice B", ""],
      ["Alice", ""],
      [undefined, undefined],
    ]);
    await ro.close();

    store = await open(dir);
    const before = await store.keyInfo();
    await store.rotateKey();
    const destroyed = await store.reencrypt();
    expect(destroyed).toEqual(before.keyIds);
    const h = await store.profiles.history("p1");
    expect(h.map((e) => [e.value?.email, e.value?.authToken])).toEqual([
      ["new@example.com", ""],
      [email, token],
      [undefined, undefined],
    ]);
    // Revert after the re-encryption: the old secret comes back.
    expect(await store.profiles.revert("p1", h[1]!.id)).toMatchObject({ email, authToken: token });
    await store.close();
    const again = allBytes(path.join(tmp, dir));
    expect(again.includes(Buffer.from(email))).toBe(false);
  });

  it("survives reopen and compaction; ids keep growing after reopen", async () => {
    let store = await open("reopen");
    await store.tasks.put({ id: "t", title: "a" });
    await store.tasks.put({ id: "t", title: "b" });
    const before = await store.tasks.history("t");
    await store.close();
    store = await open("reopen");
    expect(await store.tasks.history("t")).toEqual(before);
    await store.compact();
    expect(await store.tasks.history("t")).toEqual(before);
    await store.tasks.put({ id: "t", title: "c" });
    const after = await store.tasks.history("t");
    expect(after.map((e) => e.value?.title)).toEqual(["b", "a", undefined]);
    expect(after[0]!.id > before[0]!.id).toBe(true);
    await store.close();
  });

  it("records in entities without history are not touched: the entity's own records and keys are unchanged", async () => {
    const store = await open("plain-untouched");
    await store.notes.put({ id: "c", title: "x" });
    await store.tasks.put({ id: "t", title: "y" });
    expect([...(store as unknown as StoreImpl).engine.keys("tasks")]).toEqual(["t"]);
    expect([...(store as unknown as StoreImpl).engine.keys("~history:tasks")]).toHaveLength(1);
    expect([...(store as unknown as StoreImpl).engine.keys("~history:tasks")][0]).toMatch(/^t\u0000[0-9a-f]{16}$/);
    await store.close();
  });
});
