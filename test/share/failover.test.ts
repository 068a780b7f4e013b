/**
 * Failover with real processes: the writer is SIGKILLed while two followers write (puts, and updates of a
 * counter record: a write applied twice would show in the counter). One follower becomes the writer within
 * a bounded time; every acknowledged write is present, each counter equals its acknowledged updates (none
 * lost, none applied twice), a watch in the other follower sees the counter's updates in seq order to its
 * last value, and every process exits when told (no deadlock).
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { entities } from "../../src/generated/index.js";
import { openStore } from "../../src/runtime/index.js";
import { type Proc, processScope, start } from "./helpers/procs.js";

const { tmp, env, live } = processScope("cellar-failover-");
const KEY = "0b".repeat(32);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("failover", () => {
  it("SIGKILL of the writer while followers write: a new writer, every acknowledged write exactly once, clean exits", async () => {
    const dir = path.join(tmp, "kill");
    const { procs, opens } = await start(3, dir, KEY, env);
    live.push(...procs);
    const [w, f1, f2] = procs as [Proc, Proc, Proc];
    expect(opens.map((o) => o.split(" ")[1])).toEqual(["writer", "follower", "follower"]);
    expect(await f2.send("watch ctr-a")).toBe("watching"); // f1's counter, watched in f2 across the failover
    expect(await f1.send("run a")).toBe("running");
    expect(await f2.send("run b")).toBe("running");
    await f1.waitFor(/^ack update ctr-a/);
    await f2.waitFor(/^ack update ctr-b/);
    await sleep(200);

    w.kill("SIGKILL");
    const killedAt = Date.now();
    const promoted = await Promise.race([f1.waitFor(/^role writer$/, 10_000).then(() => f1), f2.waitFor(/^role writer$/, 10_000).then(() => f2)]);
    const took = Date.now() - killedAt;
    expect(took).toBeLessThan(10_000);
    const other = promoted === f1 ? f2 : f1;
    // Both keep writing through the new writer.
    const before = other.events.filter((e) => e.startsWith("ack put")).length;
    await other.waitFor(new RegExp(`^ack put ${other === f1 ? "a" : "b"}-${before + 3}$`));

    const stops = await Promise.all([f1.send("stop"), f2.send("stop")]);
    for (const s of stops) expect(s).toMatch(/^stopped \d+ \d+ 0$/); // no write failed
    await f2.waitFor(new RegExp(`^watch ctr-a ${stops[0]!.split(" ")[2]} `)); // f1's last update reached f2's watch
    expect(await promoted.send("role")).toBe("writer");
    expect(await other.send("role")).toBe("follower");
    expect(await other.send("close")).toBe("closed");
    expect(await promoted.send("close")).toBe("closed");
    expect(await Promise.all([f1.exited, f2.exited])).toEqual([0, 0]);

    // The watch in f2: seqs only grow (none repeated), values only grow, and it ends at f1's last update.
    const seen = f2.events.filter((e) => e.startsWith("watch ctr-a ")).map((e) => e.split(" ").slice(2));
    const values = seen.map(([t]) => (t === "-" ? 0 : Number(t)));
    const seqs = seen.map(([, q]) => Number(q));
    for (let i = 1; i < seen.length; i++) {
      expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
      expect(values[i]).toBeGreaterThanOrEqual(values[i - 1]!);
    }
    expect(values.at(-1)).toBe(Number(stops[0]!.split(" ")[2]));

    const store = await openStore({ tasks: entities.tasks }, { dir, key: Buffer.from(KEY, "hex"), sharing: false });
    try {
      for (const [p, name, stop] of [[f1, "a", stops[0]!], [f2, "b", stops[1]!]] as const) {
        const [, puts, updates] = stop.split(" ").map(Number) as [string, number, number];
        const acked = p.events.filter((e) => e.startsWith(`ack put ${name}-`)).map((e) => e.slice(8));
        expect(acked.length).toBe(puts);
        for (const id of acked) expect((await store.tasks.get(id))?.title, id).toBe(`v${id.split("-")[1]}`);
        expect((await store.tasks.get(`ctr-${name}`))?.title).toBe(String(updates));
      }
    } finally {
      await store.close();
    }
    console.log(`failover: new writer ${took} ms after SIGKILL`);
  }, 60_000);
});
