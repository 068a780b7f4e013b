// Behaviour of the committed src/generated on the real engine: every example entity round-trips
// through its generated repository and survives a reopen; validators reject bad input without
// writing; read values (full messages, spreads) pass their own validator.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { durationFromMs, durationMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isCellarError, ValidationError } from "../../src/runtime/index.js";
import { AppStateEntity } from "./app-state-alias.js";
import { ApplicationStateSchema } from "../../src/generated/examples/appstate/v1/app_state_pb.js";
import { ConversationSchema, Role } from "../../src/generated/examples/conversations/v1/conversations_pb.js";
import { ConversationInputSchema } from "../../src/generated/examples/conversations/v1/conversations_zod.js";
import { FocusKind, FocusOutcome } from "../../src/generated/examples/focus/v1/focus_pb.js";
import { GridLayoutSchema } from "../../src/generated/examples/layouts/v1/layouts_pb.js";
import { UserProfileEntity } from "../../src/generated/examples/profile/v1/profile_cellar.js";
import { AiProviderKind, GridDensity, Theme, UserSettingsSchema } from "../../src/generated/examples/settings/v1/settings_pb.js";
import { UserSettingsInputSchema } from "../../src/generated/examples/settings/v1/settings_zod.js";
import { Priority, TaskSchema, TaskStatus, type Task } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import { TaskInputSchema } from "../../src/generated/examples/tasks/v1/tasks_zod.js";
import { entities, openStore, type CellarStore } from "../../src/generated/index.js";

let dir: string;
const key = randomBytes(32);
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cellar-repos-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function withStore<T>(fn: (store: CellarStore) => Promise<T>): Promise<T> {
  const store = await openStore({ dir, key });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** A typical task: the record the benchmarks call "~500-byte task records". */
export function sampleTask(i: number): Task {
  return create(TaskSchema, {
    id: `0b7c9e52-6a1f-4f8e-9d3c-${String(i).padStart(12, "0")}`,
    title: "Prepare the quarterly planning review with the design team",
    status: TaskStatus.IN_PROGRESS,
    priority: Priority.HIGH,
    createdAt: timestampFromDate(new Date(Date.UTC(2025, 2, 3, 9, 30))),
    updatedAt: timestampFromDate(new Date(Date.UTC(2025, 2, 4, 16, 5))),
    dueAt: timestampFromDate(new Date(Date.UTC(2025, 2, 10, 17, 0))),
    tags: ["work", "planning", "q2"],
    notes:
      "Collect last quarter's metrics from the dashboard, draft the agenda, and book the large meeting room. " +
      "Ask Dana for the hiring plan and Luis for the infrastructure budget before Thursday. Share the deck a day ahead.",
    projectId: "proj-roadmap-2025",
    estimateMinutes: 90,
  });
}

describe("example entities on the real engine", () => {
  it("entities lists every example entity under its store property", () => {
    expect(Object.keys(entities).sort()).toEqual(
      ["appState", "conversations", "focusSessions", "gridLayouts", "profiles", "settings", "tasks"].sort(),
    );
    expect(entities.tasks.name).toBe("tasks");
    expect(entities.settings.kind).toBe("singleton");
    expect(AppStateEntity).toBe(entities.appState);
  });

  it("a typical task encodes to 300-600 bytes", () => {
    const size = toBinary(TaskSchema, sampleTask(1)).length;
    expect(size).toBeGreaterThanOrEqual(300);
    expect(size).toBeLessThanOrEqual(600);
  });

  it("tasks: put, get, query by index, delete; survives a reopen", async () => {
    await withStore(async (store) => {
      await store.tasks.put(sampleTask(1));
      await store.tasks.put({ ...sampleTask(2), status: TaskStatus.DONE, tags: ["home"] });
      expect((await store.tasks.query({ status: TaskStatus.DONE })).map((t) => t.id)).toEqual([sampleTask(2).id]);
      expect((await store.tasks.query({ tags: "planning" })).map((t) => t.id)).toEqual([sampleTask(1).id]);
    });
    await withStore(async (store) => {
      expect(await store.tasks.count()).toBe(2);
      const t = await store.tasks.get(sampleTask(1).id);
      expect(t?.title).toBe(sampleTask(1).title);
      expect(t?.createdAt?.seconds).toBe(sampleTask(1).createdAt?.seconds);
      expect(await store.tasks.delete(sampleTask(1).id)).toBe(true);
      expect(await store.tasks.has(sampleTask(1).id)).toBe(false);
    });
  });

  it("settings: defaults from (cellar.v1.field).default until updated; updates survive a reopen", async () => {
    await withStore(async (store) => {
      const s = await store.settings.get();
      expect(s.theme).toBe(Theme.AUTO);
      expect(s.language).toBe("en");
      expect(s.ui?.gridDensity).toBe(GridDensity.NORMAL);
      expect(s.ui?.showGridLines).toBe(true);
      expect(s.ui?.fontSize).toBe(14);
      expect(s.privacy?.crashReportingEnabled).toBe(true);
      expect(s.notifications?.reminderMinutes).toBe(5);
      await store.settings.update({ theme: Theme.DARK, keyBindings: { "task.new": "CmdOrCtrl+N" } });
      await store.settings.update((cur) => ({
        ...cur,
        aiProvider: { kind: AiProviderKind.ANTHROPIC, model: "claude", apiKey: "sk-test" },
      }));
    });
    await withStore(async (store) => {
      const s = await store.settings.get();
      expect(s.theme).toBe(Theme.DARK);
      expect(s.keyBindings["task.new"]).toBe("CmdOrCtrl+N");
      expect(s.aiProvider?.apiKey).toBe("sk-test");
      await store.settings.reset();
      expect((await store.settings.get()).theme).toBe(Theme.AUTO);
    });
  });

  it("focus sessions, conversations, grid layouts, app state and profiles round-trip and survive a reopen", async () => {
    // A day ago: focus_sessions keep 730 days (retention), and the reopen's cleanup must not remove it.
    const started = timestampFromDate(new Date(Math.floor(Date.now() / 1000) * 1000 - 86_400_000));
    await withStore(async (store) => {
      await store.focusSessions.put({
        id: "f1",
        startedAt: started,
        duration: durationFromMs(1_500_250),
        taskId: "t1",
        kind: FocusKind.FOCUS,
        outcome: FocusOutcome.COMPLETED,
      });
      await store.conversations.put({
        id: "c1",
        title: "Trip",
        totalTokens: 12_345_678_901n,
        messages: [
          { id: "m1", role: Role.USER, body: { case: "content", value: "Plan a trip" }, promptTokens: 5 },
          { id: "m2", role: Role.ASSISTANT, body: { case: "toolCall", value: { name: "search", arguments: { q: "Lisbon", n: 3 } } } },
        ],
      });
      await store.gridLayouts.put({
        id: "default",
        name: "Default",
        columns: 12,
        instances: { w1: { widgetType: "clock", config: { tz: "UTC", seconds: true } } },
        positions: { w1: { x: 0, y: 0, width: 3, height: 2 } },
      });
      await store.appState.update({ mainWindow: { width: 1440, height: 900, maximized: true }, openPanels: ["tasks", "chat"] });
      await store.profiles.put({ id: "u1", displayName: "Ana", email: "ana@example.com", authToken: "tok", locale: "pt-BR", usageSeconds: 99n });
    });
    await withStore(async (store) => {
      expect((await store.focusSessions.query({ taskId: "t1" })).map((f) => durationMs(f.duration!))).toEqual([1_500_250]);
      expect((await store.focusSessions.query({ outcome: FocusOutcome.COMPLETED })).map((f) => f.id)).toEqual(["f1"]);
      const c = await store.conversations.get("c1");
      expect(c?.totalTokens).toBe(12_345_678_901n);
      expect(c?.messages[1]?.body).toMatchObject({ case: "toolCall", value: { name: "search", arguments: { q: "Lisbon", n: 3 } } });
      const g = await store.gridLayouts.get("default");
      expect(g?.positions["w1"]?.width).toBe(3);
      expect(g?.instances["w1"]?.config).toEqual({ tz: "UTC", seconds: true });
      const a = await store.appState.get();
      expect(a.mainWindow?.maximized).toBe(true);
      expect(a.openPanels).toEqual(["tasks", "chat"]);
      expect(a.activeLayoutId).toBe("default");
      const p = await store.profiles.get("u1");
      expect(p?.email).toBe("ana@example.com");
      expect(p?.locale).toBe("pt-BR");
    });
  });

  it("sensitive paths name the annotated fields", () => {
    expect(entities.settings.sensitive).toEqual(["aiProvider.apiKey"]);
    expect(UserProfileEntity.sensitive).toEqual(["email", "authToken"]);
  });
});

describe("validation before anything touches disk", () => {
  const cases: [string, (s: CellarStore) => Promise<unknown>, readonly (string | number)[], string][] = [
    ["a required field missing", (s) => s.tasks.put({ title: "x" }), ["id"], "invalid_type"],
    ["a required string empty", (s) => s.tasks.put({ id: "a", title: "" }), ["title"], "too_small"],
    ["a string over max_length", (s) => s.tasks.put({ id: "a", title: "x".repeat(501) }), ["title"], "too_big"],
    ["too many repeated elements", (s) => s.tasks.put({ id: "a", title: "t", tags: Array.from({ length: 33 }, (_, i) => `t${i}`) }), ["tags"], "too_big"],
    ["an unknown enum value", (s) => s.tasks.put({ id: "a", title: "t", status: 42 as TaskStatus }), ["status"], "invalid_value"],
    ["an unknown key", (s) => s.tasks.put({ id: "a", title: "t", colour: "red" } as never), [], "unrecognized_keys"],
    ["a nested pattern mismatch", (s) => s.settings.update({ aiProvider: { baseUrl: "ftp://x" } }), ["aiProvider", "baseUrl"], "invalid_format"],
    ["a number below min", (s) => s.gridLayouts.put({ id: "g", name: "G", positions: { w: { width: -1 } } }), ["positions", "w", "width"], "too_small"],
    ["a set string that misses its pattern", (s) => s.profiles.put({ id: "p", email: "no-at-sign" }), ["email"], "invalid_format"],
    ["a required enum at its zero value", (s) => s.conversations.put({ id: "c", messages: [{ role: Role.UNSPECIFIED }] }), ["messages", 0, "role"], "invalid_value"],
    ["a number where a bigint belongs", (s) => s.conversations.put({ id: "c", totalTokens: 5 as unknown as bigint }), ["totalTokens"], "invalid_type"],
  ];
  it.each(cases)("rejects %s with a ValidationError naming the path, and writes nothing", async (_name, write, path, code) => {
    await withStore(async (store) => {
      const before = { tasks: await store.tasks.count(), settings: await store.settings.get() };
      const error = await write(store).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isCellarError(error, "E_VALIDATION")).toBe(true);
      const issue = (error as ValidationError).issues[0];
      expect(issue?.path).toEqual(path);
      expect(issue?.code).toBe(code);
      expect(await store.tasks.count()).toBe(before.tasks);
      expect(await store.settings.get()).toEqual(before.settings);
    });
  });
});

describe("validators accept what protobuf-es produces", () => {
  it("full messages from create(), with $typeName and every field present, pass", () => {
    expect(UserSettingsInputSchema.safeParse(create(UserSettingsSchema, entities.settings.defaults)).success).toBe(true);
    expect(TaskInputSchema.safeParse(sampleTask(3)).success).toBe(true);
    expect(ConversationInputSchema.safeParse(create(ConversationSchema, { id: "c" })).success).toBe(true);
    expect(entities.gridLayouts.validator.safeParse(create(GridLayoutSchema, { id: "g", name: "G", columns: 12 })).success).toBe(true);
    expect(entities.appState.validator.safeParse(create(ApplicationStateSchema)).success).toBe(true);
  });

  it("a message with unknown fields ($unknown) passes, so a value read from a newer app can be written back", () => {
    const task = { ...sampleTask(4), $unknown: [{ no: 99, wireType: 2, data: new Uint8Array([1, 0]) }] };
    expect(TaskInputSchema.safeParse(task).success).toBe(true);
  });

  it("a zero value a full message carries is unset, exempt from rules that refuse it (proto3: unset is zero)", () => {
    // `language` has a pattern that "" does not match, `ui.fontSize` a minimum of 8: a bare create() holds "" and 0.
    expect(UserSettingsInputSchema.safeParse(create(UserSettingsSchema, { ui: {} })).success).toBe(true);
    const set = UserSettingsInputSchema.safeParse(create(UserSettingsSchema, { language: "?", ui: { fontSize: 7 } }));
    expect(set.error?.issues.map((i) => [i.path, i.code])).toEqual([
      [["language"], "invalid_format"],
      [["ui", "fontSize"], "too_small"],
    ]);
  });

  it("a record read back with an unset field under a rule is written back as it was read (put of a spread, update)", async () => {
    await withStore(async (store) => {
      await store.profiles.put({ id: "u", displayName: "Ana" }); // no email: its pattern refuses ""
      const read = await store.profiles.get("u");
      expect(read?.email).toBe("");
      await store.profiles.put({ ...read!, displayName: "Ana B" });
      await store.profiles.update("u", (p) => ({ ...p, displayName: "Ana C" }));
      expect((await store.profiles.get("u"))?.displayName).toBe("Ana C");
      await store.gridLayouts.put({ id: "g", name: "G", positions: { w: { x: 1 } } }); // width 0: unset, min 1
      const g = await store.gridLayouts.get("g");
      await store.gridLayouts.put({ ...g!, name: "H" });
      expect((await store.gridLayouts.get("g"))?.positions["w"]?.width).toBe(0);
    });
  });

  it("a $typeName of another message is rejected", () => {
    const r = TaskInputSchema.safeParse({ ...sampleTask(5), $typeName: "examples.tasks.v1.Other" });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(["$typeName"]);
  });
});
