/**
 * The work of `cellar repair` (commands/repair.ts registers it; this module is imported when it runs). What
 * the runtime already does is the repair: an open with `onCorruption: "quarantine"` copies each damaged file
 * to `quarantine/` and leaves its unreadable records out (docs/FORMAT.md, "Recovery policy"); `recoverFrom`
 * brings lost records back from a backup through the normal write path; a compaction retires the damaged
 * files. This module orders those steps, falls back to a whole-store restore (the damaged directory copied
 * aside first) when the store cannot be opened at all, and reports.
 */
import fs from "node:fs";
import path from "node:path";
import { type CellarError, isCellarError } from "../runtime/errors.js";
import type { KeyProvider } from "../runtime/crypto/keys.js";
import { nodeFileIO } from "../runtime/platform/io.js";
import { asCli, cliActor } from "./store-options.js";
import { type BackupInfo, backupInfo, readBackupHeader } from "../runtime/storage/backup.js";
import type { DamageReport, RecoveryReport } from "../runtime/storage/engine.js";
import { restoreBackup } from "../runtime/storage/restore.js";
import type { EntityDefinition } from "../runtime/typed/entity.js";
import type { RecoverReport } from "../runtime/typed/recover.js";
import { openStore } from "../runtime/typed/store.js";
import { CliError, type CliContext, EXIT } from "./context.js";
import { createOutput, type Output } from "./output.js";
import { abs, type AnyStore, exitWith, heldBy, inUse, inUseOr, secret } from "./ops.js";
import { keyOptions, loadSchema } from "./store-options.js";
import type { RepairCliOptions } from "./commands/repair.js";

/** One damaged place as the report shows it (record keys, never values): the engine's own report. */
type Damage = DamageReport;

export interface RepairReport {
  dir: string;
  /** `clean`: no damage; `repaired`: damage quarantined, nothing left lost; `losses`: records stay lost; `restored-whole`: the store could not be opened and was restored from the backup. */
  status: "clean" | "repaired" | "losses" | "restored-whole";
  damaged: Damage[];
  truncatedTail: RecoveryReport["truncatedTail"];
  removedFiles: string[];
  /** What came back from the backup (null without one). */
  recovered: RecoverReport | null;
  /** Losses no backup covered: named records and damaged ranges whose records are unknown. */
  lost: { entity?: string; key?: string; file?: string; offset?: number; reason: string }[];
  /** `restored-whole`: where the damaged store was copied, and the backup's time (writes after it are lost). */
  keptAside?: string;
  backupTakenAt?: string;
}

interface Backup {
  file: string;
  info: BackupInfo;
  password: string | undefined;
}

export async function repair(dir: string, opts: RepairCliOptions, ctx: CliContext): Promise<void> {
  const out = createOutput(opts, ctx);
  const at = abs(ctx, dir);
  if (!fs.existsSync(path.join(at, "MANIFEST")) && !fs.existsSync(path.join(at, "MANIFEST.copy")) && !fs.existsSync(path.join(at, "LOCK"))) {
    throw new CliError(`no store in \`${at}\``, EXIT.USAGE, "E_USAGE");
  }
  const held = heldBy(at);
  if (held !== undefined) throw inUse(at, "repair", held);
  const backup = opts.fromBackup !== undefined ? await backupOf(abs(ctx, opts.fromBackup), opts, ctx) : null;
  const { entities, migrations } = await loadSchema(opts, ctx);
  const keyed = await keyOptions(opts, ctx, at);
  const key = "key" in keyed ? keyed.key : undefined;
  let report: RepairReport;
  try {
    report = await repairOpen(at, entities, migrations, key, backup, out);
  } catch (e) {
    if (!isCellarError(e, "E_CORRUPT")) throw inUseOr(e, at, "repair");
    if (!backup) throw unopenable(at, e);
    report = await restoreWhole(at, key, backup, e, out);
  }
  out.result(report, () => human(report));
  if (report.status === "losses" || report.status === "restored-whole") exitWith(ctx, "FINDINGS");
}

/** The backup named by `--from-backup`, its header checked, with its password when it is a password backup. */
async function backupOf(file: string, opts: RepairCliOptions, ctx: CliContext): Promise<Backup> {
  if (!fs.existsSync(file)) throw new CliError(`no file \`${file}\``, EXIT.USAGE, "E_USAGE");
  const r = readBackupHeader(nodeFileIO(), file);
  const info = backupInfo(file, r.header, r.size);
  const password = info.protection === "password" ? await secret(ctx, opts.passwordEnv, "--password-env", "password of the backup") : undefined;
  return { file, info, password };
}

/** Open checking every block (damage quarantined), recover from the backup, compact; the report. */
async function repairOpen(
  dir: string,
  entities: Record<string, EntityDefinition>,
  migrations: unknown,
  key: KeyProvider | undefined,
  backup: Backup | null,
  out: Output,
): Promise<RepairReport> {
  const bar = out.progress("repair", 3);
  try {
    const store = (await openStore(entities, {
      dir,
      ...(key !== undefined ? { key } : { encryption: "none" as const }),
      ...(Array.isArray(migrations) ? { migrations } : {}),
      verifyOnOpen: true,
      onCorruption: "quarantine",
      sharing: false,
      cleanup: false,
    })) as AnyStore;
    try {
      bar.update(1, 3);
      const found = store.recoveryReport;
      const damaged = found.damaged.length > 0;
      const recovered = damaged && backup ? await asCli(store, () => store.recoverFrom(backup.file, backup.password !== undefined ? { password: backup.password } : {})) : null;
      bar.update(2, 3);
      if (damaged) await store.compact(); // retires the damaged files (their copies stay in quarantine/)
      bar.update(3, 3);
      return reportOf(dir, found, recovered);
    } finally {
      await store.close();
    }
  } finally {
    bar.stop();
  }
}

function reportOf(dir: string, found: RecoveryReport, recovered: RecoverReport | null): RepairReport {
  const damaged: Damage[] = found.damaged.map((d) => ({ ...d, records: d.records.map((r) => ({ ...r })) }));
  let lost: RepairReport["lost"];
  if (recovered) lost = recovered.missing.map((m) => ({ ...m }));
  else {
    lost = damaged.flatMap((d): RepairReport["lost"] =>
      d.records.length
        ? d.records.map((r) => ({ ...r, reason: "unreadable, and no backup was given" }))
        : [{ file: d.file, offset: d.offset, reason: "damaged bytes: the records they held are unknown, and no backup was given" }],
    );
  }
  const status = !damaged.length ? "clean" : lost.length ? "losses" : "repaired";
  return { dir, status, damaged, truncatedTail: found.truncatedTail, removedFiles: [...found.removedFiles], recovered, lost };
}

/** Exit DAMAGED: the store cannot be opened and no backup was given. */
function unopenable(dir: string, e: CellarError): CliError {
  return new CliError(
    `store \`${dir}\` cannot be opened: ${e.message}; run \`cellar repair ${dir} --from-backup FILE\` with a backup of it (see \`cellar backups ${dir} list\`)`,
    EXIT.DAMAGED,
    e.code,
  );
}

/** The store cannot be opened: copy it whole beside itself (never deleted), then restore the backup over it. */
async function restoreWhole(dir: string, key: KeyProvider | undefined, backup: Backup, e: CellarError, out: Output): Promise<RepairReport> {
  const aside = `${dir}.damaged-${new Date().toISOString().replace(/[-:.]/g, "")}`;
  const bar = out.progress("restore from the backup", 2);
  try {
    fs.cpSync(dir, aside, { recursive: true, errorOnExist: true, force: false });
    fs.chmodSync(aside, 0o700);
    bar.update(1, 2);
    await restoreBackup(backup.file, {
      dir,
      auditActor: cliActor(), // recorded only when the store keeps a log
      ...(key !== undefined && backup.info.protection !== "none" ? { key } : {}),
      ...(backup.password !== undefined ? { password: backup.password } : {}),
    });
    bar.update(2, 2);
  } finally {
    bar.stop();
  }
  return {
    dir,
    status: "restored-whole",
    damaged: [{ file: (e as CellarError & { file?: string }).file ?? "", offset: (e as CellarError & { offset?: number }).offset ?? 0, bytes: 0, reason: e.message, records: [], quarantinedAs: aside }],
    truncatedTail: null,
    removedFiles: [],
    recovered: null,
    lost: [{ reason: `writes made after the backup (taken ${backup.info.createdAt.toISOString()}) are lost` }],
    keptAside: aside,
    backupTakenAt: backup.info.createdAt.toISOString(),
  };
}

function human(r: RepairReport): string {
  if (r.status === "clean") return `no damage found in \`${r.dir}\`: nothing to repair${r.truncatedTail ? `\n  (an unfinished last write was cut off: ${r.truncatedTail.reason})` : ""}`;
  const lines = [`repair of \`${r.dir}\`: ${r.status}`];
  for (const d of r.damaged) {
    lines.push(`  damaged: ${d.file} at offset ${d.offset} (${d.bytes} bytes): ${d.reason}; ${d.records.length ? `${d.records.length} record(s)` : "records unknown"}; kept aside as ${d.quarantinedAs ?? "(copy failed)"}`);
  }
  if (r.recovered) {
    const n = Object.values(r.recovered.restored).reduce((a, b) => a + b, 0);
    lines.push(`  restored from the backup: ${n} record(s)${n ? ` (${Object.entries(r.recovered.restored).map(([k, v]) => `${k} ${v}`).join(", ")})` : ""}`);
  }
  if (r.keptAside) lines.push(`  the whole store was restored from the backup taken ${r.backupTakenAt}`);
  for (const l of r.lost.slice(0, 20)) lines.push(`  lost: ${l.entity ? `${l.entity} \`${l.key}\`` : `${l.file ?? "store"}${l.offset !== undefined ? ` at offset ${l.offset}` : ""}`}: ${l.reason}`);
  if (r.lost.length > 20) lines.push(`  … and ${r.lost.length - 20} more (--json lists them all)`);
  return lines.join("\n");
}
