/**
 * A restore lets the event loop turn while it unpacks (issue 15): the unpack copies the backup file into the
 * staging directory 1 MiB per turn (storage/backup.ts, `checkBody` run by `withTurns`), so a callback of the
 * app runs while the staged files are still partly written; it used to copy the whole file in one step. The
 * restore still checks everything before its switch: the damaged copy below is refused with the target
 * unchanged, its staging directory gone.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/runtime/storage/engine.js";
import { isCellarError, restoreBackup } from "../../src/runtime/index.js";
import { KEY, tempRoot, treeBytes, val } from "./helpers.js";

const { root, cleanup } = tempRoot("cellar-restore-turns-");
afterAll(cleanup);

let file = "";
let size = 0;

beforeAll(async () => {
  const dir = path.join(root, "store");
  const e = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
  // ~5 MB of random text, which deflates little: a backup of five 1 MiB chunks and more.
  for (let i = 0; i < 100; i++) await e.write([{ op: "put", entity: "e", key: `k${i}`, version: 1, value: val(randomBytes(50_000).toString("latin1")), terms: [] }]);
  await e.compact();
  file = path.join(root, "b.cellarbackup");
  await e.backup({ to: file });
  await e.close();
  size = fs.statSync(file).size;
});

/** Bytes in the staging directories beside `target` (`.<name>.restore-*`), or -1 when there is none. */
function stagedBytes(target: string): number {
  const parent = path.dirname(target);
  const staging = fs.readdirSync(parent).filter((n) => n.startsWith(`.${path.basename(target)}.restore-`));
  if (!staging.length) return -1;
  let n = 0;
  for (const s of staging) for (const f of fs.readdirSync(path.join(parent, s))) n += fs.statSync(path.join(parent, s, f)).size;
  return n;
}

/** Runs `f` while a chain of immediates samples the staged bytes at every turn of the event loop. */
async function sampling(target: string, f: () => Promise<unknown>): Promise<number[]> {
  const seen: number[] = [];
  let on = true;
  const tick = () => {
    if (!on) return;
    try {
      seen.push(stagedBytes(target));
    } catch {
      // the staging directory was renamed or removed between readdir and stat
    }
    setImmediate(tick);
  };
  setImmediate(tick);
  try {
    await f();
  } finally {
    on = false;
  }
  return seen;
}

describe("restore's unpack", () => {
  it("lets the event loop turn between chunks: a callback sees the staged files partly written", async () => {
    expect(size).toBeGreaterThan(4 * 1024 * 1024);
    const target = path.join(root, "restored");
    const seen = await sampling(target, () => restoreBackup(file, { dir: target, key: KEY }));
    const partial = seen.filter((n) => n > 0 && n < size - 1024 * 1024);
    expect(partial.length).toBeGreaterThanOrEqual(3);
    const e = await Engine.open({ dir: target, key: KEY });
    expect(e.count("e")).toBe(100);
    await e.close();
  });

  it("still refuses a damaged backup before anything is switched", async () => {
    const target = path.join(root, "restored");
    const before = treeBytes(target);
    const bad = Buffer.from(fs.readFileSync(file));
    bad[Math.floor(bad.length / 2)]! ^= 0x01;
    const damaged = path.join(root, "damaged.cellarbackup");
    fs.writeFileSync(damaged, bad);
    const err = await restoreBackup(damaged, { dir: target, key: KEY }).catch((e: unknown) => e);
    expect(isCellarError(err, "E_BACKUP_CORRUPT")).toBe(true);
    expect(treeBytes(target)).toEqual(before);
    expect(stagedBytes(target)).toBe(-1);
  });
});
