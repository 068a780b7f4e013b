/** Singleton `get(path)` / `set(path, value)`: dotted field paths checked against the schema at run time. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { AiProviderKind } from "../../src/generated/examples/settings/v1/settings_pb.js";
import { isCellarError, ValidationError } from "../../src/runtime/index.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-paths-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(5);
const fail = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);

describe("singleton paths", () => {
  it("set creates unset messages on the way, keeps the other fields, is durable; get reads one field", async () => {
    const dir = path.join(tmp, "set");
    let store = await openStore({ dir, key });
    expect(await store.settings.get("ui.fontSize")).toBe(14); // a default
    expect(await store.settings.get("aiProvider.model")).toBeUndefined(); // aiProvider is unset
    expect(await store.settings.get("aiProvider")).toBeUndefined();
    const r = await store.settings.set("aiProvider.apiKey", "sk-1"); // a sensitive field, sealed like any update
    expect(r.aiProvider).toMatchObject({ apiKey: "sk-1", model: "", kind: AiProviderKind.UNSPECIFIED });
    expect(Object.isFrozen(r.aiProvider)).toBe(true);
    await store.settings.set("ui.fontSize", 20);
    await store.settings.set("language", "de");
    await store.close();
    store = await openStore({ dir, key });
    expect(await store.settings.get("ui.fontSize")).toBe(20);
    expect(await store.settings.get("ui.showGridLines")).toBe(true); // the rest of `ui` is kept
    expect(await store.settings.get("aiProvider.apiKey")).toBe("sk-1");
    expect(await store.settings.get("language")).toBe("de");
    expect(await store.settings.get()).toMatchObject({ language: "de", ui: { fontSize: 20 } });
    await store.close();
  });

  it("sets and updates apply one after another: none is lost", async () => {
    const store = await openStore({ dir: path.join(tmp, "queue"), key });
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      all.push(store.settings.set("notifications.reminderMinutes", i));
      all.push(store.settings.update((c) => ({ keyBindings: { ...c.keyBindings, [`k${i}`]: String(c.notifications?.reminderMinutes) } })));
    }
    await Promise.all(all);
    const s = await store.settings.get();
    expect(s.notifications?.reminderMinutes).toBe(19);
    expect(Object.keys(s.keyBindings)).toHaveLength(20);
    expect(s.keyBindings.k7).toBe("7");
    await store.close();
  });

  it("a wrong value is E_VALIDATION with the field's path; an unknown path from JavaScript is E_USAGE; nothing is written", async () => {
    const store = await openStore({ dir: path.join(tmp, "errors"), key });
    const set = store.settings.set.bind(store.settings) as (p: string, v: unknown) => Promise<unknown>;
    const get = store.settings.get.bind(store.settings) as (p?: unknown) => Promise<unknown>;
    const tooBig = await fail(set("ui.fontSize", 99));
    expect(tooBig).toBeInstanceOf(ValidationError);
    expect((tooBig as ValidationError).issues[0]?.path).toEqual(["ui", "fontSize"]);
    expect(isCellarError(await fail(set("ui.fontSize", "16")), "E_VALIDATION")).toBe(true);
    for (const p of ["ui.fontSzie", "nope", "ui.fontSize.x", "language.length", "keyBindings.x", "", "$typeName", "ui.$typeName", "toString"]) {
      const e = await fail(set(p, 1));
      expect(isCellarError(e, "E_USAGE"), `${p}: ${String(e)}`).toBe(true);
      expect(isCellarError(await fail(get(p)), "E_USAGE"), p).toBe(true);
    }
    expect((await fail(set("ui.fontSzie", 1)) as Error).message).toContain("`ui.fontSzie`");
    expect(isCellarError(await fail(get(5)), "E_USAGE")).toBe(true);
    expect(await store.settings.get("ui.fontSize")).toBe(14);
    expect(store.stats().records).toBe(0);
    await store.close();
  });
});
