/**
 * Upgrade on open (schema migrations) on real files: v1 → v2 → v3 with a backup that is verified first,
 * and every way it can fail leaving the original store exactly as it was, a SIGKILL in a real child process
 * included.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type CellarError, type MigrationError } from "../../src/runtime/errors.js";
import { type FileIO, nodeFileIO } from "../../src/runtime/platform/io.js";
import { openStore } from "../../src/runtime/typed/store.js";
import { restoreBackup, verifyBackup } from "../../src/runtime/storage/restore.js";
import type { MigrationProgress } from "../../src/runtime/typed/upgrade.js";
import { startChild } from "../engine/helpers/spawn.js";
import { create, toBinary } from "@bufbuild/protobuf";
import { Engine } from "../../src/runtime/storage/engine.js";
import { indexTerms } from "../../src/runtime/typed/index-keys.js";
import { NoteV, notesAt, step1to2, step2to3 } from "./helpers/notes-versions.js";
import { storeSnapshot as snapshot } from "../helpers/files.js";
import { errorOf } from "../helpers/errors.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-upgrade-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(9);
const N = 300;

async function writeV1(dir: string, n = N): Promise<void> {
  const store = await openStore({ notes: notesAt(1) }, { dir, key });
  for (let i = 0; i < n; i += 50) {
    await store.batch((tx) => {
      for (let j = i; j < Math.min(n, i + 50); j++) {
        tx.notes.put({ id: `n${String(j).padStart(4, "0")}`, text: `note ${j}`, tagsCsv: j % 3 === 0 ? "work,urgent" : j % 3 === 1 ? "home" : "", secret: `pin-${j}` });
      }
    });
  }
  if (n > 100) await store.compact(); // records in a segment and in the journal
  await store.notes.put({ id: "n0001", text: "rewritten", tagsCsv: "home", secret: "pin-1b" });
  await store.close();
}

describe("upgrade on open", () => {
  it("migrates v1 records through v2 to v3 after a verified backup, validates them, and switches atomically", async () => {
    const dir = path.join(tmp, "ok");
    await writeV1(dir);
    const progress: MigrationProgress[] = [];
    let store = await openStore(
      { notes: notesAt(3) },
      { dir, key, migrations: [step2to3, step1to2], onMigrationProgress: (p) => progress.push(p) },
    );
    expect(await store.notes.count()).toBe(N);
    expect(await store.notes.get("n0000")).toMatchObject({ body: "note 0", tags: ["work", "urgent"], priority: 2, secret: "pin-0" });
    expect(await store.notes.get("n0001")).toMatchObject({ body: "rewritten", tags: ["home"], priority: 1, secret: "pin-1b" });
    expect(await store.notes.get("n0002")).toMatchObject({ body: "note 2", tags: [], priority: 0 });
    // Index terms are recomputed from the migrated records.
    expect((await store.notes.query({ tags: "urgent" })).length).toBe(100);
    expect(progress.map((p) => p.phase)).toEqual(["backup", "verify", "migrate", "migrate", "done"]);
    expect(progress.at(-1)).toMatchObject({ done: N, total: N });
    const backup = store.migrationBackup!;
    // A backup file in the default backup directory beside the store, labelled as Cellar's own.
    expect(path.relative(path.dirname(dir), backup)).toMatch(/^ok\.backups\/ok-pre-migration-\d{8}T\d{9}Z\.cellarbackup$/);
    expect((await verifyBackup(backup, { key })).label).toBe("cellar:pre-migration notes v1→v3");
    await store.close();

    // The backup is the v1 store, whole: restored, it opens as v1 with every record.
    await restoreBackup(backup, { dir: `${dir}-restored`, key });
    const old = await openStore({ notes: notesAt(1) }, { dir: `${dir}-restored`, key });
    expect(await old.notes.count()).toBe(N);
    expect(await old.notes.get("n0001")).toMatchObject({ text: "rewritten", tagsCsv: "home" });
    await old.close();

    // No migration is needed on the next open, and the v1 definition is refused as older than the store.
    store = await openStore({ notes: notesAt(3) }, { dir, key });
    expect(store.migrationBackup).toBeNull();
    expect((await store.notes.get("n0297"))!.priority).toBe(2);
    await store.close();
    expect((await errorOf(openStore({ notes: notesAt(1) }, { dir, key }))).code).toBe("E_SCHEMA_NEWER");
  });

  it("a store already at v2 needs only the last step; records written since at v2 are migrated too", async () => {
    const dir = path.join(tmp, "from-v2");
    await writeV1(dir, 20);
    let store = await openStore({ notes: notesAt(2) }, { dir, key, migrations: [step1to2], backupBeforeMigration: false });
    expect(store.migrationBackup).toBeNull();
    await store.notes.put({ id: "late", body: "written at v2", tags: ["urgent"] });
    await store.close();
    store = await openStore({ notes: notesAt(3) }, { dir, key, migrations: [step2to3] });
    expect(await store.notes.get("late")).toMatchObject({ body: "written at v2", priority: 2 });
    expect(await store.notes.count()).toBe(21);
    await store.close();
  });

  it("a backup that does not read back (a byte flipped on its way to disk) stops the migration; the store is untouched", async () => {
    const dir = path.join(tmp, "bad-backup");
    await writeV1(dir);
    const before = snapshot(dir);
    const real = nodeFileIO();
    const backupFds = new Set<number>();
    const io: FileIO = {
      ...real,
      open(file, flags) {
        const fd = real.open(file, flags);
        if (file.includes(`.backups${path.sep}`) && file.endsWith(".cellarbackup.tmp") && flags === "wx+") backupFds.add(fd);
        return fd;
      },
      write(fd, data, position) {
        if (backupFds.has(fd)) {
          const copy = data.slice();
          copy[copy.length - 100]! ^= 0x01;
          return real.write(fd, copy, position);
        }
        return real.write(fd, data, position);
      },
    };
    const e = await errorOf(openStore({ notes: notesAt(3) }, { dir, key, io, migrations: [step1to2, step2to3] }));
    expect(e.code).toBe("E_MIGRATION");
    expect(e.message).toMatch(/the backup `bad-backup-pre-migration-[0-9TZ]+\.cellarbackup` did not verify, so nothing was migrated/);
    expect((e.cause as CellarError).code).toMatch(/^E_(CORRUPT|BACKUP_CORRUPT)$/);
    expect(snapshot(dir)).toEqual(before);
    // The file that did not verify is not left to pass for a backup.
    expect(fs.readdirSync(`${dir}.backups`)).toEqual([]);
  });

  it("records already at the new version next to older ones are copied as they are", async () => {
    const dir = path.join(tmp, "mixed");
    await writeV1(dir, 5);
    // A v2 record written below the typed layer, while the manifest still says version 1.
    const e = await Engine.open({ dir, key, compaction: { auto: false } });
    const msg = create(NoteV[2], { id: "v2rec", body: "already v2", tags: ["urgent"] });
    const terms = indexTerms(notesAt(2), msg as unknown as Record<string, unknown>, {});
    await e.write([{ op: "put", entity: "notes", key: "v2rec", version: 2, value: Uint8Array.of(0, ...toBinary(NoteV[2], msg)), terms }]);
    expect(e.storedVersions.get("notes")).toBe(1);
    await e.close();
    const store = await openStore({ notes: notesAt(2) }, { dir, key, migrations: [step1to2], backupBeforeMigration: false });
    expect(await store.notes.get("v2rec")).toMatchObject({ body: "already v2", tags: ["urgent"] });
    expect(await store.notes.get("n0000")).toMatchObject({ body: "note 0", tags: ["work", "urgent"] });
    expect((await store.notes.query({ tags: "urgent" })).map((n) => n.id)).toEqual(["n0000", "n0003", "v2rec"]);
    await store.close();
  });

  it("a missing step is E_MIGRATION naming it, before anything is written", async () => {
    const dir = path.join(tmp, "missing");
    await writeV1(dir, 10);
    const before = snapshot(dir);
    const e = (await errorOf(openStore({ notes: notesAt(3) }, { dir, key, migrations: [step2to3] }))) as MigrationError;
    expect(e.code).toBe("E_MIGRATION");
    expect(e.message).toContain("no migration step from version 1 to 2");
    expect([e.entity, e.from, e.to]).toEqual(["notes", 1, 2]);
    expect(snapshot(dir)).toEqual(before);
    expect(fs.existsSync(path.join(dir, "backups"))).toBe(false);
  });

  it("a step that throws: E_MIGRATION naming entity, key and step; the original store is untouched and opens", async () => {
    const dir = path.join(tmp, "throws");
    await writeV1(dir);
    const before = snapshot(dir);
    const boom = { ...step2to3, migrate: (old: Record<string, unknown>) => { if (old.id === "n0150") throw new RangeError(`bad ${String(old.secret)}`); return step2to3.migrate(old, { entity: "notes", key: undefined, from: 2, to: 3 }); } };
    const e = (await errorOf(openStore({ notes: notesAt(3) }, { dir, key, migrations: [step1to2, boom] }))) as MigrationError;
    expect(e.code).toBe("E_MIGRATION");
    expect([e.entity, e.key, e.from, e.to]).toEqual(["notes", "n0150", 2, 3]);
    expect(e.message).toContain("RangeError");
    expect(e.message).not.toContain("pin-150"); // the step's own message may hold a value: it stays in `cause`
    expect(`${e.message}\n${e.stack}`).not.toContain("n0150"); // nor the record's key: it is `e.key`
    expect(snapshot(dir)).toEqual(before);
    const store = await openStore({ notes: notesAt(1) }, { dir, key });
    expect(await store.notes.count()).toBe(N);
    await store.close();
  });

  it("a result that fails validation: E_MIGRATION with the zod issues; the original store is untouched", async () => {
    const dir = path.join(tmp, "invalid");
    await writeV1(dir, 30);
    const before = snapshot(dir);
    const negative = { ...step2to3, migrate: (old: Record<string, unknown>) => ({ ...(step2to3.migrate(old, { entity: "notes", key: undefined, from: 2, to: 3 }) as object), priority: -1 }) };
    const e = (await errorOf(openStore({ notes: notesAt(3) }, { dir, key, migrations: [step1to2, negative] }))) as MigrationError;
    expect(e.code).toBe("E_MIGRATION");
    expect(e.message).toMatch(/a record of `notes` migrated to version 3 fails validation/);
    // The record's key is a property of the error, never in its message or stack (keys may be personal).
    expect(e.key).toBe("n0000");
    expect(`${e.message}\n${e.stack}`).not.toContain("n0000");
    expect(e.message).toContain("priority");
    expect((e.cause as CellarError).code).toBe("E_VALIDATION");
    expect(snapshot(dir)).toEqual(before);
  });

  it("a migration that changes a record's key is refused", async () => {
    const dir = path.join(tmp, "rekey");
    await writeV1(dir, 5);
    const before = snapshot(dir);
    const moved = { ...step1to2, migrate: (old: Record<string, unknown>) => ({ ...(step1to2.migrate(old, { entity: "notes", key: undefined, from: 1, to: 2 }) as object), id: `x${String(old.id)}` }) };
    const e = await errorOf(openStore({ notes: notesAt(2) }, { dir, key, migrations: [moved] }));
    expect(e.message).toMatch(/changed the key of a record/);
    expect((e as MigrationError).key).toBe("n0000");
    expect(`${e.message}\n${e.stack}`).not.toContain("n0000");
    expect(snapshot(dir)).toEqual(before);
  });

  it("SIGKILL in the middle of a migration leaves the original store; the next open migrates it", async () => {
    const dir = path.join(tmp, "killed");
    await writeV1(dir);
    const before = snapshot(dir);
    const { exited } = startChild("../../store/helpers/migrate-child.ts", [dir, "n0200"]);
    const r = await exited;
    expect(r.signal, r.stderr).toBe("SIGKILL");
    // The killed run left a segment temp file and a new journal: open removes/replays them; every record
    // is the v1 record it was.
    const old = await openStore({ notes: notesAt(1) }, { dir, key });
    expect(await old.notes.count()).toBe(N);
    expect(await old.notes.get("n0200")).toMatchObject({ text: "note 200", tagsCsv: "" });
    await old.close();
    for (const [name, hash] of before) if (name !== "MANIFEST") expect(snapshot(dir).get(name), name).toBe(hash);
    const store = await openStore({ notes: notesAt(3) }, { dir, key, migrations: [step1to2, step2to3] });
    expect(await store.notes.get("n0200")).toMatchObject({ body: "note 200", priority: 0 });
    await store.close();
  });

  it("a store written by a newer schema is E_SCHEMA_NEWER and nothing changes", async () => {
    const dir = path.join(tmp, "newer");
    const s = await openStore({ notes: notesAt(3) }, { dir, key });
    await s.notes.put({ id: "a", body: "from the future", priority: 1 });
    await s.close();
    const before = snapshot(dir);
    const e = await errorOf(openStore({ notes: notesAt(2) }, { dir, key, migrations: [step1to2] }));
    expect(e.code).toBe("E_SCHEMA_NEWER");
    expect(e.message).toContain("stored at schema version 3, newer than this app's version 2");
    expect(snapshot(dir)).toEqual(before);
  });

  it("a redactSensitive open of a store that needs a migration is refused", async () => {
    const dir = path.join(tmp, "redacted");
    await writeV1(dir, 3);
    const e = await errorOf(openStore({ notes: notesAt(2) }, { dir, key, redactSensitive: true, migrations: [step1to2] }));
    expect(e.code).toBe("E_MIGRATION");
  });
});
