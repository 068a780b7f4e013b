/**
 * Automatic backups (`openStore({ backups: { every, keep, dir? } })`): while the store is open, a backup is
 * taken whenever the newest automatic one is older than `every` (at open too, when one is due), in the
 * background, and the backups Cellar took itself (automatic ones and those taken before migrations) are then
 * pruned by the `keep` policy (backup-retention.ts). Backups the app took with `store.backup()` are never
 * removed, and nor are files of another store in the same directory.
 *
 * The classic failure this guards against (seeds 000 and 003): a damaged store is opened, "repaired" into
 * defaults, backed up on schedule, and the rotation then deletes the last good copy. So: no automatic backup
 * is ever taken in a session that found damage (at open, in the background check, in a compaction), and
 * pruning always keeps the newest intact backup taken before the last damage the store has on record (its
 * `quarantine/` copies), until the app has dealt with it.
 *
 * Owned by StoreImpl (store.ts); the backup itself is storage/backup.ts.
 */
import path from "node:path";
import { BackupSkippedError, type CellarError, IoError, isCellarError, UsageError } from "../errors.js";
import { backupsToKeep, type BackupKeep, checkKeep, parseDuration } from "./backup-retention.js";

/** Labels of the backups Cellar takes itself; `store.backup()` refuses labels that start with `cellar:`. */
export const AUTOMATIC_LABEL = "cellar:automatic";
export const PRE_MIGRATION_LABEL = "cellar:pre-migration";

/** The setTimeout limit (a longer delay fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** After a failed automatic backup, the next attempt comes at most this much later. */
const RETRY_MS = 10 * 60 * 1000;

export interface AutoBackupOptions {
  /** Where the backups go. Default: `<store dir>.backups`, beside the store directory (see {@link defaultBackupDir}). */
  dir?: string;
  /** How often: a duration such as `"6h"`, `"1d"`, `"1w"`, or milliseconds. */
  every: string | number;
  /** Which of Cellar's own backups to keep (the others are deleted after each automatic backup). */
  keep: BackupKeep;
}

/** What the scheduler needs of the open store. */
export interface AutoBackupHost {
  /** The store's id, hex: only this store's backups are pruned. */
  readonly storeId: string;
  /** Resolves when open's own checks are done (the background check of the segment): damage they find counts. */
  ready(): Promise<void>;
  /** Why automatic backups must not run in this session (damage found), or null. */
  damage(): string | null;
  /** When the store last found damage that it kept aside (`quarantine/`), in ms since the epoch, or 0. */
  lastDamageAt(): number;
  /** Take a backup into `file` with `label`; resolves with its time. */
  take(file: string, label: string): Promise<{ createdAt: Date }>;
  /** The backup files of `dir` with their store id, label and time, or why they are damaged; none when `dir` does not exist. */
  list(dir: string): Promise<ListedForPruning[]>;
  remove(file: string): void;
  /** A problem of the scheduler (a failed backup, a skipped one): the store's `error` event. */
  problem(e: CellarError): void;
}

export type ListedForPruning =
  | { file: string; damaged: null; storeId: string; label: string; createdAt: Date }
  | { file: string; damaged: string };

/** The default backup directory of a store: `<dir>.backups` beside it, so that losing the store directory does not lose its backups. */
export function defaultBackupDir(storeDir: string): string {
  const abs = path.resolve(storeDir);
  return path.join(path.dirname(abs), `${path.basename(abs)}.backups`);
}

/** The file name of a backup Cellar takes: `<store>-<kind>-<yyyymmddThhmmssmmmZ>.cellarbackup`. */
export function backupFileName(storeDir: string, kind: "auto" | "pre-migration", at: Date): string {
  const stamp = at.toISOString().replace(/[-:.]/g, "");
  return `${path.basename(path.resolve(storeDir))}-${kind}-${stamp}.cellarbackup`;
}

/** Check `options` (E_USAGE) and resolve the interval. */
export function resolveAutoBackups(options: AutoBackupOptions, storeDir: string): { dir: string; everyMs: number; keep: BackupKeep } {
  if (typeof options !== "object" || options === null) throw new UsageError("`backups` must be an object: `{ every, keep, dir? }`");
  const everyMs = parseDuration(options.every, "backups.every");
  if (typeof options.keep !== "object" || options.keep === null) throw new UsageError("`backups.keep` must be an object: `{ last?, daily?, weekly?, monthly? }`");
  checkKeep(options.keep, "backups.keep");
  const dir = options.dir === undefined ? defaultBackupDir(storeDir) : path.resolve(options.dir);
  const store = path.resolve(storeDir);
  if (dir === store || dir.startsWith(store + path.sep)) {
    throw new UsageError("`backups.dir` is inside the store directory: a backup there is lost with the store; choose a directory outside it");
  }
  return { dir, everyMs, keep: options.keep };
}

export class AutoBackups {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private skippedReported = false;

  constructor(
    private readonly host: AutoBackupHost,
    private readonly storeDir: string,
    readonly dir: string,
    private readonly everyMs: number,
    private readonly keep: BackupKeep,
  ) {}

  /** Check at once whether a backup is due (in the background), then on a timer. */
  start(): void {
    this.schedule(0);
  }

  /** No backup starts after this; resolves when the one running (if any) is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }

  /**
   * Run `fn` with no automatic backup running or starting (a master key change rewrites the backup files:
   * a backup taken meanwhile could pack the old keyring), then check again whether one is due.
   */
  async hold<T>(fn: () => Promise<T>): Promise<T> {
    const wasStopped = this.stopped;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
    try {
      return await fn();
    } finally {
      this.stopped = wasStopped;
      if (!wasStopped && !this.skippedReported) this.schedule(0);
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.tick().finally(() => {
        this.running = null;
      });
    }, Math.min(Math.max(0, delayMs), MAX_TIMER_MS));
    this.timer.unref();
  }

  /** Take a backup if one is due, prune, and set the timer for the next. Never rejects. */
  async tick(): Promise<void> {
    let next = this.everyMs;
    try {
      await this.host.ready();
      const newest = await this.newestAutomatic();
      // A newest backup dated in the future (the clock was set back) delays the next by `every` at most.
      const due = newest === null ? 0 : Math.min(newest + this.everyMs - Date.now(), this.everyMs);
      if (due > 0) {
        next = due;
      } else if (!this.stopped) {
        const damage = this.host.damage();
        if (damage !== null) {
          if (!this.skippedReported) this.host.problem(new BackupSkippedError(damage));
          this.skippedReported = true;
          return; // never again in this session: no timer
        }
        const now = new Date();
        await this.host.take(path.join(this.dir, backupFileName(this.storeDir, "auto", now)), AUTOMATIC_LABEL);
        await this.prune();
      }
    } catch (e) {
      // Never an unhandled rejection from a timer: anything else is reported as an I/O problem.
      this.host.problem(isCellarError(e) ? e : new IoError("automatic backup", this.dir, (e as NodeJS.ErrnoException)?.code ?? "UNKNOWN", { cause: e }));
      next = Math.min(this.everyMs, RETRY_MS);
    }
    if (this.host.damage() === null) this.schedule(next);
  }

  private async newestAutomatic(): Promise<number | null> {
    let newest: number | null = null;
    for (const b of await this.own()) {
      if (b.label === AUTOMATIC_LABEL && (newest === null || b.createdAt.getTime() > newest)) newest = b.createdAt.getTime();
    }
    return newest;
  }

  /** This store's intact backups in the directory that Cellar took itself. */
  private async own(): Promise<{ file: string; label: string; createdAt: Date }[]> {
    const listed = await this.host.list(this.dir);
    const out: { file: string; label: string; createdAt: Date }[] = [];
    for (const b of listed) {
      if (b.damaged !== null || b.storeId !== this.host.storeId) continue;
      if (b.label === AUTOMATIC_LABEL || b.label.startsWith(PRE_MIGRATION_LABEL)) out.push(b);
    }
    return out;
  }

  /**
   * Delete this store's automatic and pre-migration backups that `keep` does not retain, never the newest one
   * taken before the last damage on record. Damaged files are left for the app (listBackups names them).
   */
  async prune(): Promise<string[]> {
    const own = await this.own();
    const kept = backupsToKeep(own, this.keep);
    const damageAt = this.host.lastDamageAt();
    if (damageAt > 0) {
      const beforeDamage = own.filter((b) => b.createdAt.getTime() < damageAt).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0];
      if (beforeDamage) kept.add(beforeDamage);
    }
    const removed: string[] = [];
    for (const b of own) {
      if (kept.has(b)) continue;
      this.host.remove(b.file);
      removed.push(b.file);
    }
    return removed;
  }
}
