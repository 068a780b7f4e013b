/**
 * The work of `cellar backups <dir> list|verify` (commands/backups.ts registers it; this module is imported
 * when the command runs). Listing reads headers and checksums without a key; verifying checks each backup
 * as a restore would (`verifyBackup`).
 */
import fs from "node:fs";
import path from "node:path";
import { isCellarError } from "../runtime/errors.js";
import type { KeyProvider } from "../runtime/crypto/keys.js";
import { nodeFileIO } from "../runtime/platform/io.js";
import { type BackupInfo, backupInfo, type ListedBackup, readBackupHeader } from "../runtime/storage/backup.js";
import { BackupLister } from "../runtime/storage/backup-list.js";
import { verifyBackup } from "../runtime/storage/restore.js";
import { defaultBackupDir } from "../runtime/typed/auto-backup.js";
import { CliError, type CliContext, EXIT } from "./context.js";
import { createOutput, formatBytes as bytes } from "./output.js";
import { abs, age, exitWith, perEntity, secret, storeIdOf } from "./ops.js";
import { resolveKey } from "./store-options.js";
import type { BackupsCliOptions } from "./commands/backups.js";

/** One backup as `list` and `verify` show it. */
interface Row {
  file: string;
  bytes: number;
  createdAt: string | null;
  ageSeconds: number | null;
  label: string | null;
  protection: BackupInfo["protection"] | null;
  /** Whether it is a backup of the store in `<dir>` (null: that store's id cannot be read). */
  thisStore: boolean | null;
  records: Record<string, number>;
  /** `ok`, `damaged` (list: header, length or checksum; verify: any check), `unverified` (verify: no key or password for it). */
  status: "ok" | "damaged" | "unverified";
  problem: string | null;
}

function row(b: ListedBackup, storeId: string | null, now: number): Row {
  const info = b.damaged === null ? b : b.info;
  return {
    file: b.file,
    bytes: b.bytes,
    createdAt: info ? info.createdAt.toISOString() : null,
    ageSeconds: info ? Math.round((now - info.createdAt.getTime()) / 1000) : null,
    label: info?.label ?? null,
    protection: info?.protection ?? null,
    thisStore: info && storeId ? info.storeId === storeId : null,
    records: info ? Object.fromEntries(info.entities.filter((e) => !e.name.startsWith("~")).map((e) => [e.name, e.records])) : {},
    status: b.damaged === null ? "ok" : "damaged",
    problem: b.damaged,
  };
}

function table(rows: readonly Row[], dir: string, verb: string): string {
  if (!rows.length) return `no backups in \`${dir}\``;
  const lines = rows.map((r) => {
    const total = Object.values(r.records).reduce((n, v) => n + v, 0);
    const when = r.createdAt ? `${r.createdAt} (${age(new Date(r.createdAt))} ago)` : "unknown time";
    const whose = r.thisStore === false ? ", another store's" : "";
    const state = r.status === "ok" ? verb : `${r.status.toUpperCase()}: ${r.problem}`;
    return `${path.basename(r.file)}\n  ${when}, ${bytes(r.bytes)}, ${r.protection ?? "?"}${whose}; ${state}\n  ${total} records${total ? `: ${perEntity(r.records)}` : ""}`;
  });
  return `backups in \`${dir}\` (newest first):\n${lines.join("\n")}`;
}

function backupDir(dir: string, opts: BackupsCliOptions, ctx: CliContext): string {
  return opts.backupDir !== undefined ? abs(ctx, opts.backupDir) : defaultBackupDir(abs(ctx, dir));
}

export async function list(dir: string, file: string | undefined, opts: BackupsCliOptions, ctx: CliContext): Promise<void> {
  const out = createOutput(opts, ctx);
  const where = backupDir(dir, opts, ctx);
  const storeId = storeIdOf(abs(ctx, dir));
  const listed = file !== undefined ? listOne(abs(ctx, file)) : await new BackupLister().list(where);
  const rows = listed.map((b) => row(b, storeId, Date.now()));
  out.result({ dir: where, backups: rows }, () => table(rows, where, "checksum ok"));
  if (rows.some((r) => r.status !== "ok")) exitWith(ctx, "FINDINGS");
}

/** `file` with its header and length checked (a file that is not a backup is listed as damaged); the checksum is verify's. */
function listOne(file: string): ListedBackup[] {
  const io = nodeFileIO();
  if (!fs.existsSync(file)) throw new CliError(`no file \`${file}\``, EXIT.USAGE, "E_USAGE");
  let size = 0;
  try {
    size = fs.statSync(file).size;
    const r = readBackupHeader(io, file);
    return [{ ...backupInfo(file, r.header, r.size), damaged: null }];
  } catch (e) {
    if (!isCellarError(e, "E_BACKUP_CORRUPT") && !isCellarError(e, "E_BACKUP_FORMAT") && !isCellarError(e, "E_IO")) throw e;
    return [{ file, bytes: size, damaged: e.message, info: null }];
  }
}

export async function verify(dir: string, file: string | undefined, opts: BackupsCliOptions, ctx: CliContext): Promise<void> {
  const out = createOutput(opts, ctx);
  const where = backupDir(dir, opts, ctx);
  const storeId = storeIdOf(abs(ctx, dir));
  const listed = file !== undefined ? listOne(abs(ctx, file)) : await new BackupLister().list(where, { checksum: false });
  const rows = listed.map((b) => row(b, storeId, Date.now()));
  const key = rows.some((r) => r.status === "ok" && r.protection === "store-key") ? await resolveKey(opts, ctx, "Passphrase of the store: ") : undefined;
  const needsPassword = rows.some((r) => r.status === "ok" && r.protection === "password");
  const password = needsPassword && (opts.passwordEnv !== undefined || ctx.stdin.isTTY) ? await secret(ctx, opts.passwordEnv, "--password-env", "password of the password-protected backups") : undefined;
  const bar = out.progress("verify backups", rows.length);
  try {
    for (const [i, r] of rows.entries()) {
      if (r.status === "ok") await verifyRow(r, key, password);
      bar.update(i + 1, rows.length);
    }
  } finally {
    bar.stop();
  }
  out.result({ dir: file !== undefined ? path.dirname(abs(ctx, file)) : where, backups: rows }, () => table(rows, where, "verified"));
  if (rows.some((r) => r.status !== "ok")) exitWith(ctx, "FINDINGS");
}

/** Verify one backup completely; a failure marks the row (damaged, or unverified without its key or password). */
async function verifyRow(r: Row, key: KeyProvider | undefined, password: string | undefined): Promise<void> {
  if (r.protection === "password" && password === undefined) {
    r.status = "unverified";
    r.problem = "a password backup: pass --password-env VAR to verify it";
    return;
  }
  try {
    await verifyBackup(r.file, r.protection === "password" ? { password: password! } : r.protection === "store-key" ? { key: key! } : {});
  } catch (e) {
    if (!isCellarError(e)) throw e;
    r.status = e.code === "E_KEY" ? "unverified" : "damaged";
    r.problem = `${e.message} (${e.code})`;
  }
}
