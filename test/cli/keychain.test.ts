/**
 * `cellar … --keychain SERVICE/ACCOUNT` against a real Secret Service: in one `dbus-run-session` with an
 * unlocked gnome-keyring in a private HOME (test/keys/keychain-session.ts), the app's generated openStore
 * creates stores under `keychainKey` (store-fixture.ts), then the real CLI (`node --import tsx
 * src/cli/cellar.ts`) reads them with the key from the keychain: info and verify succeed; a SERVICE/ACCOUNT
 * with no entry is KEY (3) and creates no entry; the key material and the sensitive values never print.
 * Under CI (`CI=true`) missing gnome-keyring or dbus-run-session is a failure; elsewhere the suite is skipped
 * and its title says why.
 */
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ProbeResult } from "../keys/keychain-probe.js";
import { inKeyringSession, isCI, newHome, removeHomes, repoRoot, runGroup, sessionEnv, skipReason } from "../keys/keychain-session.js";
import type { Step, StepExit } from "./helpers/keychain-steps.js";

const SERVICE = "dev.cellar.cli-test";
const ACCOUNT = "cli-account";
const SCHEMA = ["--schema", "src/generated/index.ts"];
const TSX = ["node", "--import", "tsx"];
const cellar = (...args: string[]): Step => ({ argv: [...TSX, join(repoRoot, "src/cli/cellar.ts"), ...args] });
const fixture = (dir: string, keychain: string): Step => ({ argv: [...TSX, join(repoRoot, "test/cli/store-fixture.ts"), "create", dir], env: { CELLAR_TEST_KEYCHAIN: keychain } });
const entries = (): Step => ({ argv: [...TSX, join(repoRoot, "test/keys/keychain-probe.ts")], env: { CELLAR_KEYCHAIN_OPS: JSON.stringify([{ op: "entries", service: SERVICE }]) } });
/** The values of the fixture's sensitive fields. */
const SENSITIVE = ["ada@example.org", "grace@example.org", "tok-SECRET-VALUE"];
const T = 240_000;

if (skipReason && !isCI) console.warn(`test/cli/keychain.test.ts: skipped: ${skipReason}`);
afterAll(removeHomes);

/** Runs `steps` in order inside one session with an unlocked keyring in `home`. */
async function inSession(home: string, steps: Step[]): Promise<StepExit[]> {
  const argv = inKeyringSession("unlocked", [process.execPath, "--import", "tsx", join(repoRoot, "test/cli/helpers/keychain-steps.ts")]);
  const run = await runGroup(argv, sessionEnv(home, { CELLAR_STEPS: JSON.stringify(steps), NO_COLOR: "" }), T - 10_000);
  const line = run.stdout.trim().split("\n").pop() ?? "";
  if (run.code !== 0 || !line.startsWith("[")) throw new Error(`session exited with ${run.signal ?? run.code}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  return JSON.parse(line) as StepExit[];
}

function entriesOf(exit: StepExit | undefined): { account: string; password: string }[] {
  expect(exit?.status, exit?.stderr).toBe(0);
  const [result] = JSON.parse(exit!.stdout.trim()) as ProbeResult[];
  if (!result?.ok) throw new Error(`probe failed: ${JSON.stringify(result)}`);
  return result.value as { account: string; password: string }[];
}

if (isCI && skipReason) {
  it("CI has a Secret Service to test `cellar --keychain` against", () => {
    expect.fail(`cannot test the CLI's --keychain: ${skipReason} (.ci/run installs them)`);
  });
}

describe.skipIf(!!skipReason)(`cellar --keychain against a real Secret Service (gnome-keyring)${skipReason ? ` — skipped: ${skipReason}` : ""}`, () => {
  it("info and verify open a store whose key is in the keychain; a missing entry is KEY (3) and creates none; no key material printed", async () => {
    const home = newHome("cellar-cli-keychain-");
    const [a, b] = [join(home, "store-a"), join(home, "store-b")];
    const exits = await inSession(home, [
      fixture(a, `${SERVICE}/${ACCOUNT}`), // 0: a fixed account
      fixture(b, SERVICE), // 1: the default account, the store id
      entries(), // 2
      cellar("info", a, "--keychain", `${SERVICE}/${ACCOUNT}`, ...SCHEMA, "--json"), // 3
      cellar("verify", a, "--keychain", `${SERVICE}/${ACCOUNT}`, ...SCHEMA, "--json"), // 4
      cellar("verify", a, "--keychain", `${SERVICE}/${ACCOUNT}`, ...SCHEMA), // 5
      cellar("info", b, "--keychain", SERVICE, ...SCHEMA, "--json"), // 6: SERVICE alone: the store id as account
      cellar("info", a, "--keychain", `${SERVICE}/no-such-account`, ...SCHEMA), // 7
      cellar("verify", a, "--keychain", `no.such.service/${ACCOUNT}`, ...SCHEMA, "--json"), // 8
      cellar("info", a, "--keychain", SERVICE, ...SCHEMA), // 9: store a's id names no entry
      cellar("info", a, "--keychain", `/${ACCOUNT}`, ...SCHEMA), // 10: no service
      entries(), // 11
    ]);
    expect(exits[0]!.status, exits[0]!.stderr).toBe(0);
    expect(exits[1]!.status, exits[1]!.stderr).toBe(0);
    const stored = entriesOf(exits[2]);
    // The Secret Service lists entries in no fixed order: one is ACCOUNT, the other a store id.
    const accounts = stored.map((e) => e.account);
    expect(accounts).toHaveLength(2);
    expect(accounts).toEqual(expect.arrayContaining([ACCOUNT, expect.stringMatching(/^[0-9a-f]{32}$/)]));
    for (const e of stored) expect(Buffer.from(e.password, "base64")).toHaveLength(32);

    const info = exits[3]!;
    expect(info.status, info.stderr).toBe(0);
    const doc = JSON.parse(info.stdout) as { key: { masterKey: string; encrypted: boolean }; entities: { name: string; records: number }[] };
    expect(doc.key).toMatchObject({ encrypted: true, masterKey: "external" });
    expect(doc.entities.find((e) => e.name === "tasks")).toMatchObject({ records: 30 });
    expect(doc.entities.find((e) => e.name === "profiles")).toMatchObject({ records: 3 });

    expect(exits[4]!.status, exits[4]!.stderr).toBe(0);
    expect(JSON.parse(exits[4]!.stdout)).toMatchObject({ ok: true });
    expect(exits[5]!.status, exits[5]!.stderr).toBe(0);
    expect(exits[5]!.stdout).toContain("34 decoded");
    expect(exits[5]!.stdout).toContain("no problems found");

    expect(exits[6]!.status, exits[6]!.stderr).toBe(0);
    expect((JSON.parse(exits[6]!.stdout) as typeof doc).entities.find((e) => e.name === "profiles")).toMatchObject({ records: 3 });

    const missing = exits[7]!;
    expect(missing.status, missing.stderr).toBe(3);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toMatch(new RegExp(`service \`${SERVICE.replaceAll(".", "\\.")}\`, account \`no-such-account\` is missing.*\\(E_KEY\\)`));
    const otherService = exits[8]!;
    expect(otherService.status, otherService.stderr).toBe(3);
    expect(JSON.parse(otherService.stdout)).toMatchObject({ error: { code: "E_KEY", exitCode: 3, message: expect.stringContaining("service `no.such.service`, account `cli-account` is missing") } });
    expect(exits[9]!.status, exits[9]!.stderr).toBe(3);
    expect(exits[9]!.stderr).toMatch(/account `[0-9a-f]{32}` is missing/);
    expect(exits[10]!.status, exits[10]!.stderr).toBe(2);
    expect(exits[10]!.stderr).toContain("(E_USAGE)");

    const byAccount = (list: { account: string; password: string }[]) => [...list].sort((x, y) => x.account.localeCompare(y.account));
    expect(byAccount(entriesOf(exits[11]))).toEqual(byAccount(stored)); // the failed lookups created no entry and changed none

    // Neither the key (base64, base64url or hex) nor a sensitive value in any output of the CLI.
    const secrets = [...SENSITIVE, ...stored.flatMap((e) => [e.password, Buffer.from(e.password, "base64").toString("hex"), Buffer.from(e.password, "base64").toString("base64url")])];
    for (const exit of exits.slice(3, 11)) {
      for (const s of secrets) {
        expect(exit.stdout, "stdout").not.toContain(s);
        expect(exit.stderr, "stderr").not.toContain(s);
      }
    }
  }, T);
});
