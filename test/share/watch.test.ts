/**
 * Live subscriptions in one process, on real stores: `repo.watch(key)`, `repo.watch(where)` and
 * `singleton.watch()` deliver the current value, then one update per commit that changes them (a batch is
 * one), each with the seq of the commit whose state it shows (also when one group commit is split into
 * several frames); a slow async-iterator consumer gets the latest state; closing a watch or the store ends
 * its iterators; a throwing subscriber is reported as `E_LISTENER` and keeps its subscription; an import
 * merged in by a compaction (no commit names its records) re-reads every watch.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, expectTypeOf, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { type TaskSchema, TaskStatus } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import type { UserSettingsSchema } from "../../src/generated/examples/settings/v1/settings_pb.js";
import { type CellarError, type ChangeEvent, isCellarError, type StoredRecord, type Watch, type WatchUpdate } from "../../src/runtime/index.js";
import { openStore as openStoreOf } from "../../src/runtime/typed/store.js";
import { notesAt } from "../store/helpers/notes-versions.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-watch-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(7);
let n = 0;
const newDir = () => path.join(tmp, `s${n++}`);
/** Past the microtask that delivers a commit's updates. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** Every update a subscriber got, as `[seq, summary]`. */
function collect<T>(w: { subscribe(cb: (u: WatchUpdate<T>) => void): () => void }, summary: (v: T) => unknown) {
  const got: [number, unknown][] = [];
  const off = w.subscribe((u) => got.push([u.seq, summary(u.value)]));
  return { got, off };
}

describe("watch: values and seqs", () => {
  it("key, query and singleton watches: the current value first, then one update per commit that changes them", async () => {
    const store = await openStore({ dir: newDir(), key });
    await store.tasks.put({ id: "a", title: "first" });
    const events: ChangeEvent[] = [];
    store.on("change", (e) => events.push(e));
    const a = collect(store.tasks.watch("a"), (t) => t?.title);
    const done = collect(store.tasks.watch({ status: TaskStatus.DONE }), (ts) => ts.map((t) => t.id));
    const lang = collect(store.settings.watch(), (s) => s.language);
    const start = a.got[0]![0];
    expect(start).toBeGreaterThan(0);
    expect([a.got, done.got, lang.got]).toEqual([[[start, "first"]], [[start, []]], [[start, "en"]]]);

    await store.tasks.put({ id: "b", title: "b", status: TaskStatus.DONE }); // changes `done` only
    await store.tasks.put({ id: "a", title: "first" }); // an equal record: no update
    await store.tasks.delete("missing"); // no commit
    await store.batch((tx) => {
      tx.tasks.put({ id: "a", title: "second", status: TaskStatus.DONE });
      tx.tasks.put({ id: "a", title: "third", status: TaskStatus.DONE });
      tx.tasks.delete("b");
      tx.settings.update({ language: "fr" });
    });
    await settle();
    const seqs = [...new Set(events.map((e) => e.seq))];
    expect(seqs).toHaveLength(3); // the put of b, the equal put of a, the batch
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    const [putB, , batch] = seqs as [number, number, number];
    expect(putB).toBeGreaterThan(start);
    expect(a.got).toEqual([
      [start, "first"],
      [batch, "third"], // one update for the batch, with its last value
    ]);
    expect(done.got).toEqual([
      [start, []],
      [putB, ["b"]],
      [batch, ["a"]],
    ]);
    expect(lang.got).toEqual([
      [start, "en"],
      [batch, "fr"],
    ]);
    await store.settings.reset();
    await settle();
    expect(lang.got.at(-1)).toEqual([events.at(-1)!.seq, "en"]);
    await store.close();
  });

  it("is typed: a key gives a record or undefined, a where a read-only list, a singleton its value", async () => {
    const store = await openStore({ dir: newDir(), key });
    expectTypeOf(store.tasks.watch("a")).toEqualTypeOf<Watch<StoredRecord<typeof TaskSchema> | undefined>>();
    expectTypeOf(store.tasks.watch({ status: TaskStatus.DONE, tags: "x" })).toEqualTypeOf<Watch<readonly StoredRecord<typeof TaskSchema>[]>>();
    expectTypeOf(store.settings.watch()).toEqualTypeOf<Watch<StoredRecord<typeof UserSettingsSchema>>>();
    // @ts-expect-error `title` is not an indexed field of tasks
    expect(() => store.tasks.watch({ title: "x" })).toThrow();
    await store.close();
  });

  it("values are frozen like get()'s, and a watch's update is what a get() returns at delivery", async () => {
    const store = await openStore({ dir: newDir(), key });
    const w = store.tasks.watch({});
    const checks: Promise<void>[] = [];
    w.subscribe((u) => {
      expect(Object.isFrozen(u)).toBe(true);
      expect(Object.isFrozen(u.value)).toBe(true);
      for (const t of u.value) expect(Object.isFrozen(t) && Object.isFrozen(t.tags)).toBe(true);
      // A read at delivery shows the update's state. (`list` takes a turn first when the loop is overdue, as
      // on a loaded machine, so the next write waits until this read is done: no write lands in between.)
      const now = store.tasks.list();
      checks.push(now.then((l) => expect(l.map((t) => t.title)).toEqual(u.value.map((t) => t.title))));
    });
    const delivered = async (n: number) => {
      while (checks.length < n) await settle();
      await Promise.all(checks);
    };
    await delivered(1);
    for (let i = 0; i < 5; i++) {
      await store.tasks.put({ id: `t${i}`, title: `v${i}`, tags: ["x"] });
      await delivered(i + 2);
    }
    await store.tasks.delete("t2");
    await delivered(7);
    await settle();
    expect(checks).toHaveLength(7);
    await store.close();
  });

  it("a group commit split into frames: each update carries the seq of the state it shows", async () => {
    // Two batches issued together: one group, two frames (the first past 8 MiB), two seqs. The watched
    // record is written in both; the state after the group is the second frame's.
    const store = await openStoreOf({ notes: notesAt(3) }, { dir: newDir(), key });
    const events: ChangeEvent[] = [];
    store.on("change", (e) => events.push(e));
    const w = collect(store.notes.watch("a"), (t) => t?.body);
    const big = "x".repeat(200 * 1024);
    const first = store.batch((tx) => {
      tx.notes.put({ id: "a", body: "in the first frame" });
      for (let i = 0; i < 45; i++) tx.notes.put({ id: `big${i}`, body: big });
    });
    const second = store.batch((tx) => tx.notes.put({ id: "a", body: "in the second frame" }));
    await Promise.all([first, second]);
    await settle();
    const seqs = [...new Set(events.map((e) => e.seq))];
    expect(seqs).toHaveLength(2);
    expect(w.got).toEqual([
      [seqs[0]! - 1, undefined], // the store as opened (its first open wrote `~indexes`: seq 1)
      [seqs[1], "in the second frame"],
    ]);
    await store.close();
  });

  it("a watch nobody listens to catches up when a subscriber or iterator arrives", async () => {
    const store = await openStore({ dir: newDir(), key });
    const w = store.tasks.watch({ tags: "x" });
    await store.tasks.put({ id: "a", title: "a", tags: ["x"] });
    await settle();
    const it = w[Symbol.asyncIterator]();
    expect((await it.next()).value?.value.map((t: { id: string }) => t.id)).toEqual(["a"]);
    const b = collect(w, (ts) => ts.map((t) => t.id));
    await store.tasks.put({ id: "b", title: "b", tags: ["x"] });
    await settle();
    expect(b.got.map(([, v]) => v)).toEqual([["a"], ["a", "b"]]);
    await store.close();
  });

  it("refuses a where on a field that is not indexed (E_USAGE) and any watch after close (E_CLOSED)", async () => {
    const store = await openStore({ dir: newDir(), key });
    expect(() => store.tasks.watch({ title: "x" } as never)).toThrow(expect.objectContaining({ code: "E_USAGE" }));
    expect(() => store.tasks.watch(5 as never)).toThrow(expect.objectContaining({ code: "E_USAGE" }));
    await store.close();
    expect(() => store.tasks.watch("a")).toThrow(expect.objectContaining({ code: "E_CLOSED" }));
    expect(() => store.settings.watch()).toThrow(expect.objectContaining({ code: "E_CLOSED" }));
  });
});

describe("watch: delivery", () => {
  it("a slow async-iterator consumer gets only the latest state, then waits for the next change", async () => {
    const store = await openStore({ dir: newDir(), key });
    const events: ChangeEvent[] = [];
    store.on("change", (e) => events.push(e));
    const w = store.tasks.watch("a");
    const it = w[Symbol.asyncIterator]();
    for (let i = 0; i < 50; i++) await store.tasks.put({ id: "a", title: `v${i}` });
    await settle();
    const first = await it.next();
    expect(first).toEqual({ done: false, value: { value: expect.objectContaining({ title: "v49" }), seq: events.at(-1)!.seq } });
    let next: IteratorResult<WatchUpdate<unknown>> | undefined;
    const pending = it.next().then((r) => (next = r));
    await settle();
    expect(next).toBeUndefined(); // nothing new: it waits
    await store.tasks.delete("a");
    await pending;
    expect(next).toEqual({ done: false, value: { value: undefined, seq: events.at(-1)!.seq } });
    await store.close();
  });

  it("for await sees every change when it keeps up; close() of the watch ends it", async () => {
    const store = await openStore({ dir: newDir(), key });
    const w = store.settings.watch();
    const seen: string[] = [];
    const loop = (async () => {
      for await (const { value } of w) {
        seen.push(value.language);
        if (value.language === "cc") w.close();
      }
    })();
    for (const language of ["aa", "bb", "cc"]) {
      await store.settings.update({ language });
      await settle();
    }
    await loop;
    expect(seen).toEqual(["en", "aa", "bb", "cc"]);
    // A closed watch: new iterators are done at once, subscribe does nothing.
    expect(await w[Symbol.asyncIterator]().next()).toEqual({ done: true, value: undefined });
    const calls: unknown[] = [];
    w.subscribe((u) => calls.push(u));
    await store.settings.update({ language: "dd" });
    await settle();
    expect(calls).toEqual([]);
    await store.close();
  });

  it("closing the store ends every iterator (done) and drops every subscription", async () => {
    const dir = newDir();
    const store = await openStore({ dir, key });
    const a = store.tasks.watch("a");
    const q = store.tasks.watch({});
    const itA = a[Symbol.asyncIterator]();
    await itA.next(); // the current value
    const waiting = itA.next();
    const itQ = q[Symbol.asyncIterator](); // its current value not taken
    const calls: unknown[] = [];
    q.subscribe((u) => calls.push(u));
    const write = store.tasks.put({ id: "a", title: "during close" });
    await store.close();
    await write;
    await settle();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(await itQ.next()).toEqual({ done: true, value: undefined });
    expect(calls).toHaveLength(1); // the current value only
    const reopened = await openStore({ dir, key });
    expect((await reopened.tasks.get("a"))?.title).toBe("during close");
    await reopened.close();
  });

  it("unsubscribing stops one subscription; the same callback subscribed twice is called twice", async () => {
    const store = await openStore({ dir: newDir(), key });
    const w = store.tasks.watch("a");
    const calls: string[] = [];
    const cb = (u: WatchUpdate<{ title: string } | undefined>) => calls.push(u.value?.title ?? "-");
    const off1 = w.subscribe(cb);
    w.subscribe(cb);
    await store.tasks.put({ id: "a", title: "1" });
    await settle();
    off1();
    await store.tasks.put({ id: "a", title: "2" });
    await settle();
    expect(calls).toEqual(["-", "-", "1", "1", "2"]);
    expect(() => w.subscribe("no" as never)).toThrow(expect.objectContaining({ code: "E_USAGE" }));
    await store.close();
  });

  it("a subscriber that throws: E_LISTENER on the error event, the others and the store unaffected, still subscribed", async () => {
    const store = await openStore({ dir: newDir(), key });
    const errors: CellarError[] = [];
    store.on("error", (e) => errors.push(e));
    const w = store.tasks.watch("a");
    const thrown: string[] = [];
    w.subscribe((u) => {
      thrown.push(u.value?.title ?? "-");
      throw new Error(`boom ${u.value?.title ?? "-"}`);
    });
    const other = collect(w, (t) => t?.title);
    await store.tasks.put({ id: "a", title: "1" });
    await store.tasks.put({ id: "a", title: "2" });
    await settle();
    expect(thrown).toEqual(["-", "1", "2"]);
    expect(other.got.map(([, v]) => v)).toEqual([undefined, "1", "2"]);
    expect(errors.map((e) => [e.code, (e as CellarError & { event: string }).event, (e.cause as Error).message])).toEqual([
      ["E_LISTENER", "watch", "boom -"],
      ["E_LISTENER", "watch", "boom 1"],
      ["E_LISTENER", "watch", "boom 2"],
    ]);
    expect((await store.tasks.get("a"))?.title).toBe("2");
    await store.close();
  });

  it("a subscriber that throws with no error listener: a process warning, never an uncaught exception", async () => {
    const store = await openStore({ dir: newDir(), key });
    const warnings: unknown[] = [];
    const onWarning = (w: unknown) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      store.tasks.watch("a").subscribe(() => {
        throw new Error("boom");
      });
      await store.tasks.put({ id: "a", title: "1" });
      await settle();
      await settle();
      expect(warnings.filter((w) => isCellarError(w, "E_LISTENER"))).toHaveLength(2);
    } finally {
      process.off("warning", onWarning);
      await store.close();
    }
  });
});

describe("watch: resync", () => {
  it("an import merged in by a compaction (no change events) re-reads every watch", async () => {
    const dir = newDir();
    const store = await openStoreOf({ notes: notesAt(3) }, { dir, key });
    await store.notes.put({ id: "n0001", body: "stored", tags: ["odd"] });
    const one = collect(store.notes.watch("n0001"), (r) => r?.body.length);
    const odd = collect(store.notes.watch({ tags: "odd" }), (rs) => rs.length);
    const even = collect(store.notes.watch({ tags: "none" }), (rs) => rs.length);
    // Past 24 MiB: one compaction merges the file in (import.ts), with no per-record commit.
    const file = path.join(tmp, "import.ndjson");
    const body = "y".repeat(120 * 1024);
    const lines = [JSON.stringify({ format: "cellar-export", version: 1, includeSensitive: true, entities: [{ entity: "notes", kind: "collection", version: 3 }] })];
    for (let i = 0; i < 220; i++) {
      const id = `n${String(i).padStart(4, "0")}`;
      lines.push(JSON.stringify({ entity: "notes", version: 3, key: id, record: { id, body, tags: i % 2 ? ["odd"] : ["even"] } }));
    }
    fs.writeFileSync(file, lines.join("\n") + "\n");
    const changes: ChangeEvent[] = [];
    store.on("change", (e) => changes.push(e));
    expect(await store.import(file)).toMatchObject({ staged: true });
    await settle();
    expect(changes).toEqual([]);
    expect(one.got.map(([, v]) => v)).toEqual([6, body.length]);
    expect(odd.got.map(([, v]) => v)).toEqual([1, 110]);
    expect(even.got.map(([, v]) => v)).toEqual([0]); // unchanged: no update
    expect(odd.got[1]![0]).toBeGreaterThanOrEqual(odd.got[0]![0]);
    await store.close();
  }, 30_000);
});
