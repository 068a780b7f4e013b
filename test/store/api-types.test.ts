/**
 * Types of the typed API, checked by `npm run typecheck` (tsconfig.json includes test/): records are read-only
 * at every depth (they are frozen at run time), and singleton paths and their values are typed from the schema.
 * Each `@ts-expect-error` fails the type check if the line compiles; the run-time halves check what the
 * types promise.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, expectTypeOf, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { Theme } from "../../src/generated/examples/settings/v1/settings_pb.js";
import type { FieldPath, PathValue, StoredRecord } from "../../src/runtime/index.js";
import type { UserSettingsSchema } from "../../src/generated/examples/settings/v1/settings_pb.js";
import type { TaskSchema } from "../../src/generated/examples/tasks/v1/tasks_pb.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-types-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(4);

describe("records are typed read-only, deeply", () => {
  it("assigning to a record, its lists, maps or nested messages does not compile, and throws at run time", async () => {
    const store = await openStore({ dir: path.join(tmp, "ro"), key });
    const task = await store.tasks.put({ id: "t1", title: "a", tags: ["x"], createdAt: timestampFromDate(new Date(0)) });
    const got = (await store.tasks.get("t1"))!;
    const listed = (await store.tasks.list())[0]!;
    const many = (await store.tasks.getMany(["t1"]))[0]!;
    const queried = (await store.tasks.query({ tags: "x" }))[0]!;
    const updated = await store.tasks.update("t1", (c) => {
      // @ts-expect-error the updater's current record is read-only too
      expect(() => (c.title = "z")).toThrow(TypeError);
      return { title: c.title };
    });
    const settings = await store.settings.get();
    for (const r of [task, got, listed, many, queried, updated]) {
      expectTypeOf(r).toEqualTypeOf<StoredRecord<typeof TaskSchema>>();
      // @ts-expect-error a field of a record
      expect(() => (r.title = "x")).toThrow(TypeError);
      // @ts-expect-error a list of a record
      expect(() => r.tags.push("y")).toThrow(TypeError);
      // @ts-expect-error an element of a list
      expect(() => (r.tags[0] = "y")).toThrow(TypeError);
      // @ts-expect-error a field of a nested message
      expect(() => (r.createdAt!.seconds = 1n)).toThrow(TypeError);
    }
    // @ts-expect-error a map of a singleton
    expect(() => (settings.keyBindings.x = "y")).toThrow(TypeError);
    // @ts-expect-error a nested message of a singleton
    expect(() => (settings.ui = undefined)).toThrow(TypeError);
    for await (const r of store.tasks.iterate()) {
      // @ts-expect-error iterate() yields read-only records
      expect(() => (r.notes = "x")).toThrow(TypeError);
    }
    // Records still go back into writes (spreads, read-only lists) and into protobuf-es helpers of list-free messages.
    await store.tasks.put({ ...got, title: "b", tags: got.tags });
    // Struct fields (JSON objects) and maps of messages, read-only too, also go back into writes.
    const layout = await store.gridLayouts.put({ id: "g", name: "n", columns: 12, instances: { w: { widgetType: "clock", config: { a: [1, { b: "c" }] } } }, positions: { w: { x: 1, width: 1, height: 1 } } });
    const config = layout.instances.w!.config!;
    // @ts-expect-error a JSON array inside a Struct field
    expect(() => (config.a as readonly unknown[] as unknown[]).push(2) && (config.a = 1)).toThrow(TypeError);
    await store.gridLayouts.put({ ...layout, name: "m" });
    await store.gridLayouts.put({ ...layout, instances: { w: { ...layout.instances.w!, config } }, positions: layout.positions });
    expect(timestampDate(got.createdAt!).getTime()).toBe(0);
    await store.close();
  });
});

describe("singleton paths are typed from the schema", () => {
  it("get and set take the schema's dotted paths and their value types", async () => {
    type S = StoredRecord<typeof UserSettingsSchema>;
    expectTypeOf<"ui.fontSize">().toExtend<FieldPath<S>>();
    expectTypeOf<"aiProvider.apiKey">().toExtend<FieldPath<S>>();
    expectTypeOf<"$typeName">().not.toExtend<FieldPath<S>>();
    expectTypeOf<"ui.$typeName">().not.toExtend<FieldPath<S>>();
    expectTypeOf<PathValue<S, "ui.fontSize">>().toEqualTypeOf<number | undefined>();
    expectTypeOf<PathValue<S, "theme">>().toEqualTypeOf<Theme>();

    const store = await openStore({ dir: path.join(tmp, "paths"), key });
    expectTypeOf(await store.settings.get("ui.fontSize")).toEqualTypeOf<number | undefined>();
    expectTypeOf(await store.settings.get("language")).toEqualTypeOf<string>();
    await store.settings.set("ui.fontSize", 16);
    await store.settings.set("theme", Theme.DARK);
    await store.settings.set("ui", { fontSize: 20 });
    // @ts-expect-error a path that is not in the schema
    await expect(store.settings.set("ui.fontSzie", 16)).rejects.toMatchObject({ code: "E_USAGE" });
    // @ts-expect-error a value of the wrong type
    await expect(store.settings.set("ui.fontSize", "16")).rejects.toMatchObject({ code: "E_VALIDATION" });
    // @ts-expect-error protobuf-es's own members are not paths
    await expect(store.settings.get("$typeName")).rejects.toMatchObject({ code: "E_USAGE" });
    // @ts-expect-error lists and maps are leaves
    await expect(store.settings.get("keyBindings.x")).rejects.toMatchObject({ code: "E_USAGE" });
    expect(await store.settings.get("ui.fontSize")).toBe(20);
    await store.close();
  });
});
