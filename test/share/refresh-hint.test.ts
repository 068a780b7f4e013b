/**
 * A follower's refresh told the writer's position (`Engine.refresh(hint)`, docs/FORMAT.md "Channel": the
 * generation and journal that `ACK` and `COMMITTED` carry) reads only the new frames of its journal; a hint
 * that no longer matches (a compaction, a journal rotation) or frames under a key it does not know yet (a key
 * rotation) take the full refresh: in every case the follower sees every commit, in seq order.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { TEST_KEY } from "../engine/helpers/model.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-hint-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const put = (key: string): WriteOp => ({ op: "put", entity: "tasks", key, version: 1, value: new TextEncoder().encode(`v-${key}`), terms: [] });
const value = (e: Engine, key: string) => {
  const r = e.get("tasks", key);
  return r && new TextDecoder().decode(r.value);
};

describe("a follower's refresh told where the writer writes", () => {
  it("sees every commit through compactions and key rotations, whether the hint matches or not", async () => {
    const dir = path.join(tmp, "s");
    const writer = await Engine.open({ dir, key: TEST_KEY });
    const follower = await Engine.openFollower({ dir, key: TEST_KEY });
    const seen: number[] = [];
    follower.onCommit = (_ops, seq) => seen.push(seq);
    try {
      let n = 0;
      const step = async (hint: () => { generation: number; journal: number }) => {
        const key = `k${n++}`;
        await writer.write([put(key)]);
        const at = hint();
        expect(await follower.refresh(at)).toBe(writer.lastSeq);
        expect(value(follower, key)).toBe(`v-${key}`);
      };
      for (let i = 0; i < 5; i++) await step(() => writer.position); // the hint matches: new frames only
      const stale = writer.position;
      await writer.compact(); // a new generation, a new journal
      expect(writer.position.generation).toBeGreaterThan(stale.generation);
      await step(() => writer.position); // a generation the follower has not read yet: the full refresh
      await step(() => writer.position);
      writer.rotateKey(); // same generation and journal, frames under a new data key
      await step(() => writer.position);
      await step(() => ({ ...writer.position, journal: writer.position.journal + 7 })); // a journal it does not read: full
      await step(() => writer.position);
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
      for (let i = 0; i < n; i++) expect(value(follower, `k${i}`)).toBe(`v-k${i}`);
    } finally {
      await follower.close();
      await writer.close();
    }
  });

  it("a hint older than the commit (never sent: a hint is taken after its commit) reads the follower's journal only; a full refresh reads the rest", async () => {
    const dir = path.join(tmp, "t");
    const writer = await Engine.open({ dir, key: TEST_KEY });
    const follower = await Engine.openFollower({ dir, key: TEST_KEY });
    try {
      await writer.write([put("a")]);
      const old = writer.position;
      await follower.refresh(old);
      await writer.compact();
      await writer.write([put("b")]);
      // Told the old position (as a stale push would), it reads the old journal only: "b" is not there.
      const before = follower.lastSeq;
      await follower.refresh(old);
      expect(value(follower, "b")).toBeUndefined();
      expect(follower.lastSeq).toBe(before);
      expect(await follower.refresh()).toBe(writer.lastSeq);
      expect(value(follower, "b")).toBe("v-b");
    } finally {
      await follower.close();
      await writer.close();
    }
  });
});
