/**
 * The audit log across real processes: a follower's reads and writes reach the log through the writer, both
 * processes appending at once, and the chain verifies; a process SIGKILLed while it appends leaves a log
 * that verifies (each append is one engine write: entries and head together, or neither).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { decodedText, key, rawAudit, tempRoot } from "./helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = tempRoot("procs");
afterAll(tmp.cleanup);

function child(dir: string, mode: "hold" | "churn", actor: string): { proc: ChildProcessWithoutNullStreams; line: () => Promise<string>; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, ["--import", "tsx", path.join(here, "helpers", "audit-child.ts"), dir, mode, actor], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  readline.createInterface({ input: proc.stdout }).on("line", (l) => (waiting.shift() ?? ((x: string) => lines.push(x)))(l));
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  void exited.then(() => waiting.splice(0).forEach((w) => w(`EXITED ${stderr.slice(-1000)}`)));
  return { proc, exited, line: () => (lines.length ? Promise.resolve(lines.shift()!) : new Promise((r) => waiting.push(r))) };
}

describe("audit log across processes", () => {
  it("a follower's reads and writes are appended through the writer while the writer appends its own; the chain verifies", { timeout: 180_000 }, async () => {
    const dir = tmp.fresh("shared");
    const writer = child(dir, "hold", "writer-app");
    expect(await writer.line()).toBe("ready writer");
    const follower = child(dir, "hold", "follower-app");
    expect(await follower.line()).toBe("ready follower");
    // Both at work (timing-free: each says when it has done 20 reads and writes).
    expect(await follower.line()).toBe("progress");
    expect(await writer.line()).toBe("progress");
    follower.proc.kill("SIGTERM");
    const followerDone = Number((await follower.line()).replace(/^closed /, ""));
    writer.proc.kill("SIGTERM");
    const writerDone = Number((await writer.line()).replace(/^closed /, ""));
    await Promise.all([writer.exited, follower.exited]);

    const store = await openStore({ dir, key, redactSensitive: true });
    const report = await store.audit.verify();
    const list = await store.audit.list();
    await store.close();
    expect(report).toMatchObject({ ok: true, problems: [] });
    const byActor = (a: string) => list.filter((e) => e.actor === a);
    expect(byActor("follower-app").length).toBeGreaterThan(0);
    expect(byActor("writer-app").length).toBeGreaterThan(0);
    expect(new Set(byActor("follower-app").map((e) => e.pid)).size).toBe(1);
    expect(byActor("follower-app")[0]!.pid).not.toBe(byActor("writer-app")[0]!.pid);
    // Every read and write of both processes is in the log, none lost to a conflict between their appends.
    const total = (actor: string, action: string) => byActor(actor).filter((e) => e.action === action).reduce((a, e) => a + e.count, 0);
    expect(followerDone).toBeGreaterThanOrEqual(20);
    expect([total("follower-app", "write"), total("follower-app", "read")]).toEqual([followerDone, followerDone]);
    expect([total("writer-app", "write"), total("writer-app", "read")]).toEqual([writerDone, writerDone]);
    expect(decodedText(await rawAudit(dir))).not.toMatch(/secret-/);
  });

  it("SIGKILL while appending leaves a log that verifies", { timeout: 180_000 }, async () => {
    for (let round = 0; round < 3; round++) {
      const dir = tmp.fresh("crash");
      const c = child(dir, "churn", "churner");
      expect(await c.line()).toBe("ready writer");
      expect(await c.line()).toBe("progress");
      await new Promise((r) => setTimeout(r, round * 150)); // killed at a different point of its appends each round
      c.proc.kill("SIGKILL");
      await c.exited;
      const store = await openStore({ dir, key, audit: true });
      const report = await store.audit.verify();
      expect(report, JSON.stringify(report.problems)).toMatchObject({ ok: true });
      expect(report.entries).toBeGreaterThanOrEqual(40);
      // … and appends after the crash continue the chain.
      await store.profiles.get("churner-1");
      await store.audit.flush();
      expect((await store.audit.verify()).ok).toBe(true);
      await store.close();
    }
  });
});
