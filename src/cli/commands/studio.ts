/**
 * `cellar studio <dir>`: a local web page to look into a store (docs/STUDIO.md). The store is opened with
 * the CLI's key options (store-options.ts), never with anything from the page: as the app opens it (writer,
 * or a follower of the process holding it, then read-only), or with `--read-only` without any file change
 * and without the keys of sensitive fields. The server itself is src/studio/, imported when the command runs.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { addStoreOptions, asCli, loadSchema, openCliStore, resolveKey, type StoreCliOptions } from "../store-options.js";

interface StudioFlags extends StoreCliOptions {
  readOnly?: boolean;
  open: boolean;
  port?: string;
}

/** The schema lock the generated index was made with (`lock=` in its header), for the health page. */
function lockFileOf(schemaFile: string, cwd: string): string | undefined {
  try {
    const m = /[,"\s]lock=([^,"\s]+)/.exec(readFileSync(schemaFile, "utf8").slice(0, 4096));
    return m ? resolve(cwd, m[1]!, "index.json") : undefined;
  } catch {
    return undefined;
  }
}

/** The key again for verifying backups, when it comes from a source that does not ask (a prompt would ask twice). */
async function verifyKey(opts: StudioFlags, ctx: CliContext) {
  if (opts.plaintext || (opts.passphraseEnv === undefined && opts.keyFile === undefined && opts.keychain === undefined)) return undefined;
  return resolveKey(opts, ctx);
}

async function studio(dir: string, opts: StudioFlags, ctx: CliContext): Promise<void> {
  const port = opts.port === undefined ? undefined : Number(opts.port);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536)) {
    const { CliError, EXIT } = await import("../context.js");
    throw new CliError("--port takes a port number (0: any free port)", EXIT.USAGE, "E_USAGE");
  }
  const schema = await loadSchema(opts, ctx);
  const store = await openCliStore(dir, opts, ctx, { write: opts.readOnly !== true });
  try {
    const { launchStudio } = await import("../../studio/launch.js");
    const key = await verifyKey(opts, ctx);
    const lockFile = lockFileOf(schema.file, ctx.cwd);
    // The page's requests are served in this scope: what they record names `cellar-cli` (asCli).
    const { stopped } = await asCli(store, () => launchStudio({
      store,
      entities: schema.entities,
      readOnly: opts.readOnly === true,
      open: opts.open,
      out: (l) => ctx.stdout.write(`${l}\n`),
      err: (l) => ctx.stderr.write(`${l}\n`),
      ...(key !== undefined && { key }),
      ...(lockFile !== undefined && { lockFile }),
      ...(port !== undefined && { port }),
    }));
    await stopped;
  } finally {
    await store.close();
  }
}

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("studio")
      .description("open a local web page to browse, edit and check a store (127.0.0.1 only, a one-time link)")
      .argument("<dir>", "the store directory")
      .option("--read-only", "no edits or deletes; the store is opened without changing a file and without the keys of sensitive fields")
      .option("--no-open", "print the link only; do not open a browser")
      .option("--port <n>", "listen on this port (default: a free one)"),
  ).action(async (dir: string, opts: StudioFlags) => studio(dir, opts, ctx));
}
