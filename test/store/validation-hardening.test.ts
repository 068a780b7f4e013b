/**
 * Writes that were accepted but could not be read back, or were not what was validated (issue 19): every
 * write is refused with E_VALIDATION or stored as validated, on codec entities (tasks, focus sessions), on
 * general-path entities (layouts with a map set, profiles with sensitive fields), in batches and in
 * singleton updates.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CellarStore, openStore } from "../../src/generated/index.js";
import { isCellarError } from "../../src/runtime/index.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-validate-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(7);

let store: CellarStore;
beforeAll(async () => {
  store = await openStore({ dir: path.join(tmp, "s"), key });
});
afterAll(async () => {
  await store?.close();
});

/** The write's error code (a CellarError's), or "ok", or the name of an untyped error. */
async function outcome(write: () => Promise<unknown>): Promise<string> {
  try {
    await write();
    return "ok";
  } catch (e) {
    return isCellarError(e) ? e.code : `untyped ${(e as Error)?.name}`;
  }
}

/** Every record of the store through `inspect()` (JSON), or the error code. */
async function inspectAll(): Promise<string> {
  try {
    for await (const _ of store.inspect()) void _;
    return "ok";
  } catch (e) {
    return isCellarError(e) ? e.code : `untyped ${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
}

/** A JSON object nested `levels` objects deep below the top one. */
function nested(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: "x" };
  for (let i = 0; i < levels; i++) v = { n: v };
  return v;
}

const layout = (id: string, config: unknown) => ({ id, name: "n", instances: { w: { widgetType: "clock", config } } });

describe("google.protobuf.Struct nested deeper than protobuf-es reads back", () => {
  it("every accepted depth reads back; the first refused one is E_VALIDATION", async () => {
    let firstRefused = -1;
    for (let levels = 40; levels <= 52; levels++) {
      const id = `deep-${levels}`;
      const r = await outcome(() => store.gridLayouts.put(layout(id, nested(levels)) as never));
      if (r === "ok") {
        expect(firstRefused, "a deeper value accepted after a shallower one was refused").toBe(-1);
        const back = await store.gridLayouts.get(id);
        expect(back?.instances.w?.config).toEqual(nested(levels));
      } else {
        expect(r).toBe("E_VALIDATION");
        if (firstRefused < 0) firstRefused = levels;
      }
    }
    // GridLayout (1) > WidgetInstance (2) > Struct (3) > two messages per JSON level (Value, Struct), and
    // the leaf's Value: 4 + 2 * 48 = 100, protobuf-es's limit.
    expect(firstRefused).toBe(49);
    expect(await inspectAll()).toBe("ok");
  });

  it("lists count too (ListValue, then Value)", async () => {
    let v: unknown = "x";
    for (let i = 0; i < 60; i++) v = [v];
    expect(await outcome(() => store.gridLayouts.put(layout("deep-list", { l: v }) as never))).toBe("E_VALIDATION");
  });

  it("20,000 levels and a cycle: E_VALIDATION, not a RangeError", async () => {
    expect(await outcome(() => store.gridLayouts.put(layout("deep-20000", nested(20_000)) as never))).toBe("E_VALIDATION");
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(await outcome(() => store.gridLayouts.put(layout("cyclic", cyclic) as never))).toBe("E_VALIDATION");
    // A cycle through message fields, on a codec entity and a general-path one.
    const t: Record<string, unknown> = { id: "cyc", title: "t" };
    t.createdAt = t;
    expect(await outcome(() => store.tasks.put(t as never))).toBe("E_VALIDATION");
    expect(await store.tasks.has("cyc")).toBe(false);
  });

  it("the same object twice (not a cycle) is accepted", async () => {
    const shared = { a: 1, b: [1, 2] };
    expect(await outcome(() => store.gridLayouts.put(layout("shared", { x: shared, y: shared }) as never))).toBe("ok");
  });
});

describe("well-known types are validated fully", () => {
  it("a Date for a Timestamp is refused, not stored as 1970-01-01", async () => {
    const date = new Date("2026-05-01T00:00:00Z");
    // tasks: the codec entity; profiles: the general path (sensitive fields).
    expect(await outcome(() => store.tasks.put({ id: "date", title: "t", dueAt: date } as never))).toBe("E_VALIDATION");
    expect(await outcome(() => store.profiles.put({ id: "date", createdAt: date } as never))).toBe("E_VALIDATION");
    expect(await store.tasks.has("date")).toBe(false);
    expect(await store.profiles.has("date")).toBe(false);
  });

  it("Timestamp nanos and seconds out of range are refused; the bounds are stored and inspect() reads them", async () => {
    const bad = [
      { seconds: 0n, nanos: 2e9 },
      { seconds: 0n, nanos: -1 },
      { seconds: 0n, nanos: 1_000_000_000 },
      { seconds: 253402300800n, nanos: 0 }, // 10000-01-01
      { seconds: -62135596801n, nanos: 0 }, // before 0001-01-01
    ];
    for (const ts of bad) {
      expect(await outcome(() => store.tasks.put({ id: "ts-bad", title: "t", dueAt: ts }))).toBe("E_VALIDATION");
      expect(await outcome(() => store.profiles.put({ id: "ts-bad", createdAt: ts }))).toBe("E_VALIDATION");
    }
    expect(await outcome(() => store.tasks.put({ id: "ts-max", title: "t", dueAt: { seconds: 253402300799n, nanos: 999_999_999 } }))).toBe("ok");
    expect(await outcome(() => store.tasks.put({ id: "ts-min", title: "t", dueAt: { seconds: -62135596800n, nanos: 0 } }))).toBe("ok");
    expect(await outcome(() => store.profiles.put({ id: "ts-max", createdAt: { seconds: 253402300799n, nanos: 999_999_999 } }))).toBe("ok");
    expect(await inspectAll()).toBe("ok");
  });

  it("Duration: range and sign rules", async () => {
    const session = (id: string, duration: unknown) => ({ id, startedAt: { seconds: 1n }, duration }) as never;
    for (const d of [
      { seconds: 1n, nanos: -1 },
      { seconds: -1n, nanos: 1 },
      { seconds: 0n, nanos: 1_000_000_000 },
      { seconds: 315576000001n },
      { seconds: -315576000001n },
    ]) {
      expect(await outcome(() => store.focusSessions.put(session("d-bad", d)))).toBe("E_VALIDATION");
    }
    for (const d of [{ seconds: -1n, nanos: -5 }, { seconds: 0n, nanos: -5 }, { seconds: 315576000000n, nanos: 999_999_999 }]) {
      expect(await outcome(() => store.focusSessions.put(session(`d-ok-${d.seconds}-${d.nanos}`, d)))).toBe("ok");
    }
    expect(await inspectAll()).toBe("ok");
  });
});

/** An object whose property `name` answers `values` in turn (the last one from then on), counting reads. */
function shifting<T extends object>(base: T, name: string, values: unknown[]): { obj: T; reads: () => number } {
  let n = 0;
  Object.defineProperty(base, name, {
    enumerable: true,
    configurable: true,
    get: () => values[Math.min(n++, values.length - 1)],
  });
  return { obj: base, reads: () => n };
}

describe("each input property is read once: what is validated is what is stored, under the key validated", () => {
  it("codec entity: a value valid at the first read and invalid at the second", async () => {
    const { obj, reads } = shifting({ id: "g1" } as Record<string, unknown>, "title", ["valid", 42]);
    const put = await store.tasks.put(obj as never);
    expect(reads()).toBe(1);
    expect(put.title).toBe("valid");
    expect((await store.tasks.get("g1"))?.title).toBe("valid");
  });

  it("codec entity: a key getter that changes stores under the key validated, indexed by the values read", async () => {
    const { obj, reads } = shifting({ title: "t" } as Record<string, unknown>, "id", ["k-first", "k-second"]);
    const tags = shifting([] as unknown[], "0", ["tag-first", "tag-second"]);
    Object.defineProperty(tags.obj, "length", { value: 1 });
    obj.tags = tags.obj;
    const put = await store.tasks.put(obj as never);
    expect(reads()).toBe(1);
    expect(tags.reads()).toBe(1);
    expect(put.id).toBe("k-first");
    expect(await store.tasks.has("k-second")).toBe(false);
    expect((await store.tasks.get("k-first"))?.id).toBe("k-first");
    expect((await store.tasks.query({ tags: "tag-first" })).map((t) => t.id)).toEqual(["k-first"]);
  });

  it("general path (a map set): the same, with the key and a nested value", async () => {
    const { obj, reads } = shifting({ name: "n", instances: { w: { widgetType: "clock" } } } as Record<string, unknown>, "id", ["l-first", "l-second"]);
    const inner = shifting({} as Record<string, unknown>, "widgetType", ["ok", 7]);
    (obj.instances as Record<string, unknown>).v = inner.obj;
    const put = await store.gridLayouts.put(obj as never);
    expect(reads()).toBe(1);
    expect(inner.reads()).toBe(1);
    expect(put.id).toBe("l-first");
    expect(await store.gridLayouts.has("l-second")).toBe(false);
    expect((await store.gridLayouts.get("l-first"))?.instances.v?.widgetType).toBe("ok");
  });

  it("general path (sensitive fields): the same, through a Proxy", async () => {
    let reads = 0;
    const target = { id: "p-first", displayName: "d", authToken: "secret" };
    const proxy = new Proxy(target, {
      get(t, p, r) {
        if (p === "id") return reads++ === 0 ? "p-first" : "p-second";
        if (p === "authToken") return reads > 1 ? 5 : "secret";
        return Reflect.get(t, p, r);
      },
    });
    const put = await store.profiles.put(proxy as never);
    expect(put.id).toBe("p-first");
    expect(reads).toBe(1);
    expect(await store.profiles.has("p-second")).toBe(false);
    expect((await store.profiles.get("p-first"))?.authToken).toBe("secret");
  });

  it("batch writes and singleton updates", async () => {
    const a = shifting({ id: "b1" } as Record<string, unknown>, "title", ["valid", 42]);
    const b = shifting({ id: "b2", instances: {} } as Record<string, unknown>, "name", ["valid", 42]);
    const s = shifting({} as Record<string, unknown>, "language", ["fr", 42]);
    const u = shifting({} as Record<string, unknown>, "activePanel", ["ws", 42]);
    await store.batch((tx) => {
      tx.tasks.put(a.obj as never);
      tx.gridLayouts.put(b.obj as never);
      tx.settings.update(s.obj as never);
    });
    await store.appState.update(u.obj as never);
    expect([a.reads(), b.reads(), s.reads(), u.reads()]).toEqual([1, 1, 1, 1]);
    expect((await store.tasks.get("b1"))?.title).toBe("valid");
    expect((await store.gridLayouts.get("b2"))?.name).toBe("valid");
    expect((await store.settings.get()).language).toBe("fr");
    expect((await store.appState.get()).activePanel).toBe("ws");
  });

  it("a property inherited through the prototype does not satisfy `required`", async () => {
    const task = Object.assign(Object.create({ title: "inherited" }) as object, { id: "inh" });
    expect(await outcome(() => store.tasks.put(task as never))).toBe("E_VALIDATION");
    const profile = Object.assign(Object.create({ id: "inherited" }) as object, { displayName: "d" });
    expect(await outcome(() => store.profiles.put(profile as never))).toBe("E_VALIDATION");
    expect(await store.tasks.has("inh")).toBe(false);
  });
});

describe("a lone UTF-16 surrogate is refused in every string", () => {
  const lone = "a\uD800b";
  it.each([
    ["a string field (codec)", () => store.tasks.put({ id: "s1", title: lone })],
    ["a repeated string (codec)", () => store.tasks.put({ id: "s2", title: "t", tags: ["ok", lone] })],
    ["a nested message's string (codec)", () => store.appState.update({ mainWindow: { displayId: lone } })],
    ["a string field (general)", () => store.profiles.put({ id: "s4", displayName: lone })],
    ["a sensitive string (general)", () => store.profiles.put({ id: "s5", authToken: "\uDC00" })],
    ["a map key (general)", () => store.gridLayouts.put({ id: "s6", name: "n", instances: { [lone]: { widgetType: "x" } } })],
    ["a map value's string (general)", () => store.gridLayouts.put({ id: "s7", name: "n", instances: { w: { widgetType: lone } } })],
    ["a Struct string (general)", () => store.gridLayouts.put({ id: "s8", name: "n", instances: { w: { widgetType: "x", config: { a: [{ b: lone }] } } } })],
    ["a Struct key (general)", () => store.gridLayouts.put({ id: "s9", name: "n", instances: { w: { widgetType: "x", config: { a: { [lone]: 1 } } } } })],
    ["an unboxed StringValue (general)", () => store.profiles.put({ id: "s10", locale: lone })],
  ])("%s", async (_name, write) => {
    expect(await outcome(write as () => Promise<unknown>)).toBe("E_VALIDATION");
  });

  it("a well-formed pair is stored as given", async () => {
    await store.tasks.put({ id: "pair", title: "😀" });
    expect((await store.tasks.get("pair"))?.title).toBe("😀");
  });
});

describe("bytes: a Proxy of a Uint8Array or one with a lying `length`", () => {
  it("is refused with E_VALIDATION, never an untyped error", async () => {
    const proxy = new Proxy(new Uint8Array([1, 2, 3]), {});
    expect(await outcome(() => store.profiles.put({ id: "b-proxy", avatar: proxy }))).toBe("E_VALIDATION");
    const fake = Object.create(Uint8Array.prototype) as Uint8Array;
    expect(await outcome(() => store.profiles.put({ id: "b-fake", avatar: fake }))).toBe("E_VALIDATION");
    expect(await outcome(() => store.profiles.put({ id: "b-f64", avatar: new Float64Array(2) as never }))).toBe("E_VALIDATION");
  });

  it("a lying `length` does not change what is stored (the real bytes, checked against max_length by their real length)", async () => {
    const liar = new Uint8Array([1, 2, 3]);
    Object.defineProperty(liar, "length", { value: 1e9 });
    expect(await outcome(() => store.profiles.put({ id: "b-liar", avatar: liar }))).toBe("ok");
    expect([...((await store.profiles.get("b-liar"))?.avatar ?? [])]).toEqual([1, 2, 3]);
    const big = new Uint8Array(65537);
    Object.defineProperty(big, "length", { value: 1 });
    expect(await outcome(() => store.profiles.put({ id: "b-big", avatar: big }))).toBe("E_VALIDATION");
  });

  it("bytes changed by a later getter are not what is stored", async () => {
    const avatar = new Uint8Array([1, 2, 3]);
    const p = { id: "b-mut", avatar } as Record<string, unknown>;
    // A property after `avatar` both in the input's order (the general path's snapshot) and in field numbers
    // (the generated codec's walk, which this entity takes since sensitive fields are split on its bytes).
    Object.defineProperty(p, "createdAt", {
      enumerable: true,
      get: () => {
        avatar.fill(9);
        return undefined;
      },
    });
    await store.profiles.put(p as never);
    // `avatar` was copied (and then checked) before `createdAt` ran: the bytes validated are the bytes stored.
    expect([...((await store.profiles.get("b-mut"))?.avatar ?? [])]).toEqual([1, 2, 3]);
  });
});
