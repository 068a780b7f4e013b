/**
 * Batches, singleton updates and change events through the public API, on real stores: updates in and
 * out of batches compose (none lost), events are delivered after the store's state is updated whatever a
 * listener does (a throwing listener checked in a real child process), and a delete that removes nothing
 * announces nothing.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { Theme } from "../../src/generated/examples/settings/v1/settings_pb.js";
import type { ChangeEvent } from "../../src/runtime/typed/store.js";
import { startChild } from "../engine/helpers/spawn.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-batches-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(3);
let n = 0;
const newDir = () => path.join(tmp, `s${n++}`);

describe("singleton updates in batches", () => {
  it("two updates of one singleton in a batch both apply, in order, each on the result of the last", async () => {
    const dir = newDir();
    let store = await openStore({ dir, key });
    await store.settings.update({ keyBindings: { a: "1" } });
    await store.batch((tx) => {
      tx.settings.update({ language: "fr" });
      tx.settings.update((cur) => ({ keyBindings: { ...cur.keyBindings, b: cur.language } }));
      tx.settings.update({ theme: Theme.DARK });
    });
    const want = { language: "fr", theme: Theme.DARK, keyBindings: { a: "1", b: "fr" } };
    expect(await store.settings.get()).toMatchObject(want);
    await store.close();
    store = await openStore({ dir, key });
    expect(await store.settings.get()).toMatchObject(want);
    await store.close();
  });

  it("a reset between updates of a batch starts the next update from the defaults", async () => {
    const dir = newDir();
    const store = await openStore({ dir, key });
    const defaults = await store.settings.get();
    await store.settings.update({ language: "de", keyBindings: { a: "1" } });
    await store.batch((tx) => {
      tx.settings.update({ theme: Theme.DARK });
      tx.settings.reset();
      tx.settings.update((cur) => ({ keyBindings: { ...cur.keyBindings, z: "9" } }));
    });
    const s = await store.settings.get();
    expect(s.keyBindings).toEqual({ z: "9" });
    expect(s.language).toBe(defaults.language);
    expect(s.theme).toBe(defaults.theme);
    await store.batch((tx) => {
      tx.settings.update({ language: "it" });
      tx.settings.reset();
    });
    expect((await store.settings.get()).language).toBe(defaults.language);
    await store.close();
  });

  it("an update racing a batch is not lost, whichever commits first", async () => {
    const dir = newDir();
    const store = await openStore({ dir, key });
    // The batch's callback is still running when the update is issued, and when it resolves.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const batch = store.batch(async (tx) => {
      tx.settings.update((cur) => ({ keyBindings: { ...cur.keyBindings, fromBatch: "1" } }));
      await gate;
      tx.tasks.put({ id: "t1", title: "with the batch" });
    });
    const update = store.settings.update((cur) => ({ keyBindings: { ...cur.keyBindings, fromUpdate: "1" } }));
    await update;
    release();
    await batch;
    // And the other way round: an update issued while a batch's singleton step waits in the queue.
    const many = [];
    for (let i = 0; i < 20; i++) {
      many.push(
        i % 2
          ? store.batch((tx) => tx.settings.update((cur) => ({ keyBindings: { ...cur.keyBindings, [`b${i}`]: "x" } })))
          : store.settings.update((cur) => ({ keyBindings: { ...cur.keyBindings, [`u${i}`]: "x" } })),
      );
    }
    await Promise.all(many);
    const kb = (await store.settings.get()).keyBindings;
    expect(Object.keys(kb).sort()).toEqual(
      ["fromBatch", "fromUpdate", ...Array.from({ length: 20 }, (_, i) => (i % 2 ? `b${i}` : `u${i}`))].sort(),
    );
    expect(await store.tasks.get("t1")).toMatchObject({ title: "with the batch" });
    await store.close();
  });

  it("an invalid update in a batch fails the batch and writes nothing, and the queue goes on", async () => {
    const dir = newDir();
    const store = await openStore({ dir, key });
    const failed = store.batch((tx) => {
      tx.tasks.put({ id: "t1", title: "a" });
      tx.settings.update({ language: 42 as unknown as string });
    });
    await expect(failed).rejects.toMatchObject({ code: "E_VALIDATION" });
    expect(await store.tasks.has("t1")).toBe(false);
    await store.settings.update({ language: "en" });
    expect((await store.settings.get()).language).toBe("en");
    await store.close();
  });
});

describe("change events", () => {
  it("a delete of a missing key, in a batch or not, writes no event; a real one does", async () => {
    const dir = newDir();
    const store = await openStore({ dir, key });
    const events: ChangeEvent[] = [];
    store.on("change", (e) => events.push(e));
    await store.tasks.put({ id: "t1", title: "a" });
    await store.batch((tx) => {
      tx.tasks.delete("missing");
      tx.tasks.delete("t1");
      tx.tasks.delete("t1");
    });
    await store.settings.reset(); // never set
    await store.batch((tx) => tx.tasks.delete("also-missing"));
    expect(events.map(({ seq: _, ...e }) => e)).toEqual([
      { entity: "tasks", op: "put", key: "t1" },
      { entity: "tasks", op: "delete", key: "t1" },
    ]);
    expect(events[1]!.seq).toBeGreaterThan(events[0]!.seq); // two commits
    await store.close();
  });

  it("listeners see the whole commit: a get() of any key of it from the first event returns the new value", async () => {
    const dir = newDir();
    const store = await openStore({ dir, key });
    await store.batch((tx) => {
      tx.tasks.put({ id: "a", title: "old a" });
      tx.tasks.put({ id: "b", title: "old b" });
    });
    await store.tasks.get("a");
    await store.tasks.get("b"); // both cached
    const seen: string[] = [];
    store.on("change", () => {
      void store.tasks.get("b").then((t) => seen.push(t!.title));
    });
    await store.batch((tx) => {
      tx.tasks.put({ id: "a", title: "new a" });
      tx.tasks.put({ id: "b", title: "new b" });
    });
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(["new b", "new b"]);
    await store.close();
  });

  it("a listener that throws: no uncaughtException, every listener gets every event, get() returns the new value (child process)", async () => {
    const dir = newDir();
    const { exited } = startChild("../../store/helpers/throwing-listener-child.ts", [dir]);
    const r = await exited;
    expect(r.stderr).not.toMatch(/uncaught/i);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(fs.readFileSync(path.join(dir, "..", `${path.basename(dir)}.json`), "utf8")) as Record<string, unknown>;
    expect(out).toEqual({
      uncaught: 0,
      // Two listeners throw on every event; the others still see every event, in order.
      afterThrow: ["put t1", "put t2", "put t3", "delete t1", "put settings", "put t4"],
      errorEvents: 10,
      errorCodes: ["E_LISTENER"],
      causes: ["boom put t1", "boom-2 put t1"],
      // get() from the listener and after the writes: the new values, not a stale cached one.
      seenInListener: ["v2", "v2"],
      after: { t1: null, t2: "v2", t3: "v3", language: "fr" },
      warningsWithoutErrorListener: 1,
    });
  });
});
