/**
 * The options every store command shares and what they turn into: the key (`--passphrase-env`,
 * `--key-file`, `--keychain`, else a hidden prompt on a terminal; never a secret as an argument, which
 * `ps` shows), the app's schema (`--schema`, default the generated index of ./buf.gen.yaml), and the store
 * opened for a command. The runtime is imported when a command runs, never when this module loads.
 */
import { existsSync, readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type Command, Option } from "commander";
import { CliError, type CliContext, EXIT } from "./context.js";
import type { EntityDefinition, KeyProvider, MigrationStep, TypedStore } from "../runtime/index.js";

export interface StoreCliOptions {
  schema?: string;
  passphraseEnv?: string;
  keyFile?: string;
  keychain?: string;
  /** `--plaintext`: the store is not encrypted (`encryption: "none"`). */
  plaintext?: boolean;
  json?: boolean;
}

const refuseSecret = (flag: string) => (): never => {
  throw new CliError(
    `${flag} is not accepted: a secret on the command line shows in \`ps\` and the shell's history; use --passphrase-env VAR, --key-file FILE, --keychain SERVICE/ACCOUNT or the prompt`,
    EXIT.USAGE,
    "E_USAGE",
  );
};

/** --passphrase-env VAR, --key-file FILE, --keychain SERVICE/ACCOUNT, --plaintext. */
export function addKeyOptions(cmd: Command): Command {
  return cmd
    .option("--passphrase-env <VAR>", "read the passphrase from environment variable VAR")
    .option("--key-file <FILE>", "read the master key from FILE (32 bytes, or 64 hex digits)")
    .option("--keychain <SERVICE/ACCOUNT>", "take the master key from the OS keychain (cellar/keychain); ACCOUNT defaults to the store id")
    .option("--plaintext", "the store is not encrypted (created with encryption: \"none\")")
    .addOption(new Option("--passphrase <secret>").hideHelp().argParser(refuseSecret("--passphrase")))
    .addOption(new Option("--key <secret>").hideHelp().argParser(refuseSecret("--key")));
}

/** --schema <module>, the key options, --json. */
export function addStoreOptions(cmd: Command): Command {
  cmd.option("--schema <module>", "the app's generated index (exports `entities`; default: the protoc-gen-cellar out dir of ./buf.gen.yaml)");
  addKeyOptions(cmd);
  return cmd.option("--json", "print one JSON document on stdout");
}

/** The master key: exactly one source, else the prompt on a terminal, else `KEY`. */
export async function resolveKey(opts: StoreCliOptions, ctx: CliContext, prompt = "Passphrase: "): Promise<KeyProvider> {
  const given = [opts.passphraseEnv, opts.keyFile, opts.keychain].filter((s) => s !== undefined).length;
  if (given > 1) throw new CliError("give one key source: --passphrase-env, --key-file or --keychain", EXIT.USAGE, "E_USAGE");
  const { keys } = await import("../runtime/crypto/keys.js");
  if (opts.passphraseEnv !== undefined) {
    const value = ctx.env[opts.passphraseEnv];
    if (!value) throw new CliError(`environment variable ${opts.passphraseEnv} (--passphrase-env) is not set or empty`, EXIT.KEY, "E_KEY");
    return keys.passphrase(value);
  }
  if (opts.keyFile !== undefined) return keys.raw(readKeyFile(resolve(ctx.cwd, opts.keyFile)));
  if (opts.keychain !== undefined) {
    const [service, ...account] = opts.keychain.split("/");
    const { keychainKey } = await import("../runtime/crypto/keychain.js");
    return keychainKey({ service: service ?? "", ...(account.length ? { account: account.join("/") } : {}) });
  }
  if (ctx.stdin.isTTY !== true) {
    throw new CliError(
      "no key: give --passphrase-env VAR, --key-file FILE or --keychain SERVICE/ACCOUNT (or run it in a terminal to be asked for the passphrase)",
      EXIT.KEY,
      "E_KEY",
    );
  }
  return keys.passphrase(await askHidden(ctx, prompt));
}

/** 32 raw bytes, or 64 hex digits and an optional line end. */
function readKeyFile(file: string): Uint8Array {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new CliError(`cannot read the key file \`${file}\` (${(e as NodeJS.ErrnoException).code ?? "error"})`, EXIT.KEY, "E_KEY");
  }
  if (bytes.length === 32) return new Uint8Array(bytes);
  const text = bytes.toString("latin1").replace(/\r?\n$/, "");
  if (/^[0-9a-fA-F]{64}$/.test(text)) return new Uint8Array(Buffer.from(text, "hex"));
  throw new CliError(`the key file \`${file}\` must hold 32 bytes, or 64 hex digits (${bytes.length} bytes found)`, EXIT.KEY, "E_KEY");
}

/** A line read from the terminal without echo (readline over a muted output); Ctrl-C cancels. */
async function askHidden(ctx: CliContext, question: string): Promise<string> {
  const { createInterface } = await import("node:readline");
  const { Writable } = await import("node:stream");
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (!muted) ctx.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: ctx.stdin, output, terminal: true });
  return new Promise<string>((res, rej) => {
    rl.on("SIGINT", () => {
      rl.close();
      ctx.stderr.write("\n");
      rej(new CliError("cancelled at the passphrase prompt", EXIT.KEY, "E_KEY"));
    });
    rl.question(question, (answer) => {
      rl.close();
      ctx.stderr.write("\n");
      res(answer);
    });
    muted = true;
  });
}

export interface CliSchema {
  entities: Record<string, EntityDefinition>;
  migrations?: readonly MigrationStep[];
  /** The module loaded. */
  file: string;
}

/**
 * The app's entities (and migration steps): `--schema <module>`, else `index.js`/`index.ts` in the out dir
 * of the protoc-gen-cellar plugin of ./buf.gen.yaml. The steps: the module's `migrations` export, else the
 * registry its generated header names (`migrations_import=`).
 */
export async function loadSchema(opts: StoreCliOptions, ctx: CliContext): Promise<CliSchema> {
  const file = opts.schema !== undefined ? resolve(ctx.cwd, opts.schema) : defaultSchemaFile(ctx.cwd);
  if (!existsSync(file)) throw new CliError(`no schema module \`${file}\` (--schema)`, EXIT.USAGE, "E_USAGE");
  const mod = await importModule(file);
  const entities = mod.entities;
  if (entities === null || typeof entities !== "object") {
    throw new CliError(`\`${file}\` exports no \`entities\`: pass the app's generated index (--schema src/generated/index.ts)`, EXIT.USAGE, "E_USAGE");
  }
  const migrations = Array.isArray(mod.migrations) ? (mod.migrations as MigrationStep[]) : await registryOf(file);
  return { entities: entities as Record<string, EntityDefinition>, file, ...(migrations ? { migrations } : {}) };
}

function defaultSchemaFile(cwd: string): string {
  const template = join(cwd, "buf.gen.yaml");
  const out = existsSync(template) ? cellarOutDir(readFileSync(template, "utf8")) : undefined;
  if (out === undefined) {
    throw new CliError("no --schema given and no protoc-gen-cellar plugin with an `out` in ./buf.gen.yaml: pass --schema <the app's generated index>", EXIT.USAGE, "E_USAGE");
  }
  const js = join(cwd, out, "index.js");
  return existsSync(js) ? js : join(cwd, out, "index.ts");
}

/** The `out:` of the plugin entry whose `local` names protoc-gen-cellar. */
function cellarOutDir(text: string): string | undefined {
  const lines = text.split("\n");
  let start = lines.findIndex((l) => /^\s*-?\s*local:/.test(l) && l.includes("protoc-gen-cellar"));
  if (start < 0) return undefined;
  while (start > 0 && !/^\s*-\s/.test(lines[start]!)) start--; // the entry's first line
  for (let i = start; i < lines.length; i++) {
    if (i > start && (/^\s*-\s*(local|remote|protoc_builtin):/.test(lines[i]!) || /^\S/.test(lines[i]!))) break;
    const m = /^\s*(?:-\s*)?out:\s*["']?([^"'\s#]+)/.exec(lines[i]!);
    if (m) return m[1]!.replace(/\/+$/, "");
  }
  return undefined;
}

/** The `migrations` of the registry a generated index's header names (`migrations_import=…`), if any. */
async function registryOf(index: string): Promise<MigrationStep[] | undefined> {
  const head = readFileSync(index, "utf8").slice(0, 4096);
  const m = /migrations_import=([^,"\s]+)/.exec(head);
  if (!m) return undefined;
  let file = resolve(dirname(index), m[1]!);
  if (!existsSync(file) && file.endsWith(".js")) file = file.slice(0, -3) + ".ts";
  if (!existsSync(file)) return undefined;
  const mod = await importModule(file);
  return Array.isArray(mod.migrations) ? (mod.migrations as MigrationStep[]) : undefined;
}

/** Import a module; a `.ts` one through tsx's `tsImport` when this process cannot load TypeScript itself. */
async function importModule(file: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(isAbsolute(file) ? file : resolve(file)).href;
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ERR_UNKNOWN_FILE_EXTENSION") throw e;
  }
  let tsx: { tsImport(specifier: string, parent: string): Promise<unknown> };
  try {
    tsx = (await import("tsx/esm/api")) as typeof tsx;
  } catch {
    throw new CliError(`\`${file}\` is TypeScript and tsx is not installed: pass the built .js (--schema dist/…/index.js)`, EXIT.USAGE, "E_USAGE");
  }
  return (await tsx.tsImport(url, import.meta.url)) as Record<string, unknown>;
}

/** The pid the store's `LOCK` file names (the process holding it), or null. */
export function holderPid(dir: string): number | null {
  try {
    const h = JSON.parse(readFileSync(join(dir, "LOCK"), "utf8")) as { pid?: unknown } | null;
    return Number.isSafeInteger(h?.pid) ? (h!.pid as number) : null;
  } catch {
    return null;
  }
}

/** The store at `dir` must exist: a command never creates one. */
export function requireStore(dir: string): void {
  if (!existsSync(join(dir, "MANIFEST")) && !existsSync(join(dir, "MANIFEST.copy"))) {
    throw new CliError(`no store in \`${dir}\` (no MANIFEST)`, EXIT.USAGE, "E_USAGE");
  }
}

/** The key options as `openStore` options: `{ key }`, or `{ encryption: "none" }` with --plaintext. */
export async function keyOptions(opts: StoreCliOptions, ctx: CliContext, dir: string): Promise<{ key: KeyProvider } | { encryption: "none" }> {
  if (opts.plaintext) {
    if (opts.passphraseEnv !== undefined || opts.keyFile !== undefined || opts.keychain !== undefined) {
      throw new CliError("--plaintext takes no key: give it or a key source, not both", EXIT.USAGE, "E_USAGE");
    }
    return { encryption: "none" };
  }
  return { key: await resolveKey(opts, ctx, `Passphrase for ${dir}: `) };
}

/**
 * The store at `dir` with the app's entities, for a command. Reading (`write: false`): opened read-only
 * (`redactSensitive`: no file changes, no upgrade, no background work); when another process holds the
 * store, joined as a follower (sharing) and read from there. Writing: opened as the app opens it (writer, or
 * a follower whose writes go through the process holding it); a command that cannot go through it calls
 * `refuseFollower`. `"if-audited"`: reading, but as the app opens it when the store keeps an audit log, so
 * that the log records the command (an export: docs/SECURITY.md, "Audit log").
 */
export async function openCliStore(dir: string, opts: StoreCliOptions, ctx: CliContext, mode: { write: boolean | "if-audited" }): Promise<TypedStore<any>> {
  const abs = resolve(ctx.cwd, dir);
  requireStore(abs);
  const schema = await loadSchema(opts, ctx);
  const key = await keyOptions(opts, ctx, dir);
  const { openStore, isCellarError } = await import("../runtime/index.js");
  const base = { dir: abs, ...key, cleanup: false as const, ...(schema.migrations ? { migrations: schema.migrations } : {}) };
  if (mode.write === true) return openStore(schema.entities, base);
  for (let attempt = 0; ; attempt++) {
    try {
      const store = await openStore(schema.entities, { ...base, redactSensitive: true });
      if (mode.write !== "if-audited" || !(await keepsAuditLog(store))) return store;
      // A store that keeps an audit log records what this command does (a read-only open records nothing):
      // opened again as the app opens it, with the key already given (no second prompt). The read-only open
      // found no migration to run, so this one runs none either.
      await store.close();
      return await openStore(schema.entities, base);
    } catch (e) {
      if (isCellarError(e) && e.code === "E_MIGRATION") {
        throw new CliError(`${e.message}: \`cellar migrate ${dir} --dry-run\` says what the app's next open will do`, EXIT.FAILED, e.code);
      }
      if (!isCellarError(e) || e.code !== "E_LOCKED" || attempt > 2) throw e;
    }
    const store = await openStore(schema.entities, base);
    if (store.role === "follower") return store;
    await store.close(); // the holder closed meanwhile: open read-only after all
  }
}

/** Whether `store` keeps an audit log with entries (`audit.head()`; E_USAGE: it keeps none). Closes it on any other error. */
async function keepsAuditLog(store: TypedStore<any>): Promise<boolean> {
  try {
    return (await store.audit.head()) !== null;
  } catch (e) {
    const { isCellarError } = await import("../runtime/index.js");
    if (isCellarError(e, "E_USAGE")) return false;
    await store.close();
    throw e;
  }
}

/**
 * The audit actor of what a command does: `cellar-cli`, with the OS user's name when the OS gives one
 * (`cellar-cli:alice`; docs/SECURITY.md, "Audit log": what the OS says, not a proof of who ran it).
 */
export function cliActor(): string {
  try {
    const user = userInfo().username;
    return user ? `cellar-cli:${user}` : "cellar-cli";
  } catch {
    return "cellar-cli"; // no passwd entry for this uid (a container)
  }
}

/**
 * Run a command's work on `store` with `cellar-cli` as the audit actor (`store.audit.withActor`). It only names
 * the actor: a store without a log stays without one (the CLI never passes `audit` to `openStore`), and one
 * with a log records as it would anyway (a store that keeps a log records when opened without `audit`).
 */
export function asCli<T>(store: TypedStore<any>, fn: () => Promise<T>): Promise<T> {
  return store.audit.withActor(cliActor(), fn);
}

/** `IN_USE` for a writing command that another process holding the store cannot run for it. */
export function refuseFollower(store: { role: "writer" | "follower"; dir: string }, command: string): void {
  if (store.role !== "follower") return;
  const pid = holderPid(store.dir);
  throw new CliError(
    `\`cellar ${command}\` cannot run while ${pid !== null ? `process ${pid}` : "another process"} has the store \`${store.dir}\` open; close the app there and run it again`,
    EXIT.IN_USE,
    "E_IN_USE",
  );
}

/** What a read command needs before it opens the store: its absolute path (a store must be there), the app's schema, the key options. */
export async function prepareStore(dir: string, opts: StoreCliOptions, ctx: CliContext) {
  const abs = resolve(ctx.cwd, dir);
  requireStore(abs);
  const schema = await loadSchema(opts, ctx);
  const key = await keyOptions(opts, ctx, dir);
  return { abs, schema, key };
}
