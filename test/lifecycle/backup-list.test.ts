/**
 * The listing automatic backups use (storage/backup-list.ts): asynchronous (the event loop runs while a big
 * backup is checksummed), damaged files marked as listBackups marks them, a replaced file checked again.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { Engine } from "../../src/runtime/storage/engine.js";
import { listBackups } from "../../src/runtime/storage/backup.js";
import { BackupLister } from "../../src/runtime/storage/backup-list.js";
import { KEY, tempRoot, val } from "../backup/helpers.js";

const { root, cleanup } = tempRoot("cellar-backup-list-");
afterAll(cleanup);

it("lists like listBackups without holding the event loop; a replaced file is checked again", async () => {
  const dir = path.join(root, "store");
  const bdir = path.join(root, "backups");
  const e = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
  for (let b = 0; b < 8; b++) {
    await e.write(Array.from({ length: 250 }, (_, i) => ({ op: "put" as const, entity: "e", key: `k${b}-${i}`, version: 1, value: val(randomBytes(3000).toString("base64")), terms: [] })));
  }
  await e.backup({ to: path.join(bdir, "big.cellarbackup"), label: "big" });
  await e.backup({ to: path.join(bdir, "cut.cellarbackup") });
  await e.close();
  fs.truncateSync(path.join(bdir, "cut.cellarbackup"), 5000);
  fs.writeFileSync(path.join(bdir, "readme.txt"), "not a backup");
  expect(fs.statSync(path.join(bdir, "big.cellarbackup")).size).toBeGreaterThan(6_000_000);

  const lister = new BackupLister();
  let turns = 0;
  const timer = setInterval(() => turns++, 0);
  const listed = await lister.list(bdir);
  clearInterval(timer);
  expect(turns).toBeGreaterThan(0); // timers ran while the files were read
  expect(listed).toEqual(listBackups(bdir));
  expect(listed.map((b) => [path.basename(b.file), b.damaged])).toEqual([
    ["cut.cellarbackup", expect.stringMatching(/^backup `cut.cellarbackup` is damaged at offset 5000: file cut short/)],
    ["big.cellarbackup", null],
  ]);

  // A file replaced by a damaged one (a new inode, as every backup write is a rename) is checked again.
  const big = path.join(bdir, "big.cellarbackup");
  const bytes = fs.readFileSync(big);
  bytes[bytes.length - 100]! ^= 0x11;
  fs.writeFileSync(`${big}.new`, bytes);
  fs.renameSync(`${big}.new`, big);
  expect((await lister.list(bdir)).find((b) => b.file === big)!.damaged).toBe("checksum mismatch");
});
