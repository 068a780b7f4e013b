/**
 * The store's own backups, wired for StoreImpl (store.ts): the backup directory (`backups.dir`, else
 * `<store dir>.backups` beside the store), the automatic backups' scheduler and its host (auto-backup.ts),
 * the move of legacy pre-migration directories out of the store (storage/backup-legacy.ts, in the
 * background after open), this store's backup files for a master key change, and their bytes for `stats()`.
 */
import fs from "node:fs";
import path from "node:path";
import { BackupSkippedError, type CellarError, IoError, isCellarError } from "../errors.js";
import { BACKUPS_DIR, QUARANTINE_DIR } from "../format/filenames.js";
import type { KeyProvider } from "../crypto/keys.js";
import type { Engine } from "../storage/engine.js";
import { BackupLister } from "../storage/backup-list.js";
import { readBackupHeader } from "../storage/backup.js";
import { legacyCopies, moveLegacyCopies } from "../storage/backup-legacy.js";
import { AUTOMATIC_LABEL, type AutoBackupHost, type AutoBackupOptions, AutoBackups, defaultBackupDir, PRE_MIGRATION_LABEL, resolveAutoBackups } from "./auto-backup.js";
import type { BackupUsage } from "./stats.js";

/** Labels starting with this are Cellar's own; `store.backup()` refuses them. */
export const RESERVED_LABEL_PREFIX = "cellar:";

/** Check `backups` at open (E_USAGE), before the store is opened. */
export function resolveBackupDir(options: AutoBackupOptions | undefined, storeDir: string) {
  const auto = options === undefined ? null : resolveAutoBackups(options, storeDir);
  return { dir: auto?.dir ?? defaultBackupDir(storeDir), auto };
}

export class StoreBackups {
  private readonly lister = new BackupLister();
  private auto: AutoBackups | null = null;
  private legacy: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly storeId: string;

  constructor(
    private readonly engine: Engine,
    readonly resolved: ReturnType<typeof resolveBackupDir>,
    private readonly key: Uint8Array | KeyProvider | undefined,
    private readonly problem: (e: CellarError) => void,
  ) {
    this.storeId = Buffer.from(engine.storeId).toString("hex");
  }

  get dir(): string {
    return this.resolved.dir;
  }

  /** After open: the legacy move, then (when configured) the automatic backups; both in the background. */
  start(): void {
    if (legacyCopies(this.engine).length || this.engine.io.exists(path.join(this.engine.dir, BACKUPS_DIR))) {
      this.legacy = new Promise<void>((r) => setImmediate(r)).then(() => this.moveLegacy());
    }
    const a = this.resolved.auto;
    if (a) {
      this.auto = new AutoBackups(this.host(), this.engine.dir, a.dir, a.everyMs, a.keep);
      this.auto.start();
    }
  }

  private async moveLegacy(): Promise<void> {
    try {
      await moveLegacyCopies(this.engine, {
        backupDir: this.dir,
        fileName: (name) => `${path.basename(this.engine.dir)}-${name}.cellarbackup`,
        label: `${PRE_MIGRATION_LABEL} (moved from \`${BACKUPS_DIR}/\`)`,
        key: this.key,
        stopped: () => this.stopped,
        problem: this.problem,
      });
    } catch (e) {
      this.problem(isCellarError(e) ? e : new IoError("moving pre-migration backups", this.dir, (e as NodeJS.ErrnoException)?.code ?? "UNKNOWN", { cause: e }));
    }
  }

  /** No backup work starts after this; resolves when what runs is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.auto?.stop(), this.legacy]);
  }

  /** Run `fn` with no automatic backup or legacy move running (a master key change). */
  async hold<T>(fn: () => Promise<T>): Promise<T> {
    await this.legacy;
    return this.auto ? this.auto.hold(fn) : fn();
  }

  /**
   * This store's intact store-key backup files that Cellar took itself (`cellar:` labels), in the backup
   * directory. Checksummed first: a rewrap recomputes a file's checksum, which must not hide damage.
   */
  async ownFiles(): Promise<string[]> {
    const listed = await this.lister.list(this.dir);
    return listed.flatMap((b) =>
      b.damaged === null && b.storeId === this.storeId && b.protection === "store-key" && b.label.startsWith(RESERVED_LABEL_PREFIX) ? [b.file] : [],
    );
  }

  private host(): AutoBackupHost {
    const engine = this.engine;
    return {
      storeId: this.storeId,
      ready: () => engine.verified,
      damage: () => {
        const d = engine.recovery.damaged;
        return d.length ? `${d.length} damaged ${d.length === 1 ? "part" : "parts"}, first in \`${d[0]!.file}\` at offset ${d[0]!.offset}` : null;
      },
      lastDamageAt: () => lastQuarantineAt(path.join(engine.dir, QUARANTINE_DIR)),
      take: async (file, label) => {
        const info = await engine.backup({ to: file, label });
        // Damage found while it ran (a compaction, a read): the new backup may hold it.
        if (engine.recovery.damaged.length) {
          engine.io.unlink(file);
          throw new BackupSkippedError("damage found while the backup ran");
        }
        return info;
      },
      list: async (dir) =>
        (await this.lister.list(dir)).map((b) =>
          b.damaged === null ? { file: b.file, damaged: null, storeId: b.storeId, label: b.label, createdAt: b.createdAt } : { file: b.file, damaged: b.damaged },
        ),
      remove: (file) => {
        engine.io.unlink(file);
        engine.io.syncDir(path.dirname(file));
      },
      problem: this.problem,
    };
  }

  /**
   * Bytes of this store's backups (`stats()`): the files of the backup directory whose header names this
   * store (headers only), and legacy pre-migration directories not moved yet.
   */
  usage(): BackupUsage {
    const out = { dir: this.dir, files: 0, bytes: 0, byEntity: null };
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      names = [];
    }
    for (const n of names) {
      if (n.endsWith(".tmp")) continue;
      try {
        const r = readBackupHeader(this.engine.io, path.join(this.dir, n));
        if (Buffer.from(r.header.storeId).toString("hex") !== this.storeId) continue;
        out.files++;
        out.bytes += r.size;
      } catch {
        // not a backup, damaged or removed meanwhile: not counted
      }
    }
    for (const d of legacyCopies(this.engine)) {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (!e.isFile()) continue;
        try {
          out.bytes += fs.statSync(path.join(d, e.name)).size;
          out.files++;
        } catch {
          // removed meanwhile
        }
      }
    }
    return out;
  }
}

/** Newest `quarantine/<name>.<ms>` (when the store last kept damaged bytes aside), or 0. */
export function lastQuarantineAt(dir: string): number {
  let newest = 0;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  for (const n of names) {
    const m = /\.(\d{10,})$/.exec(n);
    if (m) newest = Math.max(newest, Number(m[1]));
  }
  return newest;
}

export { AUTOMATIC_LABEL, PRE_MIGRATION_LABEL };
