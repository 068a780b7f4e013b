/** `toJson` / `fromJson` of repositories: records hold `bigint` (JSON.stringify throws), protobuf JSON does not. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { equals, type MessageShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { TaskSchema, TaskStatus } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import { Theme, UserSettingsSchema } from "../../src/generated/examples/settings/v1/settings_pb.js";
import { isCellarError, ValidationError } from "../../src/runtime/index.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-json-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(6);

describe("toJson and fromJson", () => {
  it("a record with a Timestamp goes to protobuf JSON and back, equal, through JSON text", async () => {
    const store = await openStore({ dir: path.join(tmp, "rt"), key });
    const task = await store.tasks.put({ id: "t1", title: "a", status: TaskStatus.DONE, tags: ["x"], createdAt: timestampFromDate(new Date("2026-01-02T03:04:05.678Z")) });
    expect(() => JSON.stringify(task)).toThrow(TypeError); // bigint seconds: why toJson exists
    const json = store.tasks.toJson(task);
    expect(json).toMatchObject({ id: "t1", title: "a", status: "TASK_STATUS_DONE", tags: ["x"], createdAt: "2026-01-02T03:04:05.678Z" });
    const back = store.tasks.fromJson(JSON.parse(JSON.stringify(json)));
    expect(Object.isFrozen(back)).toBe(true);
    expect(equals(TaskSchema, back as MessageShape<typeof TaskSchema>, task as MessageShape<typeof TaskSchema>)).toBe(true);
    await store.tasks.put(back);
    const settings = await store.settings.update({ theme: Theme.DARK, aiProvider: { apiKey: "sk" } });
    const sjson = store.settings.toJson(settings);
    expect(sjson).toMatchObject({ theme: "THEME_DARK", aiProvider: { apiKey: "sk" } });
    expect(equals(UserSettingsSchema, store.settings.fromJson(sjson) as never, settings as never)).toBe(true);
    await store.close();
  });

  it("fromJson validates like put (E_VALIDATION with the field's path), and refuses what is not protobuf JSON", async () => {
    const store = await openStore({ dir: path.join(tmp, "invalid"), key });
    const fails = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e;
      }
      return null;
    };
    const long = fails(() => store.tasks.fromJson({ id: "t1", title: "x".repeat(501) }));
    expect(long).toBeInstanceOf(ValidationError);
    expect((long as ValidationError).issues[0]?.path).toEqual(["title"]);
    expect(isCellarError(fails(() => store.tasks.fromJson({ title: "no id" })), "E_VALIDATION")).toBe(true);
    expect(isCellarError(fails(() => store.tasks.fromJson({ id: "t1", title: "a", nope: 1 })), "E_VALIDATION")).toBe(true);
    expect(isCellarError(fails(() => store.tasks.fromJson({ id: "t1", title: 5 })), "E_VALIDATION")).toBe(true);
    expect(isCellarError(fails(() => store.settings.fromJson({ ui: { fontSize: 99 } })), "E_VALIDATION")).toBe(true);
    expect(isCellarError(fails(() => store.tasks.toJson({ id: "t1" } as never)), "E_USAGE")).toBe(true);
    expect(store.stats().records).toBe(0); // nothing stored
    await store.close();
  });
});
