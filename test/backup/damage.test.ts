/**
 * Every kind of damage to a backup file, a wrong key or password, a newer format and a backup of another
 * store: each a typed error from verifyBackup and restoreBackup, and the target store byte for byte unchanged
 * (no staging directory left beside it either). listBackups marks the damaged files.
 */
import fs from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { isCellarError, listBackups, restoreBackup, verifyBackup } from "../../src/runtime/index.js";
import { readBackupHeader } from "../../src/runtime/storage/backup.js";
import { nodeFileIO } from "../../src/runtime/platform/io.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import { CHEAP, KEY, OTHER_KEY, task, tempRoot, treeBytes, val } from "./helpers.js";

const { root, cleanup } = tempRoot("cellar-backup-damage-");
afterAll(cleanup);
const storeDir = path.join(root, "store");
const good = path.join(root, "good.cellarbackup");
const goodPw = path.join(root, "good-pw.cellarbackup");
let original: Buffer;

beforeAll(async () => {
  const store = await openStore({ dir: storeDir, key: KEY });
  await store.batch((tx) => {
    for (let i = 0; i < 200; i++) tx.tasks.put(task(i));
  });
  await store.compact();
  for (let i = 0; i < 10; i++) await store.tasks.put(task(i, " again"));
  await store.backup({ to: good });
  await store.backup({ to: goodPw, password: "pw", passwordCost: CHEAP });
  await store.close();
  original = fs.readFileSync(good);
});

/** Where each packed file's bytes start in the backup file. */
function layout(file: string): { name: string; at: number; length: number }[] {
  const r = readBackupHeader(nodeFileIO(), file);
  let at = r.headerLength;
  return r.header.files.map((f) => {
    const e = { name: f.name, at, length: f.length };
    at += f.length;
    return e;
  });
}

function damaged(name: string, edit: (b: Buffer) => Buffer): string {
  const file = path.join(root, "damaged", `${name}.cellarbackup`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, edit(Buffer.from(original)));
  return file;
}

const flip = (at: number) => (b: Buffer) => {
  b[at]! ^= 0x40;
  return b;
};
/** Fix the trailing checksum after an edit, so that only the checks inside (the engine's) can see it. */
const refit = (b: Buffer) => {
  b.writeUInt32LE(crc32(b.subarray(0, b.length - 4)), b.length - 4);
  return b;
};

async function expectRefused(file: string, code: string, reason?: RegExp, opts: { key?: Uint8Array; password?: string } = { key: KEY }) {
  const before = treeBytes(storeDir);
  const check = (e: unknown) => isCellarError(e) && e.code === code && (!reason || reason.test(e.message));
  await expect(verifyBackup(file, opts)).rejects.toSatisfy(check);
  await expect(restoreBackup(file, { dir: storeDir, ...opts })).rejects.toSatisfy(check);
  const after = treeBytes(storeDir);
  after.delete("LOCK");
  before.delete("LOCK");
  expect(after).toEqual(before);
  expect(fs.readdirSync(root).filter((n) => n.startsWith(".store."))).toEqual([]);
}

describe("a damaged or foreign backup is refused with a typed error and changes nothing", () => {
  it("the intact files verify (the baseline of every case below)", async () => {
    await verifyBackup(good, { key: KEY });
    await verifyBackup(goodPw, { password: "pw" });
  });

  it("a flipped byte in the header metadata: header checksum", async () => {
    await expectRefused(damaged("meta", flip(20)), "E_BACKUP_CORRUPT", /header checksum mismatch/);
  });

  it("bad magic, and a newer backup format version: E_BACKUP_FORMAT", async () => {
    await expectRefused(damaged("magic", flip(0)), "E_BACKUP_FORMAT", /not a cellar backup/);
    await expectRefused(
      damaged("newer", (b) => {
        b[8] = 2;
        return b;
      }),
      "E_BACKUP_FORMAT",
      /unsupported backup format version \(found 2, expected 1\)/,
    );
  });

  it("a flipped byte inside each packed file: whole-file checksum", async () => {
    for (const f of layout(good)) {
      await expectRefused(damaged(`in-${f.name}`, flip(f.at + Math.floor(f.length / 2))), "E_BACKUP_CORRUPT", /checksum mismatch/);
    }
  });

  it("a flipped byte inside a packed file with the checksum fixed up: the engine's own checks catch it", async () => {
    for (const f of layout(good)) {
      if (f.name.startsWith("MANIFEST")) continue; // a manifest that fails to open is E_CORRUPT or E_KEY: covered below
      const file = damaged(`refit-${f.name}`, (b) => refit(flip(f.at + Math.floor(f.length / 2))(b)));
      await expectRefused(file, "E_BACKUP_CORRUPT", new RegExp(`packed \`${f.name.replace(".", "\\.")}\``));
    }
  });

  it("a flipped byte in the trailing checksum", async () => {
    const file = damaged("trailer", flip(original.length - 2));
    await expectRefused(file, "E_BACKUP_CORRUPT", /checksum mismatch/);
    // Into a directory that did not exist: it still does not.
    const fresh = path.join(root, "never");
    await expect(restoreBackup(file, { dir: fresh, key: KEY })).rejects.toSatisfy((e) => isCellarError(e, "E_BACKUP_CORRUPT"));
    expect(fs.existsSync(fresh)).toBe(false);
    expect(fs.readdirSync(root).filter((n) => n.startsWith(".never."))).toEqual([]);
  });

  it("a file cut short anywhere, or with bytes appended", async () => {
    for (const cut of [10, 40, Math.floor(original.length / 2), original.length - 1]) {
      await expectRefused(damaged(`cut-${cut}`, (b) => b.subarray(0, cut)), cut < 16 ? "E_BACKUP_FORMAT" : "E_BACKUP_CORRUPT");
    }
    await expectRefused(damaged("longer", (b) => Buffer.concat([b, Buffer.alloc(3)])), "E_BACKUP_CORRUPT", /unexpected bytes after the end/);
  });

  it("a wrong key or password: E_KEY", async () => {
    await expectRefused(good, "E_KEY", undefined, { key: OTHER_KEY });
    await expectRefused(goodPw, "E_KEY", undefined, { password: "not it" });
    await expectRefused(goodPw, "E_KEY", undefined, { key: KEY }); // a password backup given no password
  });

  it("a backup of another store is refused over this one (E_BACKUP_FOREIGN) unless told to replace it", async () => {
    const otherDir = path.join(root, "other");
    const other = await openStore({ dir: otherDir, key: KEY });
    await other.tasks.put(task(1));
    const foreign = path.join(root, "foreign.cellarbackup");
    await other.backup({ to: foreign });
    await other.close();
    const before = treeBytes(storeDir);
    await expect(restoreBackup(foreign, { dir: storeDir, key: KEY })).rejects.toSatisfy((e) => isCellarError(e, "E_BACKUP_FOREIGN"));
    expect(treeBytes(storeDir)).toEqual(before);
    const copy = path.join(root, "store-copy");
    fs.cpSync(storeDir, copy, { recursive: true });
    await restoreBackup(foreign, { dir: copy, key: KEY, replaceOtherStore: true });
    const s = await openStore({ dir: copy, key: KEY });
    expect(await s.tasks.count()).toBe(1);
    await s.close();
  });

  it("a record that authenticates but does not decode (no value envelope) fails verification, in a segment and in a journal", async () => {
    for (const where of ["segment", "journal"]) {
      const dir = path.join(root, `undecodable-${where}`);
      const e = await Engine.open({ dir, key: KEY });
      await e.write([{ op: "put", entity: "e", key: "good", version: 1, value: val("fine"), terms: [] }]);
      await e.write([{ op: "put", entity: "e", key: "bad", version: 1, value: Buffer.from([7, 1, 2]), terms: [] }]);
      if (where === "segment") await e.compact();
      const file = path.join(root, "undecodable", `${where}.cellarbackup`);
      await e.backup({ to: file });
      await e.close();
      await expect(verifyBackup(file, { key: KEY })).rejects.toSatisfy(
        (err) => isCellarError(err, "E_BACKUP_CORRUPT") && /a record of `e` \(schema version 1\) does not decode/.test((err as Error).message),
      );
    }
  });

  it("listBackups marks each damaged file, keeps the intact ones, and sorts newest first", () => {
    // Files whose checksum was fixed up pass: listing reads no key, so only verifyBackup finds those.
    const listed = listBackups(path.join(root, "damaged"));
    const byName = new Map(listed.map((b) => [path.basename(b.file), b.damaged]));
    expect(byName.size).toBe(fs.readdirSync(path.join(root, "damaged")).length);
    for (const [name, why] of byName) expect([name, why === null]).toEqual([name, name.startsWith("refit-")]);
    expect(byName.get("meta.cellarbackup")).toMatch(/header checksum mismatch/);
    expect(byName.get("trailer.cellarbackup")).toBe("checksum mismatch");
    expect(byName.get("newer.cellarbackup")).toMatch(/unsupported backup format version/);
    const all = listBackups(root);
    expect(all.map((b) => path.basename(b.file))).toEqual(["good-pw.cellarbackup", "good.cellarbackup", "foreign.cellarbackup"].sort((a, b) => {
      const t = (n: string) => fs.statSync(path.join(root, n)).mtimeMs;
      return t(b) - t(a);
    }));
  });
});
