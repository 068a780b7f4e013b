/**
 * An app that awaits writes back to back (each `await` resolves on a microtask) must not starve what runs
 * on the event loop's turns: relaxed durability's fdatasync, automatic compaction, the app's own timers.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { powerCutIO } from "./helpers/power-cut-io.js";
import { TEST_KEY, valueFor } from "./helpers/model.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-sched-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const put = (key: string, n: number): WriteOp => ({ op: "put", entity: "e", key, version: 1, value: valueFor(key, n), terms: [] });
const text = (e: Engine, k: string) => {
  const got = e.get("e", k);
  return got ? Buffer.from(got.value).toString() : undefined;
};

describe("relaxed durability under a tight loop of awaited puts", () => {
  const RELAXED_MS = 50;

  it("a power cut loses only the writes of the last `relaxedSyncMs` (syncs run inside the loop)", async () => {
    const dir = path.join(tmp, "relaxed-cut");
    const io = powerCutIO();
    const e = await Engine.open({ dir, key: TEST_KEY, io, durability: "relaxed", relaxedSyncMs: RELAXED_MS, compaction: { auto: false } });
    const syncsBefore = io.syncs;
    const acked: number[] = [];
    // The largest gap between two acknowledgements (it includes a flush's fdatasync, and any time this
    // process was descheduled on a loaded machine), for the allowance below.
    let maxGap = 0;
    const end = performance.now() + 1500;
    for (let i = 0; ; i++) {
      await e.write([put(`k${i}`, i)]);
      const now = performance.now();
      if (i > 0) maxGap = Math.max(maxGap, now - acked[i - 1]!);
      acked.push(now);
      if (now >= end) break;
    }
    const syncsInLoop = io.syncs - syncsBefore;
    io.cut();
    const cutAt = performance.now();
    await e.close().catch(() => {}); // fails (the machine is off); releases the lock

    // The documented window plus a scheduling allowance. A flush syncs before it acknowledges when the flush
    // that wrote the oldest unsynced commit started `relaxedSyncMs` or more before it. So the first flush
    // after the last sync started less than `relaxedSyncMs` before the last flush, which started at most one
    // gap before the last acknowledgement, just before the cut: every write acknowledged before
    // `cut - relaxedSyncMs - maxGap` came before that first flush, and is synced (+10 ms for clock reads).
    const window = RELAXED_MS + maxGap + 10;
    const mustSurvive = acked.filter((t) => t <= cutAt - window).length;
    expect(mustSurvive).toBeGreaterThan(acked.length / 2); // the check below covers most of the loop

    const back = await Engine.open({ dir, key: TEST_KEY });
    try {
      const lost: number[] = [];
      for (let i = 0; i < mustSurvive; i++) if (text(back, `k${i}`) !== Buffer.from(valueFor(`k${i}`, i)).toString()) lost.push(i);
      expect({ lost: lost.length, of: mustSurvive, firstLost: lost[0] }).toEqual({ lost: 0, of: mustSurvive, firstLost: undefined });
      // Nothing after the last acknowledged write, nothing wrong before it.
      expect(back.count("e")).toBeLessThanOrEqual(acked.length);
    } finally {
      await back.close();
    }
    expect(syncsInLoop).toBeGreaterThan(0);
  });

  it("an idle store syncs on its timer: a cut `relaxedSyncMs` after the last write loses nothing", async () => {
    const dir = path.join(tmp, "relaxed-idle");
    const io = powerCutIO();
    const e = await Engine.open({ dir, key: TEST_KEY, io, durability: "relaxed", relaxedSyncMs: RELAXED_MS, compaction: { auto: false } });
    for (let i = 0; i < 200; i++) await e.write([put(`k${i}`, i)]);
    await new Promise((r) => setTimeout(r, RELAXED_MS * 3));
    io.cut();
    await e.close().catch(() => {});
    const back = await Engine.open({ dir, key: TEST_KEY });
    try {
      expect(back.count("e")).toBe(200);
      for (let i = 0; i < 200; i++) expect(text(back, `k${i}`)).toBe(Buffer.from(valueFor(`k${i}`, i)).toString());
    } finally {
      await back.close();
    }
  });
});

describe("sustained load: a tight loop of awaited overwrites", () => {
  it("lets automatic compaction finish and keeps the journal bounded; a timer set during the loop fires in it", async () => {
    const dir = path.join(tmp, "sustained");
    const maxJournalBytes = 256 * 1024;
    let compactions = 0;
    const e = await Engine.open({
      dir,
      key: TEST_KEY,
      durability: "relaxed",
      compaction: { minDeadBytes: 64 * 1024, maxJournalBytes },
      failpoint: (name) => {
        if (name === "compaction.afterManifestRename") compactions++;
      },
    });
    let timerFired = false;
    let loopRunning = true;
    let firedInLoop = false;
    setTimeout(() => {
      timerFired = true;
      firedInLoop = loopRunning;
    }, 20);
    let maxJournal = 0;
    let puts = 0;
    // At least 1.2 s of load, more (up to 4 s, which fails below) until two compactions finished.
    const start = performance.now();
    for (let now = start; now < start + 4000 && (now < start + 1200 || compactions < 2); now = performance.now()) {
      await e.write([put(`k${puts % 200}`, puts)]);
      puts++;
      maxJournal = Math.max(maxJournal, e.stats().journalBytes);
    }
    loopRunning = false;
    await e.close();

    expect(firedInLoop).toBe(true);
    expect(compactions).toBeGreaterThanOrEqual(2);
    // A compaction starts once dead bytes pass `minDeadBytes` (or the journal `maxJournalBytes`): the
    // journal then grows only by what the loop writes while it runs (~0.2-0.4 MiB measured here).
    expect(maxJournal).toBeLessThan(4 * maxJournalBytes);

    const back = await Engine.open({ dir, key: TEST_KEY });
    try {
      expect(back.count("e")).toBe(Math.min(200, puts));
      for (let i = Math.max(0, puts - 200); i < puts; i++) expect(text(back, `k${i % 200}`)).toBe(Buffer.from(valueFor(`k${i % 200}`, i)).toString());
    } finally {
      await back.close();
    }
  });
});
