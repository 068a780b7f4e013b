// The typed layer's read-only seam under `cellar info` and `migrate --dry-run` (typed/describe.ts): the plan
// it makes is what openStore then does, and making it writes nothing; a store held by another open is read
// through a follower engine.
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { keys, openStore as openRuntimeStore } from "../../src/runtime/index.js";
import { entities, openStore } from "../../src/generated/index.js";
import { migrations } from "../../src/migrations/registry.js";
import { describeStore, planUpgradeDryRun } from "../../src/runtime/typed/describe.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const key = keys.raw(new Uint8Array(32).fill(7));

function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, statSync(join(dir, f)).isDirectory() ? "dir" : createHash("sha256").update(readFileSync(join(dir, f))).digest("hex")]));
}

it("planUpgradeDryRun says what openStore's upgrade then does, and writes nothing", async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "cellar-describe-")), "store");
  dirs.push(dir, join(dir, ".."));
  const old = await openRuntimeStore({ ...entities, focusSessions: { ...entities.focusSessions, version: 2 } }, { dir, key, cleanup: false });
  for (const id of ["a", "b", "c"]) await old.focusSessions.put({ id, startedAt: { seconds: 1767322800n, nanos: 0 } } as never);
  await old.tasks.put({ id: "t1", title: "kept" } as never);
  // store.stats() says the version each entity is stored at (here the older schema's).
  expect(old.stats().entities).toMatchObject({ focus_sessions: { storedVersion: 2, records: 3 }, tasks: { storedVersion: entities.tasks.version } });
  await old.close();
  const before = snapshot(dir);
  const d = await describeStore(entities, { dir, key });
  const plan = planUpgradeDryRun(d, entities, migrations);
  expect(snapshot(dir)).toEqual(before);
  expect(plan).toMatchObject({ wouldMigrate: true, blocked: null, backup: true });
  expect(plan.entities.find((e) => e.name === "focus_sessions")).toMatchObject({ action: "migrate", storedVersion: 2, toMigrate: 3, versions: { 2: 3 }, steps: [{ from: 2, to: 3, registered: true }] });
  expect(plan.entities.find((e) => e.name === "tasks")).toMatchObject({ action: "current", records: 1 });
  // Without the step registered, the plan says the open would refuse, as it does.
  const blocked = planUpgradeDryRun(d, entities, migrations.filter((s) => s.from !== 2));
  expect(blocked.wouldMigrate).toBe(false);
  expect(blocked.blocked).toContain("no migration step of `focus_sessions` from version 2 to 3");

  const store = await openStore({ dir, key, cleanup: false });
  expect(store.migrationBackup).not.toBeNull();
  expect(store.stats().entities.focus_sessions).toMatchObject({ storedVersion: 3, records: 3 });
  // A second open of the same store (the first holds it): read through a follower engine.
  const after = await describeStore(entities, { dir, key });
  expect(after).toMatchObject({ opened: "follower", holderPid: process.pid });
  expect(planUpgradeDryRun(after, entities, migrations)).toMatchObject({ wouldMigrate: false, blocked: null, backup: false });
  expect(after.entities.find((e) => e.name === "focus_sessions")).toMatchObject({ storedVersion: 3, versions: { 3: 3 } });
  await store.close();
}, 120_000);

it("describeStore reads the format version from MANIFEST.copy when MANIFEST is missing or not a manifest", async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "cellar-describe-")), "store");
  dirs.push(dir, join(dir, ".."));
  const store = await openStore({ dir, key, cleanup: false });
  await store.tasks.put({ id: "t1", title: "kept" } as never);
  await store.close();
  const manifest = readFileSync(join(dir, "MANIFEST"));
  for (const damage of ["missing", "zeroed"] as const) {
    if (damage === "missing") rmSync(join(dir, "MANIFEST"));
    else writeFileSync(join(dir, "MANIFEST"), new Uint8Array(manifest.length));
    const d = await describeStore(entities, { dir, key });
    expect(d.formatVersion, damage).toBe(manifest[7]);
    expect(d.entities.find((e) => e.name === "tasks"), damage).toMatchObject({ records: 1 });
    writeFileSync(join(dir, "MANIFEST"), manifest);
  }
}, 60_000);
