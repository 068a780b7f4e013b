/**
 * Several real processes on one store (README, "Several processes"): the first opens as writer, the others
 * as followers; a follower's write is readable in it when the write resolves (read-your-writes) and reaches
 * the others' change events, with the record readable when the event arrives; `sharing: false` keeps
 * today's `E_LOCKED`; a second open in one process stays refused.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { entities, openStore } from "../../src/generated/index.js";
import { openStore as openStore2 } from "../../src/runtime/index.js";
import { defineCollection } from "../../src/runtime/typed/entity.js";
import { type Proc, processScope, start } from "./helpers/procs.js";

const { tmp, runtime, env, live } = processScope("cellar-share-", { CELLAR_TEST_HISTORY: "1" });
process.env.XDG_RUNTIME_DIR = runtime; // this process's opens find the children's channel
const KEY = "07".repeat(32);

describe("several processes on one store", () => {
  it("three processes: one writer, two followers; writes of each are read in the others, with change events", async () => {
    const dir = path.join(tmp, "three");
    const { procs, opens } = await start(3, dir, KEY, env);
    live.push(...procs);
    const [w, f1, f2] = procs as [Proc, Proc, Proc];
    expect(opens.map((o) => o.split(" ")[1])).toEqual(["writer", "follower", "follower"]);

    // A follower's write: readable in it as soon as it resolves, in the writer at once, in the other follower by its event.
    expect(await f1.send("put a from-f1")).toBe("ok");
    expect(await f1.send("get a")).toBe("from-f1");
    expect(await w.send("get a")).toBe("from-f1");
    expect(await f2.waitFor(/^change put a /)).toBe("change put a from-f1");
    expect(await f2.send("get a")).toBe("from-f1");

    // The writer's write reaches both followers' events, readable there when the event arrives.
    expect(await w.send("put b from-w")).toBe("ok");
    expect(await f1.waitFor(/^change put b /)).toBe("change put b from-w");
    expect(await f2.waitFor(/^change put b /)).toBe("change put b from-w");

    // Read-modify-writes from all three at once on one record: none lost (preconditions, rebuild on conflict).
    expect(await f2.send("put n 0")).toBe("ok");
    await Promise.all(Array.from({ length: 15 }, (_, i) => [w, f1, f2][i % 3]!.send("update n")));
    expect(await w.send("get n")).toBe("15");
    expect(await f1.send("get n")).toBe("15");

    // Record history written by every process: each lists every entry (none overwritten, none missing).
    expect(await f1.send("put h 1")).toBe("ok");
    expect(await w.send("update h")).toBe("2");
    expect(await f2.send("update h")).toBe("3");
    expect(await f1.send("update h")).toBe("4");
    expect(await w.send("update h")).toBe("5");
    await f2.waitFor(/^change put h 5$/);
    for (const p of procs) expect(await p.send("hist h")).toBe("4,3,2,1,-");

    for (const p of procs) expect(await p.send("close")).toBe("closed");
    const store = await openStore({ dir, key: Buffer.from(KEY, "hex"), sharing: false });
    try {
      expect((await store.tasks.get("a"))?.title).toBe("from-f1");
      expect(await store.tasks.count()).toBe(4);
    } finally {
      await store.close();
    }
  });

  it("with `sharing: false` a second process gets E_LOCKED; a second open in one process is refused; writer-only calls in a follower", async () => {
    const dir = path.join(tmp, "locked");
    const { procs } = await start(1, dir, KEY, env);
    live.push(...procs);
    const key = Buffer.from(KEY, "hex");
    await expect(openStore({ dir, key, sharing: false })).rejects.toMatchObject({ code: "E_LOCKED" });
    const follower = await openStore({ dir, key });
    try {
      expect(follower.role).toBe("follower");
      await expect(openStore({ dir, key })).rejects.toMatchObject({ code: "E_LOCKED" });
        await expect(follower.rotateKey()).rejects.toMatchObject({ code: "E_FOLLOWER", writerPid: procs[0]!.proc.pid });
      // Compact and backup are run by the writer on the follower's behalf.
      await follower.tasks.put({ id: "c1", title: "x" });
      await follower.compact();
      const info = await follower.backup({ to: path.join(tmp, "from-follower.cellarbackup") });
      expect(info.createdAt).toBeInstanceOf(Date);
      expect(info.entities.find((e) => e.name === "tasks")?.records).toBe(1);
      await expect(follower.backup({ to: path.join(tmp, "x.cellarbackup"), label: "cellar:auto" })).rejects.toMatchObject({ code: "E_USAGE" });
      expect(await procs[0]!.send("get c1")).toBe("x");
    } finally {
      await follower.close();
    }
    // Another app version of an entity the store holds: a follower refuses to run with it.
    const newer = defineCollection({ ...entities.tasks, version: entities.tasks.version + 1 });
    const skew = await openStore2({ tasks: newer }, { dir, key }).catch((e: unknown) => e);
    expect(skew).toMatchObject({ code: "E_VERSION_SKEW" });
    expect((skew as Error).message).toContain(`process ${procs[0]!.proc.pid}`);
  }, 30_000);

  it("a plaintext store is shared the same way", async () => {
    const dir = path.join(tmp, "plain");
    const { procs, opens } = await start(2, dir, "none", env);
    live.push(...procs);
    expect(opens.map((o) => o.split(" ")[1])).toEqual(["writer", "follower"]);
    expect(await procs[1]!.send("put p plain")).toBe("ok");
    expect(await procs[0]!.send("get p")).toBe("plain");
    for (const p of procs) await p.send("close");
  }, 30_000);
});
