// Issue 15: compaction in slices. Its snapshot of the live keys is read a slice at a time (the overlay
// sorted in slices first), so writes land between slices, in the new journal: a key overwritten, deleted or
// added anywhere in the key range, before or after the snapshot's position, must come out right, after the
// compaction and after a reopen (FORMAT.md, "Compaction": the segment plus the new journal is the state).
// The slice budget is 0 ms, so every check yields and writes interleave with every phase.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { setSliceBudget, SLICE_MS } from "../../src/runtime/platform/turn.js";
import { TEST_KEY, valueFor } from "./helpers/model.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-compact-slices-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => void setSliceBudget(SLICE_MS));
const put = (key: string, n: number): WriteOp => ({ op: "put", entity: "e", key, version: 1, value: valueFor(key, n), terms: [] });
const text = (e: Engine, k: string) => {
  const g = e.get("e", k);
  return g ? Buffer.from(g.value).toString() : undefined;
};
const key = (i: number) => `k${String(i).padStart(5, "0")}`;

describe("compaction in slices", () => {
  it("writes anywhere in the key range while the snapshot and the segment are being made all survive it and a reopen", async () => {
    setSliceBudget(0);
    const dir = path.join(tmp, "anywhere");
    // Relaxed: the writes need not wait for an fsync each (close syncs them before the reopen below).
    const e = await Engine.open({ dir, key: TEST_KEY, durability: "relaxed", compaction: { auto: false } });
    const N = 5_000;
    // All in the journal, as after a bulk load: the overlay holds every key.
    for (let i = 0; i < N; i += 500) await e.write(Array.from({ length: 500 }, (_, j) => put(key(i + j), 0)));
    const model = new Map<string, number | null>();
    for (let i = 0; i < N; i++) model.set(key(i), 0);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    let done = false;
    const compaction = e.compact().then(() => void (done = true));
    let seed = 7;
    let writes = 0;
    try {
      while (!done) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const i = seed % (N + 500); // some new keys past the end, some between (`.5`)
        const k = i < N ? key(i) : `${key(i - N)}.5`;
        const del = seed % 5 === 0 && i < N;
        await e.write([del ? { op: "delete", entity: "e", key: k } : put(k, 1)]);
        model.set(k, del ? null : 1);
        writes++;
      }
      await compaction;
    } finally {
      clearInterval(timer);
    }
    expect(writes).toBeGreaterThan(20);
    expect(ticks).toBeGreaterThan(5);
    const check = (x: Engine) => {
      let live = 0;
      for (const [k, v] of model) {
        if (v === null) expect(x.has("e", k)).toBe(false);
        else {
          live++;
          expect(text(x, k)).toContain(`#${v}#`);
        }
      }
      expect(x.count("e")).toBe(live);
      expect([...x.keys("e")].length).toBe(live);
    };
    check(e);
    await e.close();
    const r = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    check(r);
    // A second compaction from that state (segment plus journal) keeps it too.
    await r.compact();
    check(r);
    await r.close();
  }, 120_000);
});
