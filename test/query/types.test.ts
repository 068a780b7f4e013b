/**
 * The query API is typed from the schema, checked by `npm run typecheck` (tsconfig.json includes test/):
 * each `@ts-expect-error` fails the type check if its line compiles. The same calls made from plain
 * JavaScript (the types cast away) are refused at run time with E_USAGE naming entity and field, never the value.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, expectTypeOf, it } from "vitest";
import { entities } from "../../src/generated/index.js";
import { FocusKind, type FocusSessionSchema } from "../../src/generated/examples/focus/v1/focus_pb.js";
import type { ConversationSchema } from "../../src/generated/examples/conversations/v1/conversations_pb.js";
import { TaskStatus, type TaskSchema } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import { defineCollection, isCellarError, openStore, type QueryPage, type StoredRecord } from "../../src/runtime/index.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-query-types-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(5);

// Indexes as a schema would declare them (`indexes: ["started_at", "task_id,started_at", "duration", "kind"]`).
// Without the generated codec: it collects the values of the schema's own indexes only, not these.
type FocusIndex = "startedAt" | "taskId" | "duration" | "kind";
const focus = defineCollection<typeof FocusSessionSchema, string, FocusIndex>({
  ...entities.focusSessions,
  codec: undefined,
  indexes: ["startedAt", "taskId", "duration", "kind"],
  indexSpecs: [
    { id: "2", fields: ["startedAt"], name: "started_at" },
    { id: "5,2", fields: ["taskId", "startedAt"], name: "task_id,started_at" },
    { id: "10", fields: ["duration"], name: "duration" },
    { id: "6", fields: ["kind"], name: "kind" },
  ],
});
type ConvIndex = "totalTokens" | "archived" | "model";
const conversations = defineCollection<typeof ConversationSchema, string, ConvIndex>({
  ...entities.conversations,
  codec: undefined,
  indexes: ["totalTokens", "archived", "model"],
  indexSpecs: [
    { id: "7", fields: ["totalTokens"], name: "total_tokens" },
    { id: "8", fields: ["archived"], name: "archived" },
    { id: "5", fields: ["model"], name: "model" },
  ],
});

const fail = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);

describe("conditions are typed from the schema", () => {
  it("accepts each field's values and operators; refuses the rest at compile time and with E_USAGE at run time", async () => {
    const store = await openStore({ focus, conversations, tasks: entities.tasks }, { dir: path.join(tmp, "t"), key });
    const at = (s: number) => timestampFromDate(new Date(s * 1000));
    await store.focus.put({ id: "f1", startedAt: at(100), taskId: "t1", kind: FocusKind.FOCUS, duration: { seconds: 1500n } });
    await store.conversations.put({ id: "c1", model: "m", totalTokens: 12n });
    await store.tasks.put({ id: "t1", title: "x", status: TaskStatus.TODO, tags: ["a"] });

    // What compiles, and runs.
    expect(await store.focus.query({ startedAt: { gte: new Date(50_000), lt: at(200) } })).toHaveLength(1);
    expect(await store.focus.query({ startedAt: { gt: { seconds: 99n } }, taskId: "t1" }, { orderBy: "startedAt", reverse: true })).toHaveLength(1);
    expect(await store.focus.query({ duration: { gte: 60, lte: { seconds: 1500n, nanos: 0 } } })).toHaveLength(1);
    expect(await store.focus.query({ kind: { in: [FocusKind.FOCUS, FocusKind.LONG_BREAK] } })).toHaveLength(1);
    expect(await store.conversations.query({ totalTokens: { gte: 12n, lt: 13 } })).toHaveLength(1);
    expect(await store.conversations.query({ archived: false, model: { prefix: "m" } })).toHaveLength(1);
    expect(await store.tasks.query({ tags: { prefix: "a" }, status: TaskStatus.TODO })).toHaveLength(1);
    // The README's example, on the generated `tasks` (indexes "status", "tags", "project_id", "status,created_at").
    await store.tasks.put({ id: "t2", title: "y", status: TaskStatus.IN_PROGRESS, createdAt: at(300) });
    await store.tasks.put({ id: "t3", title: "z", status: TaskStatus.TODO, createdAt: at(400) });
    const since = new Date(200_000);
    const recent = await store.tasks.query(
      { status: { in: [TaskStatus.TODO, TaskStatus.IN_PROGRESS] }, createdAt: { gte: since } },
      { orderBy: "createdAt", reverse: true, limit: 20 },
    );
    expect(recent.map((t) => t.id)).toEqual(["t3", "t2"]);
    expect(store.tasks.explain({ status: { in: [TaskStatus.TODO, TaskStatus.IN_PROGRESS] }, createdAt: { gte: since } }, { orderBy: "createdAt" })).toMatchObject({
      index: "status,created_at",
      ranges: 2,
      order: "index",
    });
    const page = await store.tasks.queryPage({ status: TaskStatus.TODO }, { limit: 10 });
    expectTypeOf(page).toEqualTypeOf<QueryPage<StoredRecord<typeof TaskSchema>>>();
    expectTypeOf(await store.focus.count({ kind: FocusKind.FOCUS })).toEqualTypeOf<number>();

    // What does not compile, and is refused when it runs anyway.
    const refused = [
      // @ts-expect-error `note` is not an indexed field
      () => store.focus.query({ note: "x" }),
      // @ts-expect-error a string for an enum field
      () => store.focus.query({ kind: "FOCUS" }),
      // @ts-expect-error a string for a Timestamp field
      () => store.focus.query({ startedAt: { gte: "2026-01-01" } }),
      // @ts-expect-error a Date for a string field
      () => store.focus.query({ taskId: new Date() }),
      // @ts-expect-error `prefix` is for string fields
      () => store.focus.query({ kind: { prefix: "1" } }),
      // @ts-expect-error an unknown operator
      () => store.focus.query({ kind: { gteq: 1 } }),
      // @ts-expect-error `in` takes a list
      () => store.focus.query({ kind: { in: 1 } }),
      // @ts-expect-error a number for a bool field
      () => store.conversations.query({ archived: 1 }),
      // @ts-expect-error a string for an int64 field
      () => store.conversations.query({ totalTokens: { gt: "many" } }),
      // @ts-expect-error `orderBy` a field that is not indexed
      () => store.focus.query({}, { orderBy: "note" }),
      // @ts-expect-error `orderBy` a list
      () => store.tasks.query({}, { orderBy: "tags" }),
      // @ts-expect-error a list of values for a list field (a condition is on one element)
      () => store.tasks.query({ tags: ["a"] }),
      // @ts-expect-error `count` takes conditions on indexed fields
      () => store.tasks.count({ title: "x" }),
    ];
    for (const call of refused) {
      const e = await fail(call());
      expect(isCellarError(e, "E_USAGE"), String(call)).toBe(true);
      expect((e as Error).message).toMatch(/`(focus_sessions|conversations|tasks)`|operator/);
    }
    await store.close();
  });
});
