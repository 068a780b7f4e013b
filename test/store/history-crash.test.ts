/**
 * A write and the history entry of the version it replaces are one engine write (one commit frame): after
 * a SIGKILL at any moment, a record and its history agree: both or neither of each write are there.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { entities } from "../../src/generated/index.js";
import { defineCollection, openStore } from "../../src/runtime/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-history-crash-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(5);
const tasks = defineCollection({ ...entities.tasks, history: { keep: 100_000 } });

/** The record's state after op `i` of the child (0: never written): op i puts title `i`, every 7th deletes. */
const stateAfter = (i: number): string | undefined => (i === 0 || i % 7 === 0 ? undefined : String(i));

async function round(n: number, ackedBeforeKill: number): Promise<{ committed: number; acked: number }> {
  const dir = path.join(tmp, `r${n}`);
  const logPath = path.join(tmp, `r${n}.log`);
  const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "helpers/history-crash-child.ts"), dir, logPath], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
  const acks = () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, "utf8").split("\n").filter((l) => l.startsWith("A ")).length : 0);
  const until = Date.now() + 30_000;
  while (acks() < ackedBeforeKill && Date.now() < until) await new Promise((r) => setTimeout(r, 2));
  child.kill("SIGKILL");
  expect(await exited, stderr).toBe("SIGKILL");
  const acked = Math.max(0, ...fs.readFileSync(logPath, "utf8").split("\n").filter((l) => l.startsWith("A ")).map((l) => Number(l.slice(2))));

  const store = await openStore({ tasks }, { dir, key });
  try {
    // Oldest first: entry j holds the state before the (j+1)th change; the record holds the state after the last.
    const history = (await store.tasks.history("k")).reverse().map((e) => e.value?.title);
    const current = (await store.tasks.get("k"))?.title;
    // Ops that changed something: all of them (a delete always follows a put here).
    const committed = history.length;
    expect(history).toEqual(Array.from({ length: committed }, (_, j) => stateAfter(j)));
    expect(current).toBe(stateAfter(committed));
    // Every acknowledged write is there.
    expect(committed).toBeGreaterThanOrEqual(acked);
    return { committed, acked };
  } finally {
    await store.close();
  }
}

describe("record history under SIGKILL", () => {
  it("after a kill at a random moment, the record and its history agree write for write (3 rounds)", async () => {
    let total = 0;
    for (let n = 0; n < 3; n++) {
      const r = await round(n, 20 + n * 37);
      total += r.committed;
    }
    expect(total).toBeGreaterThan(50);
  }, 120_000);
});
