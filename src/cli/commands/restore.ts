/**
 * `cellar restore <dir> --from FILE`: verify the backup completely into a directory beside the store, then
 * switch it in atomically (storage/restore.ts `restoreBackup`); a crash at any moment leaves the old store or
 * the restored one. Refused (exit IN_USE, naming the pid) while another process has the store open: a
 * restore replaces the files under it. A store-key backup needs the store's key (the key options); a password
 * backup needs `--password-env`, and the restored store's master key is then the key options' key when one
 * is given (its data keys are rewrapped under it), else the password itself (open it as a passphrase).
 */
import type { Command } from "commander";
import { CliError, type CliContext, EXIT } from "../context.js";
import { addStoreOptions, cliActor, type StoreCliOptions } from "../store-options.js";

interface RestoreCliOptions extends StoreCliOptions {
  from: string;
  passwordEnv?: string;
  replaceOtherStore?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("restore")
      .description("verify a backup and switch it in for the store, atomically (refused while another process has the store open)")
      .argument("<dir>", "store directory (created if missing; an existing store is replaced)")
      .requiredOption("--from <file>", "backup file to restore")
      .option("--password-env <var>", "a password backup: the environment variable holding its password")
      .option("--replace-other-store", "replace a store that is not the one the backup was taken of"),
  ).action(async (dir: string, opts: RestoreCliOptions) => restore(dir, opts, ctx));
}

async function restore(dir: string, opts: RestoreCliOptions, ctx: CliContext): Promise<void> {
  const { createOutput } = await import("../output.js");
  const { abs, heldBy, inUse, inUseOr, perEntity, phased, secret } = await import("../ops.js");
  const { resolveKey } = await import("../store-options.js");
  const { readBackupHeader, backupInfo } = await import("../../runtime/storage/backup.js");
  const { restoreBackup } = await import("../../runtime/storage/restore.js");
  const { nodeFileIO } = await import("../../runtime/platform/io.js");
  const out = createOutput(opts, ctx);
  const at = abs(ctx, dir);
  const file = abs(ctx, opts.from);
  const io = nodeFileIO();
  if (!io.exists(file)) throw new CliError(`no backup file \`${file}\` (--from)`, EXIT.USAGE, "E_USAGE");
  const r = readBackupHeader(io, file);
  const meta = backupInfo(file, r.header, r.size);
  // Another process holding the store: refused before any key is asked for (restoreBackup checks again, under the lock).
  const held = heldBy(at);
  if (held !== undefined) throw inUse(at, "restore", held);
  const password = meta.protection === "password" ? await secret(ctx, opts.passwordEnv, "--password-env", "password of the backup") : undefined;
  const wantsKey = meta.protection === "store-key" || (meta.protection === "password" && hasKeyOption(opts));
  const key = wantsKey ? await resolveKey(opts, ctx, "Passphrase of the store: ") : undefined;
  let info;
  try {
    info = await phased(out, "verify and restore", () =>
      restoreBackup(file, {
        dir: at,
        auditActor: cliActor(), // recorded only when the store keeps a log
        ...(key !== undefined ? { key } : {}),
        ...(password !== undefined ? { password } : {}),
        ...(opts.replaceOtherStore ? { replaceOtherStore: true } : {}),
      }),
    );
  } catch (e) {
    throw inUseOr(e, at, "restore");
  }
  const records = Object.fromEntries(info.entities.filter((e) => !e.name.startsWith("~")).map((e) => [e.name, e.records]));
  const masterKey = meta.protection !== "password" ? "the store's, unchanged" : key === undefined ? "the backup's password (open the store with it as a passphrase)" : "the key given (the data keys were rewrapped under it)";
  const doc = { dir: at, from: info.file, createdAt: info.createdAt.toISOString(), protection: info.protection, records, masterKey };
  out.result(doc, () => `restored \`${at}\` from ${info.file} (taken ${doc.createdAt})\n  records: ${perEntity(records)}${meta.protection === "password" && key === undefined ? `\n  master key: ${masterKey}` : ""}`);
}

function hasKeyOption(opts: StoreCliOptions): boolean {
  return opts.passphraseEnv !== undefined || opts.keyFile !== undefined || opts.keychain !== undefined;
}
