/**
 * `cellar backups <dir> list|verify [FILE]`: the backup files in the store's backup directory (`<dir>.backups`,
 * or `--backup-dir`), newest first, with age, size, entities and whether each is this store's; `list` checks
 * each file's header, length and checksum (no key), `verify` checks every backup (or FILE) completely as a
 * restore would (storage/restore.ts `verifyBackup`: unpacked, opened, every record read), which needs the
 * store's key for store-key backups and `--password-env` for password backups. Exit FINDINGS when a backup
 * is damaged or could not be verified. Neither opens the store.
 */
import { Argument, type Command } from "commander";
import type { CliContext } from "../context.js";
import { addStoreOptions, type StoreCliOptions } from "../store-options.js";

export interface BackupsCliOptions extends StoreCliOptions {
  backupDir?: string;
  passwordEnv?: string;
}

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("backups")
      .description("list the store's backups, or verify them completely (exit 1 when one is damaged)")
      .argument("<dir>", "store directory")
      .addArgument(new Argument("<action>", "what to do").choices(["list", "verify"]))
      .argument("[file]", "verify: only this backup file")
      .option("--backup-dir <dir>", "directory of the backups (default: <dir>.backups)")
      .option("--password-env <var>", "verify: the environment variable holding the password of password backups"),
  ).action(async (dir: string, action: "list" | "verify", file: string | undefined, opts: BackupsCliOptions) => {
    const run = await import("../backups-run.js");
    await (action === "list" ? run.list(dir, file, opts, ctx) : run.verify(dir, file, opts, ctx));
  });
}
