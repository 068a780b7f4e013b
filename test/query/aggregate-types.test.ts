/**
 * Types of `aggregate`'s options and results, checked by `npm run typecheck` (tsconfig.json includes test/):
 * which fields a bucket, a sum or a min may name, and the bucket type options ask for. Each
 * `@ts-expect-error` fails the type check if its line compiles.
 */
import { describe, expect, expectTypeOf, it } from "vitest";
import type { AggregateOptions, AggregateResult, MinMaxField, NumField, TimeField } from "../../src/runtime/index.js";
import type { FocusSessionSchema } from "../../src/generated/examples/focus/v1/focus_pb.js";
import type { ConversationSchema } from "../../src/generated/examples/conversations/v1/conversations_pb.js";

type FS = typeof FocusSessionSchema;

describe("aggregate types from the schema", () => {
  it("numeric fields (numbers, 64-bit, Duration; no enum, string or bool) for sum/avg, Timestamps too for min/max", () => {
    expectTypeOf<NumField<FS>>().toEqualTypeOf<"plannedSeconds" | "interruptions" | "duration">();
    expectTypeOf<MinMaxField<FS>>().toEqualTypeOf<"plannedSeconds" | "interruptions" | "duration" | "startedAt">();
    expectTypeOf<"totalTokens">().toMatchTypeOf<NumField<typeof ConversationSchema>>();
    expectTypeOf<TimeField<FS>>().toEqualTypeOf<"startedAt">();
    expectTypeOf<TimeField<FS, "startedAt" | "taskId">>().toEqualTypeOf<"startedAt">();
    expectTypeOf<TimeField<FS, "taskId">>().toEqualTypeOf<never>();
  });

  it("options: a bucket on an indexed Timestamp, metrics on numeric fields", () => {
    const ok: AggregateOptions<FS, "startedAt" | "kind"> = {
      where: { kind: 1 },
      bucket: { field: "startedAt", by: "week", timeZone: "Europe/Berlin", weekStart: 7 },
      count: true,
      sum: ["duration"],
      min: ["startedAt"],
    };
    // @ts-expect-error a string field cannot be summed
    const s: AggregateOptions<FS, "startedAt"> = { sum: ["taskId"] };
    // @ts-expect-error an enum field cannot be averaged
    const e: AggregateOptions<FS, "startedAt"> = { avg: ["kind"] };
    // @ts-expect-error a Timestamp cannot be summed
    const t: AggregateOptions<FS, "startedAt"> = { sum: ["startedAt"] };
    // @ts-expect-error the bucket's field must be an indexed Timestamp field
    const b: AggregateOptions<FS, "kind"> = { bucket: { field: "startedAt", by: "day" } };
    // @ts-expect-error weekStart is an ISO weekday
    const w: AggregateOptions<FS, "startedAt"> = { bucket: { field: "startedAt", by: "week", weekStart: 0 } };
    expect([ok, s, e, t, b, w].length).toBe(6);
  });

  it("results carry exactly the metrics asked for, typed by field", () => {
    type R = AggregateResult<{ bucket: { field: "startedAt"; by: "day" }; count: true; sum: readonly ["duration"]; max: readonly ["startedAt"] }>;
    expectTypeOf<R["start"]>().toEqualTypeOf<Date>();
    expectTypeOf<R["count"]>().toEqualTypeOf<number>();
    expectTypeOf<R["sum"]>().toEqualTypeOf<Readonly<Record<"duration", number>>>();
    expectTypeOf<R["max"]>().toEqualTypeOf<Readonly<Record<"startedAt", number | null>>>();
    expectTypeOf<R>().not.toHaveProperty("avg");
    type All = AggregateResult<{ count: true }>;
    expectTypeOf<All["start"]>().toEqualTypeOf<undefined>();
    expectTypeOf<All>().not.toHaveProperty("sum");
  });
});
