/**
 * Shared setup of the ops command tests (test/cli/ops-*.test.ts): the real `cellar` command run as a child
 * process (`node --import tsx src/cli/cellar.ts …`) against real stores in temp dirs, created and read back
 * with the repo's generated `openStore`; the secrets every test checks never reach stdout or stderr.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { openStore, type CellarStore } from "../../../src/generated/index.js";
import { keys } from "../../../src/runtime/index.js";
import type { Engine } from "../../../src/runtime/storage/engine.js";
import { task } from "../../backup/helpers.js";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const CLI = path.join(repo, "src/cli/cellar.ts");
export const SCHEMA = path.join(repo, "src/generated/index.ts");

/** The store's passphrase and the sensitive values written: none may ever show in the CLI's output. */
export const PASS = "correct horse battery staple 7f3a";
export const NEW_PASS = "a brand new passphrase 91c2";
export const BACKUP_PASSWORD = "portable backup password 5d0e";
export const SECRETS = [PASS, NEW_PASS, BACKUP_PASSWORD, "token-SECRET-", "secret.person@"];

/** The cheapest Argon2id libsodium allows (the cost is stored in the keyring: the CLI's opens use it too). */
export const CHEAP = { opsLimit: 1, memLimit: 8192 };

/** A fresh temp root, removed by `cleanup`. */
export function tempRoot(prefix: string): { root: string; cleanup: () => void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { root, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `cellar …` in a child process with the passphrase in `CELLAR_PASS` (and `extraEnv`). */
export function cellar(args: readonly string[], extraEnv: Record<string, string> = {}, cwd = repo): Promise<CliRun> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", CELLAR_PASS: PASS, ...extraEnv },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

/** The options every store command takes here: the generated schema and the passphrase from `CELLAR_PASS`. */
export const STORE = ["--schema", SCHEMA, "--passphrase-env", "CELLAR_PASS"];

/** No secret in the run's output. */
export function noSecrets(r: CliRun): void {
  for (const s of SECRETS) {
    if (r.stdout.includes(s) || r.stderr.includes(s)) throw new Error(`a secret (${s.slice(0, 6)}…) reached the CLI's output:\n${r.stdout}\n${r.stderr}`);
  }
}

export const open = (dir: string, pass = PASS) => openStore({ dir, key: keys.passphrase(pass, CHEAP), cleanup: false });

export const profile = (i: number) => ({
  id: `user-${i}`,
  displayName: `User ${i}`,
  email: `secret.person@example${i}.com`,
  authToken: `token-SECRET-${i}`,
});

/** A store of `n` tasks and 3 profiles (with sensitive email and token), compacted into a segment. */
export async function seed(dir: string, n = 60): Promise<void> {
  const s = await open(dir);
  await s.batch((tx) => {
    for (let i = 0; i < n; i++) tx.tasks.put(task(i));
    for (let i = 0; i < 3; i++) tx.profiles.put(profile(i));
  });
  await s.compact();
  await s.close();
}

/** Where a task lives (file and frame), to damage it once the store is closed. */
export function where(s: CellarStore, key: string): { file: string; offset: number; length: number } {
  const e = (s as unknown as { engine: Engine }).engine;
  const loc = e.locate("tasks", key)!;
  return { file: path.join(e.dir, e.where(loc).file), offset: loc.frameOffset, length: loc.frameLength };
}

/** Flip one byte of `file` at `pos`. */
export function flip(file: string, pos: number): void {
  const fd = fs.openSync(file, "r+");
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, pos);
  b[0]! ^= 0x5a;
  fs.writeSync(fd, b, 0, 1, pos);
  fs.closeSync(fd);
}

export const taskId = (i: number) => `task-${String(i).padStart(5, "0")}`;
