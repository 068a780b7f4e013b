/**
 * Keys in the copies Cellar makes of a store (pre-migration backup files in the backup directory), on real
 * files with real libsodium: after `changeMasterKey` the old passphrase opens neither the store nor its
 * pre-migration backup, and after `rotateKey` + `reencrypt` someone holding the old passphrase and the old
 * `KEYRING` reads nothing from any file under the store directory, while the new passphrase still opens and
 * reads everything. (A backup file keeps the data keys its records need: docs/SECURITY.md, "Backups".)
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isCellarError } from "../../src/runtime/errors.js";
import { keys } from "../../src/runtime/crypto/keys.js";
import { openStore } from "../../src/runtime/typed/store.js";
import { restoreBackup, verifyBackup } from "../../src/runtime/storage/restore.js";
import { notesAt, step1to2 } from "../store/helpers/notes-versions.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-copies-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const cost = { opsLimit: 1, memLimit: 64 * 1024 };
const OLD = keys.passphrase("old leaked passphrase", cost);
const NEW = keys.passphrase("new passphrase", cost);
const SECRET = "tok-SECRET-5be1";

/** Every directory under `dir` (itself included) that holds a KEYRING. */
function keyedDirs(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (fs.existsSync(path.join(d, "KEYRING"))) out.push(d);
    for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
  };
  walk(dir);
  return out;
}

/** Every record of the store in a copy of `dir` (so the original is not touched), opened with `key`; or the error code. */
async function readCopy(dir: string, key: typeof OLD, version: 1 | 2, keyring?: Buffer): Promise<string> {
  const copy = fs.mkdtempSync(path.join(tmp, "probe-"));
  fs.cpSync(dir, copy, { recursive: true });
  fs.rmSync(path.join(copy, "backups"), { recursive: true, force: true });
  if (keyring) fs.writeFileSync(path.join(copy, "KEYRING"), keyring);
  try {
    const store = await openStore({ notes: notesAt(version) }, { dir: copy, key, onCorruption: "refuse", verifyOnOpen: true });
    try {
      return JSON.stringify(await store.notes.list());
    } finally {
      await store.close();
    }
  } catch (e) {
    if (isCellarError(e)) return e.code;
    throw e;
  } finally {
    fs.rmSync(copy, { recursive: true, force: true });
  }
}

/** Every record of a backup file restored into a fresh directory with `key`, or the error code. */
async function readBackupFile(file: string, key: typeof OLD, version: 1 | 2): Promise<string> {
  const into = path.join(fs.mkdtempSync(path.join(tmp, "restore-")), "store");
  try {
    await restoreBackup(file, { dir: into, key });
  } catch (e) {
    if (isCellarError(e)) return e.code;
    throw e;
  }
  return readCopy(into, key, version);
}

async function storeWithBackup(dir: string): Promise<Buffer> {
  let store = await openStore({ notes: notesAt(1) }, { dir, key: OLD });
  for (let i = 0; i < 30; i++) await store.notes.put({ id: `n${i}`, text: `note ${i}`, tagsCsv: "a,b", secret: `${SECRET}-${i}` });
  await store.compact();
  await store.notes.put({ id: "n-journal", text: "in the journal", secret: `${SECRET}-j` });
  await store.close();
  const oldKeyring = fs.readFileSync(path.join(dir, "KEYRING"));
  // Open at version 2: a verified backup file of the v1 store is taken into `<dir>.backups`, then records migrate.
  store = await openStore({ notes: notesAt(2) }, { dir, key: OLD, migrations: [step1to2] });
  expect(store.migrationBackup).not.toBeNull();
  await store.close();
  expect(keyedDirs(dir)).toEqual([dir]);
  // The leak: with the old passphrase, the backup reads.
  expect(await readBackupFile(store.migrationBackup!, OLD, 1)).toContain(SECRET);
  return oldKeyring;
}

describe("keys in the store's copies", () => {
  it("after changeMasterKey, the old passphrase opens no copy; the new one opens and reads every copy", async () => {
    const dir = path.join(tmp, "change");
    await storeWithBackup(dir);
    const [file] = fs.readdirSync(`${dir}.backups`).map((n) => path.join(`${dir}.backups`, n));
    const store = await openStore({ notes: notesAt(2) }, { dir, key: OLD });
    await store.changeMasterKey(NEW);
    await store.close();
    expect(await readCopy(dir, OLD, 2)).toBe("E_KEY");
    expect(await readCopy(dir, NEW, 2)).toContain(`${SECRET}-j`);
    // The backup file's packed keyring was rewrapped (a new file, checksum recomputed): it verifies under NEW only.
    expect(await readBackupFile(file!, OLD, 1)).toBe("E_KEY");
    expect(await readBackupFile(file!, NEW, 1)).toContain(`${SECRET}-j`);
    expect((await verifyBackup(file!, { key: NEW })).label).toMatch(/^cellar:pre-migration notes v1→v2$/);
  });

  it("after rotateKey + reencrypt, the old passphrase with the old KEYRING reads nothing from any copy; the data stays readable", async () => {
    const dir = path.join(tmp, "rotate");
    const oldKeyring = await storeWithBackup(dir);
    const store = await openStore({ notes: notesAt(2) }, { dir, key: OLD });
    await store.changeMasterKey(NEW);
    await store.rotateKey();
    expect(await store.reencrypt()).toEqual([1]);
    await store.close();
    const dirs = keyedDirs(dir);
    expect(dirs).toEqual([dir]);
    for (const d of dirs) {
      const version = d === dir ? 2 : 1;
      // The attacker's view: the leaked passphrase and the KEYRING of before (holding data key 1).
      const leaked = await readCopy(d, OLD, version, oldKeyring);
      expect(leaked, d).not.toContain(SECRET);
      expect(leaked, d).toMatch(/^E_(KEY|CORRUPT)$/);
      // The owner's: every record of every copy, secrets included.
      const records = await readCopy(d, NEW, version);
      for (let i = 0; i < 30; i++) expect(records, d).toContain(`${SECRET}-${i}"`);
    }
    // And no file anywhere under the store holds bytes of the old keyring's wrapped keys.
    const all: Buffer[] = [];
    const walk = (p: string) => {
      for (const e of fs.readdirSync(p, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(p, e.name));
        else all.push(fs.readFileSync(path.join(p, e.name)));
      }
    };
    walk(dir);
    expect(all.some((b) => b.equals(oldKeyring))).toBe(false);
  });
});
