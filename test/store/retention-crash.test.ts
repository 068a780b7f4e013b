/**
 * A cleanup killed (SIGKILL, real child process: helpers/cleanup-child.ts) at each step: while it reads,
 * before its deletes are written, after they are synced, and between the two writes of a cleanup too large
 * for one. Every acknowledged write survives; a cleanup in one write is all or nothing; a split one leaves
 * the oldest records removed, and the cleanup at the next open finishes it.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConversationEntity } from "../../src/generated/examples/conversations/v1/conversations_cellar.js";
import { openStore } from "../../src/runtime/index.js";
import { startChild } from "../engine/helpers/spawn.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-retention-crash-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const DAY = 86_400_000;
const entities = { conversations: { ...ConversationEntity, retention: { maxAgeMs: 30 * DAY, timestampField: "updatedAt" } } as typeof ConversationEntity };
const key = new Uint8Array(32).fill(5);

async function crash(mode: string): Promise<{ dir: string; old: string[]; acked: string[]; lines: string[] }> {
  const dir = path.join(tmp, mode);
  const log = path.join(tmp, `${mode}.log`);
  const { exited } = startChild("../../store/helpers/cleanup-child.ts", [dir, log, mode]);
  const { signal, stderr } = await exited;
  expect(signal, stderr).toBe("SIGKILL");
  const lines = fs.readFileSync(log, "utf8").split("\n").filter(Boolean);
  expect(lines).toContain("CLEANUP");
  expect(lines).not.toContain("DONE");
  const pick = (tag: string) => lines.filter((l) => l.startsWith(`${tag} `)).map((l) => l.slice(tag.length + 1));
  return { dir, old: pick("OLD"), acked: pick("ACK"), lines };
}

async function keysAfter(dir: string, cleanup: false | object = false): Promise<Set<string>> {
  const store = await openStore(entities, { dir, key, cleanup: cleanup as false });
  if (cleanup !== false) {
    const until = Date.now() + 20_000;
    while ((await store.conversations.keys()).some((k) => k.startsWith("old"))) {
      if (Date.now() > until) throw new Error("the cleanup at open did not finish");
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  expect(store.recoveryReport.damaged).toEqual([]);
  const keys = new Set((await store.conversations.keys()) as string[]);
  await store.close();
  return keys;
}

describe("SIGKILL during a cleanup", () => {
  for (const [mode, removed] of [
    ["scan", false],
    ["before", false],
    ["after", true],
  ] as const) {
    it(`killed ${mode === "scan" ? "while reading" : `${mode} its write`}: ${removed ? "every" : "no"} expired record is gone, every acknowledged write is there`, async () => {
      const { dir, old, acked } = await crash(mode);
      expect(old.length).toBe(2000);
      const keys = await keysAfter(dir);
      for (const k of acked) expect(keys.has(k), k).toBe(true);
      const left = old.filter((k) => keys.has(k)).length;
      expect(left).toBe(removed ? 0 : old.length);
    }, 30_000);
  }

  it("killed between the two writes of a split cleanup: the oldest part is gone, the next open's cleanup finishes", async () => {
    const { dir, old, acked } = await crash("split");
    expect(old.length).toBe(3000);
    const keys = await keysAfter(dir);
    for (const k of acked) expect(keys.has(k), k).toBe(true);
    const left = old.filter((k) => keys.has(k));
    // the first write took a part (not all, not none)
    expect(left.length).toBeGreaterThan(0);
    expect(left.length).toBeLessThan(old.length);
    // and it took the oldest (the child's ages, in whole days: ties may straddle the cut)
    const age = (k: string) => 31 + ((Number(k.slice(3, 8)) * 7919) % 29);
    const gone = old.filter((k) => !keys.has(k));
    expect(Math.min(...gone.map(age))).toBeGreaterThanOrEqual(Math.max(...left.map(age)));
    const again = await keysAfter(dir, {});
    expect(old.filter((k) => again.has(k))).toEqual([]);
    for (const k of acked) expect(again.has(k), k).toBe(true);
  }, 60_000);
});
