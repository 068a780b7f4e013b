/**
 * `cellar backup`, `restore`, `backups list|verify` and `repair`, run as the real command against real
 * stores: a backup restores into the same records; a flipped byte in a backup file is found (exit 1); a
 * damaged segment block is quarantined and its records brought back from a backup; no secret in the output.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { task } from "../backup/helpers.js";
import { BACKUP_PASSWORD, cellar, flip, noSecrets, open, seed, STORE, taskId, tempRoot, where } from "./helpers/ops.js";

const { root, cleanup } = tempRoot("cellar-cli-ops-");
afterAll(cleanup);

describe("cellar backup and restore", { timeout: 240_000 }, () => {
  it("backs up into the store's backup directory and restores the same records over a changed store", async () => {
    const dir = path.join(root, "rt");
    await seed(dir, 40);
    const b = await cellar(["backup", dir, ...STORE, "--json"]);
    noSecrets(b);
    expect(b.code, b.stderr).toBe(0);
    const info = JSON.parse(b.stdout) as { file: string; protection: string; entities: { name: string; records: number }[] };
    expect(path.dirname(info.file)).toBe(`${dir}.backups`);
    expect(info.protection).toBe("store-key");
    expect(info.entities.find((e) => e.name === "tasks")?.records).toBe(40);

    const s = await open(dir);
    await s.tasks.delete(taskId(1));
    await s.tasks.put(task(1000));
    await s.close();

    const r = await cellar(["restore", dir, "--from", info.file, ...STORE, "--json"]);
    noSecrets(r);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ dir, from: info.file, records: { tasks: 40, profiles: 3 } });
    const back = await open(dir);
    expect(await back.tasks.count()).toBe(40);
    expect((await back.tasks.get(taskId(1)))?.title).toBe("task 1");
    expect(await back.tasks.get(taskId(1000))).toBeUndefined();
    expect((await back.profiles.get("user-2"))?.authToken).toBe("token-SECRET-2");
    await back.close();
  });

  it("a password backup restores into a new directory with the password alone", async () => {
    const dir = path.join(root, "pw");
    await seed(dir, 10);
    const to = path.join(root, "pw-out", "portable.cellarbackup");
    const env = { BK_PASS: BACKUP_PASSWORD };
    const b = await cellar(["backup", dir, ...STORE, "--to", to, "--password-env", "BK_PASS", "--json"], env);
    noSecrets(b);
    expect(b.code, b.stderr).toBe(0);
    expect(JSON.parse(b.stdout)).toMatchObject({ file: to, protection: "password" });
    // backups verify: a password backup without its password is unverified (exit 1); with it, verified.
    const vNo = await cellar(["backups", dir, "verify", "--backup-dir", path.dirname(to), ...STORE, "--json"]);
    expect(vNo.code, vNo.stderr).toBe(1);
    expect(JSON.parse(vNo.stdout)).toMatchObject({ backups: [{ file: to, status: "unverified", protection: "password" }] });
    const vYes = await cellar(["backups", dir, "verify", to, "--password-env", "BK_PASS", "--json"], env);
    noSecrets(vYes);
    expect(vYes.code, vYes.stderr).toBe(0);
    expect(JSON.parse(vYes.stdout)).toMatchObject({ backups: [{ file: to, status: "ok" }] });
    const elsewhere = path.join(root, "pw-restored");
    const r = await cellar(["restore", elsewhere, "--from", to, "--schema", STORE[1]!, "--password-env", "BK_PASS", "--json"], env);
    noSecrets(r);
    expect(r.code, r.stderr).toBe(0);
    const { openStore } = await import("../../src/generated/index.js");
    const { keys } = await import("../../src/runtime/index.js");
    const s = await openStore({ dir: elsewhere, key: keys.passphrase(BACKUP_PASSWORD), cleanup: false });
    expect(await s.tasks.count()).toBe(10);
    await s.close();
  });

  it("restore without the backup's password: exit 3 (KEY), the store untouched", async () => {
    const dir = path.join(root, "pw");
    const to = path.join(root, "pw-out", "portable.cellarbackup");
    const r = await cellar(["restore", dir, "--from", to, ...STORE]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/--password-env/);
  });
});

describe("cellar backups list|verify", { timeout: 240_000 }, () => {
  it("lists with age, size and records; verify passes every good backup and finds a flipped byte (exit 1)", async () => {
    const dir = path.join(root, "bl");
    await seed(dir, 20);
    for (let i = 0; i < 2; i++) expect((await cellar(["backup", dir, ...STORE])).code).toBe(0);
    const l = await cellar(["backups", dir, "list", "--json"]);
    expect(l.code, l.stderr).toBe(0);
    const listed = JSON.parse(l.stdout) as { backups: { file: string; status: string; thisStore: boolean; records: Record<string, number>; ageSeconds: number; bytes: number }[] };
    expect(listed.backups).toHaveLength(2);
    for (const b of listed.backups) expect(b).toMatchObject({ status: "ok", thisStore: true, records: { tasks: 20, profiles: 3 } });
    expect(listed.backups[0]!.ageSeconds).toBeLessThan(120);

    const v = await cellar(["backups", dir, "verify", ...STORE, "--json"]);
    noSecrets(v);
    expect(v.code, v.stderr).toBe(0);
    expect((JSON.parse(v.stdout) as { backups: { status: string }[] }).backups.map((b) => b.status)).toEqual(["ok", "ok"]);

    const bad = listed.backups[1]!.file;
    flip(bad, Math.floor(fs.statSync(bad).size / 2));
    const v2 = await cellar(["backups", dir, "verify", ...STORE, "--json"]);
    expect(v2.code).toBe(1);
    const rows = (JSON.parse(v2.stdout) as { backups: { file: string; status: string; problem: string }[] }).backups;
    expect(rows.find((b) => b.file === bad)).toMatchObject({ status: "damaged" });
    expect(rows.find((b) => b.file !== bad)).toMatchObject({ status: "ok" });
    // One file, the damaged one: exit 1; the good one: exit 0. Human output names the damage.
    const one = await cellar(["backups", dir, "verify", bad, ...STORE]);
    expect(one.code).toBe(1);
    expect(one.stdout).toMatch(/DAMAGED/);
    expect((await cellar(["backups", dir, "verify", listed.backups[0]!.file, ...STORE])).code).toBe(0);
    // list checks checksums too
    expect((await cellar(["backups", dir, "list"])).code).toBe(1);
  });
});

describe("cellar repair", { timeout: 240_000 }, () => {
  it("quarantines a damaged segment block and brings its records back from the backup", async () => {
    const dir = path.join(root, "rep");
    await seed(dir, 60);
    const bk = path.join(root, "rep.cellarbackup");
    expect((await cellar(["backup", dir, ...STORE, "--to", bk])).code).toBe(0);
    const s = await open(dir);
    await s.tasks.put(task(200)); // after the backup: in the journal, kept
    const at = where(s, taskId(3));
    await s.close();
    flip(at.file, at.offset + Math.floor(at.length / 2));

    const r = await cellar(["repair", dir, ...STORE, "--from-backup", bk, "--json"]);
    noSecrets(r);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { status: string; damaged: { file: string; records: { key: string }[]; quarantinedAs: string }[]; recovered: { restored: Record<string, number> }; lost: unknown[] };
    expect(rep.status).toBe("repaired");
    expect(rep.damaged).toHaveLength(1);
    const lostKeys = rep.damaged[0]!.records.map((x) => x.key);
    expect(lostKeys).toContain(taskId(3));
    expect(rep.recovered.restored).toEqual({ tasks: lostKeys.length });
    expect(rep.lost).toEqual([]);
    // The damaged bytes are kept aside, byte for byte.
    const kept = path.join(dir, rep.damaged[0]!.quarantinedAs);
    expect(fs.existsSync(kept)).toBe(true);

    const back = await open(dir);
    expect(back.recoveryReport.damaged).toEqual([]); // retired by the repair's compaction
    expect(await back.tasks.count()).toBe(61);
    expect((await back.tasks.get(taskId(3)))?.title).toBe("task 3");
    expect((await back.tasks.get(taskId(200)))?.title).toBe("task 200");
    await back.close();
  });

  it("without a backup: quarantines, reports the lost records and exits 1; a clean store exits 0", async () => {
    const dir = path.join(root, "rep2");
    await seed(dir, 60);
    const s = await open(dir);
    const at = where(s, taskId(7));
    await s.close();
    flip(at.file, at.offset + Math.floor(at.length / 2));
    const r = await cellar(["repair", dir, ...STORE]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/losses/);
    expect(r.stdout).toContain(taskId(7));
    expect(r.stdout).toMatch(/quarantine\//);
    const again = await cellar(["repair", dir, ...STORE, "--json"]);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ status: "clean", damaged: [] });
  });

  it("a store that cannot be opened: kept aside whole, restored from the backup (exit 1: later writes lost); without a backup exit 5", async () => {
    const dir = path.join(root, "rep3");
    await seed(dir, 10);
    const bk = path.join(root, "rep3.cellarbackup");
    expect((await cellar(["backup", dir, ...STORE, "--to", bk])).code).toBe(0);
    for (const m of ["MANIFEST", "MANIFEST.copy"]) flip(path.join(dir, m), 40);
    const before = fs.readFileSync(path.join(dir, "MANIFEST"));
    const no = await cellar(["repair", dir, ...STORE]);
    expect(no.code, no.stderr).toBe(5);
    expect(no.stderr).toMatch(/--from-backup/);
    const r = await cellar(["repair", dir, ...STORE, "--from-backup", bk, "--json"]);
    expect(r.code, r.stderr).toBe(1);
    const rep = JSON.parse(r.stdout) as { status: string; keptAside: string };
    expect(rep.status).toBe("restored-whole");
    expect(fs.readFileSync(path.join(rep.keptAside, "MANIFEST")).equals(before)).toBe(true);
    const back = await open(dir);
    expect(await back.tasks.count()).toBe(10);
    await back.close();
  });
});
