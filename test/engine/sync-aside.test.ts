/**
 * A shared store's writer with followers connected runs its commit fdatasyncs on the thread pool
 * (`syncAside`, storage/commit.ts), so the event loop turns during them. What runs in that window must see
 * the store as it was before the commit: a compaction waits for the commit to be indexed before it rotates
 * the journal (else the commit's records would point into a journal the compaction retires), writes queued
 * meanwhile go in the next flush, and every acknowledged write survives a reopen.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { TEST_KEY, valueFor } from "./helpers/model.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-aside-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const put = (key: string, n: number): WriteOp => ({ op: "put", entity: "e", key, version: 1, value: valueFor(key, n), terms: [] });
const text = (e: Engine, k: string) => {
  const got = e.get("e", k);
  return got ? Buffer.from(got.value).toString() : undefined;
};

describe("commit fdatasyncs aside (a writer with followers)", () => {
  it("compactions started during a commit's fdatasync come after it; writes queued meanwhile join the next flush; all survive a reopen", async () => {
    const dir = path.join(tmp, "compact");
    let e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    e.shareWrites({ syncAside: true });
    const writes: Promise<void>[] = [];
    let groups = 0;
    for (let round = 0; round < 40; round++) {
      // Several writers at once, then a compaction while the first flush's fdatasync runs aside.
      for (let i = 0; i < 5; i++) writes.push(e.write([put(`k${round}-${i}`, round)]));
      await new Promise<void>((r) => setImmediate(r)); // the flush started, its fdatasync is aside
      const during = e.write([put(`late${round}`, round)]); // queued while it runs
      writes.push(during);
      const compacted = e.compact();
      await Promise.all([compacted, during]);
      groups++;
    }
    await Promise.all(writes);
    expect(groups).toBe(40);
    for (let round = 0; round < 40; round++) {
      expect(text(e, `late${round}`)).toBe(Buffer.from(valueFor(`late${round}`, round)).toString());
      for (let i = 0; i < 5; i++) expect(text(e, `k${round}-${i}`)).toBe(Buffer.from(valueFor(`k${round}-${i}`, round)).toString());
    }
    await e.close();
    e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    for (let round = 0; round < 40; round++) {
      expect(text(e, `late${round}`)).toBe(Buffer.from(valueFor(`late${round}`, round)).toString());
      for (let i = 0; i < 5; i++) expect(text(e, `k${round}-${i}`)).toBe(Buffer.from(valueFor(`k${round}-${i}`, round)).toString());
    }
    expect(e.count("e")).toBe(40 * 6);
    await e.close();
  }, 60_000);
});
