/**
 * Which follower is told of a commit, and how (docs/FORMAT.md, "Channel", "Writes"): the writer is a real
 * child process (helpers/share-child.ts); two followers connect to its socket from this process. A follower
 * whose write is in a commit gets that write's `ACK` only (its seq the writer's, covering the commit), not a
 * `COMMITTED` too; every other follower gets the `COMMITTED`; a follower with no write in flight gets a
 * `COMMITTED` for each commit of the writer's own. A follower acknowledged just now has a commit's `COMMITTED`
 * held for its next write (whose `ACK` covers it), and sent when that write does not come within the hold.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ChannelClient } from "../../src/runtime/share/client.js";
import { ChannelKey } from "../../src/runtime/crypto/channel-key.js";
import { channelPath } from "../../src/runtime/platform/channel-path.js";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { Sharing } from "../../src/runtime/share/sharing.js";
import { processScope, start } from "./helpers/procs.js";

const { tmp, runtime, env, live } = processScope("cellar-push-");
const keyHex = "07".repeat(32);
/** A plain record value of an internal entity (no schema version check, no typed listener). */
const put = (k: string): WriteOp => ({ op: "put", entity: "~push", key: k, version: 1, value: Buffer.from([0, 0x0a, 1, 0x78]), terms: [] });

/** A follower's channel, with every seq it was told (a `COMMITTED` or an `ACK`, in order) and its ACKs' seqs. */
function follower(id: number, key: ChannelKey) {
  const told: number[] = [];
  const client = new ChannelClient(new Uint8Array(16).fill(id), key, 10_000, (seq) => told.push(seq), () => {});
  return { client, told };
}

/** Wait until `f` holds (the followers' pushes arrive asynchronously), at most 5 s. */
async function until(f: () => boolean): Promise<void> {
  for (const t0 = Date.now(); !f(); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() - t0 > 5000) throw new Error("timed out");
  }
}

describe("COMMITTED pushes", () => {
  it("a follower whose write is in a commit is told once (its ACK, at the writer's seq); the others get COMMITTED", async () => {
    const dir = path.join(tmp, "store");
    const { procs, opens } = await start(1, dir, keyHex, env);
    live.push(...procs);
    expect(opens[0]).toMatch(/^open writer /);
    const writer = procs[0]!;
    // This process's follower engine only derives the channel key from the store's keyring.
    const engine = await Engine.openFollower({ dir, key: Buffer.from(keyHex, "hex") });
    const key = ChannelKey.of(engine.keyring!);
    const socket = channelPath(fs.realpathSync(dir), runtime);
    const a = follower(1, key);
    const b = follower(2, key);
    try {
      await a.client.connect(socket);
      await b.client.connect(socket);

      // A write of `a`: `a` hears of its commit once, by the ACK; `b` by a COMMITTED of the same seq.
      const seq1 = await a.client.send([], [put("a1")]);
      await until(() => b.told.includes(seq1));
      expect(a.told).toEqual([seq1]);
      expect(b.told).toEqual([seq1]);

      // Two writes of `a` at once: one ACK each, each at least its commit's seq; `b` told of every commit.
      const [s2, s3] = await Promise.all([a.client.send([], [put("a2")]), a.client.send([], [put("a3")])]);
      expect(s3).toBeGreaterThanOrEqual(s2);
      expect(s2).toBeGreaterThan(seq1);
      await until(() => b.told.at(-1) === s3);
      expect(a.told).toEqual([seq1, s2, s3]);
      expect(b.told.every((s, i) => i === 0 || s > b.told[i - 1]!)).toBe(true);

      // Writes of `a` and `b` together: each is told by its own ACK(s), never by a COMMITTED as well.
      const [sa, sb] = await Promise.all([a.client.send([], [put("a4")]), b.client.send([], [put("b1")])]);
      await until(() => a.told.at(-1)! >= Math.max(sa, sb) && b.told.at(-1)! >= Math.max(sa, sb));
      expect(a.told.length).toBeLessThanOrEqual(5); // its ACK, and a COMMITTED only if b's write was committed apart
      expect(b.told.slice(-1)[0]).toBeGreaterThanOrEqual(sb);

      // A write of the writer's own: both followers, with no write in flight, get its COMMITTED.
      const before = [a.told.length, b.told.length];
      expect(await writer.send("put w1 own")).toBe("ok");
      await until(() => a.told.length > before[0]! && b.told.length > before[1]!);
      expect(a.told.at(-1)).toBe(b.told.at(-1));
      expect(a.told.at(-1)).toBeGreaterThan(Math.max(sa, sb));
    } finally {
      a.client.close();
      b.client.close();
      key.destroy();
      await engine.close();
      await writer.send("close");
    }
  });

  it("a follower just acknowledged is told of a commit by its next write's ACK; one that stops writing gets the COMMITTED", async () => {
    const dir = path.join(tmp, "held");
    // The writer in this process: a commit's push is `committed()`, called here at chosen moments.
    const w = await Sharing.open({ dir, key: Buffer.from(keyHex, "hex") }, { runtimeDir: runtime });
    await w.start();
    const key = ChannelKey.of(w.engine.keyring!);
    const socket = channelPath(fs.realpathSync(dir), runtime);
    const a = follower(3, key);
    const b = follower(4, key);
    try {
      await a.client.connect(socket);
      await b.client.connect(socket);
      // A commit ends just after `a`'s write was acknowledged, and `a` writes again at once: without the hold,
      // `a` gets a COMMITTED for it besides its next ACK, every time; with it, the ACK alone (a round that
      // took longer than the hold, ≥ 1 ms, on a loaded machine, may still push).
      const rounds = 20;
      await a.client.send([], [put("h")]);
      for (let i = 0; i < rounds; i++) {
        w.committed();
        await a.client.send([], [put(`h${i}`)]);
      }
      const pushed = a.told.length - (rounds + 1);
      expect(pushed).toBeLessThan(rounds / 4);
      await until(() => b.told.length >= rounds); // `b` never wrote: told every time
      // `a` writes no more: the next commit's COMMITTED reaches it, after the hold.
      const told = a.told.length;
      w.committed();
      await until(() => a.told.length === told + 1);
    } finally {
      a.client.close();
      b.client.close();
      key.destroy();
      await w.close();
      await w.engine.close();
    }
  });
});
