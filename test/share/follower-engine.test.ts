/**
 * A follower engine (storage/follower.ts) beside a real writer process: it sees every acknowledged write with
 * its value, commit by commit in seq order, through the writer's compactions and key rotations.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/runtime/storage/engine.js";
import { checkAgainstLog, readLog, TEST_KEY } from "../engine/helpers/model.js";
import { startChild, waitForLine } from "../engine/helpers/spawn.js";
import { errorOf } from "../helpers/errors.js";
import { finalState, mirror, view } from "./helpers/follower-engine.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-follower-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("a follower beside a writer process", () => {
  it("sees every acknowledged write with its value, commit by commit in seq order, through compactions and key rotations", async () => {
    const dir = path.join(tmp, "stream");
    const log = path.join(tmp, "stream.log");
    const { exited } = startChild("../../share/helpers/follower-engine-writer.ts", [dir, log, "77", "1000"]);
    // Opened at once: the writer may not have created the store yet (the follower waits for its MANIFEST).
    const follower = await Engine.openFollower({ dir, key: TEST_KEY });
    expect(follower.role).toBe("follower");
    const events = mirror(follower);
    let done = false;
    void exited.then(() => (done = true));
    let rounds = 0;
    let checked = 0;
    while (!done) {
      // The writer creates the store (which the follower waited for) before its log: until the log exists,
      // nothing was issued.
      if (!fs.existsSync(log)) {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      const before = readLog(log);
      await follower.refresh();
      const after = readLog(log);
      // Acknowledged before the refresh began: visible; anything visible was issued.
      expect(checkAgainstLog(view(follower), { issued: after.issued, acked: before.acked })).toEqual([]);
      expect(events.records).toEqual(view(follower));
      checked += before.acked.size;
      rounds++;
      await new Promise((r) => setTimeout(r, rounds % 3));
    }
    const { code, stderr } = await exited;
    expect(code, stderr).toBe(0);
    const parsed = readLog(log);
    expect(parsed.lines).toContain("DONE");
    const seq = await follower.refresh();
    expect(view(follower)).toEqual(finalState(parsed.issued));
    expect(events.records).toEqual(view(follower));
    expect(events.problems).toEqual([]);
    // The run exercised what it claims: compactions (generation changes) and key rotations while followed.
    expect(parsed.lines.filter((l) => l === "COMPACT").length).toBeGreaterThan(0);
    expect(parsed.lines.filter((l) => l === "ROTATE").length).toBeGreaterThan(0);
    expect(events.resyncs).toBeGreaterThan(0);
    expect(rounds).toBeGreaterThan(5);
    expect(checked).toBeGreaterThan(0);
    // The writer's own view, reopened, is the follower's, at the same seq.
    await follower.close();
    const writer = await Engine.open({ dir, key: TEST_KEY });
    expect(view(writer)).toEqual(finalState(parsed.issued));
    expect(writer.lastSeq).toBe(seq);
    await writer.close();
  }, 60_000);

  it("refuses writer-only calls (E_FOLLOWER naming the writer's pid) and promotion while the writer holds the lock (E_LOCKED)", async () => {
    const dir = path.join(tmp, "refuse");
    const log = path.join(tmp, "refuse.log");
    const { child, exited } = startChild("../../share/helpers/follower-engine-writer.ts", [dir, log, "5", "0"]);
    try {
      const follower = await Engine.openFollower({ dir, key: TEST_KEY });
      const put = { op: "put" as const, entity: "e", key: "x", version: 1, value: new Uint8Array(3), terms: [] };
      const e = await errorOf(follower.write([put]));
      expect(e).toMatchObject({ code: "E_FOLLOWER", writerPid: child.pid });
      expect((e as Error).message).toContain(`process ${child.pid}`);
      expect(await errorOf(follower.compact())).toMatchObject({ code: "E_FOLLOWER" });
      expect(await errorOf(follower.promote())).toMatchObject({ code: "E_LOCKED" });
      expect(follower.role).toBe("follower");
      // Still a working follower after the refused promotion.
      await waitForLine(log, /^A 20$/m);
      await follower.refresh();
      expect(follower.lastSeq).toBeGreaterThan(0);
      expect(follower.locateSeq("e", "never-written")).toBe(0);
      const someKey = [...follower.keys("e")][0]!;
      expect(follower.locateSeq("e", someKey)).toBeGreaterThan(0);
      await follower.close();
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
  }, 30_000);
});
