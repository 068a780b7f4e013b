/**
 * Queries in a follower process (the store shared with a writer in another, real process): ranges, order,
 * pages, counts and watches see the follower's own writes (applied through the writer) and the writer's,
 * from the follower's ordered indexes kept up to date by its refreshes.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { TaskStatus } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import { type Proc, processScope, start } from "../share/helpers/procs.js";

const { tmp, runtime, env, live } = processScope("cellar-query-follower-");
process.env.XDG_RUNTIME_DIR = runtime; // this process's open finds the child's channel
const KEY = "0b".repeat(32);
const settle = () => new Promise<void>((r) => setImmediate(r));

describe("queries in a follower", () => {
  it("see the follower's writes and the writer's, with counts, pages and a range watch", async () => {
    const dir = path.join(tmp, "f");
    const { procs } = await start(1, dir, KEY, env);
    live.push(...procs);
    const writer = procs[0] as Proc;
    const store = await openStore({ dir, key: Buffer.from(KEY, "hex") });
    try {
      expect(store.role).toBe("follower");
      const ids = (rs: readonly { id: string }[]) => rs.map((r) => r.id);
      const seen: string[][] = [];
      const w = store.tasks.watch({ projectId: { gte: "p1", lt: "p3" } });
      w.subscribe(({ value }) => seen.push(ids(value)));
      for (let i = 0; i < 12; i++) {
        await store.tasks.put({ id: `t${String(i).padStart(2, "0")}`, title: "x", status: (i % 4) as TaskStatus, projectId: `p${i % 5}`, tags: i % 2 ? ["odd"] : [] });
      }
      expect(ids(await store.tasks.query({ projectId: { gte: "p1", lt: "p3" } }))).toEqual(["t01", "t02", "t06", "t07", "t11"]);
      expect(ids(await store.tasks.query({ status: { gt: TaskStatus.TODO } }, { orderBy: "status", reverse: true, limit: 4 }))).toEqual(["t11", "t07", "t03", "t10"]);
      expect(await store.tasks.count({ status: { in: [TaskStatus.UNSPECIFIED, TaskStatus.DONE] } })).toBe(6);
      const first = await store.tasks.queryPage({ tags: "odd" }, { limit: 4 });
      expect(ids(first.records)).toEqual(["t01", "t03", "t05", "t07"]);

      // The writer's writes: a record into the watched range, one out of it, between two pages.
      // Listening first: the writer's COMMITTED may reach this process before its reply to the test does.
      const applied = new Promise<void>((resolve) => store.on("change", (e) => e.key === "t99" && resolve()));
      expect(await writer.send("put t99 from-writer")).toBe("ok"); // status 0, projectId ""
      await applied;
      await settle();
      expect(await store.tasks.count({ status: TaskStatus.UNSPECIFIED })).toBe(4);
      expect(ids(await store.tasks.query({ projectId: { lt: "p0" } }))).toEqual(["t99"]);
      const second = await store.tasks.queryPage({ tags: "odd" }, { limit: 4, after: first.cursor! });
      expect(ids(second.records)).toEqual(["t09", "t11"]);
      expect(second.cursor).toBeUndefined();
      await store.tasks.update("t02", { projectId: "p9" });
      await settle();
      expect(seen.at(-1)).toEqual(["t01", "t06", "t07", "t11"]);
      w.close();
    } finally {
      await store.close();
    }
    expect(await writer.send("close")).toBe("closed");
  });
});
