/**
 * Property tests (fast-check) of live subscriptions on a real store: random sequences of puts, deletes,
 * batches and singleton updates, with watches of keys, of queries and of a singleton subscribed throughout.
 * - One write at a time: each watch's updates are exactly the values a re-read after each commit returns,
 *   one per commit that changed it, with that commit's seq (the seq of its change events).
 * - Batches issued together (group commits, several batches in a frame): every update shows the state at
 *   the seq it carries (checked against a model replayed in commit order), seqs strictly increase, no
 *   update repeats the last value, and the last update is the final state.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { TaskStatus } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import type { ChangeEvent, Watch } from "../../src/runtime/index.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-watch-model-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(9);
let run = 0;
const settle = () => new Promise<void>((r) => setImmediate(r));

type Put = { op: "put"; id: string; title: string; status: TaskStatus; tags: string[] };
type Del = { op: "delete"; id: string };
type Write = Put | Del;
type Cmd = Write | { op: "batch"; writes: Write[] } | { op: "language"; language: string | null };

const idArb = fc.constantFrom("a", "b", "c", "d");
const putArb: fc.Arbitrary<Put> = fc.record({
  op: fc.constant("put" as const),
  id: idArb,
  title: fc.constantFrom("x", "y"), // few values: equal re-puts happen
  status: fc.constantFrom(TaskStatus.TODO, TaskStatus.DONE),
  tags: fc.subarray(["x", "y"]),
});
const writeArb: fc.Arbitrary<Write> = fc.oneof({ weight: 3, arbitrary: putArb }, { weight: 1, arbitrary: fc.record({ op: fc.constant("delete" as const), id: idArb }) });
const batchArb = fc.record({ op: fc.constant("batch" as const), writes: fc.array(writeArb, { minLength: 1, maxLength: 4 }) });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: writeArb },
  { weight: 2, arbitrary: batchArb },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("language" as const), language: fc.option(fc.constantFrom("en", "fr", "de")) }) },
);

/** What a task is compared by (the fields the commands set), for stored records and model inputs alike. */
type TaskLike = { id: string; title: string; status: TaskStatus; tags: readonly string[] };
const summary = (t: TaskLike | undefined) => (t ? `${t.id}:${t.title}:${t.status}:${t.tags.join(",")}` : "-");
const summaries = (ts: readonly TaskLike[]) => ts.map(summary).join(" ");

/** The watched targets: a query (or key) and the same condition over a model's records. */
const QUERIES: { name: string; where: { status?: TaskStatus; tags?: string }; match: (t: TaskLike) => boolean }[] = [
  { name: "done", where: { status: TaskStatus.DONE }, match: (t) => t.status === TaskStatus.DONE },
  { name: "tag x", where: { tags: "x" }, match: (t) => t.tags.includes("x") },
  { name: "todo and tag y", where: { status: TaskStatus.TODO, tags: "y" }, match: (t) => t.status === TaskStatus.TODO && t.tags.includes("y") },
  { name: "all", where: {}, match: () => true },
];
const KEYS = ["a", "b"];

type Store = Awaited<ReturnType<typeof openStore>>;

/** Subscribe to every target; `got[name]` collects `[seq, summary]` per update. */
function watchAll(store: Store, withSettings: boolean) {
  const got: Record<string, [number, string][]> = {};
  const watches: Watch<unknown>[] = [];
  const add = <T>(name: string, w: Watch<T>, show: (v: T) => string) => {
    got[name] = [];
    w.subscribe((u) => got[name]!.push([u.seq, show(u.value)]));
    watches.push(w as Watch<unknown>);
  };
  for (const k of KEYS) add(`key ${k}`, store.tasks.watch(k), summary);
  for (const q of QUERIES) add(q.name, store.tasks.watch(q.where), summaries);
  if (withSettings) add("settings", store.settings.watch(), (s) => s.language);
  return got;
}

/** What each target reads now (a re-read through the repositories). */
async function readAll(store: Store, withSettings: boolean): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const k of KEYS) out[`key ${k}`] = summary(await store.tasks.get(k));
  for (const q of QUERIES) out[q.name] = summaries(await store.tasks.query(q.where));
  if (withSettings) out.settings = (await store.settings.get()).language;
  return out;
}

function writeTo(tx: Parameters<Parameters<Store["batch"]>[0]>[0], w: Write): void {
  if (w.op === "put") tx.tasks.put({ id: w.id, title: w.title, status: w.status, tags: w.tags });
  else tx.tasks.delete(w.id);
}

async function execute(store: Store, c: Cmd): Promise<void> {
  if (c.op === "put") await store.tasks.put({ id: c.id, title: c.title, status: c.status, tags: c.tags });
  else if (c.op === "delete") await store.tasks.delete(c.id);
  else if (c.op === "batch") await store.batch((tx) => c.writes.forEach((w) => writeTo(tx, w)));
  else if (c.language === null) await store.settings.reset();
  else await store.settings.update({ language: c.language });
}

describe("watch against re-reads and a model", () => {
  it("one write at a time: updates are the re-read values after each commit that changed them, with its seq", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 1, maxLength: 20 }), async (cmds) => {
        const store = await openStore({ dir: path.join(tmp, `seq-${run++}`), key });
        try {
          const events: ChangeEvent[] = [];
          store.on("change", (e) => events.push(e));
          const got = watchAll(store, true);
          const initial = await readAll(store, true);
          const start = got["key a"]![0]![0];
          const want: Record<string, [number, string][]> = Object.fromEntries(Object.entries(initial).map(([k, v]) => [k, [[start, v]]]));
          for (const c of cmds) {
            const before = events.length;
            await execute(store, c);
            await settle();
            const seqs = new Set(events.slice(before).map((e) => e.seq));
            expect(seqs.size).toBeLessThanOrEqual(1); // one commit per command
            const seq = seqs.size ? [...seqs][0]! : null;
            for (const [name, now] of Object.entries(await readAll(store, true))) {
              const list = want[name]!;
              if (list.at(-1)![1] !== now) list.push([seq ?? -1, now]); // -1: changed without a commit, never expected
            }
          }
          expect(got).toEqual(want);
          for (const list of Object.values(got)) for (let i = 1; i < list.length; i++) expect(list[i]![0]).toBeGreaterThan(list[i - 1]![0]);
        } finally {
          await store.close();
        }
      }),
      { numRuns: 25 },
    );
  }, 120_000);

  it("batches issued together: each update shows the state at its seq; seqs increase; the last is the final state", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(writeArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 12 }), fc.nat(3), async (batches, pause) => {
        const store = await openStore({ dir: path.join(tmp, `group-${run++}`), key });
        try {
          const events: ChangeEvent[] = [];
          store.on("change", (e) => events.push(e));
          const got = watchAll(store, false);
          const start = got["key a"]![0]![0];
          // Issued in order, some after a pause: groups of several batches, and several groups.
          const writes: Promise<void>[] = [];
          for (let i = 0; i < batches.length; i++) {
            writes.push(store.batch((tx) => batches[i]!.forEach((w) => writeTo(tx, w))));
            if (pause && i % (pause + 1) === pause) await settle();
          }
          await Promise.all(writes);
          await settle();

          // Replay in commit order (the order issued): the k-th effective write is the k-th change event.
          const model = new Map<string, TaskLike>();
          const states = new Map<number, Record<string, string>>([[start, targets(model)]]);
          let k = 0;
          for (const b of batches) {
            for (const w of b) {
              if (w.op === "delete" && !model.has(w.id)) continue; // removes nothing: no event
              const e = events[k++]!;
              expect([e.op, e.key]).toEqual([w.op, w.id]);
              if (w.op === "put") model.set(w.id, w);
              else model.delete(w.id);
              states.set(e.seq, targets(model)); // the state after the commit: the last write with this seq wins
            }
          }
          expect(k).toBe(events.length);
          const final = targets(model);
          for (const [name, list] of Object.entries(got)) {
            for (let i = 0; i < list.length; i++) {
              const [seq, value] = list[i]!;
              expect(states.has(seq), `${name}: seq ${seq} is a commit`).toBe(true);
              expect(value, `${name} at seq ${seq}`).toBe(states.get(seq)![name]);
              if (i > 0) {
                expect(seq).toBeGreaterThan(list[i - 1]![0]);
                expect(value).not.toBe(list[i - 1]![1]);
              }
            }
            expect(list.at(-1)![1]).toBe(final[name]);
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});

/** The targets' values over a model's records. */
function targets(model: ReadonlyMap<string, TaskLike>): Record<string, string> {
  const sorted = [...model.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  const out: Record<string, string> = {};
  for (const k of KEYS) out[`key ${k}`] = summary(model.get(k));
  for (const q of QUERIES) out[q.name] = summaries(sorted.filter(q.match));
  return out;
}
