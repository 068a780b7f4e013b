/**
 * `cellar audit verify` and `cellar audit list`, the real CLI as a child process on real stores: exit 0 on a
 * log that verifies, FINDINGS (1) with the problems when an entry was removed, KEY (3) for a wrong key, the
 * entries as JSON (no value), and `--expect` against a head kept elsewhere.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { entryKey } from "../../src/runtime/format/audit.js";
import { key, SECRETS, seed, tamper, tempRoot } from "./helpers.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const tmp = tempRoot("cli");
afterAll(tmp.cleanup);
const keyFile = path.join(tmp.root, "key");
fs.writeFileSync(keyFile, Buffer.from(key).toString("hex") + "\n");

function cellar(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(repo, "src/cli/cellar.ts"), ...args], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("cellar audit", () => {
  it("verify and list a store's log; a removed entry is FINDINGS; a wrong key is KEY", async () => {
    const dir = tmp.fresh("store");
    const store = await openStore({ dir, key, audit: { actor: "cli-test", flushMs: 0 } });
    await seed(store);
    await store.profiles.get("p1");
    await store.audit.reveal({ entity: "profiles", key: "p1", field: "email" }); // Cellar Studio's reveal button
    const head = (await store.audit.head())!;
    await store.close();

    const ok = cellar("audit", "verify", dir, "--key-file", keyFile);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/audit log verifies: \d+ entries/);
    const json = cellar("audit", "verify", dir, "--key-file", keyFile, "--json", "--expect", `${head.seq}:${head.mac}`);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, head: { seq: head.seq, mac: head.mac } });

    const list = cellar("audit", "list", dir, "--key-file", keyFile, "--json");
    expect(list.status, list.stderr).toBe(0);
    const entries = JSON.parse(list.stdout).entries as { action: string; actor: string; keys: string[] }[];
    expect(entries.map((e) => e.action)).toEqual(expect.arrayContaining(["start", "write", "read"]));
    expect(entries.find((e) => e.action === "read")).toMatchObject({ actor: "cli-test", keys: ["p1"] });
    expect(entries.find((e) => e.action === "reveal")).toMatchObject({ actor: "cli-test", entity: "profiles", keys: ["p1"], detail: { field: "email" } });
    const human = cellar("audit", "list", dir, "--key-file", keyFile);
    expect(human.stdout).toMatch(/\treveal profiles ×1 keys p1 \{"field":"email"\}/);
    for (const s of SECRETS) expect(list.stdout).not.toContain(s);
    expect(cellar("audit", "list", dir, "--key-file", keyFile, "--limit", "1").stdout.trim().split("\n")).toHaveLength(1);

    await tamper(dir, () => ({ del: [entryKey(2)] }));
    const bad = cellar("audit", "verify", dir, "--key-file", keyFile);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/does NOT verify/);
    expect(bad.stdout).toMatch(/missing at 2/);

    const wrongKey = path.join(tmp.root, "wrong");
    fs.writeFileSync(wrongKey, "11".repeat(32));
    expect(cellar("audit", "verify", dir, "--key-file", wrongKey).status).toBe(3);
    expect(cellar("audit", "verify", dir, "--key-file", keyFile, "--expect", "nonsense").status).toBe(2);
  }, 300_000); // eight runs of the real CLI (tsx starts in seconds on a loaded machine)
});

describe("the actor of what a cellar command does", () => {
  const schema = path.join(repo, "src/generated/index.ts");

  it("a command on a store that keeps a log records with actor `cellar-cli` (and the OS user's name)", async () => {
    const dir = tmp.fresh("actor");
    const store = await openStore({ dir, key, audit: { actor: "app", flushMs: 0 } });
    await seed(store);
    await store.close();

    const out = path.join(tmp.root, "actor.ndjson");
    // With --include-sensitive the store is opened as the app opens it; without, read-only, and then again as
    // the app opens it because this store keeps a log: both exports are recorded.
    const r = cellar("export", dir, "--out", out, "--include-sensitive", "--schema", schema, "--key-file", keyFile);
    expect(r.status, r.stderr).toBe(0);
    const plain = cellar("export", dir, "--out", out, "--schema", schema, "--key-file", keyFile);
    expect(plain.status, plain.stderr).toBe(0);
    expect(fs.readFileSync(out, "utf8")).not.toContain(SECRETS[0]);
    const again = await openStore({ dir, key, audit: false });
    const list = await again.audit.list();
    await again.close();
    const exp = list.filter((e) => e.action === "export");
    expect(exp.map((e) => e.detail)).toEqual([expect.objectContaining({ includeSensitive: true }), expect.objectContaining({ includeSensitive: false })]);
    for (const e of exp) {
      expect(e.actor).toBe(`cellar-cli:${os.userInfo().username}`);
      expect(e.pid).not.toBe(process.pid);
    }
    expect(list.filter((e) => e.action !== "export").every((e) => e.actor === "app")).toBe(true);
  });

  it("a command on a store without a log does not start one", async () => {
    const dir = tmp.fresh("nolog");
    const store = await openStore({ dir, key });
    await seed(store);
    await store.close();

    const out = path.join(tmp.root, "nolog.ndjson");
    const r = cellar("export", dir, "--out", out, "--include-sensitive", "--schema", schema, "--key-file", keyFile);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readFileSync(out, "utf8")).toContain(SECRETS[0]);
    const again = await openStore({ dir, key });
    await expect(again.audit.list()).rejects.toMatchObject({ code: "E_USAGE" });
    await again.close();
    const l = cellar("audit", "list", dir, "--key-file", keyFile);
    expect(l.status).toBe(2);
  });
});
