/**
 * A follower that nothing in it listens to (no `change` listener, no watch) applies other processes' commits
 * lazily (share/sharing.ts, `catchUp`): told of them, it applies them at its next read, or once `MAX_LAG` are
 * due; its own write resolves on the writer's ACK. Its reads still see every write it was told of, its own
 * first (read-your-writes), including records its caches held (the decoded record, the sorted keys). A watch
 * or a `change` listener makes it apply each commit as it comes.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { MAX_LAG } from "../../src/runtime/share/sharing.js";
import type { Engine } from "../../src/runtime/storage/engine.js";
import { type Proc, processScope, start } from "./helpers/procs.js";

const { tmp, runtime, env, live } = processScope("cellar-lazy-");
process.env.XDG_RUNTIME_DIR = runtime; // this process's opens find the children's channel
const KEY = "0b".repeat(32);
const key = Buffer.from(KEY, "hex");
const engineOf = (store: object) => (store as { engine: Engine }).engine;

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); ) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("a follower nothing listens to", () => {
  it("applies others' commits at its next read: it sees every write it was told of, its own too, past its caches", async () => {
    const dir = path.join(tmp, "reads");
    const { procs } = await start(1, dir, KEY, env);
    live.push(...procs);
    const w = procs[0] as Proc;
    const f = await openStore({ dir, key });
    try {
      expect(f.role).toBe("follower");
      const engine = engineOf(f);
      // A write acknowledged to the writer reaches this follower by a push; its own write's ACK, sent after,
      // covers it for sure (the writer's seq then): what the test waits on.
      const sync = () => f.tasks.put({ id: "s", title: "sync" });
      await f.tasks.put({ id: "f0", title: "mine" });
      expect(await w.send("put a old")).toBe("ok");
      await sync();
      expect((await f.tasks.get("a"))?.title).toBe("old"); // decoded and cached here
      expect(await f.tasks.keys()).toEqual(["a", "f0", "s"]); // the sorted keys, cached
      const before = engine.lastSeq;

      expect(await w.send("put a new")).toBe("ok");
      expect(await w.send("put b from-w")).toBe("ok");
      await f.tasks.put({ id: "f1", title: "mine too" }); // its ACK covers both writer commits
      expect(engine.lastSeq).toBe(before); // nothing applied: no read since

      expect((await f.tasks.get("a"))?.title).toBe("new"); // not the cached "old"
      expect(engine.lastSeq).toBe(before + 3);
      expect(await f.tasks.keys()).toEqual(["a", "b", "f0", "f1", "s"]);
      expect((await f.tasks.get("f1"))?.title).toBe("mine too");

      // Own writes, each read at once; an update reads the state it changes.
      for (let i = 0; i < 5; i++) {
        await f.tasks.put({ id: `g${i}`, title: String(i) });
        expect((await f.tasks.get(`g${i}`))?.title).toBe(String(i));
      }
      expect(await w.send("put n 1")).toBe("ok");
      await sync();
      expect((await f.tasks.update("n", (t) => ({ title: String(Number(t.title) + 1) }))).title).toBe("2");
      expect(await w.send("get n")).toBe("2");
      expect(await f.tasks.count()).toBe(11);
    } finally {
      await f.close();
    }
  });

  it("reads its own write back after the writer rotated the data key (its frame needs the new keyring, read before the write resolves)", async () => {
    const dir = path.join(tmp, "rotated");
    const { procs } = await start(1, dir, KEY, env);
    live.push(...procs);
    const w = procs[0] as Proc;
    const f = await openStore({ dir, key });
    try {
      await f.tasks.put({ id: "f0", title: "before" });
      expect((await f.tasks.get("f0"))?.title).toBe("before");
      for (let round = 0; round < 3; round++) {
        expect(await w.send("rotate")).toMatch(/^\d+$/);
        await f.tasks.put({ id: `r${round}`, title: `mine ${round}` });
        expect((await f.tasks.get(`r${round}`))?.title).toBe(`mine ${round}`);
      }
    } finally {
      await f.close();
    }
  });

  it(`applies them anyway once ${MAX_LAG} are due, without a read`, async () => {
    const dir = path.join(tmp, "lag");
    const { procs } = await start(1, dir, KEY, env);
    live.push(...procs);
    const w = procs[0] as Proc;
    const f = await openStore({ dir, key });
    try {
      const engine = engineOf(f);
      await f.tasks.put({ id: "f0", title: "x" });
      await f.tasks.put({ id: "f1", title: "x" });
      const before = engine.lastSeq;
      expect(await w.send(`load l ${MAX_LAG + 40} 1`)).toMatch(/^loaded \d+ 0$/);
      await until(() => engine.lastSeq >= before + MAX_LAG / 2); // applied with no read here
      expect(await f.tasks.count()).toBe(MAX_LAG + 42);
    } finally {
      await f.close();
    }
  });

  it("a watch, or a change listener, has each commit applied as it comes", async () => {
    const dir = path.join(tmp, "watch");
    const { procs } = await start(1, dir, KEY, env);
    live.push(...procs);
    const w = procs[0] as Proc;
    const f = await openStore({ dir, key });
    try {
      await f.tasks.put({ id: "f0", title: "x" });
      await f.tasks.put({ id: "f1", title: "x" });
      const seen: string[] = [];
      const stop = f.tasks.watch("c").subscribe((u) => seen.push(u.value?.title ?? "-"));
      expect(await w.send("put c 1")).toBe("ok");
      await until(() => seen.includes("1"));
      stop();
      const changes: string[] = [];
      const off = f.on("change", (e) => changes.push(String(e.key)));
      expect(await w.send("put d 1")).toBe("ok");
      await until(() => changes.includes("d"));
      off();
      expect(seen).toEqual(["-", "1"]);
    } finally {
      await f.close();
    }
  });
});
