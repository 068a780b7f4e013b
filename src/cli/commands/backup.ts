/**
 * `cellar backup <dir> [--to PATH] [--password-env VAR] [--label TEXT]`: an online, consistent backup into
 * one file (`store.backup`). `--to` ending in `.cellarbackup` is the file; any other `--to` is a directory
 * (default: the store's backup directory `<dir>.backups`) that gets `<store>-<UTC time>.cellarbackup`.
 * With `--password-env` the file is portable: its data keys are wrapped under Argon2id(password), so it
 * restores anywhere with the password alone. With the app holding the store, the app's process writes it.
 */
import path from "node:path";
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { addStoreOptions, type StoreCliOptions } from "../store-options.js";

interface BackupCliOptions extends StoreCliOptions {
  to?: string;
  passwordEnv?: string;
  label?: string;
}

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("backup")
      .description("take an online, consistent backup of the store into one file (run by the app's process when it holds the store)")
      .argument("<dir>", "store directory")
      .option("--to <path>", "backup file (ending in .cellarbackup) or directory (default: <dir>.backups)")
      .option("--password-env <var>", "protect the backup with the password in this environment variable (portable: restores with the password alone)")
      .option("--label <text>", "free text kept in the backup's metadata", "taken with the cellar CLI"),
  ).action(async (dir: string, opts: BackupCliOptions) => backup(dir, opts, ctx));
}

/** The file `--to` names: itself when it ends in `.cellarbackup`, else a new file name in that directory. */
function target(storeDir: string, to: string | undefined, defaultDir: string): string {
  if (to?.endsWith(".cellarbackup")) return to;
  const stamp = new Date().toISOString().replace(/[-:.]/g, "");
  return path.join(to ?? defaultDir, `${path.basename(storeDir)}-${stamp}.cellarbackup`);
}

async function backup(dir: string, opts: BackupCliOptions, ctx: CliContext): Promise<void> {
  const { createOutput, formatBytes: bytes } = await import("../output.js");
  const { abs, envSecret, withStore } = await import("../ops.js");
  const { defaultBackupDir } = await import("../../runtime/typed/auto-backup.js");
  const out = createOutput(opts, ctx);
  const at = abs(ctx, dir);
  const password = opts.passwordEnv !== undefined ? envSecret(ctx, opts.passwordEnv, "--password-env") : undefined;
  // Absolute: a follower's backup is written by the app's process, whose working directory is its own.
  const file = abs(ctx, target(at, opts.to !== undefined ? abs(ctx, opts.to) : undefined, defaultBackupDir(at)));
  await withStore(at, opts, ctx, "backup", true, async (store) => {
    const bar = out.progress("backup", 1);
    let info;
    try {
      info = await store.backup({
        to: file,
        label: opts.label ?? "",
        ...(password !== undefined ? { password } : {}),
        onProgress: (p) => bar.update(p.bytes, p.totalBytes),
      });
    } finally {
      bar.stop();
    }
    const doc = { ...info, createdAt: info.createdAt.toISOString(), ranIn: store.role === "follower" ? "writer process" : "this process" };
    out.result(doc, () => {
      const records = info.entities.filter((e) => !e.name.startsWith("~")).reduce((n, e) => n + e.records, 0);
      return `backup written: ${info.file}\n  ${bytes(info.bytes)}, ${records} records, protection: ${info.protection}${info.protection === "store-key" ? " (restoring needs this store's key)" : ""}`;
    });
  });
}
