/** Errors that say where: a validation error in a batch names the write; a query value of the wrong type is E_USAGE. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { TaskStatus } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import { isCellarError, ValidationError } from "../../src/runtime/index.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-errs-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(8);
const fail = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);

describe("a validation error inside batch", () => {
  it("names the failed write's position (message and `batchIndex`) and its key (`key` only), and nothing is written", async () => {
    const store = await openStore({ dir: path.join(tmp, "batch"), key });
    const e = await fail(
      store.batch((tx) => {
        tx.tasks.put({ id: "t0", title: "fine" });
        tx.settings.update({ language: "de" });
        tx.tasks.delete("t9");
        tx.tasks.put({ id: "task-secret-3", title: "x".repeat(501), notes: "private note" });
      }),
    );
    expect(e).toBeInstanceOf(ValidationError);
    const v = e as ValidationError;
    expect(v.batchIndex).toBe(3);
    expect(v.key).toBe("task-secret-3");
    expect(v.entity).toBe("tasks");
    expect(v.issues[0]?.path).toEqual(["title"]);
    expect(v.message).toContain("write #3 of the batch");
    expect(v.message).not.toContain("task-secret-3");
    expect(v.message).not.toContain("private note");
    expect(await store.tasks.count()).toBe(0);
    expect(await store.settings.get("language")).toBe("en");

    // A key of the wrong type is not reported as a key; the position still is.
    const noKey = (await fail(store.batch((tx) => tx.tasks.put({ id: 5 as never, title: "a" })))) as ValidationError;
    expect(noKey.batchIndex).toBe(0);
    expect(noKey.key).toBeUndefined();

    // A singleton's update is checked when the batch commits: its position is named too.
    const late = (await fail(
      store.batch((tx) => {
        tx.tasks.put({ id: "t1", title: "a" });
        tx.settings.update({ language: "not a language!" });
      }),
    )) as ValidationError;
    expect(late).toBeInstanceOf(ValidationError);
    expect(late.batchIndex).toBe(1);
    expect(late.key).toBeUndefined();
    expect(late.message).toContain("write #1 of the batch");
    expect(await store.tasks.count()).toBe(0);

    // Outside a batch: no position.
    const single = (await fail(store.tasks.put({ id: "t1", title: "" }))) as ValidationError;
    expect(single.batchIndex).toBeUndefined();
    expect(single.message).not.toContain("batch");
    await store.close();
  });
});

describe("query values are checked against the index field", () => {
  it("a value of the wrong type is E_USAGE naming entity and index, not the value", async () => {
    const store = await openStore({ dir: path.join(tmp, "query"), key });
    await store.tasks.put({ id: "t1", title: "a", tags: ["5"], status: TaskStatus.TODO, projectId: "p" });
    const query = store.tasks.query.bind(store.tasks) as (w: Record<string, unknown>) => Promise<unknown[]>;
    for (const where of [{ tags: 5 }, { status: "TODO" }, { status: 1.5 }, { projectId: 7n }, { tags: ["5"] }, { projectId: null }, { status: true }]) {
      const e = await fail(query(where));
      expect(isCellarError(e, "E_USAGE"), JSON.stringify(where, (_, v) => (typeof v === "bigint" ? String(v) : v))).toBe(true);
      const field = Object.keys(where)[0]!;
      expect((e as Error).message).toContain(`\`${field}\``);
      expect((e as Error).message).toContain("`tasks`");
    }
    expect((await fail(query({ tags: 5 })) as Error).message).not.toContain("5");
    expect(await query({ tags: "5" })).toHaveLength(1);
    expect(await query({ status: TaskStatus.TODO, projectId: "p" })).toHaveLength(1);
    expect(await query({ status: undefined })).toHaveLength(1); // undefined: no condition, as before
    await store.close();
  });
});
