/**
 * Archives (`repo.archive({ olderThan })`, seed 000's `TaskRepository.archive`): the records of a collection
 * older than a time, by a Timestamp field, are moved into an archive file and deleted from the store. The
 * archive file is a backup file (docs/FORMAT.md, "Backup file"; label `cellar:archive <entity> older than
 * <ISO time>`) holding only those records, re-encoded (storage/backup-reencode.ts with a key filter): it is
 * listed by `listBackups`, checked by `verifyBackup` and restored by `restoreBackup` like any backup. One new
 * file per call. An archive
 *
 * 1. reads the time field of every record of the entity, a slice of a few ms at a time (retention.ts's
 *    `recordTime`: only the field is decoded), remembering every key a commit touches meanwhile (`committed`);
 * 2. in one synchronous step reads those keys again and fixes the selection, leaving out keys with a write
 *    of the app in flight;
 * 3. writes the archive file (temp file, fsync, rename, directory fsync) and verifies it completely (a full
 *    read of the file back from disk, every record decrypted and decoded); if a selected record was written
 *    (or deleted) since the selection, the file is written again without it (at most `ATTEMPTS` times; past
 *    that, such records stay in the store and also in the file: `kept`);
 * 4. deletes the records in the file in one engine write (one journal frame: after a crash, all or none),
 *    split past `CLEANUP_WRITE_BYTES` into several writes as a cleanup is, each without the keys written since.
 *
 * A crash before step 4 leaves every record in the store (and at most the archive file, or its temp file,
 * beside it); after it, the archive file is complete and verified. Never are records deleted without the file.
 *
 * The deletes are not recorded in record history (they go straight to the engine, as a cleanup's do): the
 * archive file is the copy of the version that went, and a history entry would keep the archived data in the
 * store, which archiving exists to shrink. Older history entries of archived records are left as they are
 * (their own `keep`/`maxAgeMs` limits prune them).
 */
import fs from "node:fs";
import path from "node:path";
import { StoreClosedError, UsageError } from "../errors.js";
import type { PassphraseCost } from "../crypto/keys.js";
import type { WriteOp } from "../format/records.js";
import type { BackupInfo } from "../storage/backup.js";
import type { Engine } from "../storage/engine.js";
import { verifyBackup, verifyOwnBackup } from "../storage/restore.js";
import { parseDuration } from "./backup-retention.js";
import type { CollectionDefinition } from "./entity.js";
import { recordTime, split, timestampField, type TimeField } from "./retention.js";

/** A duration as the schema annotations write it: a whole number and a unit (`"90d"`, `"12h"`, `"2w"`). */
export type DurationString = `${number}${"ms" | "s" | "m" | "h" | "d" | "w"}`;

/** `repo.archive()`'s options; `F` is the names of the entity's Timestamp fields. */
export interface ArchiveOptions<F extends string = string> {
  /**
   * Archive the records whose time field is before this: a `Date`, or a duration back from now such as
   * `"90d"` (units `ms`, `s`, `m`, `h`, `d`, `w`). Records whose field is unset are never archived.
   */
  olderThan: Date | DurationString;
  /**
   * The `google.protobuf.Timestamp` field the age is read from. Default: the entity's retention
   * `timestampField`; an entity without one needs `field` (`E_USAGE`).
   */
  field?: F;
  /**
   * The archive file to write (it must not exist yet). Default: a new file
   * `<store>-archive-<entity>-<time>.cellarbackup` in the store's backup directory (`backups.dir`, else
   * `<store dir>.backups` beside the store).
   */
  to?: string;
  /**
   * Protect the archive with a password (Argon2id) instead of the store's master key: it then restores
   * anywhere with the password alone. Sensitive fields stay sealed in either case.
   */
  password?: string | Uint8Array;
  /** Argon2id cost for `password`. */
  passwordCost?: PassphraseCost;
}

/** What an archive did: counts and the file, never a key. */
export interface ArchiveResult {
  /** Records moved: in the archive file and deleted from the store. */
  count: number;
  /** The archive file (absolute path); null when no record matched (then no file is written). */
  file: string | null;
  /** The archive's metadata, as `listBackups` shows it; null with `file`. */
  info: BackupInfo | null;
  /**
   * Records in the file that were not deleted: written again (or deleted) by the app while the archive ran,
   * on every attempt. Their newer state is in the store. Almost always 0.
   */
  kept: number;
}

/** The label of an archive file (Cellar's own: `cellar:` labels are reserved). */
export function archiveLabel(entity: string, cutoff: Date): string {
  return `cellar:archive ${entity} older than ${cutoff.toISOString()}`;
}

/** Writes of the archive file before the records written meanwhile are left in the file (`kept`). */
const ATTEMPTS = 3;
/** Longest synchronous slice of the scan, in ms. */
const SLICE_MS = 4;

/** What an archive needs of the store. */
export interface ArchiveHost {
  readonly engine: Engine;
  /** The store's backup directory (the default place of archive files). */
  backupDir(): string;
  /** Full decode of a record (a sensitive time field), through the record cache. */
  read(def: CollectionDefinition, key: string): unknown;
  /** Whether the app has a write to this key in flight. */
  busy(def: CollectionDefinition, key: string): boolean;
  /** Tell the keys' repository about their deletes in flight. */
  track(def: CollectionDefinition, keys: readonly string[], write: Promise<void>): void;
  /** True once the store is closing: an archive stops before deleting anything. */
  closing(): boolean;
}

interface Checked {
  time: TimeField;
  cutoff: number;
  to: string;
  password: string | Uint8Array | undefined;
  passwordCost: PassphraseCost | undefined;
}

function check(def: CollectionDefinition, o: ArchiveOptions, host: ArchiveHost): Checked {
  if (typeof o !== "object" || o === null) throw new UsageError("`archive` takes an object: `{ olderThan, field?, to?, password? }`");
  for (const k of Object.keys(o)) {
    if (!["olderThan", "field", "to", "password", "passwordCost"].includes(k)) throw new UsageError(`unknown \`archive\` option \`${k}\``);
  }
  let cutoff: number;
  if (o.olderThan instanceof Date) cutoff = o.olderThan.getTime();
  else if (typeof o.olderThan === "string") cutoff = Date.now() - parseDuration(o.olderThan, "olderThan");
  else cutoff = Number.NaN;
  if (!Number.isFinite(cutoff)) throw new UsageError('`olderThan` must be a valid `Date` or a duration back from now such as "90d" (units ms, s, m, h, d, w)');
  const name = o.field ?? def.retention?.timestampField;
  if (name === undefined) {
    throw new UsageError(`entity \`${def.name}\` has no retention \`timestampField\`: pass \`field\`, the google.protobuf.Timestamp field to measure age by`);
  }
  const time = timestampField(def, name, (why) => new UsageError(`\`field\` of \`archive\`: ${why}`));
  if (o.to !== undefined && (typeof o.to !== "string" || !o.to)) throw new UsageError("`to` must be a file path");
  if (o.password !== undefined && !(typeof o.password === "string" || o.password instanceof Uint8Array) || o.password?.length === 0) {
    throw new UsageError("`password` must be a non-empty string or Uint8Array");
  }
  if (o.password !== undefined && !host.engine.keyring) throw new UsageError("a plaintext store's archive cannot be protected by a `password` (its records are not sealed)");
  const to = path.resolve(o.to ?? path.join(host.backupDir(), archiveFileName(host.engine.dir, def.name, new Date())));
  const store = path.resolve(host.engine.dir);
  if (to.startsWith(store + path.sep)) throw new UsageError("`to` is inside the store directory: an archive there is lost with the store (and open would take it for a stray file); choose a file outside it");
  if (fs.existsSync(to)) throw new UsageError(`\`${path.basename(to)}\` exists: an archive is written into a new file`);
  return { time, cutoff, to, password: o.password, passwordCost: o.passwordCost };
}

/** `<store>-archive-<entity>-<yyyymmddThhmmssmmmZ>.cellarbackup`. */
function archiveFileName(storeDir: string, entity: string, at: Date): string {
  return `${path.basename(path.resolve(storeDir))}-archive-${entity}-${at.toISOString().replace(/[-:.]/g, "")}.cellarbackup`;
}

/** The archives of a store (one per StoreImpl): runs them and sees every commit. */
export class Archives {
  /** Per running archive, its entity and the keys committed since its scan started (or its last decision). */
  private readonly runs = new Set<{ entity: string; to: string; dirty: Set<string> }>();
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly host: ArchiveHost) {}

  /** From the store's `onCommit`. */
  committed(ops: readonly WriteOp[]): void {
    if (!this.runs.size) return;
    for (const run of this.runs) for (const o of ops) if (o.entity === run.entity) run.dirty.add(o.key);
  }

  /** Wait for the archives running (each stops before its deletes, removing its file). */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  archive(def: CollectionDefinition, options: ArchiveOptions): Promise<ArchiveResult> {
    const checked = check(def, options, this.host);
    if (options.to === undefined) this.removeLeftovers(path.dirname(checked.to));
    const run = this.run(def, checked);
    this.pending.add(run);
    const done = () => this.pending.delete(run);
    run.then(done, done);
    return run;
  }

  /**
   * The temp files and staging directories that archives of this store killed midway left in the default
   * directory (`<name>.tmp`, `.<name>.parts-*`), but not those of archives running now (one process has the
   * store open, so no other writes them).
   */
  private removeLeftovers(dir: string): void {
    const prefix = `${path.basename(path.resolve(this.host.engine.dir))}-archive-`;
    const running = new Set([...this.runs].map((r) => path.basename(r.to)));
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return; // no directory yet
    }
    for (const n of names) {
      const target = n.endsWith(".cellarbackup.tmp") ? n.slice(0, -4) : /^\.(.+\.cellarbackup)\.parts-/.exec(n)?.[1];
      if (target?.startsWith(prefix) && !running.has(target)) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
    }
  }

  private async run(def: CollectionDefinition, o: Checked): Promise<ArchiveResult> {
    const { engine } = this.host;
    const state = { entity: def.name, to: o.to, dirty: new Set<string>() };
    this.runs.add(state);
    const { dirty } = state;
    const isOld = (k: string) => {
      const t = recordTime(this.host, o.time, k);
      return t !== undefined && t > -Infinity && t < o.cutoff; // NaN (unreadable) and unset: never
    };
    let written: string | null = null;
    try {
      // 1. The scan, in slices.
      const picked = new Set<string>();
      let sliceStart = performance.now();
      for (const k of [...engine.keys(def.name)]) {
        if (performance.now() - sliceStart >= SLICE_MS) {
          await new Promise<void>((r) => setImmediate(r));
          if (this.host.closing()) throw new StoreClosedError();
          sliceStart = performance.now();
        }
        if (!dirty.has(k) && isOld(k)) picked.add(k);
      }
      // 2. The selection, in one synchronous step.
      for (const k of dirty) {
        picked.delete(k);
        if (isOld(k)) picked.add(k);
      }
      for (const k of picked) if (this.host.busy(def, k)) picked.delete(k);
      dirty.clear();
      if (!picked.size) return { count: 0, file: null, info: null, kept: 0 };

      // 3. The file, written again without what the app wrote meanwhile.
      let info: BackupInfo;
      let racing: Set<string>;
      for (let attempt = 1; ; attempt++) {
        written = o.to;
        info = await engine.archive(
          { to: o.to, label: archiveLabel(def.name, new Date(o.cutoff)), ...(o.password !== undefined ? { password: o.password } : {}), ...(o.passwordCost ? { passwordCost: o.passwordCost } : {}) },
          new Map([[def.name, picked]]),
          (file) => (engine.keyring && o.password === undefined ? verifyOwnBackup(engine, file) : verifyBackup(file, { io: engine.io, ...(o.password !== undefined ? { password: o.password } : {}) })),
        );
        if (this.host.closing()) throw new StoreClosedError();
        // Synchronous from here to the first delete.
        racing = new Set([...picked].filter((k) => dirty.has(k) || this.host.busy(def, k)));
        if (!racing.size || attempt === ATTEMPTS) break;
        for (const k of racing) picked.delete(k);
        dirty.clear();
        if (!picked.size) {
          fs.rmSync(o.to, { force: true });
          return { count: 0, file: null, info: null, kept: 0 };
        }
      }
      const inFile = info.entities.find((e) => e.name === def.name)?.records ?? 0;
      const victims = [...picked].filter((k) => !racing.has(k) && engine.has(def.name, k));
      written = null; // from here on the file stays: it is the copy of what is deleted

      // 4. The deletes.
      dirty.clear();
      let count = 0;
      const parts = split([{ def, keys: victims }]);
      for (let i = 0; i < parts.length; i++) {
        let part = parts[i]!.map(([, k]) => k);
        if (i > 0) {
          if (this.host.closing()) break; // the rest stays in the store (and in the file)
          part = part.filter((k) => !dirty.has(k) && !this.host.busy(def, k) && engine.has(def.name, k));
        }
        if (!part.length) continue;
        const w = engine.write(part.map((key): WriteOp => ({ op: "delete", entity: def.name, key })));
        this.host.track(def, part, w);
        await w;
        count += part.length;
      }
      return { count, file: info.file, info, kept: inFile - count };
    } catch (e) {
      // Nothing was deleted: the file (if written) goes, so that an archive either moves records or leaves no trace.
      if (written !== null) fs.rmSync(written, { force: true });
      throw e;
    } finally {
      this.runs.delete(state);
    }
  }
}
