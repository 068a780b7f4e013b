/**
 * Recovery from damage: `store.recoverFrom(backup)` and `openStore({ onCorruption: "restore" })` bring back
 * the records damage made unreadable (a segment block: named in the recovery report; journal frames: found by
 * their location in the backup's copy of the same bytes), never over a record written after the backup, never
 * a record deleted after it; another store's backup is refused; what no backup holds is reported; an older
 * schema version goes through the migrations.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { openStore as openTyped } from "../../src/runtime/typed/store.js";
import type { Engine, Loc } from "../../src/runtime/storage/engine.js";
import { defaultBackupDir } from "../../src/runtime/typed/auto-backup.js";
import { notesAt, step1to2, step2to3 } from "../store/helpers/notes-versions.js";
import type { MigrationContext } from "../../src/runtime/typed/migration.js";
import { CHEAP, KEY, OTHER_KEY, task, tempRoot } from "../backup/helpers.js";
import { startChild } from "../engine/helpers/spawn.js";

const { root, cleanup } = tempRoot("cellar-recover-");
afterAll(cleanup);

type Store = Awaited<ReturnType<typeof openStore>>;
const engineOf = (s: unknown) => (s as { engine: Engine }).engine;
const id = (i: number) => `task-${String(i).padStart(5, "0")}`;

/** Where a record lives (file and frame), to damage it after the store is closed. */
function where(s: unknown, key: string, entity = "tasks"): { file: string; offset: number; length: number; loc: Loc } {
  const e = engineOf(s);
  const loc = e.locate(entity, key)!;
  return { file: path.join(e.dir, e.where(loc).file), offset: loc.frameOffset, length: loc.frameLength, loc };
}

/** Flip one byte in the middle of a frame (its crc no longer holds). */
function damage(at: { file: string; offset: number; length: number }): void {
  const fd = fs.openSync(at.file, "r+");
  const b = Buffer.alloc(1);
  const pos = at.offset + Math.floor(at.length / 2);
  fs.readSync(fd, b, 0, 1, pos);
  b[0]! ^= 0x5a;
  fs.writeSync(fd, b, 0, 1, pos);
  fs.closeSync(fd);
}

async function title(s: Store, i: number): Promise<string | undefined> {
  return (await s.tasks.get(id(i)))?.title;
}

/**
 * 60 tasks compacted into a segment, task 5 deleted, a backup (into `backupTo`); then after it: task 1
 * rewritten, task 2 deleted, task 100 added. Returns where task 3 lives (the segment block to damage).
 */
async function segmentStore(dir: string, backupTo: string) {
  const s = await openStore({ dir, key: KEY });
  await s.batch((tx) => {
    for (let i = 0; i < 60; i++) tx.tasks.put(task(i));
  });
  await s.compact();
  await s.tasks.delete(id(5));
  await s.backup({ to: backupTo });
  await s.tasks.put(task(1, " newer"));
  await s.tasks.delete(id(2));
  await s.tasks.put(task(100));
  const at = where(s, id(3));
  await s.close();
  return at;
}

describe("recoverFrom after a damaged segment block", () => {
  it("brings back the block's records from the backup, keeps newer writes and deletes made after the backup", async () => {
    const dir = path.join(root, "seg");
    const bk = path.join(root, "seg.cellarbackup");
    const at = await segmentStore(dir, bk);
    damage(at);
    const s = await openStore({ dir, key: KEY, verifyOnOpen: true });
    try {
      const [d] = s.recoveryReport.damaged;
      expect(d?.file).toBe(path.basename(at.file));
      const named = d!.records.map((r) => r.key);
      // Records a later write replaced or deleted were not lost with the block: not named.
      expect(named).toContain(id(3));
      for (const i of [1, 2, 5]) expect(named).not.toContain(id(i));
      expect(await title(s, 3)).toBeUndefined();

      const changes: string[] = [];
      s.on("change", (e) => changes.push(`${e.op} ${String(e.key)}`));
      const report = await s.recoverFrom(bk);
      expect(report).toEqual({ restored: { tasks: named.length }, missing: [], from: [path.resolve(bk)], skipped: [], writes: 1 });
      expect(changes.sort()).toEqual(named.map((k) => `put ${k}`).sort()); // through the normal write path
      expect(await title(s, 3)).toBe("task 3");
      expect(await title(s, 1)).toBe("task 1 newer");
      expect(await title(s, 2)).toBeUndefined();
      expect(await title(s, 5)).toBeUndefined();
      expect(await title(s, 100)).toBe("task 100");
      expect(await s.tasks.count()).toBe(60 - 2 + 1);
      // A second call finds nothing left to bring back.
      expect((await s.recoverFrom(bk)).restored).toEqual({});
    } finally {
      await s.close();
    }
    const again = await openStore({ dir, key: KEY });
    expect(await again.tasks.count()).toBe(59);
    expect(await title(again, 3)).toBe("task 3");
    await again.close();
  });

  it("from a password backup, with the password", async () => {
    const dir = path.join(root, "pw");
    const plain = path.join(root, "pw-plain.cellarbackup");
    const at = await segmentStore(dir, plain);
    const s0 = await openStore({ dir, key: KEY });
    const bk = path.join(root, "pw.cellarbackup");
    await s0.backup({ to: bk, password: "pw", passwordCost: CHEAP });
    await s0.close();
    damage(at);
    const s = await openStore({ dir, key: KEY, verifyOnOpen: true });
    try {
      await expect(s.recoverFrom(bk)).rejects.toMatchObject({ code: "E_KEY" });
      const report = await s.recoverFrom(bk, { password: "pw" });
      expect(report.restored).toEqual({ tasks: s.recoveryReport.damaged[0]!.records.length });
      expect(await title(s, 3)).toBe("task 3");
    } finally {
      await s.close();
    }
  });

  it("refuses a backup of another store (E_BACKUP_FOREIGN) and changes nothing", async () => {
    const dir = path.join(root, "foreign");
    const at = await segmentStore(dir, path.join(root, "foreign-own.cellarbackup"));
    const other = await openStore({ dir: path.join(root, "other"), key: KEY });
    await other.tasks.put(task(3));
    const otherBk = path.join(root, "other.cellarbackup");
    await other.backup({ to: otherBk });
    await other.close();
    damage(at);
    const s = await openStore({ dir, key: KEY, verifyOnOpen: true });
    try {
      const count = await s.tasks.count();
      await expect(s.recoverFrom(otherBk)).rejects.toMatchObject({ code: "E_BACKUP_FOREIGN" });
      expect(await s.tasks.count()).toBe(count);
      await expect(s.recoverFrom(path.join(root, "foreign-own.cellarbackup"), { key: OTHER_KEY })).rejects.toMatchObject({ code: "E_KEY" });
      expect(await s.tasks.count()).toBe(count);
      // A damaged backup (one byte of a packed file): E_BACKUP_CORRUPT, nothing written.
      const bad = path.join(root, "foreign-own-damaged.cellarbackup");
      const bytes = fs.readFileSync(path.join(root, "foreign-own.cellarbackup"));
      bytes[Math.floor(bytes.length / 2)]! ^= 1;
      fs.writeFileSync(bad, bytes);
      await expect(s.recoverFrom(bad)).rejects.toMatchObject({ code: "E_BACKUP_CORRUPT" });
      expect(await s.tasks.count()).toBe(count);
      expect((await s.recoverFrom(path.join(root, "foreign-own.cellarbackup"))).restored.tasks).toBeGreaterThan(0);
    } finally {
      await s.close();
    }
  });

  it("reports the records no backup holds", async () => {
    const dir = path.join(root, "none");
    const s0 = await openStore({ dir, key: KEY });
    await s0.tasks.put(task(900));
    const early = path.join(root, "none-early.cellarbackup");
    await s0.backup({ to: early }); // before the tasks below existed
    await s0.batch((tx) => {
      for (let i = 0; i < 30; i++) tx.tasks.put(task(i));
    });
    await s0.compact();
    const at = where(s0, id(3));
    await s0.close();
    damage(at);
    const s = await openStore({ dir, key: KEY, verifyOnOpen: true });
    try {
      const named = s.recoveryReport.damaged[0]!.records;
      const report = await s.recoverFrom(early);
      // Task 900 shares the block and is in the early backup; the others were written after it.
      expect(report.restored).toEqual({ tasks: 1 });
      expect(await title(s, 900)).toBe("task 900");
      expect(report.from).toEqual([path.resolve(early)]);
      const rest = named.filter((r) => r.key !== id(900));
      expect(rest.length).toBe(30);
      expect(report.missing).toEqual(rest.map((r) => ({ entity: "tasks", key: r.key, reason: "in no backup tried" })));
      expect(JSON.stringify(report)).not.toContain("task 3"); // keys, never values
    } finally {
      await s.close();
    }
  });
});

describe("recoverFrom after a damaged journal frame", () => {
  it("finds the lost records by their place in the backup's copy of the journal; a record deleted or rewritten after the backup stays so", async () => {
    const dir = path.join(root, "journal");
    const s0 = await openStore({ dir, key: KEY });
    await s0.batch((tx) => {
      for (let i = 0; i < 20; i++) tx.tasks.put(task(i));
    });
    await s0.compact();
    await s0.tasks.put(task(30));
    await s0.batch((tx) => {
      for (const i of [31, 32, 35]) tx.tasks.put(task(i)); // one frame: the one damaged below
    });
    await s0.tasks.put(task(33));
    const bk = path.join(root, "journal.cellarbackup");
    await s0.backup({ to: bk });
    await s0.tasks.delete(id(32)); // after the backup: must stay deleted
    await s0.tasks.put(task(31, " newer"));
    await s0.tasks.put(task(34));
    const at = where(s0, id(35));
    await s0.close();
    damage(at);

    const s = await openStore({ dir, key: KEY });
    try {
      expect(s.recoveryReport.damaged).toMatchObject([{ file: path.basename(at.file), offset: at.offset, records: [] }]);
      expect(await title(s, 35)).toBeUndefined();
      const report = await s.recoverFrom(bk);
      expect(report.restored).toEqual({ tasks: 1 });
      expect(report.from).toEqual([path.resolve(bk)]);
      expect(report.missing).toEqual([{ entity: "tasks", key: id(31), reason: "the store holds another value of this record: kept" }]);
      expect(await title(s, 35)).toBe("task 35");
      expect(await title(s, 32)).toBeUndefined();
      expect(await title(s, 31)).toBe("task 31 newer");
      for (const i of [0, 19, 30, 33, 34]) expect(await title(s, i)).toBe(`task ${i}`);
    } finally {
      await s.close();
    }
  });

  it("damaged bytes written after every backup: reported as unknown", async () => {
    const dir = path.join(root, "journal-late");
    const s0 = await openStore({ dir, key: KEY });
    await s0.tasks.put(task(1));
    const bk = path.join(root, "journal-late.cellarbackup");
    await s0.backup({ to: bk });
    const at = (await s0.tasks.put(task(2)), where(s0, id(2)));
    await s0.tasks.put(task(3));
    await s0.close();
    damage(at);
    const s = await openStore({ dir, key: KEY });
    try {
      const report = await s.recoverFrom(bk);
      expect(report.restored).toEqual({});
      expect(report.missing).toEqual([
        { file: path.basename(at.file), offset: at.offset, reason: "no backup tried holds the damaged bytes: the records they held are unknown" },
      ]);
    } finally {
      await s.close();
    }
  });
});

describe('onCorruption: "restore"', () => {
  it("recovers at open from the newest of this store's backups in its backup directory, skipping other stores' files", async () => {
    const dir = path.join(root, "auto");
    const backups = defaultBackupDir(dir);
    const at = await segmentStore(dir, path.join(backups, "b-new.cellarbackup"));
    const other = await openStore({ dir: path.join(root, "auto-other"), key: KEY });
    await other.tasks.put(task(3, " foreign"));
    await other.backup({ to: path.join(backups, "z-other.cellarbackup") });
    await other.close();
    damage(at);
    const s = await openStore({ dir, key: KEY, onCorruption: "restore" }); // the block is found by the background check
    try {
      const named = s.recoveryReport.damaged[0]!.records;
      expect(named.length).toBeGreaterThan(0);
      expect(s.recoveredAtOpen).toEqual({
        restored: { tasks: named.length },
        missing: [],
        from: [path.join(backups, "b-new.cellarbackup")],
        skipped: [],
        writes: 1,
      });
      expect(await title(s, 3)).toBe("task 3");
      expect(await title(s, 1)).toBe("task 1 newer");
      expect(await title(s, 2)).toBeUndefined();
    } finally {
      await s.close();
    }
  });

  it("without a backup directory the store opens and the report says what is missing", async () => {
    const dir = path.join(root, "auto-none");
    const at = await segmentStore(dir, path.join(root, "elsewhere.cellarbackup"));
    damage(at);
    const s = await openStore({ dir, key: KEY, onCorruption: "restore", verifyOnOpen: true });
    try {
      expect(fs.existsSync(defaultBackupDir(dir))).toBe(false);
      const named = s.recoveryReport.damaged[0]!.records;
      expect(s.recoveredAtOpen?.restored).toEqual({});
      expect(s.recoveredAtOpen?.missing).toHaveLength(named.length);
    } finally {
      await s.close();
    }
    const clean = await openStore({ dir, key: KEY, onCorruption: "restore" });
    expect(clean.recoveredAtOpen).toBeNull();
    await clean.close();
  });
});

describe("a backup at an older schema version", () => {
  it("goes through the store's migration steps", async () => {
    const dir = path.join(root, "older");
    const v1 = await openTyped({ notes: notesAt(1) }, { dir, key: KEY });
    await v1.batch((tx) => {
      for (let j = 0; j < 20; j++) tx.notes.put({ id: `n${j}`, text: `note ${j}`, tagsCsv: j % 2 ? "work,urgent" : "", secret: `pin-${j}` });
    });
    const bk = path.join(root, "older.cellarbackup");
    await v1.backup({ to: bk });
    await v1.close();
    const v2 = await openTyped({ notes: notesAt(2) }, { dir, key: KEY, migrations: [step1to2] });
    await v2.compact();
    const at = where(v2, "n3", "notes");
    await v2.close();
    damage(at);
    const s = await openTyped({ notes: notesAt(2) }, { dir, key: KEY, migrations: [step1to2], verifyOnOpen: true });
    try {
      const named = s.recoveryReport.damaged[0]!.records;
      expect(named.map((r) => r.key)).toContain("n3");
      const report = await s.recoverFrom(bk);
      expect(report.restored).toEqual({ notes: named.length });
      expect(await s.notes.get("n3")).toMatchObject({ body: "note 3", tags: ["work", "urgent"], secret: "pin-3" });
    } finally {
      await s.close();
    }
  });
});

describe("SIGKILL during recoverFrom", () => {
  it.each(["commit.beforeWrite", "commit.afterSync"])("at %s: every lost record is back, or none", async (at) => {
    const dir = path.join(root, `kill-${at}`);
    const bk = path.join(root, `kill-${at}.cellarbackup`);
    damage(await segmentStore(dir, bk));
    const namedFile = path.join(root, `kill-${at}.json`);
    const { exited } = startChild("../../lifecycle/helpers/recover-child.ts", [dir, bk, at, namedFile]);
    const r = await exited;
    expect(r.signal, r.stderr).toBe("SIGKILL");
    const named = JSON.parse(fs.readFileSync(namedFile, "utf8")) as string[];
    expect(named.length).toBeGreaterThan(1);
    const s = await openStore({ dir, key: KEY, verifyOnOpen: true }); // the child may have died before its compaction retired the block
    try {
      let present = 0;
      for (const k of named) if (await s.tasks.get(k)) present++;
      if (at === "commit.beforeWrite") expect(present).toBe(0);
      else expect(present).toBe(named.length);
      // Writes made after the backup are untouched either way.
      expect(await title(s, 1)).toBe("task 1 newer");
      expect(await title(s, 2)).toBeUndefined();
      expect(await title(s, 100)).toBe("task 100");
    } finally {
      await s.close();
    }
  });
});

describe("a record the current schema refuses", () => {
  it("stays out and is reported; the others come back in the same write", async () => {
    const dir = path.join(root, "refused");
    const v1 = await openTyped({ notes: notesAt(1) }, { dir, key: KEY });
    await v1.batch((tx) => {
      for (let j = 0; j < 10; j++) tx.notes.put({ id: `n${j}`, text: `note ${j}`, tagsCsv: "", secret: "" });
    });
    const bk = path.join(root, "refused.cellarbackup");
    await v1.backup({ to: bk });
    await v1.close();
    const v3 = await openTyped({ notes: notesAt(3) }, { dir, key: KEY, migrations: [step1to2, step2to3] });
    await v3.compact();
    const at = where(v3, "n3", "notes");
    await v3.close();
    damage(at);
    // A step that yields a value v3's validation refuses (priority < 0) for n3 only.
    const bad = { ...step2to3, migrate: (r: { id: string }, ctx: MigrationContext) => ({ ...(step2to3.migrate(r, ctx) as object), priority: r.id === "n3" ? -1 : 0 }) };
    const s = await openTyped({ notes: notesAt(3) }, { dir, key: KEY, migrations: [step1to2, bad], verifyOnOpen: true });
    try {
      const named = s.recoveryReport.damaged[0]!.records;
      const report = await s.recoverFrom(bk);
      expect(report.restored).toEqual({ notes: named.length - 1 });
      expect(report.missing).toEqual([{ entity: "notes", key: "n3", reason: "refused by the current schema (E_VALIDATION)" }]);
      expect(report.writes).toBe(1);
      expect(await s.notes.get("n3")).toBeUndefined();
      expect(await s.notes.get("n4")).toMatchObject({ body: "note 4" });
    } finally {
      await s.close();
    }
  });
});

describe("records past one write's size", () => {
  it("come back in several atomic writes, and the report says how many", async () => {
    const dir = path.join(root, "big");
    const s0 = await openStore({ dir, key: KEY });
    const notes = (i: number) => randomBytes(7500).toString("base64").slice(0, 10000) + String(i);
    await s0.batch((tx) => {
      for (let i = 0; i < 900; i++) tx.tasks.put({ ...task(i), notes: notes(i) }); // ~9 MiB in one frame
    });
    await s0.tasks.put(task(5000));
    const bk = path.join(root, "big.cellarbackup");
    await s0.backup({ to: bk });
    const at = where(s0, id(0));
    await s0.close();
    damage(at);
    const s = await openStore({ dir, key: KEY });
    try {
      expect(await s.tasks.count()).toBe(1);
      const report = await s.recoverFrom(bk);
      expect(report.restored).toEqual({ tasks: 900 });
      expect(report.writes).toBe(2);
      expect((await s.tasks.get(id(899)))?.notes).toMatch(/899$/);
    } finally {
      await s.close();
    }
  });
});

describe("a singleton with a sensitive field", () => {
  it("comes back with its sealed field, as it was at the backup", async () => {
    const dir = path.join(root, "singleton");
    const s0 = await openStore({ dir, key: KEY });
    await s0.settings.update({ language: "fr", ui: { fontSize: 17 }, aiProvider: { model: "m", apiKey: "sk-secret" } });
    await s0.compact();
    const bk = path.join(root, "singleton.cellarbackup");
    await s0.backup({ to: bk });
    const at = where(s0, "", "settings");
    await s0.close();
    damage(at);
    const s = await openStore({ dir, key: KEY, verifyOnOpen: true });
    try {
      expect(s.recoveryReport.damaged[0]!.records).toEqual([{ entity: "settings", key: "" }]);
      expect((await s.settings.get()).language).not.toBe("fr");
      const report = await s.recoverFrom(bk);
      expect(report.restored).toEqual({ settings: 1 });
      expect(await s.settings.get()).toMatchObject({ language: "fr", ui: { fontSize: 17 }, aiProvider: { model: "m", apiKey: "sk-secret" } });
      expect(JSON.stringify(report)).not.toContain("sk-secret");
    } finally {
      await s.close();
    }
  });
});

describe("a selective (re-encoded) backup", () => {
  it("holds no copy of the damaged journal: recoverFrom([it, older full backup]) takes the frames from the full one", async () => {
    const dir = path.join(root, "selective");
    const s0 = await openStore({ dir, key: KEY });
    await s0.batch((tx) => {
      for (let i = 0; i < 10; i++) tx.tasks.put(task(i));
    });
    await s0.compact();
    await s0.tasks.put(task(20));
    await s0.batch((tx) => {
      for (const i of [21, 22]) tx.tasks.put(task(i));
    });
    await s0.tasks.put(task(23));
    const full = path.join(root, "selective-full.cellarbackup");
    await s0.backup({ to: full });
    const sel = path.join(root, "selective-sel.cellarbackup");
    await s0.backup({ to: sel, entities: { include: ["tasks"] } });
    const at = where(s0, id(21));
    await s0.close();
    damage(at);
    const s = await openStore({ dir, key: KEY });
    try {
      const report = await s.recoverFrom([sel, full]);
      expect(report.restored).toEqual({ tasks: 2 });
      expect(report.from).toEqual([path.resolve(full)]);
      expect(await title(s, 22)).toBe("task 22");
    } finally {
      await s.close();
    }
  });
});
