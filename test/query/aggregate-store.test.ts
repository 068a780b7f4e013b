/**
 * runAggregate over a real store (real files, the engine's ordered indexes, the query planner) against a Map
 * model of the records: random focus sessions written, deleted, compacted and reopened, then random
 * aggregates (zones, periods, where, from/to, fill, metrics read from an index sk, from another index's
 * terms, or from the decoded record) must equal `aggregateRows` over the model's rows (itself tested against
 * Intl in aggregate.test.ts). Three definitions: the bucket field and the summed field in one compound index
 * (index-only path), the summed field in another index only, and no index holding it (record decode).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { defineCollection, openStore, isCellarError, type CollectionDefinition } from "../../src/runtime/index.js";
import { FocusSessionSchema } from "../../src/generated/examples/focus/v1/focus_pb.js";
import { FocusSessionInputSchema } from "../../src/generated/examples/focus/v1/focus_zod.js";
import { FocusSessionCodec } from "../../src/generated/examples/focus/v1/focus_codec.js";
import { aggregateRows, type AggregateOptions, type AggregateRow } from "../../src/runtime/typed/aggregate.js";
import { runAggregate } from "../../src/runtime/typed/aggregate-run.js";
import { planIndexAggregate } from "../../src/runtime/typed/aggregate-index.js";
import { componentNumber, encodeComponent, type ComponentKind, type IndexKeyer } from "../../src/runtime/typed/index-keys.js";
import type { QueryContext } from "../../src/runtime/typed/query.js";
import type { RecordCodec } from "../../src/runtime/typed/record-codec.js";
import type { Engine } from "../../src/runtime/storage/engine.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-aggregate-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(7);
let dirs = 0;

type Field = "startedAt" | "duration" | "taskId" | "kind";
/** The generated validator, `startedAt` made optional: sessions without one are in no bucket. */
const validator = FocusSessionInputSchema.extend({ startedAt: FocusSessionInputSchema.shape.startedAt.optional() });
const common = {
  name: "focus_sessions",
  version: 3,
  schema: FocusSessionSchema,
  validator,
  key: "id",
  keyKind: "string" as const,
  sensitive: [],
};
const spec = (id: string, fields: string[], name: string) => ({ id, fields, name });
const DEFS = {
  /** The bucket field alone, and with the duration: counts and durations from the indexes only. Written
   * through the generated codec (it hands the runtime every field indexed here), the others through zod. */
  compound: defineCollection<typeof FocusSessionSchema, string, Field>({
    ...common,
    codec: FocusSessionCodec,
    indexes: ["startedAt", "duration", "taskId", "kind"],
    indexSpecs: [spec("2", ["startedAt"], "started_at"), spec("2,10", ["startedAt", "duration"], "started_at,duration"), spec("5", ["taskId"], "task_id"), spec("6", ["kind"], "kind")],
  }),
  /** The example schema's shape: the bucket field only in `started_at,duration` (which holds sessions without a duration too). */
  compoundOnly: defineCollection<typeof FocusSessionSchema, string, Field>({
    ...common,
    indexes: ["startedAt", "duration", "kind"],
    indexSpecs: [spec("2,10", ["startedAt", "duration"], "started_at,duration"), spec("6", ["kind"], "kind")],
  }),
  /** The duration in an index of its own: read from the record's terms. */
  separate: defineCollection<typeof FocusSessionSchema, string, Field>({
    ...common,
    indexes: ["startedAt", "duration", "kind"],
    indexSpecs: [spec("2", ["startedAt"], "started_at"), spec("10", ["duration"], "duration"), spec("6", ["kind"], "kind")],
  }),
  /** No index holds the duration: decoded from the record. */
  plain: defineCollection<typeof FocusSessionSchema, string, Field>({
    ...common,
    indexes: ["startedAt", "kind"],
    indexSpecs: [spec("2", ["startedAt"], "started_at"), spec("6", ["kind"], "kind")],
  }),
};

interface Rec {
  id: string;
  startedMs?: number; // unset: in no bucket
  duration?: number; // whole seconds; unset: skipped by sum/avg/min/max
  planned: number;
  kind: number;
  interruptions: number;
}

const CHANGES = [Date.UTC(2026, 2, 29, 1), Date.UTC(2026, 9, 25, 1), Date.UTC(2026, 3, 5, 3), Date.UTC(2026, 8, 6, 4), Date.UTC(2026, 10, 1, 6)];
const instant = fc.oneof(
  // Local midnights of the zones below (UTC offsets 0, +1, +2, -3, -4, -5, +10.5, +11 hours) and a
  // millisecond either side: bucket boundaries.
  fc
    .tuple(fc.integer({ min: 0, max: 365 }), fc.constantFrom(0, -1, -2, 3, 4, 5, -10.5, -11), fc.constantFrom(-1, 0, 0, 1))
    .map(([d, h, ms]) => Date.UTC(2026, 0, 1) + d * 86_400_000 + h * 3_600_000 + ms),
  fc.tuple(fc.constantFrom(...CHANGES), fc.integer({ min: -40 * 3_600_000, max: 40 * 3_600_000 })).map(([c, d]) => c + d),
  fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2027, 0, 1) }),
);
const recArb = fc.record(
  {
    id: fc.integer({ min: 0, max: 60 }).map((i) => `s${i}`),
    startedMs: fc.option(instant, { nil: undefined, freq: 5 }),
    duration: fc.option(fc.integer({ min: 0, max: 7200 }), { nil: undefined, freq: 4 }),
    planned: fc.constantFrom(0, 900, 1500),
    kind: fc.integer({ min: 0, max: 3 }),
    interruptions: fc.integer({ min: 0, max: 5 }),
  },
  { requiredKeys: ["id", "startedMs", "duration", "planned", "kind", "interruptions"] },
);
const opArb = fc.oneof(
  { weight: 5, arbitrary: recArb.map((r) => ({ put: r })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 60 }).map((i) => ({ del: `s${i}` })) },
  { weight: 1, arbitrary: fc.constant({ compact: true }) },
);

function input(r: Rec) {
  return {
    id: r.id,
    ...(r.startedMs !== undefined && { startedAt: { seconds: BigInt(Math.floor(r.startedMs / 1000)), nanos: (r.startedMs % 1000) * 1e6 } }),
    ...(r.duration !== undefined && { duration: { seconds: BigInt(r.duration), nanos: 0 } }),
    plannedSeconds: r.planned,
    kind: r.kind,
    interruptions: r.interruptions,
  };
}

const ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "UTC"];
const optionsArb = fc.record(
  {
    kind: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    bucket: fc.option(
      fc.record(
        {
          by: fc.constantFrom("day" as const, "week" as const, "month" as const),
          timeZone: fc.constantFrom(...ZONES),
          weekStart: fc.constantFrom(1 as const, 7 as const),
          from: instant,
          to: instant,
        },
        { requiredKeys: ["by", "timeZone"] },
      ).map((b) => (b.from !== undefined && b.to !== undefined && b.from > b.to ? { ...b, from: b.to, to: b.from } : b)),
      { nil: undefined },
    ),
    fill: fc.boolean(),
    sum: fc.subarray(["duration", "plannedSeconds", "interruptions"] as const),
    avg: fc.subarray(["duration", "interruptions"] as const),
    min: fc.subarray(["duration", "startedAt"] as const),
    max: fc.subarray(["duration", "plannedSeconds", "startedAt"] as const),
  },
  { requiredKeys: ["fill", "sum", "avg", "min", "max"] },
);

/** The model's answer: the records filtered as `where` says, as rows, through aggregateRows. */
function expected(model: Map<string, Rec>, o: AggregateOptions<typeof FocusSessionSchema, Field>) {
  const fields = [...new Set([...(o.sum ?? []), ...(o.avg ?? []), ...(o.min ?? []), ...(o.max ?? [])])] as string[];
  const value = (r: Rec, f: string) =>
    f === "duration" ? r.duration : f === "plannedSeconds" ? r.planned : f === "interruptions" ? r.interruptions : r.startedMs;
  const kind = (o.where as { kind?: number } | undefined)?.kind;
  // A record without a start is in no bucket (counted without `bucket`); an unset value is skipped by the metrics.
  const rows: AggregateRow[] = [...model.values()]
    .filter((r) => (kind === undefined || r.kind === kind) && (o.bucket === undefined || r.startedMs !== undefined))
    .map((r) => ({ t: r.startedMs ?? 0, values: fields.map((f) => value(r, f)) }));
  const b = o.bucket;
  return aggregateRows(rows, {
    ...(b && { bucket: { by: b.by, timeZone: b.timeZone, weekStart: b.weekStart, from: b.from?.getTime(), to: b.to?.getTime() } }),
    fill: o.fill === true,
    count: true,
    fields,
    sum: o.sum as string[],
    avg: o.avg as string[],
    min: o.min as string[],
    max: o.max as string[],
  });
}

async function open(dir: string, def: CollectionDefinition<typeof FocusSessionSchema, string, Field>) {
  const store = await openStore({ sessions: def }, { dir, key });
  const repo = store.sessions as unknown as { codec: RecordCodec };
  const engine = (store as unknown as { engine: Engine }).engine;
  const ctx: QueryContext = { def, engine, read: (k) => repo.codec.read(def, k), sortedKeys: () => repo.codec.sortedKeys(def) };
  return { store, ctx };
}

describe("repo.aggregate over a real store, against a Map model", () => {
  for (const [name, def] of Object.entries(DEFS)) {
    it(`${name}: writes, deletes, compactions and a reopen, then random aggregates`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { maxLength: 100 }), fc.array(optionsArb, { minLength: 1, maxLength: 4 }), async (ops, queries) => {
          const dir = path.join(tmp, `s${dirs++}`);
          let { store, ctx } = await open(dir, def);
          const model = new Map<string, Rec>();
          try {
            for (const op of ops) {
              if ("put" in op) {
                await store.sessions.put(input(op.put));
                model.set(op.put.id, op.put);
              } else if ("del" in op) {
                await store.sessions.delete(op.del);
                model.delete(op.del);
              } else await store.compact();
            }
            await store.close();
            ({ store, ctx } = await open(dir, def));
            for (const q of queries) {
              const b = q.bucket;
              const options: AggregateOptions<typeof FocusSessionSchema, Field> = {
                ...(q.kind !== undefined && { where: { kind: q.kind } }),
                ...(b && {
                  bucket: {
                    field: "startedAt",
                    by: b.by,
                    timeZone: b.timeZone,
                    ...(b.weekStart && { weekStart: b.weekStart }),
                    ...(b.from !== undefined && { from: new Date(b.from) }),
                    ...(b.to !== undefined && { to: new Date(b.to) }),
                  },
                }),
                fill: q.fill,
                count: true,
                sum: q.sum,
                avg: q.avg,
                min: q.min,
                max: q.max,
              };
              const got = await runAggregate(ctx, options);
              expect(JSON.parse(JSON.stringify(got))).toEqual(JSON.parse(JSON.stringify(expected(model, options))));
              // The same without a where and with indexed metrics only: the index-only path where it applies.
              const indexed = (l: readonly string[]) => l.filter((f) => f === "duration" || f === "startedAt") as ("duration" | "startedAt")[];
              const { where: _w, ...rest } = options;
              const onlyIndexed: AggregateOptions<typeof FocusSessionSchema, Field> = { ...rest, sum: indexed(q.sum).filter((f) => f !== "startedAt") as "duration"[], avg: indexed(q.avg) as "duration"[], min: indexed(q.min), max: indexed(q.max) };
              if (b && (name === "compound" || name === "compoundOnly")) expect(planIndexAggregate(def, "startedAt", ["duration", "startedAt"])).toBeDefined();
              const got2 = await runAggregate(ctx, onlyIndexed);
              expect(JSON.parse(JSON.stringify(got2))).toEqual(JSON.parse(JSON.stringify(expected(model, onlyIndexed))));
            }
          } finally {
            await store.close();
            fs.rmSync(dir, { recursive: true, force: true });
          }
        }),
        { numRuns: 25 },
      );
    }, 120_000);
  }

  it("reads no record when indexes hold every value: counts and sums from the index (or its terms) alone", async () => {
    for (const [name, def] of Object.entries(DEFS)) {
      const dir = path.join(tmp, `noread${dirs++}`);
      const { store, ctx } = await open(dir, def);
      try {
        for (let i = 0; i < 300; i++) {
          await store.sessions.put(input({ id: `n${i}`, startedMs: Date.UTC(2026, 2, 20) + i * 3_600_000, ...(i % 7 ? { duration: i } : {}), planned: 900, kind: i % 3, interruptions: 0 }));
        }
        let reads = 0;
        const counting: QueryContext = { ...ctx, read: (k) => (reads++, ctx.read(k)) };
        const bucket = { field: "startedAt", by: "day", timeZone: "Europe/Berlin" } as const;
        type O = AggregateOptions<typeof FocusSessionSchema, Field>;
        const o1: O = { bucket, count: true, sum: ["duration"], max: ["startedAt"] };
        const o2: O = { where: { kind: 1 }, bucket, count: true, avg: ["duration"] };
        const noWhere = await runAggregate(counting, o1);
        const withWhere = await runAggregate(counting, o2);
        expect(noWhere.reduce((n, b) => n + b.count!, 0)).toBe(300);
        expect(withWhere.reduce((n, b) => n + b.count!, 0)).toBe(100);
        // Only the definition with no index holding `duration` decodes records (one read per record counted).
        expect(reads, name).toBe(name === "plain" ? 400 : 0);
      } finally {
        await store.close();
      }
    }
  });

  it("bad options: E_USAGE naming the field, never a value", async () => {
    const { store, ctx } = await open(path.join(tmp, "bad"), DEFS.compound);
    try {
      const code = async (o: unknown) => {
        try {
          await runAggregate(ctx, o as AggregateOptions);
          return "none";
        } catch (e) {
          return isCellarError(e) ? e.code : String(e);
        }
      };
      expect(await code({ bucket: { field: "taskId", by: "day" }, count: true })).toBe("E_USAGE");
      expect(await code({ bucket: { field: "startedAt", by: "day" }, sum: ["taskId"] })).toBe("E_USAGE");
      expect(await code({ bucket: { field: "startedAt", by: "day" }, sum: ["startedAt"] })).toBe("E_USAGE");
      expect(await code({ bucket: { field: "startedAt", by: "day" }, sum: ["nope"] })).toBe("E_USAGE");
      expect(await code({ bucket: { field: "startedAt", by: "day", from: new Date(Number.NaN) } })).toBe("E_USAGE");
      expect(await code({ bucket: { field: "startedAt", by: "day", timeZone: "Nowhere/Else" }, count: true })).toBe("E_USAGE");
      expect(await code({ where: { note: "x" }, count: true })).toBe("E_USAGE");
      // No condition at all: every record, as `count()` (a where on a field no index narrows needs `scan`).
      expect(await code({ count: true })).toBe("none");
    } finally {
      await store.close();
    }
  });

  it("a long aggregate racing with writes that move records counts each record at most once", async () => {
    for (const def of [DEFS.compound, DEFS.plain]) {
      const dir = path.join(tmp, `race${dirs++}`);
      const { store, ctx } = await open(dir, def);
      try {
        const n = 6000;
        for (let i = 0; i < n; i += 500) {
          await store.batch((tx) => {
            for (let j = i; j < i + 500; j++) tx.sessions.put(input({ id: `r${j}`, startedMs: Date.UTC(2026, 0, 1) + j * 3_600_000, duration: 60, planned: 0, kind: 1, interruptions: 0 }));
          });
        }
        let moving = true;
        const mover = (async () => {
          for (let k = 0; moving; k++) {
            // Move early records to the end of the year, past wherever the walk is.
            await store.sessions.put(input({ id: `r${k % n}`, startedMs: Date.UTC(2026, 11, 31) - k, duration: 60, planned: 0, kind: 1, interruptions: 0 }));
          }
        })();
        const options: AggregateOptions<typeof FocusSessionSchema, Field> = { bucket: { field: "startedAt", by: "day", timeZone: "Europe/Berlin" }, count: true, sum: ["duration"] };
        const out = await runAggregate(ctx, options);
        moving = false;
        await mover;
        const counted = out.reduce((s, b) => s + b.count!, 0);
        expect(counted).toBeLessThanOrEqual(n);
        expect(out.reduce((s, b) => s + b.sum!.duration!, 0)).toBe(counted * 60);
      } finally {
        await store.close();
      }
    }
  });
});

/** A component's value as a number, as DESIGN14 defines it: computed from the value, not from its encoding. */
function asNumber(kind: ComponentKind, v: unknown): number {
  switch (kind) {
    case "timestamp":
      return Number((v as { seconds: bigint }).seconds) * 1000 + (v as { nanos: number }).nanos / 1e6;
    case "duration":
      return Number((v as { seconds: bigint }).seconds) + (v as { nanos: number }).nanos / 1e9;
    case "int64":
    case "uint64":
      return Number(v as bigint);
    case "bool":
      return v ? 1 : 0;
    case "double":
      return (v as number) === 0 ? 0 : (v as number); // -0 is stored as 0
    default:
      return v as number;
  }
}

describe("componentNumber (the index-only path's decoding), of an sk and in place in a whole term, gives each value as a number", () => {
  const WIDTH: Record<string, number> = { timestamp: 24, int32: 8, uint32: 8, int64: 16, uint64: 16, duration: 24, double: 16, bool: 1 };
  const kinds: ComponentKind[] = ["timestamp", "int32", "uint32", "int64", "uint64", "duration", "double", "bool"];
  const offsets: number[] = [];
  kinds.reduce((at, k) => (offsets.push(at), at + WIDTH[k]!), 0);
  const keyer: IndexKeyer = {
    spec: { id: "1,2,3,4,5,6,7,8", fields: kinds.map((k) => k), name: "all" },
    components: kinds.map((k) => ({ field: k, kind: k, repeated: false })),
    prefix: "\u00011,2,3,4,5,6,7,8\u0000",
    offsets,
    terms: new Map(),
  };
  it("for every fixed-width kind over its whole range", () => {
    fc.assert(
      fc.property(
        fc.record({ seconds: fc.bigInt({ min: -62135596800n, max: 253402300799n }), nanos: fc.integer({ min: 0, max: 999_999_999 }) }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.integer({ min: -999_999_999, max: 999_999_999 }).chain((nanos) =>
          fc.bigInt(nanos < 0 ? { min: -315576000000n, max: 0n } : { min: 0n, max: 315576000000n }).map((seconds) => ({ seconds, nanos })),
        ),
        fc.double(),
        fc.boolean(),
        (...values) => {
          const sk = kinds.map((k, i) => encodeComponent(k, values[i])).join("");
          const term = keyer.prefix + sk; // read in place from a whole term, as the metric walk does
          for (let i = 0; i < kinds.length; i++) {
            const expected = asNumber(kinds[i]!, values[i]);
            expect(componentNumber(keyer, sk, i)).toBe(expected);
            expect(componentNumber(keyer, term, i, keyer.prefix.length)).toBe(expected);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
