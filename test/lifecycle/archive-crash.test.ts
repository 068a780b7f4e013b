/**
 * An archive killed (SIGKILL, real child process: helpers/archive-child.ts) at each step. Before its deletes
 * are written, every record is still in the store, and at most a leftover file is beside it (the temp file,
 * or the archive file complete and verified); once they are written, every archived record is gone and the
 * archive file is complete, verifies and restores exactly those records. Never records gone without the file.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConversationEntity } from "../../src/generated/examples/conversations/v1/conversations_cellar.js";
import { openStore, restoreBackup, verifyBackup } from "../../src/runtime/index.js";
import { startChild } from "../engine/helpers/spawn.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-archive-crash-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(6);
const entities = { conversations: ConversationEntity };

async function keysIn(dir: string): Promise<Set<string>> {
  const store = await openStore(entities, { dir, key, cleanup: false });
  expect(store.recoveryReport.damaged).toEqual([]);
  const keys = new Set((await store.conversations.keys()) as string[]);
  await store.close();
  return keys;
}

describe("SIGKILL during an archive", () => {
  it.each([
    ["backup.afterChunk", "none"],
    ["backup.beforeRename", "none"],
    ["archive.afterVerify", "file"],
    ["commit.beforeWrite", "file"],
    ["commit.afterSync", "moved"],
  ] as const)("at %s: %s", async (at, expected) => {
    const base = at.replace(".", "-");
    const dir = path.join(tmp, base);
    const file = path.join(tmp, "archives", `${base}.cellarbackup`);
    const log = path.join(tmp, `${base}.log`);
    const { exited } = startChild("../../lifecycle/helpers/archive-child.ts", [dir, file, log, at]);
    const { signal, stderr } = await exited;
    expect(signal, stderr).toBe("SIGKILL");
    const lines = fs.readFileSync(log, "utf8").split("\n").filter(Boolean);
    expect(lines).toContain("ARCHIVE");
    expect(lines).not.toContain("DONE");
    const old = lines.filter((l) => l.startsWith("OLD ")).map((l) => l.slice(4));
    const fresh = lines.filter((l) => l.startsWith("NEW ")).map((l) => l.slice(4));
    expect(old.length).toBe(400);

    const keys = await keysIn(dir);
    for (const k of fresh) expect(keys.has(k), k).toBe(true);
    const left = old.filter((k) => keys.has(k)).length;
    if (expected === "moved") {
      expect(left).toBe(0);
    } else {
      expect(left).toBe(old.length);
    }
    // The file: absent (a temp file at most) before its rename; complete, verified and exactly the old records after.
    expect(fs.existsSync(file)).toBe(expected !== "none");
    // Beside it at most the killed write's temp file and staging directory (listBackups skips both).
    const leftovers = fs.readdirSync(path.dirname(file)).filter((f) => f.includes(base));
    for (const f of leftovers) expect(f === path.basename(file) || f === `${path.basename(file)}.tmp` || f.startsWith(`.${path.basename(file)}.parts-`), f).toBe(true);
    if (expected === "none") return;
    const info = await verifyBackup(file, { key });
    expect(info.entities).toEqual([{ name: "conversations", version: 1, records: old.length }]);
    const back = path.join(tmp, `${base}-restored`);
    await restoreBackup(file, { dir: back, key });
    expect([...(await keysIn(back))].sort()).toEqual([...old].sort());
  }, 30_000);
});
