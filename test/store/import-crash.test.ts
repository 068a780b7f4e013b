/**
 * SIGKILL of a real child process at each step of an import (test/store/helpers/import-child.ts): after
 * reopening, the store holds all of the file or none of it, every write acknowledged before (or during) the
 * import survives, and no staging directory is left. Both paths: an import that fits one write (its commit
 * windows) and one past it (staged on disk, then switched by a compaction: each window of it).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/runtime/typed/store.js";
import { STAGING_DIR } from "../../src/runtime/typed/import.js";
import { startChild } from "../engine/helpers/spawn.js";
import { UserProfileEntity } from "../../src/generated/examples/profile/v1/profile_cellar.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-import-crash-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(5);
const small = path.join(tmp, "small.ndjson");
const large = path.join(tmp, "large.ndjson");
const SMALL = 2000;
const LARGE = 215; // × 120 KiB ≈ 25 MiB: past one import write (24 MiB)

function writeFile(file: string, records: number, bodyBytes: number): void {
  const fd = fs.openSync(file, "w");
  fs.writeSync(fd, JSON.stringify({ format: "cellar-export", version: 1, includeSensitive: true, entities: [{ entity: "profiles", kind: "collection", version: 1 }] }) + "\n");
  const pad = "y".repeat(bodyBytes);
  for (let i = 0; i < records; i++) {
    const id = `n${String(i).padStart(4, "0")}`;
    fs.writeSync(fd, JSON.stringify({ entity: "profiles", version: 1, key: id, record: { id, displayName: `file ${id}`, authToken: `s-${id} ${pad}` } }) + "\n");
  }
  fs.closeSync(fd);
}

beforeAll(() => {
  writeFile(small, SMALL, 10);
  writeFile(large, LARGE, 120 * 1024);
});

async function crashAt(name: string, file: string, step: string, records: number, expectImported: boolean | null) {
  const dir = path.join(tmp, name);
  const log = path.join(tmp, `${name}.log`);
  // The large file is staged on disk past 8 MiB (the default would hold it in memory: the same switch).
  const { exited } = startChild("../../store/helpers/import-child.ts", [dir, log, file, step, ...(file === large ? [String(8 << 20)] : [])]);
  const { signal, stderr } = await exited;
  expect(signal, stderr).toBe("SIGKILL");
  const lines = fs.readFileSync(log, "utf8").trim().split("\n");
  expect(lines).toContain("IMPORT");
  // A staged import died with its staging directory in the store: the next open removes it.
  if (file === large && step !== "validate") expect(fs.existsSync(path.join(dir, STAGING_DIR))).toBe(true);
  const store = await openStore({ profiles: UserProfileEntity }, { dir, key });
  try {
    expect(fs.existsSync(path.join(dir, STAGING_DIR))).toBe(false);
    // every acknowledged write survives (n0001: overwritten by the file only if the import landed)
    const imported: boolean[] = [];
    for (let i = 0; i < records; i++) {
      const id = `n${String(i).padStart(4, "0")}`;
      const r = await store.profiles.get(id);
      imported.push(r !== undefined && r.displayName === `file ${id}` && r.authToken.startsWith(`s-${id} `));
    }
    const all = imported.every(Boolean);
    const none = imported.every((x) => !x);
    expect(all || none, `${imported.filter(Boolean).length} of ${records} imported`).toBe(true);
    if (expectImported !== null) expect(all).toBe(expectImported);
    for (const l of lines) {
      const m = /^ACK (\S+) (.*)$/.exec(l);
      if (!m) continue;
      const [, k, body] = m as unknown as [string, string, string];
      const r = await store.profiles.get(k);
      if (k === "n0001" && all) expect(r?.displayName).toBe("file n0001");
      else expect(r?.displayName, k).toBe(body);
    }
    if (none) expect(await store.profiles.get("n0000")).toBeUndefined();
  } finally {
    await store.close();
  }
}

describe("SIGKILL during an import that fits one write", () => {
  for (const [step, landed] of [
    ["validate:1024", false],
    ["commit.beforeWrite", false],
    ["commit.afterSync", true],
  ] as const) {
    it(`at ${step}: all of the file or none, every acknowledged write kept`, () => crashAt(`small-${step.replace(":", "-")}`, small, step, SMALL, landed), 30_000);
  }
});

describe("SIGKILL during an import past one write, staged on disk", () => {
  for (const [step, landed] of [
    ["stage", false], // the file is past one write: what was read so far goes to the staging engine
    ["switch", false],
    ["compaction.afterSegmentWrite", false],
    ["compaction.beforeManifestRename", false],
    ["compaction.afterManifestRename", true],
    ["compaction.beforeDelete", true],
  ] as const) {
    it(`at ${step}: all of the file or none, every acknowledged write kept`, () => crashAt(`large-${step.replace(":", "-")}`, large, step, LARGE, landed), 60_000);
  }
});
