/**
 * `cellar repair <dir> [--from-backup FILE]`: open the store checking every block (`verifyOnOpen: true`),
 * which copies each damaged file into `quarantine/` (never deleted) and drops what is unreadable; with a
 * backup, bring the lost records back from it (`store.recoverFrom`); then compact, so the damaged files are
 * retired. A store too damaged to open (both manifests, the keyring) is, with a backup, copied whole beside
 * itself (`<dir>.damaged-<time>`) and restored from the backup. Reports what was quarantined, restored and
 * lost; exit FINDINGS when anything stays lost. Needs the store to itself: refused (exit IN_USE, naming the
 * pid) while another process has it open.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { addStoreOptions, type StoreCliOptions } from "../store-options.js";

export interface RepairCliOptions extends StoreCliOptions {
  fromBackup?: string;
  passwordEnv?: string;
}

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("repair")
      .description("quarantine what is damaged and bring lost records back from a backup (refused while another process has the store open)")
      .argument("<dir>", "store directory")
      .option("--from-backup <file>", "a backup of this store to restore the lost records from")
      .option("--password-env <var>", "a password backup: the environment variable holding its password"),
  ).action(async (dir: string, opts: RepairCliOptions) => (await import("../repair-run.js")).repair(dir, opts, ctx));
}
