/**
 * SIGKILL in a real child process at each step of a backup and of a restore. A backup killed midway leaves
 * the previous backup under its name untouched and the store with every acknowledged write; a restore killed
 * at any step leaves the old store or the restored one at the target (the next open finishes a switch cut
 * between its two renames), never a mix, and no leftovers once settled.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/runtime/storage/engine.js";
import { restoreBackup, verifyBackup } from "../../src/runtime/index.js";
import { startChild } from "../engine/helpers/spawn.js";
import { KEY, tempRoot, text, val } from "./helpers.js";

const { root, cleanup } = tempRoot("cellar-backup-crash-");
afterAll(cleanup);

async function put(dir: string, keys: string[], tag: string, big = false): Promise<void> {
  const e = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
  await e.write(keys.map((k) => ({ op: "put" as const, entity: "e", key: k, version: 1, value: val(big ? `${tag}${randomBytes(1500).toString("base64")}` : tag), terms: [] })));
  await e.close();
}

async function read(dir: string): Promise<Map<string, string>> {
  const e = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
  try {
    return new Map([...e.scan("e")].map(([k, loc]) => [k, text(e.read("e", loc)).slice(0, 3)]));
  } finally {
    await e.close();
  }
}

async function kill(args: string[]): Promise<void> {
  const { exited } = startChild("../../backup/helpers/kill-child.ts", args);
  const r = await exited;
  expect(r.signal, r.stderr).toBe("SIGKILL");
}

const keys = (p: string, n: number) => Array.from({ length: n }, (_, i) => `${p}${i}`);

describe("SIGKILL during a backup", () => {
  it.each([
    ["backup", "backup.afterChunk"],
    ["backup", "backup.beforeRename"],
    ["backup-selective", "backup.beforeRename"],
  ])("%s at %s: the previous backup stays, the store keeps every acknowledged write", async (mode, at) => {
    const dir = path.join(root, `${mode}-${at}`);
    await put(dir, keys("a", 1500), "old", true); // ~3 MiB: the copy takes several chunks
    const file = path.join(root, `${mode}-${at}.cellarbackup`);
    const e = await Engine.open({ dir, key: KEY });
    await e.backup({ to: file });
    await e.close();
    const before = fs.readFileSync(file);
    const log = path.join(root, `${mode}-${at}.log`);
    await kill([mode, dir, file, at, at === "backup.afterChunk" ? "2" : "1", log]);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    await verifyBackup(file, { key: KEY });
    const got = await read(dir);
    const acked = fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => l.slice(2)) : [];
    expect(acked.length).toBeGreaterThan(0); // writes were acknowledged while the backup ran
    for (const k of [...keys("a", 1500), ...acked]) expect(got.has(k), k).toBe(true);
    // The next backup replaces the leftover temp file.
    const again = await Engine.open({ dir, key: KEY });
    await again.backup({ to: file });
    await again.close();
    expect(fs.existsSync(`${file}.tmp`)).toBe(false);
    await verifyBackup(file, { key: KEY });
    if (mode === "backup-selective") {
      // The killed re-encoded backup's staging directory is removed by the next one to that file.
      const again2 = await Engine.open({ dir, key: KEY });
      await again2.backup({ to: file, entities: { include: ["e"] } });
      await again2.close();
      expect(fs.readdirSync(root).filter((n) => n.startsWith(`.${path.basename(file)}.parts-`))).toEqual([]);
    }
  });
});

describe("SIGKILL during a restore", () => {
  it.each([
    ["restore.afterStage", "old"],
    ["restore.afterMarker", "old"],
    ["restore.afterAside", "new"],
    ["restore.afterSwap", "new"],
  ])("at %s: the target holds the %s store whole after the next open, and nothing is left beside it", async (at, expected) => {
    const base = `r-${at.replace(".", "-")}`;
    const dir = path.join(root, base);
    await put(dir, keys("x", 50), "bak");
    const file = path.join(root, `${base}.cellarbackup`);
    const e = await Engine.open({ dir, key: KEY });
    await e.backup({ to: file });
    await e.close();
    await put(dir, keys("y", 30), "cur"); // the store moves on after the backup
    const backedUp = new Map(keys("x", 50).map((k) => [k, "bak"]));
    const current = new Map([...backedUp, ...keys("y", 30).map((k) => [k, "cur"] as const)]);

    await kill(["restore", dir, file, at]);
    const got = await read(dir); // the open settles a switch cut short
    expect(got).toEqual(expected === "new" ? backedUp : current);
    expect(fs.readdirSync(root).filter((n) => n.startsWith(`.${base}.`) && !n.includes(".restore-"))).toEqual([]);
  });
});

describe("SIGKILL during a restore into a directory without a store (no marker: nothing to keep)", () => {
  it("between the target's removal and the staging directory's rename: no store there, and the next restore restores and leaves nothing beside it", async () => {
    const base = "fresh";
    const dir = path.join(root, base);
    const src = path.join(root, `${base}-src`);
    await put(src, keys("x", 50), "bak");
    const file = path.join(root, `${base}.cellarbackup`);
    const e = await Engine.open({ dir: src, key: KEY });
    await e.backup({ to: file });
    await e.close();
    const backedUp = new Map(keys("x", 50).map((k) => [k, "bak"]));

    await kill(["restore", dir, file, "restore.afterAside"]);
    expect(fs.existsSync(dir)).toBe(false); // removed with its lock file: not a store, nothing of one
    expect(fs.readdirSync(root).filter((n) => n.startsWith(`.${base}.`))).toEqual([expect.stringMatching(/\.restore-/)]);
    await restoreBackup(file, { dir, key: KEY });
    expect(await read(dir)).toEqual(backedUp);
    expect(fs.readdirSync(root).filter((n) => n.startsWith(`.${base}.`))).toEqual([]);
  });
});
