/**
 * `cellar rotate-key`, `reencrypt` and `change-passphrase`, run as the real command: a new data key, the old
 * one destroyed by a re-encryption, a new passphrase that opens the store while the old one is refused; the
 * new passphrase only ever from the environment (or a prompt); no secret in the output.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { keys } from "../../src/runtime/index.js";
import { openStore } from "../../src/generated/index.js";
import { cellar, CLI, NEW_PASS, noSecrets, PASS, repo, seed, STORE, taskId, tempRoot } from "./helpers/ops.js";

const { root, cleanup } = tempRoot("cellar-cli-keys-");
afterAll(cleanup);

it("rotate-key, reencrypt, then change-passphrase: the new passphrase opens the store, the old one is refused", { timeout: 300_000 }, async () => {
  const dir = path.join(root, "k");
  await seed(dir, 20);
  const r = await cellar(["rotate-key", dir, ...STORE, "--json"]);
  noSecrets(r);
  expect(r.code, r.stderr).toBe(0);
  const rotated = JSON.parse(r.stdout) as { activeKeyId: number; keys: { keyIds: number[] } };
  expect(rotated.keys.keyIds).toContain(rotated.activeKeyId);
  expect(rotated.keys.keyIds.length).toBe(2);

  const e = await cellar(["reencrypt", dir, ...STORE, "--json"]);
  noSecrets(e);
  expect(e.code, e.stderr).toBe(0);
  const re = JSON.parse(e.stdout) as { activeKeyId: number; destroyedKeyIds: number[]; keys: { keyIds: number[] } };
  expect(re.activeKeyId).toBe(rotated.activeKeyId);
  expect(re.destroyedKeyIds.length).toBe(1);
  expect(re.keys.keyIds).toEqual([rotated.activeKeyId]);

  // No new passphrase source and no terminal: exit 3, nothing changed.
  const none = await cellar(["change-passphrase", dir, ...STORE]);
  expect(none.code).toBe(3);

  // A backup taken with the CLI is not rewrapped by the change (only Cellar's own are): the command says so.
  const b = await cellar(["backup", dir, ...STORE, "--json"]);
  expect(b.code, b.stderr).toBe(0);
  const c = await cellar(["change-passphrase", dir, ...STORE, "--new-passphrase-env", "NEW_PASS", "--json"], { NEW_PASS });
  noSecrets(c);
  expect(c.code, c.stderr).toBe(0);
  expect(JSON.parse(c.stdout)).toMatchObject({ masterKey: "passphrase", backupsUnderOldKey: [(JSON.parse(b.stdout) as { file: string }).file] });
  expect(c.stderr).toMatch(/still open with the old key/);

  const old = await cellar(["compact", dir, ...STORE]);
  noSecrets(old);
  expect(old.code).toBe(3);
  const s = await openStore({ dir, key: keys.passphrase(NEW_PASS), cleanup: false });
  expect(await s.tasks.count()).toBe(20);
  expect((await s.tasks.get(taskId(5)))?.title).toBe("task 5");
  expect((await s.profiles.get("user-0"))?.authToken).toBe("token-SECRET-0");
  await s.close();
  const again = await cellar(["compact", dir, "--schema", STORE[1]!, "--passphrase-env", "NEW_PASS"], { NEW_PASS });
  expect(again.code, again.stderr).toBe(0);
});

/** Run `cellar …` under a pseudo-terminal (`script`), answering each prompt once it shows; all the terminal showed. */
function underTty(args: readonly string[], answers: readonly [RegExp, string][]): Promise<{ code: number | null; screen: string }> {
  const cmd = ["node", "--import", "tsx", CLI, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const child = spawn("script", ["-qec", cmd, "/dev/null"], { cwd: repo, stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, CELLAR_PASS: PASS } });
  let screen = "";
  let next = 0;
  child.stdout.on("data", (d: Buffer) => {
    screen += d.toString();
    const a = answers[next];
    if (a && a[0].test(screen)) {
      next++;
      child.stdin.write(`${a[1]}\r`);
    }
  });
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, screen })));
}

it.skipIf(process.platform === "win32")("change-passphrase on a terminal asks twice without echo; the new passphrase opens the store", { timeout: 300_000 }, async () => {
  const dir = path.join(root, "tty");
  await seed(dir, 5);
  const r = await underTty(["change-passphrase", dir, ...STORE], [
    [/New passphrase: /, NEW_PASS],
    [/New passphrase, again: /, NEW_PASS],
  ]);
  expect(r.code, r.screen).toBe(0);
  expect(r.screen).toMatch(/New passphrase, again: /);
  expect(r.screen).toMatch(/the old key no longer opens it/);
  expect(r.screen).not.toContain(NEW_PASS);
  expect(r.screen).not.toContain(PASS);
  const s = await openStore({ dir, key: keys.passphrase(NEW_PASS), cleanup: false });
  expect(await s.tasks.count()).toBe(5);
  await s.close();
});
