/**
 * The seeds' classic bug: a damaged store is opened, backed up on schedule, and the rotation deletes the last
 * good copy. On real files: the segment of a store with a good automatic backup is damaged; the next session
 * (automatic backups due, `keep: { last: 1 }`) takes none (`E_BACKUP_SKIPPED` on the `error` event), the
 * good backup is untouched and restores the data from before the damage; later clean sessions take and
 * prune backups again but never that newest backup from before the damage.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { restoreBackup, verifyBackup } from "../../src/runtime/storage/restore.js";
import type { CellarError } from "../../src/runtime/errors.js";
import { fill, KEY, names, open, until } from "./helpers/auto-backup-helpers.js";
import { damageSegment } from "../helpers/files.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-autobackup-damage-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const auto = (dir: string) => names(dir).filter((n) => n.includes("-auto-"));

it("damage + automatic backup never overwrites the last good backup", async () => {
  const dir = path.join(tmp, "store");
  const bdir = `${dir}.backups`;
  await fill(dir, 40, "good");
  let store = await open(dir);
  await store.compact(); // the records in a segment, where the damage will go
  await store.close();

  // Session 1: the good automatic backup.
  store = await open(dir, { backups: { every: 60, keep: { last: 1 } } });
  await until(() => auto(bdir).length === 1, "the good backup");
  await store.close();
  const [good] = auto(bdir);
  const goodBytes = fs.readFileSync(path.join(bdir, good!));

  // The disk damages the segment. Session 2: backups are due (every 60 ms), and the open finds the damage.
  damageSegment(dir);
  await new Promise((r) => setTimeout(r, 80));
  store = await open(dir, { backups: { every: 60, keep: { last: 1 } } });
  const errors: CellarError[] = [];
  store.on("error", (e) => errors.push(e));
  await until(() => errors.some((e) => e.code === "E_BACKUP_SKIPPED"), "E_BACKUP_SKIPPED");
  expect(store.recoveryReport.damaged.length).toBeGreaterThan(0);
  // Still none after several `every`s: no backup in a session that found damage.
  await new Promise((r) => setTimeout(r, 300));
  const lost = (await store.notes.list()).length;
  await store.close();
  expect(lost).toBeLessThan(40); // the damage cost records: a backup of this store would have held fewer
  expect(errors.filter((e) => e.code === "E_BACKUP_SKIPPED")).toHaveLength(1);
  expect(auto(bdir)).toEqual([good]);
  expect(fs.readFileSync(path.join(bdir, good!)).equals(goodBytes)).toBe(true);

  // The good backup restores the data from before the damage.
  await verifyBackup(path.join(bdir, good!), { key: KEY });
  const restored = path.join(tmp, "restored");
  await restoreBackup(path.join(bdir, good!), { dir: restored, key: KEY });
  const r = await open(restored);
  const all = await r.notes.list();
  await r.close();
  expect(all).toHaveLength(40);
  expect(all.every((n) => n.text.startsWith("good "))).toBe(true);

  // Session 3: the damage was quarantined and retired; the store opens clean and automatic backups resume,
  // pruned to `last: 1`, yet the newest backup from before the damage stays.
  store = await open(dir, { backups: { every: 60, keep: { last: 1 } } });
  expect(store.recoveryReport.damaged).toEqual([]);
  const seen = new Set<string>();
  await until(() => {
    for (const n of auto(bdir)) if (n !== good) seen.add(n);
    return seen.size >= 3;
  }, "three new automatic backups");
  await store.close();
  const left = auto(bdir);
  expect(left).toContain(good);
  expect(left.length).toBeLessThanOrEqual(2);
  expect(fs.readFileSync(path.join(bdir, good!)).equals(goodBytes)).toBe(true);
});
