/**
 * Failover at the engine level (storage/follower.ts): the writer process is SIGKILLed mid-write; the follower
 * promotes (takes the lock, runs open's recovery) and loses no acknowledged write; the promoted engine takes
 * writes, compacts, and a reopen sees everything.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { checkAgainstLog, readLog, TEST_KEY, valueFor } from "../engine/helpers/model.js";
import { startChild, waitForLine } from "../engine/helpers/spawn.js";
import { mirror, view } from "./helpers/follower-engine.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-follower-promote-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const put = (key: string, n: number): WriteOp => ({ op: "put", entity: "e", key, version: 1, value: valueFor(key, n), terms: [] });

describe("promotion after the writer is SIGKILLed mid-write", () => {
  for (const round of [0, 1]) {
    it(`loses no acknowledged write, and the promoted engine takes writes (round ${round})`, async () => {
      const dir = path.join(tmp, `r${round}`);
      const log = path.join(tmp, `r${round}.log`);
      const { child, exited } = startChild("../../share/helpers/follower-engine-writer.ts", [dir, log, String(1000 + round), "0"]);
      await waitForLine(log, /^OPEN$/m);
      const f = await Engine.openFollower({ dir, key: TEST_KEY });
      const events = mirror(f);
      // Follow for a while (a different number of writes each round), then kill the writer mid-write.
      await waitForLine(log, new RegExp(`^A ${100 + round * 120}$`, "m"));
      for (let i = 0; i < 3; i++) await f.refresh();
      child.kill("SIGKILL");
      const { signal } = await exited;
      expect(signal).toBe("SIGKILL");
      const parsed = readLog(log);
      await f.promote();
      expect(f.role).toBe("writer");
      await f.promote(); // idempotent
      expect(checkAgainstLog(view(f), parsed)).toEqual([]);
      expect(events.records).toEqual(view(f));
      expect(events.problems).toEqual([]);
      // A writer now: writes, compaction and a key rotation work, and events go on in seq order.
      const seq = f.lastSeq;
      await f.write([put("after", 1)]);
      expect(f.lastSeq).toBe(seq + 1);
      expect(events.records.get("after")).toBe(Buffer.from(valueFor("after", 1)).toString());
      f.rotateKey();
      await f.compact();
      await f.write([put("after2", 2)]);
      const final = view(f);
      await f.close();
      const reopened = await Engine.open({ dir, key: TEST_KEY });
      const records = view(reopened);
      expect(records).toEqual(final);
      records.delete("after");
      records.delete("after2");
      expect(checkAgainstLog(records, parsed)).toEqual([]);
      await reopened.close();
    }, 60_000);
  }
});
