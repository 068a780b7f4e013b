/**
 * A master key change reaches this store's own backup files: the keyring packed in each automatic and
 * pre-migration backup of the store in its backup directory is rewrapped under the new master key (a new
 * file, checksum recomputed), so the old key opens none of them. Backups the app took itself and other
 * stores' files are left as they are (docs/SECURITY.md, "Backups").
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { keys } from "../../src/runtime/crypto/keys.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import { listBackups } from "../../src/runtime/storage/backup.js";
import { restoreBackup, verifyBackup } from "../../src/runtime/storage/restore.js";
import { isCellarError } from "../../src/runtime/errors.js";
import { fill, KEY, names, open, until } from "./helpers/auto-backup-helpers.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-autobackup-keys-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const NEW = new Uint8Array(32).fill(42);

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    if (isCellarError(e)) return e.code;
    throw e;
  }
}

it("changeMasterKey rewraps the keyring in this store's cellar: backup files; the old key opens none of them", async () => {
  const dir = path.join(tmp, "store");
  const other = path.join(tmp, "other");
  const bdir = path.join(tmp, "backups");
  await fill(dir, 15, "v");
  await fill(other, 3, "o");
  const o = await Engine.open({ dir: other, key: KEY });
  await o.backup({ to: path.join(bdir, "other-auto.cellarbackup"), label: "cellar:automatic" });
  await o.close();
  const otherBytes = fs.readFileSync(path.join(bdir, "other-auto.cellarbackup"));
  let store = await open(dir, { backups: { dir: bdir, every: "1d", keep: { last: 5 } } });
  await until(() => names(bdir).some((n) => n.startsWith("store-auto-")), "the automatic backup");
  await store.backup({ to: path.join(bdir, "mine.cellarbackup"), label: "mine" });
  // A damaged copy of the automatic backup (one byte of a packed file flipped): left as it is, so that a
  // rewrite does not give the damaged bytes a fresh checksum.
  const damaged = path.join(bdir, "store-auto-damaged.cellarbackup");
  fs.copyFileSync(path.join(bdir, names(bdir).find((n) => n.startsWith("store-auto-"))!), damaged);
  const fd = fs.openSync(damaged, "r+");
  fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, fs.fstatSync(fd).size - 30);
  fs.closeSync(fd);
  const damagedBytes = fs.readFileSync(damaged);
  const before = listBackups(bdir);
  await store.changeMasterKey(keys.raw(NEW));
  await store.close();

  expect(fs.readFileSync(damaged).equals(damagedBytes)).toBe(true);
  expect(listBackups(bdir).find((b) => b.file === damaged)!.damaged).toBe("checksum mismatch");
  const auto = path.join(bdir, names(bdir).find((n) => /^store-auto-\d/.test(n))!);
  expect(await code(verifyBackup(auto, { key: KEY }))).toBe("E_KEY");
  const info = await verifyBackup(auto, { key: NEW });
  // Same metadata as before (created-at, label, entities); a new file.
  const was = before.find((b) => b.file === auto)!;
  expect(was.damaged).toBeNull();
  expect({ ...info, bytes: 0 }).toEqual({ ...was, damaged: undefined, bytes: 0, file: auto } as unknown as typeof info);
  const into = path.join(tmp, "restored");
  await restoreBackup(auto, { dir: into, key: NEW });
  const r = await open(into, { key: NEW });
  expect(await r.notes.count()).toBe(15);
  await r.close();
  // The app's own backup stays under the key it was taken with; another store's file is untouched.
  expect(await code(verifyBackup(path.join(bdir, "mine.cellarbackup"), { key: KEY }))).toBe("ok");
  expect(fs.readFileSync(path.join(bdir, "other-auto.cellarbackup")).equals(otherBytes)).toBe(true);
  // The store itself opens with the new key only, and the next change finds the files already under it.
  expect(await code(open(dir, { key: KEY }))).toBe("E_KEY");
  store = await open(dir, { key: NEW, backups: { dir: bdir, every: "1d", keep: { last: 5 } } });
  await store.changeMasterKey(keys.raw(KEY));
  await store.close();
  expect(await code(verifyBackup(auto, { key: KEY }))).toBe("ok");
});
