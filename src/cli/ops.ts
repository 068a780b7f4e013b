/**
 * Shared helpers of the CLI's writing and lifecycle commands (commands/compact.ts, backup.ts, restore.ts,
 * backups.ts, export.ts, import.ts, rotate-key.ts, change-passphrase.ts, reencrypt.ts, repair.ts). A command
 * module imports this with `await import` when its action runs, so that building the program loads no runtime.
 *
 * Another process holding the store: a command that the runtime runs through the writer (a follower's
 * `compact`, `backup`) goes through it; any other writing command fails with exit IN_USE, naming the holder's
 * pid and what to do, before it changes anything.
 */
import fs from "node:fs";
import path from "node:path";
import { type CellarError, isCellarError } from "../runtime/errors.js";
import { nodeFileIO } from "../runtime/platform/io.js";
import { StoreLock } from "../runtime/platform/lock.js";
import { BackupLister } from "../runtime/storage/backup-list.js";
import { peekManifest } from "../runtime/storage/manifest.js";
import { defaultBackupDir } from "../runtime/typed/auto-backup.js";
import type { EntityDefinition } from "../runtime/typed/entity.js";
import type { TypedStore } from "../runtime/typed/types.js";
import { CliError, type CliContext, EXIT, setExitCode } from "./context.js";
import type { Output, ProgressHandle } from "./output.js";
import { asCli, holderPid, openCliStore, resolveKey, type StoreCliOptions } from "./store-options.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyStore = TypedStore<any>;

/** Exit IN_USE: `cellar <what>` cannot run while process `pid` holds the store, and what to do. */
export function inUse(dir: string, what: string, pid: number | null | undefined): CliError {
  const who = pid !== null && pid !== undefined ? `process ${pid}` : "another process (its `LOCK` file does not name it)";
  return new CliError(
    `store \`${dir}\` is open in ${who}; \`cellar ${what}\` does not run through another process: close the app holding it (or wait for it to exit) and run the command again`,
    EXIT.IN_USE,
    "E_IN_USE",
  );
}

/** `e` as the CLI's IN_USE error when another process holds the store (E_LOCKED, E_FOLLOWER); else `e` itself. */
export function inUseOr(e: unknown, dir: string, what: string): unknown {
  if (isCellarError(e, "E_FOLLOWER")) return inUse(dir, what, (e as CellarError & { writerPid: number | null }).writerPid);
  if (isCellarError(e, "E_LOCKED")) return inUse(dir, what, (e as CellarError & { holder: { pid: number } | null }).holder?.pid ?? holderPid(dir));
  return e;
}

/** Refuse (IN_USE) when this process follows another one's store: `what` runs only in the writer. */
export function requireWriter(store: AnyStore, dir: string, what: string): void {
  if (store.role === "follower") throw inUse(dir, what, holderPid(dir));
}

/**
 * Open the store in `dir` (the app's schema and key: store-options.ts), run `fn` (audit actor `cellar-cli`:
 * `asCli`), close it; another process's hold on the store becomes exit IN_USE.
 */
export async function withStore<T>(dir: string, opts: StoreCliOptions, ctx: CliContext, what: string, write: boolean | "if-audited", fn: (store: AnyStore) => Promise<T>): Promise<T> {
  let store: AnyStore;
  try {
    store = await openCliStore(dir, opts, ctx, { write });
  } catch (e) {
    throw inUseOr(e, dir, what);
  }
  try {
    return await asCli(store, () => fn(store)); // what it records names `cellar-cli` as the actor
  } catch (e) {
    throw inUseOr(e, dir, what);
  } finally {
    await store.close();
  }
}

/** The value of the environment variable `name` (a password or passphrase): never an argument, never echoed. */
export function envSecret(ctx: CliContext, name: string, option: string): string {
  const v = ctx.env[name];
  if (v === undefined || v === "") throw new CliError(`${option} names \`${name}\`, which is not set (or empty) in the environment`, EXIT.KEY, "E_KEY");
  return v;
}

/**
 * A password or passphrase: from the environment variable `envVar` (`option` names the flag), else asked with
 * a hidden prompt when stdin is a terminal (`prompt`), else exit KEY. Never an argument.
 */
export async function secret(ctx: CliContext, envVar: string | undefined, option: string, prompt: string): Promise<string> {
  if (envVar !== undefined) return envSecret(ctx, envVar, option);
  if (!ctx.stdin.isTTY) throw new CliError(`no ${prompt}: pass ${option} VAR (stdin is not a terminal to ask on)`, EXIT.KEY, "E_KEY");
  const p = await resolveKey({}, ctx, `${prompt[0]!.toUpperCase()}${prompt.slice(1)}: `);
  if (p.kind !== "passphrase") throw new CliError(`${prompt}: expected a passphrase`, EXIT.KEY, "E_KEY");
  return typeof p.passphrase === "string" ? p.passphrase : Buffer.from(p.passphrase).toString("utf8");
}

/** A new passphrase: from `--new-passphrase-env VAR`, else asked twice with a hidden prompt (the two must match). */
export async function newPassphrase(ctx: CliContext, envVar: string | undefined): Promise<string> {
  if (envVar !== undefined) return envSecret(ctx, envVar, "--new-passphrase-env");
  const first = await secret(ctx, undefined, "--new-passphrase-env", "new passphrase");
  const again = await secret(ctx, undefined, "--new-passphrase-env", "new passphrase, again");
  if (first !== again) throw new CliError("the two new passphrases differ: nothing was changed", EXIT.USAGE, "E_USAGE");
  return first;
}

/**
 * The pid of the process holding the store in `dir` (null: held, but `LOCK` does not name it), or undefined
 * when nobody holds it (the kernel lock decides: taken and released at once; `LOCK` content is information only).
 */
export function heldBy(dir: string): number | null | undefined {
  const io = nodeFileIO();
  if (!io.exists(path.join(dir, "LOCK"))) return undefined;
  const lock = StoreLock.tryAcquire(io, dir);
  if (lock) {
    lock.release();
    return undefined;
  }
  return holderPid(dir);
}

/** The id of the store in `dir`, hex, from either manifest copy (no key needed); null when neither reads. */
export function storeIdOf(dir: string): string | null {
  for (const name of ["MANIFEST", "MANIFEST.copy"]) {
    try {
      return Buffer.from(peekManifest(fs.readFileSync(path.join(dir, name)), name).storeId).toString("hex");
    } catch {
      // missing or damaged: the other copy
    }
  }
  return null;
}

/**
 * The store-key backups of the store in `dir` in its backup directory that a master key change does not
 * rewrap (the runtime rewraps Cellar's own, labelled `cellar:…`; those taken with `cellar backup` or
 * `store.backup()` keep opening with the old key).
 */
export async function backupsUnderOldKey(dir: string): Promise<string[]> {
  const id = storeIdOf(dir);
  const listed = await new BackupLister().list(defaultBackupDir(dir), { checksum: false });
  return listed.flatMap((b) => (b.damaged === null && b.storeId === id && b.protection === "store-key" && !b.label.startsWith("cellar:") ? [b.file] : []));
}

/** A path given on the command line, resolved against the CLI's working directory. */
export function abs(ctx: CliContext, p: string): string {
  return path.resolve(ctx.cwd, p);
}

/** Storage names from `--entity` values, which may be storage names or store properties (`tasks`, `focusSessions`). */
export function storageNames(entities: Record<string, EntityDefinition>, given: readonly string[] | undefined): string[] | undefined {
  if (!given?.length) return undefined;
  const byName = new Map(Object.values(entities).map((d) => [d.name, d.name]));
  for (const [prop, d] of Object.entries(entities)) byName.set(prop, d.name);
  return given.map((n) => {
    const name = byName.get(n);
    if (!name) throw new CliError(`no entity \`${n}\` in the schema (entities: ${[...new Set(byName.values())].join(", ")})`, EXIT.USAGE, "E_USAGE");
    return name;
  });
}

/** Lines of `file` (newlines, plus a last line without one), read a chunk at a time; exit USAGE when it is missing. */
export async function countLines(file: string): Promise<number> {
  if (!fs.existsSync(file)) throw new CliError(`no file \`${file}\``, EXIT.USAGE, "E_USAGE");
  let n = 0;
  let last = 10;
  for await (const chunk of fs.createReadStream(file)) {
    const b = chunk as Buffer;
    for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) n++;
    if (b.length) last = b[b.length - 1]!;
  }
  return last === 10 ? n : n + 1;
}

/** How long ago `at` was: `42s`, `5m`, `3h`, `2d`. */
export function age(at: Date, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - at.getTime()) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** Run `fn` under a progress bar of `steps` phases (for operations the runtime reports no progress of). */
export async function phased<T>(out: Output, label: string, fn: (step: (done: number) => void) => Promise<T>, steps = 1): Promise<T> {
  const bar: ProgressHandle = out.progress(label, steps);
  try {
    const r = await fn((done) => bar.update(done, steps));
    bar.update(steps, steps);
    return r;
  } finally {
    bar.stop();
  }
}

/** `{ a: 1, b: 2, c: 0 }` as `a 1, b 2` (records per entity; entities without any left out). */
export function perEntity(counts: Record<string, number>): string {
  const parts = Object.entries(counts).flatMap(([k, v]) => (v ? [`${k} ${v}`] : []));
  return parts.length ? parts.join(", ") : "none";
}

/** End the command with exit code `EXIT[code]` after its result was printed (FINDINGS: it ran and found problems). */
export function exitWith(ctx: CliContext, code: keyof typeof EXIT): void {
  setExitCode(ctx, EXIT[code]);
}
