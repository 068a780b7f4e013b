/**
 * Retention (`CollectionDefinition.retention`, docs/SCHEMAS.md "retention"): `store.cleanup()` removes records
 * older than `maxAgeMs` by their timestamp field and, beyond `maxCount`, the oldest (by the timestamp field,
 * unset first, ties by key; by key order without one); a cleanup runs at open and on a timer; its deletes are
 * normal deletes (a `change` event each) in one write; its report names counts per entity, never a key.
 * A property test checks which records survive against a model.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { ConversationEntity } from "../../src/generated/examples/conversations/v1/conversations_cellar.js";
import { isCellarError, openStore, type CellarError, type ChangeEvent, type RetentionRule } from "../../src/runtime/index.js";
import { compareUtf8 } from "../../src/runtime/format/segment-index.js";
import { timestampOf } from "../../src/runtime/typed/retention.js";
import { create, toBinary } from "@bufbuild/protobuf";
import { ConversationSchema, Role } from "../../src/generated/examples/conversations/v1/conversations_pb.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-retention-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(7);
const DAY = 86_400_000;
let n = 0;
const freshDir = () => path.join(tmp, `s${n++}`);

/** The conversations entity with another retention rule. */
function entities(retention: RetentionRule | undefined) {
  return { conversations: { ...ConversationEntity, retention } as typeof ConversationEntity };
}

type Options = Parameters<typeof openStore>[1];
function open(dir: string, retention: RetentionRule | undefined, extra: Partial<Options> = {}) {
  return openStore(entities(retention), { dir, key, cleanup: false, ...extra });
}

/** A conversation updated `ageDays` ago (no `updatedAt` when null). */
function conv(id: string, ageDays: number | null, now = Date.now()) {
  return { id, title: "t", ...(ageDays === null ? {} : { updatedAt: timestampFromMs(now - ageDays * DAY) }) };
}

async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("store.cleanup()", () => {
  it("removes the records older than maxAge, leaves newer ones and those without a timestamp, one change event each", async () => {
    const store = await open(freshDir(), { maxAgeMs: 30 * DAY, timestampField: "updatedAt" });
    await store.batch((tx) => {
      for (let i = 0; i < 10; i++) tx.conversations.put(conv(`c${i}`, i < 4 ? 31 + i : 29 - i));
      tx.conversations.put(conv("never", null));
    });
    const events: ChangeEvent[] = [];
    store.on("change", (e) => events.push(e));
    const report = await store.cleanup();
    expect(report).toMatchObject({ removed: { conversations: 4 }, total: 4, writes: 1 });
    expect((await store.conversations.keys()).sort()).toEqual(["c4", "c5", "c6", "c7", "c8", "c9", "never"]);
    expect(events.map((e) => `${e.op} ${String(e.key)}`).sort()).toEqual(["delete c0", "delete c1", "delete c2", "delete c3"]);
    // the report holds counts only: no key appears in it
    expect(JSON.stringify(report)).not.toMatch(/c\d|never/);
    // a second cleanup has nothing to do (idempotent)
    expect(await store.cleanup()).toMatchObject({ total: 0, writes: 0 });
    await store.close();
  });

  it("maxCount keeps the newest by the timestamp field; unset timestamps count as oldest, ties go by key", async () => {
    const store = await open(freshDir(), { maxCount: 3, timestampField: "updatedAt" });
    const now = Date.now();
    await store.batch((tx) => {
      // key order differs from time order on purpose
      tx.conversations.put(conv("a", 1, now));
      tx.conversations.put(conv("b", 5, now));
      tx.conversations.put(conv("c", 2, now));
      tx.conversations.put(conv("d", null));
      tx.conversations.put(conv("e", 3, now));
      tx.conversations.put(conv("f", 3, now));
    });
    expect((await store.cleanup()).removed).toEqual({ conversations: 3 });
    // newest: a (1d), c (2d), then e and f tie at 3d: the later key (f) is the newer one kept
    expect((await store.conversations.keys()).sort()).toEqual(["a", "c", "f"]);
    await store.close();
  });

  it("maxCount without a timestamp field keeps the last keys in key order", async () => {
    const store = await open(freshDir(), { maxCount: 2 });
    await store.batch((tx) => {
      for (const id of ["k3", "k1", "k4", "k2", "k0"]) tx.conversations.put(conv(id, 400));
    });
    expect((await store.cleanup()).total).toBe(3);
    expect(await store.conversations.keys()).toEqual(["k3", "k4"]);
    await store.close();
  });

  it("maxAge and maxCount together: age first, then the count over what is left", async () => {
    const store = await open(freshDir(), { maxAgeMs: 10 * DAY, maxCount: 2, timestampField: "updatedAt" });
    await store.batch((tx) => {
      for (const [id, age] of [["x1", 20], ["x2", 1], ["x3", 2], ["x4", 3], ["x5", 11]] as const) tx.conversations.put(conv(id, age));
    });
    expect((await store.cleanup()).total).toBe(3);
    expect((await store.conversations.keys()).sort()).toEqual(["x2", "x3"]);
    await store.close();
  });

  it("a write that refreshes an expired record while a cleanup runs is never lost", async () => {
    const store = await open(freshDir(), { maxAgeMs: 30 * DAY, timestampField: "updatedAt" });
    await store.batch((tx) => {
      for (let i = 0; i < 3000; i++) tx.conversations.put(conv(`old${String(i).padStart(4, "0")}`, 40));
    });
    const cleaning = store.cleanup();
    // issued while the cleanup reads (or before it decides): fresh versions of expired records
    const refreshed = ["old0000", "old1500", "old2999"];
    const puts = refreshed.map((id) => store.conversations.put(conv(id, 0)));
    await Promise.all(puts);
    const report = await cleaning;
    expect(report.total).toBe(2997);
    expect((await store.conversations.keys()).sort()).toEqual(refreshed);
    await store.close();
  });

  it("a cleanup larger than one write is split into several, oldest first, and still removes everything", async () => {
    const store = await open(freshDir(), { maxAgeMs: 30 * DAY, timestampField: "updatedAt" });
    // ~3 KB per delete as the engine counts it (3 bytes per key character): 3,000 of them need two writes
    const long = (i: number) => `${String(i).padStart(5, "0")}${"k".repeat(1000)}`;
    for (let b = 0; b < 3; b++) {
      await store.batch((tx) => {
        for (let i = b * 1000; i < (b + 1) * 1000; i++) tx.conversations.put(conv(long(i), 31));
      });
    }
    await store.conversations.put(conv("fresh", 1));
    const report = await store.cleanup();
    expect(report.writes).toBe(2);
    expect(report.total).toBe(3000);
    expect(await store.conversations.keys()).toEqual(["fresh"]);
    await store.close();
  });

  it("a sensitive timestamp field is read through a full decode", async () => {
    const def = { ...ConversationEntity, codec: undefined, sensitive: ["updatedAt"], retention: { maxAgeMs: 30 * DAY, timestampField: "updatedAt" } };
    const dir = freshDir();
    const store = await openStore({ conversations: def as typeof ConversationEntity }, { dir, key, cleanup: false });
    await store.batch((tx) => {
      for (let i = 0; i < 6; i++) tx.conversations.put(conv(`s${i}`, i % 2 ? 40 : 2));
    });
    expect((await store.cleanup()).total).toBe(3);
    expect((await store.conversations.keys()).sort()).toEqual(["s0", "s2", "s4"]);
    await store.close();
  });

  it("an entity without a retention rule is never touched; a bad rule is refused at open", async () => {
    const dir = freshDir();
    const store = await open(dir, undefined);
    await store.conversations.put(conv("old", 5000));
    expect(await store.cleanup()).toMatchObject({ removed: {}, total: 0 });
    expect(await store.conversations.count()).toBe(1);
    await store.close();
    for (const bad of [{ maxAgeMs: DAY }, { maxAgeMs: DAY, timestampField: "title" }, { timestampField: "updatedAt" }, { maxCount: -1 }] as RetentionRule[]) {
      const e = await open(dir, bad).catch((x: unknown) => x);
      expect(isCellarError(e, "E_USAGE"), String(e)).toBe(true);
    }
    await expect(open(dir, undefined, { cleanup: { every: "soon" } })).rejects.toMatchObject({ code: "E_USAGE" });
  });
});

describe("background cleanups", () => {
  it("runs at open (after the store is handed out)", async () => {
    const dir = freshDir();
    const rule = { maxAgeMs: 30 * DAY, timestampField: "updatedAt" };
    let store = await open(dir, rule);
    await store.batch((tx) => {
      for (let i = 0; i < 50; i++) tx.conversations.put(conv(`c${i}`, i % 2 ? 60 : 1));
    });
    await store.close();
    store = await open(dir, rule, { cleanup: {} });
    await until(async () => (await store.conversations.count()) === 25);
    await store.close();
    // and it stays done
    store = await open(dir, rule);
    expect(await store.conversations.count()).toBe(25);
    await store.close();
  });

  it("runs every `every` while open, and close() stops the timer", async () => {
    const store = await open(freshDir(), { maxAgeMs: 30 * DAY, timestampField: "updatedAt" }, { cleanup: { every: 20, atOpen: false } });
    const errors: CellarError[] = [];
    store.on("error", (e) => errors.push(e));
    await store.conversations.put(conv("old", 31));
    await store.conversations.put(conv("new", 1));
    await until(async () => !(await store.conversations.has("old")));
    expect(await store.conversations.has("new")).toBe(true);
    await store.close();
    await new Promise((r) => setTimeout(r, 60));
    expect(errors).toEqual([]);
  });

  it("a background cleanup that fails reports through the `error` event, never as an unhandled rejection", async () => {
    let armed = false;
    const dir = freshDir();
    const store = await open(
      dir,
      { maxAgeMs: 30 * DAY, timestampField: "updatedAt" },
      {
        cleanup: { every: 20, atOpen: false },
        failpoint: (name) => {
          if (armed && name === "commit.beforeWrite") throw new Error("injected write failure");
        },
      },
    );
    await store.conversations.put(conv("old", 31));
    const errors: CellarError[] = [];
    store.on("error", (e) => errors.push(e));
    armed = true;
    await until(async () => errors.length > 0);
    expect(errors[0]!.code).toBe("E_IO");
    await store.close();
  });
});

describe("timestampOf (the cleanup's reader of one field)", () => {
  it("reads the Timestamp protobuf-es wrote, in either value envelope, around any other fields", () => {
    const ts = fc.record({ seconds: fc.bigInt({ min: -62135596800n, max: 253402300799n }), nanos: fc.integer({ min: 0, max: 999_999_999 }) });
    fc.assert(
      fc.property(fc.option(ts, { nil: undefined }), fc.option(ts, { nil: undefined }), fc.string(), fc.bigInt({ min: 0n, max: 2n ** 62n }), fc.boolean(), (updatedAt, createdAt, title, totalTokens, sealed) => {
        const msg = create(ConversationSchema, {
          id: "k",
          title,
          totalTokens,
          ...(createdAt ? { createdAt } : {}),
          ...(updatedAt ? { updatedAt } : {}),
          messages: [{ id: "m", role: Role.USER, body: { case: "content", value: title }, createdAt: createdAt ?? { seconds: 5n } }],
        });
        const pub = toBinary(ConversationSchema, msg);
        // kind 0: the message; kind 1: key id, length, public part, then sealed bytes the reader must not touch
        const value = sealed ? Uint8Array.from([1, 3, ...varint(pub.length), ...pub, 0xff, 0xfe, 0x07]) : Uint8Array.from([0, ...pub]);
        const want = updatedAt ? Number(updatedAt.seconds) * 1000 + Math.floor(updatedAt.nanos / 1e6) : undefined;
        expect(timestampOf(value, 4)).toBe(want);
      }),
      { numRuns: 300 },
    );
  });
});

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

describe("cleanup against a model (fast-check)", () => {
  it("the records that survive are exactly the model's", async () => {
    const record = fc.record({
      id: fc.constantFrom(...Array.from({ length: 12 }, (_, i) => `r${i}`)),
      // whole days plus half a day: never within hours of a cutoff
      age: fc.option(fc.integer({ min: -5, max: 60 }).map((d) => d + 0.5), { nil: null }),
    });
    const op = fc.oneof(record.map((r) => ({ put: r })), fc.constantFrom(...Array.from({ length: 12 }, (_, i) => ({ del: `r${i}` }))));
    const rule = fc
      .record({ maxAgeDays: fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }), maxCount: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }), byTime: fc.boolean() })
      .filter((r) => r.maxAgeDays !== undefined || r.maxCount !== undefined);
    await fc.assert(
      fc.asyncProperty(rule, fc.array(op, { maxLength: 40 }), async (r, ops) => {
        const byTime = r.byTime || r.maxAgeDays !== undefined;
        const retention: RetentionRule = {
          ...(r.maxAgeDays !== undefined ? { maxAgeMs: r.maxAgeDays * DAY } : {}),
          ...(r.maxCount !== undefined ? { maxCount: r.maxCount } : {}),
          ...(byTime ? { timestampField: "updatedAt" } : {}),
        };
        const store = await open(freshDir(), retention);
        const now = Date.now();
        const model = new Map<string, number | null>();
        for (const o of ops) {
          if ("put" in o) {
            await store.conversations.put(conv(o.put.id, o.put.age, now));
            model.set(o.put.id, o.put.age === null ? null : now - o.put.age * DAY);
          } else {
            await store.conversations.delete(o.del);
            model.delete(o.del);
          }
        }
        await store.cleanup();
        const got = (await store.conversations.keys()).sort();
        await store.close();
        // the model: age first, then the newest maxCount (unset timestamps oldest, ties by key)
        let live = [...model].filter(([, t]) => !(retention.maxAgeMs !== undefined && t !== null && t < Date.now() - retention.maxAgeMs));
        if (retention.maxCount !== undefined && live.length > retention.maxCount) {
          const at = (t: number | null) => (byTime && t !== null ? t : -Infinity);
          live.sort((a, b) => at(a[1]) - at(b[1]) || compareUtf8(a[0], b[0]));
          live = live.slice(live.length - retention.maxCount);
        }
        expect(got).toEqual(live.map(([k]) => k).sort());
      }),
      { numRuns: 40 },
    );
  }, 60_000);
});
