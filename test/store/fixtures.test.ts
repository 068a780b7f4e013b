/**
 * The committed fixture stores of `focus_sessions` (test/fixtures/stores/, written by
 * test/fixtures/make-focus-fixtures.ts with the project's own earlier schemas) against today's code:
 * they still open at their own version with the historical definitions, and the app's generated
 * `openStore` migrates them (v1 → v2 → v3, v2 → v3) with the steps registered in src/migrations/ to
 * exactly the committed expectation. A throwing step and a SIGKILL mid-migration leave the store as it
 * was; a store written at the current version is refused by an older definition (E_SCHEMA_NEWER).
 *
 * Every test works on a copy: the committed files are never opened in place. Opens pass `cleanup: false`:
 * the fixtures' sessions start in 2026 and `focus_sessions` keep 730 days, so from 2028 on a retention
 * cleanup at open would remove them while a test reads them.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type JsonObject, toJson } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, it } from "vitest";
import { FocusOutcome, FocusSessionSchema } from "../../src/generated/examples/focus/v1/focus_pb.js";
import { entities, openStore } from "../../src/generated/index.js";
import { migrations } from "../../src/migrations/registry.js";
import type { MigrationError } from "../../src/runtime/errors.js";
import type { MigrationStep } from "../../src/runtime/typed/migration.js";
import { openStore as openRuntimeStore } from "../../src/runtime/typed/store.js";
import { restoreBackup } from "../../src/runtime/storage/restore.js";
import type { MigrationProgress } from "../../src/runtime/typed/upgrade.js";
import { FIXTURE_KEY, FocusSessionV1Entity, FocusSessionV2Entity } from "../fixtures/focus-history.js";
import { storedJson, storesDir } from "../fixtures/make-focus-fixtures.js";
import { startChild } from "../engine/helpers/spawn.js";
import { storeSnapshot as snapshot } from "../helpers/files.js";
import { errorOf } from "../helpers/errors.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-fixtures-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Expected {
  version: 1 | 2;
  stored: Record<string, JsonObject>;
  current: Record<string, JsonObject>;
}
const expected = (v: 1 | 2): Expected => JSON.parse(fs.readFileSync(path.join(storesDir, `focus-v${v}.json`), "utf8")) as Expected;
const historical = { 1: FocusSessionV1Entity, 2: FocusSessionV2Entity } as const;

/** A fresh copy of a committed fixture store. */
function copyFixture(v: 1 | 2, name: string): string {
  const dir = path.join(tmp, name);
  fs.cpSync(path.join(storesDir, `focus-v${v}`), dir, { recursive: true });
  return dir;
}

/** Every `focus_sessions` record of a store opened with the app's entities, as JSON at the current version. */
async function currentRecords(store: Awaited<ReturnType<typeof openStore>>): Promise<Record<string, JsonObject>> {
  const out: Record<string, JsonObject> = {};
  for (const r of await store.focusSessions.list()) out[r.id] = toJson(FocusSessionSchema, r) as JsonObject;
  return out;
}

/** The registry's steps, each call counted by `from`. */
function counted(calls: Map<number, number>): MigrationStep[] {
  return migrations.map((s) => ({
    ...s,
    migrate(record, ctx) {
      calls.set(s.from, (calls.get(s.from) ?? 0) + 1);
      return s.migrate(record, ctx);
    },
  }));
}

describe("committed fixture stores of focus_sessions", () => {
  it("the registry holds the steps 1 → 2 and 2 → 3 of focus_sessions, and the app is at version 3", () => {
    expect(entities.focusSessions.version).toBe(3);
    const steps = migrations.filter((s) => s.entity === "focus_sessions").map((s) => [s.from, s.to]);
    expect(steps.sort()).toEqual([[1, 2], [2, 3]]);
  });

  describe.each([1, 2] as const)("focus-v%i", (v) => {
    const exp = expected(v);

    it("the committed bytes open at their own version with the historical definition (verified) and hold the committed records", async () => {
      expect(Object.keys(exp.stored)).toHaveLength(50);
      expect(await storedJson(v, path.join(storesDir, `focus-v${v}`))).toEqual(exp.stored);
      // The fixture has records in a segment (compacted) and in the journal (written after).
      const files = fs.readdirSync(path.join(storesDir, `focus-v${v}`)).sort();
      expect(files.filter((n) => /^segment-\d+\.seg$/.test(n))).toHaveLength(1);
      expect(files.filter((n) => /^journal-\d+\.log$/.test(n))).toHaveLength(1);
      expect(files).not.toContain("LOCK");
    });

    it(`the generated openStore migrates every record ${v === 1 ? "v1 → v2 → v3" : "v2 → v3"} with the registered steps, to exactly the committed expectation`, async () => {
      const dir = copyFixture(v, `migrate-v${v}`);
      const calls = new Map<number, number>();
      const progress: MigrationProgress[] = [];
      let store = await openStore({ dir, key: FIXTURE_KEY, cleanup: false, migrations: counted(calls), onMigrationProgress: (p) => progress.push(p) });
      expect(await currentRecords(store)).toEqual(exp.current);
      expect(Object.keys(exp.current)).toHaveLength(50);
      // Each record went through each step once; a v2 store needs only the last.
      expect(Object.fromEntries(calls)).toEqual(v === 1 ? { 1: 50, 2: 50 } : { 2: 50 });
      expect(progress.map((p) => p.phase)).toEqual(["backup", "verify", "migrate", "done"]);
      expect(progress.at(-1)).toMatchObject({ done: 50, total: 50 });
      // The new index (`outcome`, added at version 3) is built from the migrated records.
      const completed = Object.values(exp.current).filter((r) => r.outcome === "FOCUS_OUTCOME_COMPLETED").map((r) => r.id);
      expect(completed.length).toBeGreaterThan(0);
      expect((await store.focusSessions.query({ outcome: FocusOutcome.COMPLETED })).map((r) => r.id)).toEqual(completed);
      expect((await store.focusSessions.query({ outcome: FocusOutcome.STOPPED_EARLY })).length).toBe(50 - completed.length);
      const backup = store.migrationBackup!;
      expect(path.relative(path.dirname(dir), backup)).toMatch(/^migrate-v\d\.backups\/migrate-v\d-pre-migration-\d{8}T\d{9}Z\.cellarbackup$/);
      // New writes after the migration are at version 3.
      await store.focusSessions.put({ id: "fs-new", startedAt: timestampFromDate(new Date(Date.UTC(2026, 5, 1))), duration: durationFromMs(60_000), outcome: FocusOutcome.ABANDONED });
      await store.close();

      // The backup is the fixture as it was: it opens at version ${v} with every record.
      await restoreBackup(backup, { dir: `${dir}-restored`, key: FIXTURE_KEY });
      const old = await openRuntimeStore({ focusSessions: historical[v] }, { dir: `${dir}-restored`, key: FIXTURE_KEY, verifyOnOpen: true, onCorruption: "refuse" });
      expect(await old.focusSessions.count()).toBe(50);
      expect(toJson(historical[v].schema, (await old.focusSessions.get("fs-001"))!)).toEqual(exp.stored["fs-001"]);
      await old.close();

      // Reopen: no migration, the same records; the old definition is now refused.
      const again = new Map<number, number>();
      store = await openStore({ dir, key: FIXTURE_KEY, cleanup: false, migrations: counted(again) });
      expect(store.migrationBackup).toBeNull();
      expect(again.size).toBe(0);
      const { "fs-new": added, ...rest } = await currentRecords(store);
      expect(rest).toEqual(exp.current);
      expect(added).toMatchObject({ duration: "60s", outcome: "FOCUS_OUTCOME_ABANDONED" });
      await store.close();
      expect((await errorOf(openRuntimeStore({ focusSessions: historical[v] }, { dir, key: FIXTURE_KEY }))).code).toBe("E_SCHEMA_NEWER");
    });

    it("without options.migrations the generated openStore uses the registry (migrations_import)", async () => {
      const dir = copyFixture(v, `default-registry-v${v}`);
      const store = await openStore({ dir, key: FIXTURE_KEY, cleanup: false, backupBeforeMigration: false });
      expect(await currentRecords(store)).toEqual(exp.current);
      await store.close();
      // options.migrations still replaces the registry: with none, a v${v} store cannot be opened.
      const other = copyFixture(v, `no-steps-v${v}`);
      const before = snapshot(other);
      const e = (await errorOf(openStore({ dir: other, key: FIXTURE_KEY, cleanup: false, migrations: [] }))) as MigrationError;
      expect(e.code).toBe("E_MIGRATION");
      expect(e.message).toContain(`no migration step from version ${v} to ${v + 1}`);
      expect(snapshot(other)).toEqual(before);
    });

    it("a step that throws: E_MIGRATION naming entity, key and step; the copied fixture is byte for byte as committed and still opens", async () => {
      const dir = copyFixture(v, `throws-v${v}`);
      const before = snapshot(dir);
      expect(before).toEqual(snapshot(path.join(storesDir, `focus-v${v}`)));
      const steps = migrations.map((s) =>
        s.entity === "focus_sessions" && s.to === 3
          ? {
              ...s,
              migrate(record: { id: string }, ctx: Parameters<MigrationStep["migrate"]>[1]) {
                if (record.id === "fs-030") throw new RangeError("no outcome for this one");
                return s.migrate(record, ctx);
              },
            }
          : s,
      );
      const e = (await errorOf(openStore({ dir, key: FIXTURE_KEY, cleanup: false, migrations: steps }))) as MigrationError;
      expect(e.code).toBe("E_MIGRATION");
      expect([e.entity, e.key, e.from, e.to]).toEqual(["focus_sessions", "fs-030", 2, 3]);
      expect(e.message).toContain("RangeError");
      expect(snapshot(dir)).toEqual(before);
      expect(await storedJson(v, dir)).toEqual(exp.stored);
    });

    it("SIGKILL in the middle of the migration (real child process) leaves the fixture's records; the next open migrates it", async () => {
      const dir = copyFixture(v, `killed-v${v}`);
      const before = snapshot(dir);
      const { exited } = startChild("../../store/helpers/focus-migrate-child.ts", [dir, "fs-030"]);
      const r = await exited;
      expect(r.signal, r.stderr).toBe("SIGKILL");
      // The killed run may have left a segment temp file and a new journal: open removes or replays them.
      // Every file the fixture had is unchanged but MANIFEST (rewritten by the killed open), and every
      // record is what it was.
      for (const [name, hash] of before) if (name !== "MANIFEST") expect(snapshot(dir).get(name), name).toBe(hash);
      expect(await storedJson(v, dir)).toEqual(exp.stored);
      const store = await openStore({ dir, key: FIXTURE_KEY, cleanup: false });
      expect(await currentRecords(store)).toEqual(exp.current);
      await store.close();
    });
  });

  it("a store written at the current version is refused by the version 2 definition: E_SCHEMA_NEWER, nothing changed", async () => {
    const dir = path.join(tmp, "newer");
    const store = await openStore({ dir, key: FIXTURE_KEY, cleanup: false });
    await store.focusSessions.put({ id: "f1", startedAt: timestampFromDate(new Date(Date.UTC(2026, 6, 1))), outcome: FocusOutcome.COMPLETED });
    await store.close();
    const before = snapshot(dir);
    for (const def of [FocusSessionV2Entity, FocusSessionV1Entity]) {
      const e = await errorOf(openRuntimeStore({ focusSessions: def }, { dir, key: FIXTURE_KEY }));
      expect(e.code).toBe("E_SCHEMA_NEWER");
      expect(e.message).toContain(`stored at schema version 3, newer than this app's version ${def.version}`);
      expect(snapshot(dir)).toEqual(before);
    }
  });
});
