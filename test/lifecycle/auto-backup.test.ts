/**
 * Automatic backups (`openStore({ backups: { dir?, every, keep } })`) on real files: one at open when due,
 * none when not, periodic ones pruned by `keep`; pruning touches only this store's automatic and
 * pre-migration backups; the default directory is `<store>.backups` beside the store and a directory inside
 * the store is refused; labels `cellar:…` are Cellar's own.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { listBackups } from "../../src/runtime/storage/backup.js";
import { verifyBackup } from "../../src/runtime/storage/restore.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import type { CellarError } from "../../src/runtime/errors.js";
import { openStore } from "../../src/runtime/typed/store.js";
import { notesAt, step1to2 } from "../store/helpers/notes-versions.js";
import { fill, KEY, names, open, redate, until } from "./helpers/auto-backup-helpers.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-autobackup-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const auto = (dir: string) => names(dir).filter((n) => n.includes("-auto-"));

describe("automatic backups", () => {
  it("one is taken at open when due (default directory `<store>.backups`), none at the next open when not due", async () => {
    const dir = path.join(tmp, "due");
    await fill(dir, 20, "v");
    const bdir = `${dir}.backups`;
    let store = await open(dir, { backups: { every: "1d", keep: { last: 3 } } });
    await until(() => auto(bdir).length === 1, "the automatic backup at open");
    await store.close();
    const [file] = auto(bdir);
    const info = await verifyBackup(path.join(bdir, file!), { key: KEY });
    expect(info.label).toBe("cellar:automatic");
    expect(info.entities.find((e) => e.name === "notes")?.records).toBe(20);
    expect(file).toMatch(/^due-auto-\d{8}T\d{9}Z\.cellarbackup$/);
    // Not due (the newest automatic backup is younger than a day): no new one while the store stays open.
    store = await open(dir, { backups: { every: "1d", keep: { last: 3 } } });
    await new Promise((r) => setTimeout(r, 300));
    await store.close();
    expect(auto(bdir)).toEqual([file]);
  });

  it("periodic backups while open, each followed by pruning to `keep`", async () => {
    const dir = path.join(tmp, "periodic");
    await fill(dir, 5, "v");
    const bdir = path.join(tmp, "periodic-elsewhere");
    const store = await open(dir, { backups: { dir: bdir, every: 150, keep: { last: 2 } } });
    const seen = new Set<string>();
    await until(() => {
      for (const n of auto(bdir)) seen.add(n);
      return seen.size >= 4;
    }, "four automatic backups");
    await store.close();
    expect(auto(bdir).length).toBeLessThanOrEqual(2);
    expect(fs.existsSync(`${dir}.backups`)).toBe(false);
    // stats() counts this store's backup files in the backup directory.
    const again = await open(dir, { backups: { dir: bdir, every: "1d", keep: { last: 2 } } });
    const s = again.stats();
    await again.close();
    expect(s.backups.dir).toBe(path.resolve(bdir));
    expect(s.backups.files).toBe(auto(bdir).length);
    expect(s.backups.bytes).toBe(auto(bdir).reduce((n, f) => n + fs.statSync(path.join(bdir, f)).size, 0));
  });

  it("pruning removes only this store's automatic and pre-migration backups, never manual ones, damaged ones or another store's", async () => {
    const dir = path.join(tmp, "prune");
    const other = path.join(tmp, "other");
    const bdir = path.join(tmp, "prune-backups");
    await fill(dir, 5, "v");
    await fill(other, 5, "o");
    // This store: a manual backup, two old automatic ones and an old pre-migration one (dated by rewriting their headers).
    let store = await open(dir);
    await store.backup({ to: path.join(bdir, "manual.cellarbackup"), label: "before the trip" });
    await store.close();
    const e = await Engine.open({ dir, key: KEY });
    await e.backup({ to: path.join(bdir, "prune-auto-old1.cellarbackup"), label: "cellar:automatic" });
    await e.backup({ to: path.join(bdir, "prune-auto-old2.cellarbackup"), label: "cellar:automatic" });
    await e.backup({ to: path.join(bdir, "prune-pre-migration-old.cellarbackup"), label: "cellar:pre-migration notes v1→v2" });
    await e.close();
    redate(path.join(bdir, "manual.cellarbackup"), new Date(2024, 0, 1));
    redate(path.join(bdir, "prune-auto-old1.cellarbackup"), new Date(2025, 0, 1));
    redate(path.join(bdir, "prune-auto-old2.cellarbackup"), new Date(2025, 1, 1));
    redate(path.join(bdir, "prune-pre-migration-old.cellarbackup"), new Date(2025, 2, 1));
    // Another store's automatic backup, older than all, and a damaged file of this store's naming.
    const o = await Engine.open({ dir: other, key: KEY });
    await o.backup({ to: path.join(bdir, "other-auto-old.cellarbackup"), label: "cellar:automatic" });
    await o.close();
    redate(path.join(bdir, "other-auto-old.cellarbackup"), new Date(2023, 0, 1));
    fs.copyFileSync(path.join(bdir, "prune-auto-old1.cellarbackup"), path.join(bdir, "prune-auto-damaged.cellarbackup"));
    const fd = fs.openSync(path.join(bdir, "prune-auto-damaged.cellarbackup"), "r+");
    fs.writeSync(fd, Buffer.from([0xee]), 0, 1, fs.fstatSync(fd).size - 40);
    fs.closeSync(fd);

    store = await open(dir, { backups: { dir: bdir, every: "1d", keep: { last: 2 } } });
    await until(() => !names(bdir).includes("prune-auto-old1.cellarbackup"), "pruning");
    await store.close();
    const left = names(bdir);
    const fresh = left.filter((n) => /^prune-auto-\d/.test(n));
    expect(fresh).toHaveLength(1);
    // Kept: the two newest of its own (the fresh one, the pre-migration one); the manual one; the damaged one; the other store's.
    expect(left.filter((n) => !fresh.includes(n))).toEqual([
      "manual.cellarbackup",
      "other-auto-old.cellarbackup",
      "prune-auto-damaged.cellarbackup",
      "prune-pre-migration-old.cellarbackup",
    ]);
    expect(listBackups(bdir).find((b) => b.file.endsWith("prune-auto-damaged.cellarbackup"))!.damaged).not.toBeNull();
  });

  it("the pre-migration backup goes to `backups.dir` and is pruned with the automatic ones; without `backups` it is never pruned", async () => {
    const dir = path.join(tmp, "migrating");
    const bdir = path.join(tmp, "migrating-backups");
    await fill(dir, 8, "v1");
    const store = await openStore({ notes: notesAt(2) }, { dir, key: KEY, cleanup: false, migrations: [step1to2], backups: { dir: bdir, every: "1d", keep: { last: 1 } } });
    const pre = store.migrationBackup!;
    expect(path.dirname(pre)).toBe(path.resolve(bdir));
    expect((await verifyBackup(pre, { key: KEY })).label).toBe("cellar:pre-migration notes v1→v2");
    // The automatic backup at open, then pruning to the newest one: the pre-migration backup goes.
    await until(() => auto(bdir).length === 1 && !fs.existsSync(pre), "the pruning of the pre-migration backup");
    await store.close();

    const dir2 = path.join(tmp, "migrating-unconfigured");
    await fill(dir2, 8, "v1");
    const s2 = await openStore({ notes: notesAt(2) }, { dir: dir2, key: KEY, cleanup: false, migrations: [step1to2] });
    const pre2 = s2.migrationBackup!;
    expect(path.dirname(pre2)).toBe(`${dir2}.backups`);
    await s2.close();
    const s3 = await openStore({ notes: notesAt(2) }, { dir: dir2, key: KEY, cleanup: false, backups: { dir: path.join(tmp, "elsewhere"), every: 50, keep: { last: 1 } } });
    await until(() => auto(path.join(tmp, "elsewhere")).length === 1, "an automatic backup elsewhere");
    await s3.close();
    expect(names(`${dir2}.backups`)).toEqual([path.basename(pre2)]);
  });

  it("a backup directory inside the store is refused, and so are `cellar:` labels on store.backup", async () => {
    const dir = path.join(tmp, "inside");
    await fill(dir, 1, "v");
    for (const d of [dir, path.join(dir, "bk"), path.join(dir, "a", "..", "bk")]) {
      const e = await open(dir, { backups: { dir: d, every: "1d", keep: { last: 1 } } }).then(
        () => null,
        (x: CellarError) => x,
      );
      expect(e?.code, d).toBe("E_USAGE");
      expect(e?.message).toMatch(/`backups.dir` is inside the store directory/);
    }
    for (const bad of [{ every: "1 day", keep: { last: 1 } }, { every: "1d", keep: {} }, { every: "1d", keep: { lots: 1 } }]) {
      await expect(open(dir, { backups: bad as never })).rejects.toMatchObject({ code: "E_USAGE" });
    }
    const store = await open(dir);
    await expect(store.backup({ to: path.join(tmp, "x.cellarbackup"), label: "cellar:automatic" })).rejects.toMatchObject({ code: "E_USAGE" });
    await store.backup({ to: path.join(tmp, "x.cellarbackup"), label: "mine: cellar:automatic" });
    await store.close();
  });
});
