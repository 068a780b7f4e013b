/**
 * `cellar/electron` across two real processes: this process is Electron's main process (a real store, the
 * real `exposeStore`, an `ipcMain`/`WebContents` stand-in), each forked child is a renderer (the real
 * `exposeStoreInRenderer` in its preload, an `ipcRenderer` and a `contextBridge` stand-in; the page touches
 * only `window.cellar`). The fork channel uses `serialization: "advanced"`: V8's structured clone, as
 * Electron's IPC (test/electron/helpers/standins.ts says what is and is not reproduced).
 */
import { fork, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { exposeStore, type AllowList, type ExposedStore } from "../../src/runtime/electron/index.js";
import type { entities } from "../../src/generated/index.js";
import { ValidationError } from "../../src/runtime/errors.js";
import { IpcMainStandIn, passToOtherWorld, WebContentsStandIn } from "./helpers/standins.js";
import type { Ctl, CtlReply } from "./helpers/renderer-child.js";

type Store = Awaited<ReturnType<typeof openStore>>;
type Allow = AllowList<typeof entities>;

const CHILD = path.join(import.meta.dirname, "helpers", "renderer-child.ts");
const CALL = "cellar:call";

interface Renderer {
  readonly child: ChildProcess;
  readonly webContents: WebContentsStandIn;
  /** Watch updates and errors the page saw, in order. */
  readonly updates: Extract<CtlReply, { t: "ctl-update" | "ctl-watch-error" }>[];
  ctl(order: DistributiveOmit<Ctl, "t" | "n">): Promise<Extract<CtlReply, { t: "ctl-reply" }>>;
}
type DistributiveOmit<T, K extends keyof any> = T extends unknown ? Omit<T, K> : never;

const children: ChildProcess[] = [];

/** A renderer process attached to `ipcMain` as a window of its own; resolves once its preload ran. */
async function startRenderer(ipcMain: IpcMainStandIn, url?: string): Promise<Renderer> {
  const child = fork(CHILD, [], { execArgv: ["--import", "tsx"], serialization: "advanced", stdio: ["ignore", "inherit", "inherit", "ipc"] });
  children.push(child);
  const webContents = new WebContentsStandIn(child);
  ipcMain.attach(child, webContents, url);
  const updates: Renderer["updates"] = [];
  const pending = new Map<number, (r: Extract<CtlReply, { t: "ctl-reply" }>) => void>();
  let n = 0;
  const ready = new Promise<void>((resolve) =>
    child.on("message", (m: CtlReply | { t: "ready" }) => {
      if (m.t === "ready") resolve();
      else if (m.t === "ctl-reply") pending.get(m.n)?.(m);
      else if (m.t === "ctl-update" || m.t === "ctl-watch-error") updates.push(m);
    }),
  );
  await ready;
  return {
    child,
    webContents,
    updates,
    ctl: (order) =>
      new Promise((resolve) => {
        const id = ++n;
        pending.set(id, resolve);
        child.send({ ...order, t: "ctl", n: id });
      }),
  };
}

/** What the page got: the value, or a failure (thrown into the test with what arrived). */
async function call(r: Renderer, entity: string, op: string, ...args: unknown[]): Promise<any> {
  const reply = await r.ctl({ kind: "call", entity, op, args });
  if (!reply.ok) throw Object.assign(new Error("rejected in the renderer"), { arrived: reply });
  return reply.value;
}

/** The rejection the page got for a call (a failing test if it resolved). */
async function refusal(r: Renderer, entity: string, op: string, ...args: unknown[]) {
  const reply = await r.ctl({ kind: "call", entity, op, args });
  if (reply.ok) throw new Error(`expected a refusal, got ${String(reply.value)}`);
  return reply;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

let dir: string;
let store: Store;
let ipcMain: IpcMainStandIn;
let exposed: ExposedStore;
/** The allow-list per window id; windows not in it get `base`. */
const perWindow = new Map<number, Allow>();
const base: Allow = {
  tasks: ["read", "put", "putMany", "update", "watch"],
  profiles: ["get", "put", "putMany", "update"],
  settings: ["get", "set", "update", "watch"],
};
let renderer: Renderer;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-electron-"));
  store = await openStore({ dir: path.join(dir, "store"), key: new Uint8Array(32).fill(7), cleanup: false });
  ipcMain = new IpcMainStandIn();
  exposed = exposeStore(store, {
    ipcMain,
    // Pages not from the app (a window navigated elsewhere) get nothing; app windows their own list.
    allow: (sender, event) => (event.senderFrame?.url.startsWith("file:///app/") ? (perWindow.get(sender.id) ?? base) : null),
    limits: { maxBytes: 64 * 1024, maxDepth: 16 },
  });
  renderer = await startRenderer(ipcMain);
});

afterEach(() => {
  perWindow.clear();
});

afterAll(async () => {
  for (const c of children) c.kill();
  exposed.close();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("cellar/electron: the channel behaves as Electron's", () => {
  it("an Error subclass crossing the process channel arrives as a plain Error without `code`; through the bridge, as a bare Error", async () => {
    const e = new ValidationError("tasks", [{ path: ["title"], message: "required", code: "invalid_type" }]);
    const crossed = passToOtherWorld(e) as Error & { code?: string };
    expect(crossed).toBeInstanceOf(Error);
    expect(crossed.code).toBeUndefined();
    ipcMain.handle("test:throws", () => {
      throw e;
    });
    try {
      const reply = await renderer.ctl({ kind: "raw", args: ["test:throws"] });
      expect(reply.ok).toBe(false);
      if (reply.ok) return;
      expect(reply.isError).toBe(true);
      expect((reply.error as { code?: string }).code).toBeUndefined();
    } finally {
      ipcMain.removeHandler("test:throws");
    }
  });

  it("window.cellar holds frozen objects and functions only: no `ipcRenderer`, no `invoke`", async () => {
    const reply = await renderer.ctl({ kind: "describe" });
    expect(reply.ok).toBe(true);
    const { members, keys } = reply.ok ? (reply.value as { members: { path: string; type: string; frozen: boolean }[]; keys: string[] }) : { members: [], keys: [] };
    expect(keys).toEqual(["cellar"]);
    expect(members.filter((m) => m.type === "object").every((m) => m.frozen)).toBe(true);
    expect(members.filter((m) => m.type !== "object").every((m) => m.type === "function")).toBe(true);
    expect(members.map((m) => m.path)).toContain("cellar.tasks.get");
    expect(members.map((m) => m.path)).toContain("cellar.settings.watch");
    expect(members.some((m) => /invoke|ipc/i.test(m.path))).toBe(false);
  });
});

describe("cellar/electron: reads and writes from a renderer", () => {
  it("put, get, getMany, query, list, keys, count, has and update from the renderer reach the store in main", async () => {
    const put = await call(renderer, "tasks", "put", { id: "t1", title: "write docs", status: 1, tags: ["docs"], createdAt: { seconds: 1_700_000_000n, nanos: 5 } });
    expect(put).toMatchObject({ id: "t1", title: "write docs", status: 1 });
    const inMain = await store.tasks.get("t1");
    expect(inMain?.title).toBe("write docs");
    expect(inMain?.createdAt?.seconds).toBe(1_700_000_000n);
    await store.tasks.put({ id: "t2", title: "from main", status: 2 });

    const got = await call(renderer, "tasks", "get", "t1");
    expect(got).toMatchObject({ id: "t1", title: "write docs", tags: ["docs"], createdAt: { seconds: 1_700_000_000n, nanos: 5 } });
    expect(await call(renderer, "tasks", "get", "missing")).toBeUndefined();
    expect((await call(renderer, "tasks", "getMany", ["t2", "missing", "t1"])).map((t: { id: string } | undefined) => t?.id)).toEqual(["t2", undefined, "t1"]);
    expect((await call(renderer, "tasks", "query", { status: 1 })).map((t: { id: string }) => t.id)).toEqual(["t1"]);
    expect((await call(renderer, "tasks", "query", { tags: "docs" })).map((t: { id: string }) => t.id)).toEqual(["t1"]);
    expect((await call(renderer, "tasks", "list", { limit: 1, offset: 1 })).map((t: { id: string }) => t.id)).toEqual(["t2"]);
    expect(await call(renderer, "tasks", "keys")).toEqual(["t1", "t2"]);
    expect(await call(renderer, "tasks", "count")).toBe(2);
    expect(await call(renderer, "tasks", "has", "t2")).toBe(true);
    expect(await call(renderer, "tasks", "update", "t2", { title: "renamed" })).toMatchObject({ id: "t2", title: "renamed", status: 2 });
    expect((await store.tasks.get("t2"))?.title).toBe("renamed");
    // `putMany`: one atomic write from the renderer; one invalid record and none is written.
    expect(await call(renderer, "tasks", "putMany", [{ id: "m1", title: "first" }, { id: "m2", title: "second", status: 2 }])).toBeNull();
    expect((await store.tasks.getMany(["m1", "m2"])).map((t) => t?.title)).toEqual(["first", "second"]);
    const bad = await refusal(renderer, "tasks", "putMany", [{ id: "m3", title: "fine" }, { id: "m4", title: "x".repeat(501) }]);
    expect(bad.error).toMatchObject({ code: "E_VALIDATION", entity: "tasks" });
    expect((await refusal(renderer, "tasks", "putMany", { id: "m5", title: "not a list" })).error).toMatchObject({ code: "E_USAGE" });
    expect(await store.tasks.has("m3")).toBe(false);
    await store.tasks.delete("m1");
    await store.tasks.delete("m2");
  });

  it("ranges, orderBy, reverse, pages with cursors, count(where) and aggregates from the renderer", async () => {
    const at = (day: number) => ({ seconds: BigInt(1_767_225_600 + day * 86_400), nanos: 0 }); // 2026-01-01 + day
    for (let i = 0; i < 6; i++) await store.tasks.put({ id: `r${i}`, title: `ranged ${i}`, status: 3, createdAt: at(i) });
    const where = { status: 3, createdAt: { gte: at(1), lt: new Date((1_767_225_600 + 5 * 86_400) * 1000) } };
    const ids = (rs: { id: string }[]) => rs.map((t) => t.id);
    expect(ids(await call(renderer, "tasks", "query", where, { orderBy: "createdAt", reverse: true }))).toEqual(["r4", "r3", "r2", "r1"]);
    expect(await call(renderer, "tasks", "count", where)).toBe(4);
    const first = await call(renderer, "tasks", "queryPage", where, { orderBy: "createdAt", limit: 3 });
    expect(ids(first.records)).toEqual(["r1", "r2", "r3"]);
    const second = await call(renderer, "tasks", "queryPage", where, { orderBy: "createdAt", limit: 3, after: first.cursor });
    expect([ids(second.records), second.cursor]).toEqual([["r4"], undefined]);
    const days = await call(renderer, "tasks", "aggregate", { where: { status: 3 }, bucket: { field: "createdAt", by: "day" }, count: true });
    expect(days.map((b: { label: string; count: number }) => [b.label, b.count])).toEqual([0, 1, 2, 3, 4, 5].map((d) => [`2026-01-0${d + 1}`, 1]));
    expect(days[0].start).toBeInstanceOf(Date);
    expect((await refusal(renderer, "tasks", "query", where, { orderBy: "createdAt", sortBy: "x" })).error).toMatchObject({ code: "E_USAGE" });
    // A sum is a value: over a sensitive field it stays in main unless the window is granted sensitive fields.
    perWindow.set(renderer.webContents.id, { profiles: ["read"] });
    expect((await refusal(renderer, "profiles", "aggregate", { sum: ["authToken"] })).error).toMatchObject({ code: "E_FORBIDDEN" });
    for (let i = 0; i < 6; i++) await store.tasks.delete(`r${i}`);
  });

  it("a validation error reaches the page as a plain object with its code and issues; nothing is written", async () => {
    const r = await refusal(renderer, "tasks", "put", { id: "bad", title: "x".repeat(501) });
    expect(r.proto).toBe("Object");
    expect(r.error).toMatchObject({ code: "E_VALIDATION", name: "ValidationError", entity: "tasks" });
    expect((r.error as { issues: { path: unknown[] }[] }).issues[0]!.path).toEqual(["title"]);
    expect(await store.tasks.has("bad")).toBe(false);
    const unknownField = await refusal(renderer, "tasks", "put", { id: "bad", title: "t", owner: "me" });
    expect(unknownField.error).toMatchObject({ code: "E_VALIDATION" });
    const missing = await refusal(renderer, "tasks", "update", "nope", { title: "t" });
    expect(missing.error).toMatchObject({ code: "E_NOT_FOUND" });
  });

  it("an entity or an operation the window is not granted is refused with E_FORBIDDEN, and nothing happens", async () => {
    await store.conversations.put({ id: "c1" });
    expect((await refusal(renderer, "conversations", "get", "c1")).error).toMatchObject({ code: "E_FORBIDDEN" });
    await store.tasks.put({ id: "keep", title: "stays" });
    expect((await refusal(renderer, "tasks", "delete", "keep")).error).toMatchObject({ code: "E_FORBIDDEN" });
    expect(await store.tasks.has("keep")).toBe(true);
    expect((await refusal(renderer, "settings", "reset")).error).toMatchObject({ code: "E_FORBIDDEN" });
    // Per window: this window, now granted reads of tasks only, cannot put.
    perWindow.set(renderer.webContents.id, { tasks: ["read"] });
    expect((await refusal(renderer, "tasks", "put", { id: "t9", title: "no" })).error).toMatchObject({ code: "E_FORBIDDEN" });
    expect((await refusal(renderer, "profiles", "get", "p1")).error).toMatchObject({ code: "E_FORBIDDEN" });
    expect(await store.tasks.has("t9")).toBe(false);
    // A page from elsewhere (the allow function reads the asking frame's URL): refused everything.
    const foreign = await startRenderer(ipcMain, "https://elsewhere.example/");
    expect((await refusal(foreign, "tasks", "get", "keep")).error).toMatchObject({ code: "E_FORBIDDEN" });
    foreign.child.kill();
    // A compromised renderer naming what is not an entity, or not an operation, on the raw channel.
    perWindow.clear();
    for (const [entity, op] of [["__proto__", "get"], ["close", "get"], ["tasks", "archive"], ["tasks", "constructor"], ["tasks", "__proto__"]]) {
      const raw = await renderer.ctl({ kind: "raw", args: [CALL, { entity, op, args: [] }] });
      expect(raw.ok && (raw.value as { error?: { code?: string } }).error?.code).toBe("E_FORBIDDEN");
    }
  });
});

describe("cellar/electron: untrusted channel input is refused in main", () => {
  /** A raw request's reply error code (the raw channel gets the reply envelope itself). */
  async function rawCode(...args: unknown[]): Promise<string | undefined> {
    const reply = await renderer.ctl({ kind: "raw", args: [CALL, ...args] });
    if (!reply.ok) throw new Error("the raw invoke itself failed");
    const v = reply.value as { ok: boolean; error?: { code: string } };
    return v.ok ? "ok" : v.error?.code;
  }

  it("wrong shapes and types: not a request object, extra keys or arguments, non-array args, a class instance, a Map, a bad key", async () => {
    expect(await rawCode("tasks")).toBe("E_USAGE");
    expect(await rawCode(null)).toBe("E_USAGE");
    expect(await rawCode(["tasks", "get", ["t1"]])).toBe("E_USAGE");
    expect(await rawCode({ entity: "tasks", op: "get", args: "t1" })).toBe("E_USAGE");
    expect(await rawCode({ entity: 1, op: "get", args: ["t1"] })).toBe("E_USAGE");
    expect(await rawCode({ entity: "tasks", op: "get", args: ["t1"], extra: 1 })).toBe("E_USAGE");
    expect(await rawCode({ entity: "tasks", op: "get", args: ["t1"] }, "second argument")).toBe("E_USAGE");
    expect(await rawCode({ entity: "tasks", op: "get", args: [1, 2, 3, 4, 5] })).toBe("E_USAGE");
    expect(await rawCode({ entity: "tasks", op: "get", args: ["t1", "extra"] })).toBe("E_USAGE");
    // A Date crosses (queries and aggregates take one); a record's Timestamp field refuses it.
    expect(await rawCode({ entity: "tasks", op: "put", args: [{ id: "d", title: "t", createdAt: new Date() }] })).toBe("E_VALIDATION");
    expect(await store.tasks.has("d")).toBe(false);
    expect(await rawCode({ entity: "tasks", op: "put", args: [new Map([["id", "m"]])] })).toBe("E_USAGE");
    expect(await rawCode({ entity: "tasks", op: "get", args: [{ id: "t1" }] })).toBe("E_USAGE");
    expect(await rawCode({ entity: "tasks", op: "list", args: [{ limit: -1 }] })).toBe("E_USAGE");
    expect(await rawCode({ entity: "tasks", op: "get", args: ["t1"] })).toBe("ok");
    expect(await store.tasks.has("d")).toBe(false);
    expect(await store.tasks.has("m")).toBe(false);
  });

  it("oversize and too deep input is refused with E_LIMIT before the store sees it", async () => {
    expect(await rawCode({ entity: "tasks", op: "put", args: [{ id: "big", title: "t", notes: "n".repeat(70 * 1024) }] })).toBe("E_LIMIT");
    let deep: unknown = { id: "deep", title: "t" };
    for (let i = 0; i < 20; i++) deep = { nested: deep };
    expect(await rawCode({ entity: "tasks", op: "put", args: [deep] })).toBe("E_LIMIT");
    expect(await rawCode({ entity: "tasks", op: "getMany", args: [Array.from({ length: 20_000 }, (_, i) => `k${i}`)] })).toBe("E_LIMIT");
    expect(await store.tasks.has("big")).toBe(false);
  });

  it("prototype-pollution keys (`__proto__`, `constructor`, `prototype`) at any depth are refused; no prototype in main changes", async () => {
    for (const json of [
      '{"entity":"tasks","op":"put","args":[{"id":"p1","title":"t","__proto__":{"polluted":"yes"}}]}',
      '{"entity":"tasks","op":"put","args":[{"id":"p2","title":"t","createdAt":{"__proto__":{"polluted":"yes"}}}]}',
      '{"entity":"tasks","op":"query","args":[{"constructor":{"prototype":{"polluted":"yes"}}}]}',
      '{"entity":"settings","op":"update","args":[{"ui":{"prototype":{"polluted":"yes"}}}]}',
    ]) {
      const reply = await renderer.ctl({ kind: "rawPoisoned", channel: CALL, json });
      expect(reply.ok && (reply.value as { error?: { code?: string } }).error?.code).toBe("E_USAGE");
    }
    expect(({} as { polluted?: string }).polluted).toBeUndefined();
    expect(await store.tasks.has("p1")).toBe(false);
    expect(await store.tasks.has("p2")).toBe(false);
  });
});

describe("cellar/electron: sensitive fields", () => {
  it("are redacted for a window not granted them, sent to one that is, and a redacted value cannot be written back", async () => {
    await store.profiles.put({ id: "p1", displayName: "Ada", email: "ada@example.org", authToken: "tok-123" });
    const got = await call(renderer, "profiles", "get", "p1");
    expect(got).toMatchObject({ id: "p1", displayName: "Ada", email: "[redacted]", authToken: "[redacted]" });
    expect(JSON.stringify(renderer.webContents.sent)).not.toContain("tok-123");

    // Writing the redacted record back would overwrite the secret with the marker: refused, secret kept.
    const back = await refusal(renderer, "profiles", "put", { ...got, displayName: "Ada L." });
    expect(back.error).toMatchObject({ code: "E_USAGE" });
    expect((await store.profiles.get("p1"))?.authToken).toBe("tok-123");
    const backMany = await refusal(renderer, "profiles", "putMany", [{ id: "p2", displayName: "Bo" }, { ...got, displayName: "Ada L." }]);
    expect(backMany.error).toMatchObject({ code: "E_USAGE" });
    expect(await store.profiles.has("p2")).toBe(false);
    expect((await store.profiles.get("p1"))?.authToken).toBe("tok-123");
    // A patch without the sensitive fields keeps them.
    expect(await call(renderer, "profiles", "update", "p1", { displayName: "Ada L." })).toMatchObject({ displayName: "Ada L.", authToken: "[redacted]" });
    expect((await store.profiles.get("p1"))?.authToken).toBe("tok-123");

    await store.settings.update({ aiProvider: { model: "m1", apiKey: "sk-secret" } });
    expect(await call(renderer, "settings", "get")).toMatchObject({ aiProvider: { model: "m1", apiKey: "[redacted]" } });
    expect(await call(renderer, "settings", "get", "aiProvider.apiKey")).toBe("[redacted]");
    expect(await call(renderer, "settings", "get", "aiProvider.model")).toBe("m1");
    expect((await refusal(renderer, "settings", "set", "aiProvider.apiKey", "[redacted]")).error).toMatchObject({ code: "E_USAGE" });
    expect((await store.settings.get()).aiProvider?.apiKey).toBe("sk-secret");

    // A second window granted the sensitive fields of profiles (not of settings).
    const trusted = await startRenderer(ipcMain);
    perWindow.set(trusted.webContents.id, { profiles: { ops: ["get"], sensitive: true }, settings: ["get"] });
    expect(await call(trusted, "profiles", "get", "p1")).toMatchObject({ email: "ada@example.org", authToken: "tok-123" });
    expect(await call(trusted, "settings", "get", "aiProvider.apiKey")).toBe("[redacted]");
    expect(await call(renderer, "profiles", "get", "p1")).toMatchObject({ authToken: "[redacted]" });
  });

});

describe("cellar/electron: watch", () => {
  it("a watch in the renderer gets the current value, then a write made in main, with rising seq; sensitive fields redacted", async () => {
    await store.tasks.put({ id: "w1", title: "before" });
    await renderer.ctl({ kind: "watch", entity: "tasks", wid: 1, arg: "w1" });
    await until(() => renderer.updates.some((u) => u.wid === 1), "the first value");
    const first = renderer.updates.find((u) => u.wid === 1)! as { value: { title: string }; seq: number };
    expect(first.value.title).toBe("before");
    await store.tasks.put({ id: "w1", title: "after" });
    await until(() => renderer.updates.some((u) => u.wid === 1 && (u as { value?: { title?: string } }).value?.title === "after"), "the write made in main");
    const last = renderer.updates.filter((u) => u.wid === 1).at(-1)! as { seq: number };
    expect(last.seq).toBeGreaterThan(first.seq);

    await renderer.ctl({ kind: "watch", entity: "tasks", wid: 2, arg: { status: 3 } });
    await until(() => renderer.updates.some((u) => u.wid === 2), "the query's first value");
    await store.tasks.put({ id: "w2", title: "done", status: 3 });
    await until(() => renderer.updates.some((u) => u.wid === 2 && ((u as { value?: unknown[] }).value ?? []).length === 1), "the query's update");

    await renderer.ctl({ kind: "watch", entity: "settings", wid: 3 });
    await until(() => renderer.updates.some((u) => u.wid === 3), "the singleton's value");
    expect((renderer.updates.find((u) => u.wid === 3) as { value: { aiProvider?: { apiKey?: string } } }).value.aiProvider?.apiKey).not.toBe("sk-secret");
    expect(JSON.stringify(renderer.webContents.sent.map((s) => s.args), (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toContain("sk-secret");

    // A watch the window is not granted: the subscriber's onError gets E_FORBIDDEN.
    await renderer.ctl({ kind: "watch", entity: "profiles", wid: 4, arg: "p1" });
    await until(() => renderer.updates.some((u) => u.wid === 4), "the refusal");
    expect(renderer.updates.find((u) => u.wid === 4)).toMatchObject({ t: "ctl-watch-error", error: { code: "E_FORBIDDEN" } });
    for (const wid of [1, 2, 3]) await renderer.ctl({ kind: "unsubscribe", wid });
  });

  it("unsubscribing, a page reload, a crashed renderer and a closed window each close the watches in main", async () => {
    const win = await startRenderer(ipcMain);
    const repo = store.tasks as unknown as { watch: (...a: unknown[]) => { close(): void } };
    const open = new Set<object>();
    const original = repo.watch;
    repo.watch = (...a: unknown[]) => {
      const w = original.apply(store.tasks, a);
      open.add(w);
      const close = w.close.bind(w);
      w.close = () => {
        open.delete(w);
        close();
      };
      return w;
    };
    try {
      await win.ctl({ kind: "watch", entity: "tasks", wid: 1, arg: "c1" });
      await until(() => open.size === 1, "the watch in main");
      await win.ctl({ kind: "unsubscribe", wid: 1 });
      await until(() => open.size === 0, "unsubscribe to close it");

      await win.ctl({ kind: "watch", entity: "tasks", wid: 2, arg: "c1" });
      await until(() => open.size === 1, "the second watch");
      await win.ctl({ kind: "reload" });
      await until(() => open.size === 0, "the reload to close it");

      await win.ctl({ kind: "watch", entity: "tasks", wid: 3, arg: "c1" });
      await win.ctl({ kind: "watch", entity: "tasks", wid: 4, arg: { status: 1 } });
      await until(() => open.size === 2, "two watches");
      // The renderer process crashed: its page and subscribers are gone.
      win.webContents.emit("render-process-gone", {}, { reason: "crashed", exitCode: 1 });
      await until(() => open.size === 0, "the crash to close them");

      await win.ctl({ kind: "reload" });
      await win.ctl({ kind: "watch", entity: "tasks", wid: 5, arg: "c1" });
      await win.ctl({ kind: "watch", entity: "tasks", wid: 6, arg: { status: 1 } });
      await until(() => open.size === 2, "two watches after the reload");
      const sentBefore = win.webContents.sent.length;
      win.webContents.destroy();
      expect(open.size).toBe(0);
      await store.tasks.put({ id: "c1", title: "after close", status: 1 });
      await new Promise((r) => setTimeout(r, 50));
      expect(win.webContents.sent.length).toBe(sentBefore);
    } finally {
      repo.watch = original;
    }
  });
});
