// The store commands of the real `cellar` (node --import tsx src/cli/cellar.ts, a child process) against
// real stores the app's generated openStore wrote in temp dirs (store-fixture.ts): info, inspect, verify and
// migrate --dry-run, human and --json; damage found; keys from the environment and from a file; no key
// without a terminal; secrets never printed; a store another process holds.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repoRoot = join(import.meta.dirname, "..", "..");
const cellarTs = join(repoRoot, "src", "cli", "cellar.ts");
const fixture = join(import.meta.dirname, "store-fixture.ts");
const PASS = "correct-horse-CLI-passphrase";
const KEY_HEX = "8f".repeat(16) + "3c".repeat(16);
/** Values of sensitive fields, and the secrets: none may appear in any output. */
const SECRETS = ["ada@example.org", "tok-SECRET-VALUE", PASS, KEY_HEX];
const SCHEMA = ["--schema", "src/generated/index.ts"];
const WITH_PASS = ["--passphrase-env", "CELLAR_PASS", ...SCHEMA];
const T = 180_000;

let tmp: string;
let store: string;
const env = { ...process.env, CELLAR_PASS: PASS, NO_COLOR: "" };

function cellar(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ["--import", "tsx", cellarTs, ...args], { cwd: repoRoot, env: { ...env, ...extraEnv }, encoding: "utf8" });
  for (const s of SECRETS) {
    expect(r.stdout, `stdout of ${args.join(" ")}`).not.toContain(s);
    expect(r.stderr, `stderr of ${args.join(" ")}`).not.toContain(s);
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function makeStore(mode: "create" | "old", dir: string, key: { pass?: string; hex?: string }): void {
  const r = spawnSync(process.execPath, ["--import", "tsx", fixture, mode, dir], {
    cwd: repoRoot,
    env: { ...process.env, ...(key.pass ? { CELLAR_TEST_PASSPHRASE: key.pass } : {}), ...(key.hex ? { CELLAR_TEST_KEY_HEX: key.hex } : {}) },
    encoding: "utf8",
  });
  expect(r.status, r.stderr).toBe(0);
}

/** Every file of a directory with its bytes' hash (what "changes nothing" compares). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    out[f] = statSync(p).isDirectory() ? "dir" : createHash("sha256").update(readFileSync(p)).digest("hex");
  }
  return out;
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "cellar-cli-"));
  store = join(tmp, "store");
  makeStore("create", store, { pass: PASS });
}, T);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("info", () => {
  it("shows format, entities, versions, counts, bytes, key info and the recovery report; changes nothing", () => {
    const before = snapshot(store);
    const r = cellar(["info", store, ...WITH_PASS]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("format   4 (this cellar writes 4)");
    expect(r.stdout).toContain("opened   read-only");
    expect(r.stdout).toMatch(/\n {2}tasks +tasks +1 +1 +30 /);
    expect(r.stdout).toMatch(/\n {2}profiles +profiles +1 +1 +3 /);
    expect(r.stdout).toContain("key      passphrase master key; data keys 1 (active 1)");
    expect(r.stdout).toContain("nothing found: the store opened clean");
    expect(r.stdout).not.toContain("\u001b["); // no colours: stdout is no terminal
    expect(snapshot(store)).toEqual(before);
  }, T);

  it("--json: one JSON document", () => {
    const r = cellar(["info", store, "--json", ...WITH_PASS]);
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { formatVersion: number; key: { masterKey: string; encrypted: boolean }; entities: { name: string; records: number; schemaVersion: number; versions: Record<string, number> }[]; recovery: { damaged: unknown[] } };
    expect(doc.formatVersion).toBe(4);
    expect(doc.key).toMatchObject({ encrypted: true, masterKey: "passphrase" });
    expect(doc.entities.find((e) => e.name === "tasks")).toMatchObject({ records: 30, schemaVersion: 1, versions: { 1: 30 } });
    expect(doc.entities.find((e) => e.name === "focus_sessions")).toMatchObject({ records: 0, schemaVersion: 3 });
    expect(doc.recovery.damaged).toEqual([]);
  }, T);
});

describe("inspect", () => {
  it("prints records with sensitive fields redacted, filtered by entity and key prefix", () => {
    const r = cellar(["inspect", store, "--entity", "profiles", ...WITH_PASS]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(3);
    expect(r.stdout).toContain('profiles u1 v1 {"id":"u1","displayName":"Ada","email":"[redacted]","authToken":"[redacted]"}');
    const p = cellar(["inspect", store, "--entity", "tasks", "--key-prefix", "task-02", "--json", ...WITH_PASS]);
    const doc = JSON.parse(p.stdout) as { records: { key: string }[] };
    expect(doc.records.map((x) => x.key)).toEqual(Array.from({ length: 10 }, (_, i) => `task-02${i}`));
  }, T);

  it("--where runs an index query (enum by name), --limit, NDJSON", () => {
    const r = cellar(["inspect", store, "--entity", "tasks", "--where", "status=IN_PROGRESS", "--limit", "4", "--ndjson", ...WITH_PASS]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { key: string; json: { status: string } });
    expect(lines.map((l) => l.key)).toEqual(["task-000", "task-003", "task-006", "task-009"]);
    expect(lines.every((l) => l.json.status === "TASK_STATUS_IN_PROGRESS")).toBe(true);
    const range = cellar(["inspect", store, "--entity", "tasks", "--where", "status=TASK_STATUS_TODO", "--where", "createdAt>=2026-01-02T03:04:32Z", "--json", ...WITH_PASS]);
    expect((JSON.parse(range.stdout) as { records: { key: string }[] }).records.map((x) => x.key)).toEqual(["task-028", "task-029"]);
    const bad = cellar(["inspect", store, "--entity", "tasks", "--where", "status=NOPE", ...WITH_PASS]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("`NOPE` is not a value of the enum");
  }, T);
});

describe("verify", () => {
  it("reads and decodes every record of a sound store: exit 0", () => {
    const r = cellar(["verify", store, ...WITH_PASS]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("34 decoded");
    expect(r.stdout).toContain("no problems found");
    // The result is kept in the store (VERIFIED), by the CLI's actor, for `lastVerification` and the studio.
    const v = JSON.parse(readFileSync(join(store, "VERIFIED"), "utf8")) as Record<string, unknown>;
    expect(v).toMatchObject({ v: 1, ok: true, problems: 0, decoded: 34, by: expect.stringMatching(/^cellar-cli/) });
  }, T);

  it("a damaged byte in the segment: exit FINDINGS, the damage and the lost records reported, nothing changed", () => {
    const damaged = join(tmp, "damaged");
    cpSync(store, damaged, { recursive: true });
    const seg = readdirSync(damaged).find((f) => f.endsWith(".seg"))!;
    const bytes = readFileSync(join(damaged, seg));
    bytes[200]! ^= 0xff;
    writeFileSync(join(damaged, seg), bytes);
    rmSync(join(damaged, "VERIFIED"), { force: true }); // copied from the sound store's verification above
    const before = snapshot(damaged);
    const r = cellar(["verify", damaged, "--json", ...WITH_PASS]);
    expect(r.status, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as { ok: boolean; findings: { kind: string; file: string; records: unknown[] }[] };
    expect(doc.ok).toBe(false);
    expect(doc.findings[0]).toMatchObject({ kind: "damage", file: seg, reason: "checksum mismatch" });
    expect(doc.findings[0]!.records.length).toBeGreaterThan(0);
    // No record changed; the result is kept in VERIFIED (the only new file).
    const { VERIFIED: verified, ...after } = snapshot(damaged);
    expect(after).toEqual(before);
    expect(verified).toBeDefined();
    expect(JSON.parse(readFileSync(join(damaged, "VERIFIED"), "utf8"))).toMatchObject({ ok: false, problems: doc.findings.length, damage: doc.findings.length });
    const human = cellar(["verify", damaged, ...WITH_PASS]);
    expect(human.status).toBe(1);
    expect(human.stdout).toMatch(/damage: segment-\d+\.seg at \d+: checksum mismatch; \d record\(s\) lost: /);
  }, T);
});

describe("migrate --dry-run", () => {
  it("says what an upgrade would do and changes nothing", () => {
    const old = join(tmp, "old");
    makeStore("old", old, { pass: PASS });
    const before = snapshot(old);
    const r = cellar(["migrate", old, "--dry-run", ...WITH_PASS]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/focus_sessions +3 +2 +v2:2 +migrate +2→3 +2/);
    expect(r.stdout).toContain(`after a verified backup into ${old}.backups`);
    const j = JSON.parse(cellar(["migrate", old, "--dry-run", "--json", ...WITH_PASS]).stdout) as { wouldMigrate: boolean; backup: boolean; entities: { name: string; action: string; toMigrate: number; steps: unknown[] }[] };
    expect(j).toMatchObject({ wouldMigrate: true, backup: true });
    expect(j.entities.find((e) => e.name === "focus_sessions")).toMatchObject({ action: "migrate", toMigrate: 2, steps: [{ from: 2, to: 3, registered: true }] });
    const inspect = cellar(["inspect", old, ...WITH_PASS]);
    expect(inspect.status).toBe(10);
    expect(inspect.stderr).toContain(`the store needs a migration (\`focus_sessions\`)`);
    expect(inspect.stderr).toContain(`\`cellar migrate ${old} --dry-run\` says what the app's next open will do (E_MIGRATION)`);
    expect(snapshot(old)).toEqual(before);
    const current = cellar(["migrate", store, "--dry-run", ...WITH_PASS]);
    expect(current.stdout).toContain("nothing to migrate");
    expect(cellar(["migrate", store, ...WITH_PASS]).status).toBe(2);
  }, T);
});

describe("keys", () => {
  it("from a key file (64 hex digits and a newline, or 32 raw bytes); a wrong key exits KEY", () => {
    const raw = join(tmp, "raw");
    makeStore("create", raw, { hex: KEY_HEX });
    writeFileSync(join(tmp, "key.hex"), KEY_HEX + "\n");
    writeFileSync(join(tmp, "key.bin"), Buffer.from(KEY_HEX, "hex"));
    for (const file of ["key.hex", "key.bin"]) {
      const r = cellar(["info", raw, "--json", "--key-file", join(tmp, file), ...SCHEMA]);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ key: { masterKey: "raw" } });
    }
    writeFileSync(join(tmp, "wrong.hex"), "11".repeat(32));
    const wrong = cellar(["info", raw, "--key-file", join(tmp, "wrong.hex"), ...SCHEMA]);
    expect(wrong.status).toBe(3);
    expect(wrong.stderr).toMatch(/^cellar: .*\(E_KEY\)\n$/);
    const wrongPass = cellar(["info", store, "--passphrase-env", "OTHER", ...SCHEMA], { OTHER: "not-the-passphrase" });
    expect(wrongPass.status).toBe(3);
  }, T);

  it("no key and no terminal: exit KEY with what to pass; a secret as an argument is refused", () => {
    const r = cellar(["info", store, ...SCHEMA]);
    expect(r.status).toBe(3);
    expect(r.stderr).toBe(
      "cellar: no key: give --passphrase-env VAR, --key-file FILE or --keychain SERVICE/ACCOUNT (or run it in a terminal to be asked for the passphrase) (E_KEY)\n",
    );
    const j = cellar(["info", store, "--json", ...SCHEMA]);
    expect(JSON.parse(j.stdout)).toMatchObject({ error: { code: "E_KEY", exitCode: 3 } });
    const unset = cellar(["info", store, "--passphrase-env", "NOT_SET_ANYWHERE", ...SCHEMA]);
    expect(unset.status).toBe(3);
    expect(unset.stderr).toContain("environment variable NOT_SET_ANYWHERE (--passphrase-env) is not set or empty");
    const arg = spawnSync(process.execPath, ["--import", "tsx", cellarTs, "info", store, "--passphrase", "hunter2-on-argv", ...SCHEMA], { cwd: repoRoot, encoding: "utf8" });
    expect(arg.status).toBe(2);
    expect(arg.stderr).toContain("--passphrase is not accepted: a secret on the command line shows in `ps`");
    expect(arg.stderr + arg.stdout).not.toContain("hunter2-on-argv");
  }, T);

  it("no store in the directory: USAGE, and nothing is created", () => {
    const empty = join(tmp, "empty");
    const r = cellar(["info", empty, ...WITH_PASS]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("no store in");
    expect(() => statSync(empty)).toThrow();
  }, T);
});

describe("while another process holds the store", () => {
  it("info, inspect and verify read it as a follower", async () => {
    const held = join(tmp, "held");
    cpSync(store, held, { recursive: true });
    const holder = spawn(process.execPath, ["--import", "tsx", fixture, "hold", held], { cwd: repoRoot, env: { ...process.env, CELLAR_TEST_PASSPHRASE: PASS }, stdio: ["pipe", "pipe", "inherit"] });
    try {
      const line = await new Promise<string>((res, rej) => {
        holder.stdout.on("data", (b: Buffer) => res(b.toString()));
        holder.on("exit", (code) => rej(new Error(`holder exited ${code}`)));
      });
      expect(line).toBe(`holding ${holder.pid}\n`);
      const info = cellar(["info", held, "--json", ...WITH_PASS]);
      expect(info.status, info.stderr).toBe(0);
      expect(JSON.parse(info.stdout)).toMatchObject({ opened: "follower", holderPid: holder.pid });
      expect(cellar(["info", held, ...WITH_PASS]).stdout).toContain(`opened   as a follower, read from its files (process ${holder.pid} holds the store)`);
      const inspect = cellar(["inspect", held, "--entity", "profiles", "--json", ...WITH_PASS]);
      expect(inspect.status, inspect.stderr).toBe(0);
      expect((JSON.parse(inspect.stdout) as { records: unknown[] }).records).toHaveLength(3);
      const verify = cellar(["verify", held, ...WITH_PASS]);
      expect(verify.status, verify.stderr).toBe(0);
    } finally {
      holder.stdin.end();
      await new Promise((r) => holder.once("exit", r));
    }
    expect(holder.exitCode).toBe(0);
  }, T);
});
