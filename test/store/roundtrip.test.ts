import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type DescMessage, equals, type MessageShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { ApplicationStateSchema } from "../../src/generated/examples/appstate/v1/app_state_pb.js";
import { ConversationSchema, Role } from "../../src/generated/examples/conversations/v1/conversations_pb.js";
import { FocusOutcome, FocusSessionSchema } from "../../src/generated/examples/focus/v1/focus_pb.js";
import { GridLayoutSchema } from "../../src/generated/examples/layouts/v1/layouts_pb.js";
import { UserProfileSchema } from "../../src/generated/examples/profile/v1/profile_pb.js";
import { AiProviderKind, Theme, UserSettingsSchema } from "../../src/generated/examples/settings/v1/settings_pb.js";
import { Priority, TaskSchema, TaskStatus } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import { isCellarError, type StoredRecord, ValidationError } from "../../src/runtime/index.js";
import { snapshot } from "../helpers/files.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-rt-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(42);
const at = (iso: string) => timestampFromDate(new Date(iso));

const task = (i: number) => ({
  id: `task-${String(i).padStart(4, "0")}`,
  title: `Write the quarterly report, part ${i}`,
  status: i % 3 === 0 ? TaskStatus.DONE : TaskStatus.TODO,
  priority: Priority.HIGH,
  createdAt: at("2026-01-02T03:04:05.678Z"),
  completedAt: i % 3 === 0 ? at("2026-01-03T00:00:00Z") : undefined,
  tags: i % 2 ? ["work", "q4"] : ["home"],
  notes: "Numbers from finance first; then the summary. ünïcödé ✓",
  projectId: i % 2 ? "proj-1" : "",
  estimateMinutes: 90,
});

/** Records are typed deeply read-only; protobuf-es's `equals` only reads, so the cast to its message type is safe. */
function same<D extends DescMessage>(schema: D, a: StoredRecord<D> | undefined, b: StoredRecord<D> | undefined): boolean {
  return a !== undefined && b !== undefined && equals(schema, a as MessageShape<D>, b as MessageShape<D>);
}

describe("every example entity round-trips through its generated repository on the real engine", () => {
  const dir = path.join(tmp, "all");

  it("writes each entity, reads it back equal, and finds it equal again after a reopen", async () => {
    let store = await openStore({ dir, key });
    const t = await store.tasks.put(task(1));
    const settings = await store.settings.update({
      theme: Theme.DARK,
      language: "pt-BR",
      keyBindings: { "task.new": "CmdOrCtrl+N", "app.quit": "CmdOrCtrl+Q" },
      ui: { sidebarCollapsed: true, fontSize: 16 },
      aiProvider: { kind: AiProviderKind.ANTHROPIC, model: "claude", apiKey: "sk-test-123" },
    });
    const focus = await store.focusSessions.put({
      id: "f1",
      startedAt: at("2026-02-01T09:00:00Z"),
      duration: durationFromMs(1_500_125),
      taskId: "task-0001",
      outcome: FocusOutcome.COMPLETED,
    });
    const conv = await store.conversations.put({
      id: "c1",
      title: "Trip planning",
      model: "claude",
      totalTokens: 9_007_199_254_740_993n, // beyond 2^53: must survive as a bigint
      messages: [
        { id: "m1", role: Role.USER, body: { case: "content", value: "Where should we go?" }, promptTokens: 12 },
        {
          id: "m2",
          role: Role.ASSISTANT,
          body: { case: "toolCall", value: { name: "search", arguments: { q: "beaches", n: 3, nested: { ok: true } } } },
          completionTokens: 40,
        },
      ],
    });
    const layout = await store.gridLayouts.put({
      id: "default",
      name: "Default",
      columns: 12,
      instances: { w1: { widgetType: "clock", title: "Clock", config: { tz: "UTC" } } },
      positions: { w1: { x: 0, y: 0, width: 2, height: 1, zIndex: 3 } },
    });
    const appState = await store.appState.update({
      mainWindow: { x: -10, y: 20, width: 1280, height: 800, maximized: true, displayId: "d1" },
      openPanels: ["tasks", "focus"],
      detachedWindows: { chat: { x: 5, y: 5, width: 400, height: 600 } },
    });
    const profile = await store.profiles.put({
      id: "u1",
      displayName: "Ada",
      email: "ada@example.com",
      authToken: "tok-secret",
      locale: "en-GB",
      avatar: new Uint8Array([1, 2, 3, 250]),
      usageSeconds: 18_446_744_073_709_551_615n,
    });

    const check = async () => {
      expect(same(TaskSchema, await store.tasks.get("task-0001"), t)).toBe(true);
      expect(same(UserSettingsSchema, await store.settings.get(), settings)).toBe(true);
      expect(same(FocusSessionSchema, await store.focusSessions.get("f1"), focus)).toBe(true);
      expect(same(ConversationSchema, await store.conversations.get("c1"), conv)).toBe(true);
      expect(same(GridLayoutSchema, await store.gridLayouts.get("default"), layout)).toBe(true);
      expect(same(ApplicationStateSchema, await store.appState.get(), appState)).toBe(true);
      expect(same(UserProfileSchema, await store.profiles.get("u1"), profile)).toBe(true);
      expect((await store.conversations.get("c1"))!.totalTokens).toBe(9_007_199_254_740_993n);
    };
    await check();
    await store.close();
    store = await openStore({ dir, key });
    await check();
    await store.compact();
    await check();
    await store.close();
    store = await openStore({ dir, key });
    await check();
    await store.close();
  });
});

describe("collections", () => {
  it("get/put/delete/has/count/list/keys/query agree with what was written, in key order, across a reopen", async () => {
    const dir = path.join(tmp, "coll");
    let store = await openStore({ dir, key });
    for (let i = 20; i >= 1; i--) await store.tasks.put(task(i));
    expect(await store.tasks.count()).toBe(20);
    expect(await store.tasks.has("task-0005")).toBe(true);
    expect(await store.tasks.delete("task-0005")).toBe(true);
    expect(await store.tasks.delete("task-0005")).toBe(false);
    expect(await store.tasks.get("task-0005")).toBeUndefined();
    const keys = await store.tasks.keys();
    expect(keys).toEqual([...keys].sort());
    expect(keys).toHaveLength(19);
    expect((await store.tasks.list({ offset: 2, limit: 3 })).map((x) => x.id)).toEqual(keys.slice(2, 5));
    const done = await store.tasks.query({ status: TaskStatus.DONE });
    expect(done.map((x) => x.id)).toEqual(keys.filter((k) => Number(k.slice(5)) % 3 === 0));
    const workDone = await store.tasks.query({ status: TaskStatus.DONE, tags: "work" });
    expect(workDone.map((x) => x.id)).toEqual(keys.filter((k) => Number(k.slice(5)) % 3 === 0 && Number(k.slice(5)) % 2 === 1));
    // changing an indexed field moves the record between query results
    await store.tasks.put({ ...task(3), status: TaskStatus.TODO });
    expect((await store.tasks.query({ status: TaskStatus.DONE })).map((x) => x.id)).not.toContain("task-0003");
    await store.close();
    store = await openStore({ dir, key });
    expect(await store.tasks.keys()).toEqual(keys);
    expect((await store.tasks.query({ tags: "home" })).length).toBe(keys.filter((k) => Number(k.slice(5)) % 2 === 0).length);
    expect((await store.tasks.query({ status: TaskStatus.DONE })).map((x) => x.id)).not.toContain("task-0003");
    await store.close();
  });

  it("list and keys agree, in code point order, across segment records, newer journal records and deletes", async () => {
    const dir = path.join(tmp, "order");
    let store = await openStore({ dir, key });
    const ids = ["b", "a", "\uE000", "\u{1F600}", "é", "ab", "z"];
    for (const id of ids) await store.tasks.put({ ...task(1), id });
    await store.compact(); // these now live in the segment
    await store.tasks.put({ ...task(2), id: "aa" }); // journal records, between segment keys
    await store.tasks.put({ ...task(3), id: "\u{1F601}" });
    await store.tasks.put({ ...task(4), id: "b" }); // overwrite of a segment record
    await store.tasks.delete("z");
    const expected = ["a", "aa", "ab", "b", "é", "\uE000", "\u{1F600}", "\u{1F601}"];
    const check = async () => {
      expect((await store.tasks.list()).map((t) => t.id)).toEqual(expected);
      expect(await store.tasks.keys()).toEqual(expected);
      expect((await store.tasks.list({ offset: 2, limit: 3 })).map((t) => t.id)).toEqual(expected.slice(2, 5));
      expect((await store.tasks.get("b"))!.title).toBe(task(4).title);
    };
    await check();
    await store.close();
    store = await openStore({ dir, key });
    await check();
    await store.close();
  });

  it("returned records are frozen: mutating one throws and does not change what is stored", async () => {
    const dir = path.join(tmp, "frozen");
    const store = await openStore({ dir, key });
    await store.tasks.put(task(1));
    const got = (await store.tasks.get("task-0001"))!;
    expect(() => {
      (got as { title: string }).title = "changed";
    }).toThrow(TypeError);
    expect(() => (got.tags as string[]).push("x")).toThrow(TypeError);
    expect((await store.tasks.get("task-0001"))!.title).toBe(task(1).title);
    // the documented way to edit: spread into a new value
    await store.tasks.put({ ...got, title: "edited" });
    expect((await store.tasks.get("task-0001"))!.title).toBe("edited");
    await store.close();
  });
});

describe("singletons", () => {
  it("get returns the schema's defaults until set; update merges; reset goes back to defaults", async () => {
    const dir = path.join(tmp, "single");
    const store = await openStore({ dir, key });
    const d = await store.settings.get();
    expect(d.theme).toBe(Theme.AUTO);
    expect(d.language).toBe("en");
    expect(d.ui?.fontSize).toBe(14);
    await store.settings.update({ language: "de" });
    const merged = await store.settings.get();
    expect(merged.language).toBe("de");
    expect(merged.theme).toBe(Theme.AUTO);
    // concurrent updater functions each see the previous result: none is lost
    await Promise.all(
      Array.from({ length: 20 }, () => store.settings.update((s) => ({ ...s, keyBindings: { ...s.keyBindings, [`k${Object.keys(s.keyBindings).length}`]: "x" } }))),
    );
    expect(Object.keys((await store.settings.get()).keyBindings)).toHaveLength(20);
    await store.settings.reset();
    expect((await store.settings.get()).language).toBe("en");
    await store.close();
  });
});

describe("validation", () => {
  it("rejects bad input with ValidationError naming the field path, and leaves every file byte unchanged", async () => {
    const dir = path.join(tmp, "invalid");
    const store = await openStore({ dir, key });
    await store.tasks.put(task(1));
    await store.settings.update({ language: "fr" });
    const before = snapshot(dir);
    const bad: [() => Promise<unknown>, (string | number)[]][] = [
      [() => store.tasks.put({ ...task(2), title: "" }), ["title"]],
      [() => store.tasks.put({ ...task(2), tags: ["ok", ""] }), ["tags", 1]],
      [() => store.tasks.put({ ...task(2), status: 99 as TaskStatus }), ["status"]],
      [() => store.tasks.put({ ...task(2), bogus: 1 } as never), []],
      [() => store.tasks.put({ ...task(2), estimateMinutes: 100_001 }), ["estimateMinutes"]],
      [() => store.settings.update({ language: "not a tag!" }), ["language"]],
      [() => store.settings.update({ ui: { fontSize: 99 } }), ["ui", "fontSize"]],
      [() => store.conversations.put({ id: "c", totalTokens: -1n }), ["totalTokens"]],
      [() => store.batch((tx) => { tx.tasks.put(task(3)); tx.tasks.put({ ...task(4), title: "" }); }), ["title"]],
    ];
    for (const [call, p] of bad) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect(isCellarError(err, "E_VALIDATION")).toBe(true);
      expect((err as ValidationError).issues[0]!.path).toEqual(p);
    }
    await new Promise((r) => setTimeout(r, 20));
    expect(snapshot(dir)).toEqual(before);
    expect(await store.tasks.has("task-0003")).toBe(false); // the failed batch wrote nothing
    await store.close();
  });

  it("never puts a sensitive value in an error message", async () => {
    const dir = path.join(tmp, "noleak");
    const store = await openStore({ dir, key });
    const secret = "sk-live-THIS-IS-SECRET-".padEnd(600, "x");
    const err = await store.settings.update({ aiProvider: { apiKey: secret } }).catch((e: unknown) => e);
    // whatever the outcome, the secret is not in the message or the issues
    if (err) {
      expect(String((err as Error).message)).not.toContain("THIS-IS-SECRET");
      expect(JSON.stringify((err as ValidationError).issues ?? [])).not.toContain("THIS-IS-SECRET");
    }
    await store.close();
  });
});

describe("store", () => {
  it("batch commits across entities atomically and emits one change event per record", async () => {
    const dir = path.join(tmp, "batch");
    const store = await openStore({ dir, key });
    await store.tasks.put(task(9)); // a delete of a missing key announces nothing (test/store/batches-events.test.ts)
    const events: string[] = [];
    store.on("change", (e) => events.push(`${e.op}:${e.entity}:${String(e.key)}`));
    await store.batch((tx) => {
      tx.tasks.put(task(1));
      tx.tasks.put(task(2));
      tx.settings.update({ theme: Theme.LIGHT });
      tx.tasks.delete("task-0009");
    });
    expect(events).toEqual(["put:tasks:task-0001", "put:tasks:task-0002", "put:settings:undefined", "delete:tasks:task-0009"]);
    expect((await store.settings.get()).theme).toBe(Theme.LIGHT);
    await store.close();
  });

  it("refuses to open without a key, with the wrong key, and a second time while open", async () => {
    const dir = path.join(tmp, "keys");
    const store = await openStore({ dir, key });
    await expect(openStore({ dir, key })).rejects.toMatchObject({ code: "E_LOCKED" });
    await store.close();
    await expect(openStore({ dir } as never)).rejects.toMatchObject({ code: "E_KEY" });
    await expect(openStore({ dir, key: new Uint8Array(32) })).rejects.toMatchObject({ code: "E_KEY" });
    await expect(openStore({ dir, encryption: "none" })).rejects.toMatchObject({ code: "E_KEY" });
    const again = await openStore({ dir, key });
    await again.close();
    await expect(again.tasks.get("x")).rejects.toMatchObject({ code: "E_CLOSED" });
  });
});
