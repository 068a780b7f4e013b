/**
 * Stores made before backup files keep their pre-migration backups as `<store>/backups/pre-migration-<UTC>/`
 * directories. Open moves each into a verified backup file in the backup directory, in the background, and
 * removes the directory; a directory that does not open stays (an `error` event). A SIGKILL at any step of
 * the move (real child processes) leaves the directory or a verified file, never neither, and the next open
 * finishes.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { restoreBackup, verifyBackup } from "../../src/runtime/storage/restore.js";
import type { CellarError } from "../../src/runtime/errors.js";
import { startChild } from "../engine/helpers/spawn.js";
import { fill, KEY, legacyDir, names, open, until } from "./helpers/auto-backup-helpers.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-legacy-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function texts(file: string): Promise<string[]> {
  const into = fs.mkdtempSync(path.join(tmp, "restored-"));
  await restoreBackup(file, { dir: into, key: KEY });
  const s = await open(into);
  const all = (await s.notes.list()).map((n) => n.text);
  await s.close();
  return all;
}

describe("legacy pre-migration directories", () => {
  it("are moved into verified backup files in the backup directory, dated by their names; one that does not open stays", async () => {
    const dir = path.join(tmp, "old");
    await fill(dir, 10, "then");
    const then = path.join(tmp, "old-then");
    fs.cpSync(dir, then, { recursive: true });
    await fill(dir, 12, "now");
    legacyDir(dir, "20250101T000000Z", then);
    legacyDir(dir, "20250101T000000Z-2", then);
    const broken = legacyDir(dir, "20250301T000000Z", then);
    fs.writeFileSync(path.join(broken, "KEYRING"), Buffer.alloc(100, 1));
    const store = await open(dir);
    const errors: CellarError[] = [];
    store.on("error", (e) => errors.push(e));
    const bdir = `${dir}.backups`;
    await until(() => names(bdir).length === 2 && errors.length === 1, "the move");
    await store.close();
    expect(names(bdir)).toEqual(["old-pre-migration-20250101T000000Z-2.cellarbackup", "old-pre-migration-20250101T000000Z.cellarbackup"]);
    expect(names(path.join(dir, "backups"))).toEqual(["pre-migration-20250301T000000Z"]);
    expect(errors[0]!.code).toBe("E_CORRUPT");
    const info = await verifyBackup(path.join(bdir, "old-pre-migration-20250101T000000Z.cellarbackup"), { key: KEY });
    expect(info.createdAt.toISOString()).toBe("2025-01-01T00:00:00.000Z");
    expect(info.label).toMatch(/^cellar:pre-migration /);
    expect(info.protection).toBe("store-key");
    expect((await texts(info.file)).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `then ${i}`).sort());
    // stats() counts the files of the backup directory and the directory not moved.
    const again = await open(dir);
    const s = again.stats();
    await again.close();
    expect(s.backups.files).toBeGreaterThan(2);
  });

  it("SIGKILL in each crash window of the move leaves the directory or a verified file, and the next open finishes", async () => {
    const base = path.join(tmp, "base");
    await fill(base, 30, "then");
    const then = path.join(tmp, "base-then");
    fs.cpSync(base, then, { recursive: true });
    await fill(base, 5, "now");
    legacyDir(base, "20250101T000000Z", then);
    const file = (dir: string) => path.join(`${dir}.backups`, `${path.basename(dir)}-pre-migration-20250101T000000Z.cellarbackup`);
    const windows = ["pack", "file", "dir"];
    // The three children run at once (each pays the loader's start-up).
    const killed = await Promise.all(
      windows.map((window) => {
        const dir = path.join(tmp, `kill-${window}`);
        fs.cpSync(base, dir, { recursive: true });
        return startChild("../../lifecycle/helpers/legacy-kill-child.ts", [dir, window]).exited;
      }),
    );
    for (const [i, window] of windows.entries()) {
      const dir = path.join(tmp, `kill-${window}`);
      const r = killed[i]!;
      expect(r.signal, r.stderr).toBe("SIGKILL");
      const at = window;
      const legacy = path.join(dir, "backups", "pre-migration-20250101T000000Z");
      const hasDir = fs.existsSync(legacy);
      expect(hasDir).toBe(window !== "dir");
      if (!hasDir) await verifyBackup(file(dir), { key: KEY }); // the directory is gone only once the file verified
      if (window === "pack") expect(fs.existsSync(file(dir))).toBe(false);
      // The next open finishes the move.
      const store = await open(dir);
      await until(() => !fs.existsSync(path.join(dir, "backups")), `the move after a kill at ${at}`);
      await store.close();
      expect(names(`${dir}.backups`), at).toEqual([path.basename(file(dir))]);
      expect(names(path.join(dir)).filter((n) => n.startsWith(".")), at).toEqual([]);
      expect((await texts(file(dir))).sort(), String(at)).toEqual(Array.from({ length: 30 }, (_, i) => `then ${i}`).sort());
    }
  }, 120_000);
});
