/**
 * Store files do not take the process umask (issue 19): the directories Cellar creates are 0700 and every
 * file it creates 0600, checked in a real child process running with umask 0.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-perm-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function walk(dir: string, out: Map<string, fs.Stats> = new Map()): Map<string, fs.Stats> {
  for (const n of fs.readdirSync(dir)) {
    const p = path.join(dir, n);
    const st = fs.lstatSync(p);
    out.set(p, st);
    if (st.isDirectory()) walk(p, out);
  }
  return out;
}

describe.skipIf(process.platform === "win32")("permissions", () => {
  it("with umask 0, the store directory (and a parent Cellar created) is 0700 and every file, backup and quarantine copy 0600", () => {
    const parent = path.join(tmp, "app-data");
    const dir = path.join(parent, "store");
    const r = spawnSync(process.execPath, ["--import", "tsx", path.join(here, "helpers", "perm-child.ts"), dir], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^QUARANTINED quarantine\/segment-\d+\.seg\.\d+\nDONE\n$/);
    const all = walk(parent);
    all.set(parent, fs.statSync(parent));
    const kinds = new Set<string>();
    const wrong: string[] = [];
    for (const [p, st] of all) {
      const rel = path.relative(tmp, p);
      const mode = st.mode & 0o777;
      if (st.isDirectory()) {
        if (mode !== 0o700) wrong.push(`${rel} ${mode.toString(8)}`);
      } else if (mode !== 0o600) wrong.push(`${rel} ${mode.toString(8)}`);
      kinds.add(path.basename(p).replace(/[-.]\d.*$/, "").replace(/^pre-migration.*/, "pre-migration"));
    }
    expect(wrong).toEqual([]);
    // every kind of file and folder was there to check
    for (const k of ["app-data", "store", "LOCK", "MANIFEST", "KEYRING", "journal", "segment", "store.backups", "store-pre-migration", "quarantine"]) {
      expect(kinds, k).toContain(k);
    }
  });
});
