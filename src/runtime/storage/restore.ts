/**
 * Verifying and restoring backup files (docs/FORMAT.md, "Backup file"). Both unpack the file (header,
 * length and checksum checked on the way) into a fresh directory and open it with the engine, refusing any
 * damage and checking every segment block at open, then read every record (frame checksums and tags, the
 * record identity check, the value envelope and its sealed sensitive part): the engine's own checks, not a
 * second reader. A restore then switches the verified copy in for the target directory (restore-swap.ts).
 */
import os from "node:os";
import path from "node:path";
import fs from "node:fs";
import {
  BackupCorruptError,
  BackupForeignError,
  type CorruptionError,
  isCellarError,
  KeyError,
  UsageError,
} from "../errors.js";
import { type BackupHeader, BackupKeyKind } from "../format/backup-file.js";
import { HISTORY_ENTITY_PREFIX } from "../format/format.js";
import { StorePaths } from "../format/filenames.js";
import { type Failpoint, type FileIO, nodeFileIO } from "../platform/io.js";
import { StoreLock } from "../platform/lock.js";
import { type KeyProvider, keys } from "../crypto/keys.js";
import { parseEnvelope, recordAd } from "../crypto/value.js";
import { type BackupInfo, backupInfo, readBackupHeader, unpackBackupDeferred } from "./backup.js";
import { Engine } from "./engine.js";
import type { ForEachRecordOptions } from "./verify-records.js";
import { peekManifest } from "./manifest.js";
import { recordRestore } from "./audit-log.js";
import { removeStaleStaging, removeTree, settleRestore, stagingDir, swapIn } from "./restore-swap.js";

export interface VerifyBackupOptions {
  /** A backup protected by the store's master key: that key (32 bytes or a provider from `keys`). */
  key?: Uint8Array | KeyProvider;
  /** A backup protected by a password: the password. */
  password?: string | Uint8Array;
  io?: FileIO;
}

export interface RestoreBackupOptions {
  /** The store directory to restore into: created if missing; an existing store there is replaced. */
  dir: string;
  /**
   * A store-key backup: the master key of the store it was taken of (the restored store keeps it). A password
   * backup: optional, the master key the restored store is to have (its data keys are rewrapped under it);
   * without it the restored store's master key is the password (open it with `keys.passphrase(password)`).
   */
  key?: Uint8Array | KeyProvider;
  /** A password backup: the password. */
  password?: string | Uint8Array;
  /** Replace a store in `dir` that is not the one the backup was taken of (default false: `E_BACKUP_FOREIGN`). */
  replaceOtherStore?: boolean;
  io?: FileIO;
  /** Called at each named crash window (tests). */
  failpoint?: (name: Failpoint) => void;
  /** Who restores, for the restored store's audit log when it keeps one (the entry's actor). */
  auditActor?: string;
}

function provider(k: Uint8Array | KeyProvider): KeyProvider {
  return k instanceof Uint8Array ? keys.raw(k) : k;
}

/** How to open the unpacked store: the engine's key options for `header`'s protection. */
function openKey(header: BackupHeader, o: { key?: Uint8Array | KeyProvider | undefined; password?: string | Uint8Array | undefined }, restoring: boolean) {
  if (header.keyKind === BackupKeyKind.none) return { encryption: "none" as const };
  if (header.keyKind === BackupKeyKind.password) {
    if (o.password === undefined) throw new KeyError("this backup is protected by a password: pass `password`");
    if (o.key !== undefined && !restoring) throw new UsageError("this backup is protected by a password: pass `password`, not `key`");
    return { key: keys.passphrase(o.password) };
  }
  if (o.key === undefined) throw new KeyError("this backup is sealed under its store's master key: pass that key as `key`");
  if (o.password !== undefined) throw new KeyError("this backup is sealed under its store's master key, not a password: pass `key`");
  return { key: provider(o.key) };
}

function corrupt(file: string, reason: string, cause?: unknown): BackupCorruptError {
  return new BackupCorruptError(path.basename(file), 0, reason, cause === undefined ? undefined : { cause });
}

/** Open the unpacked store in `dir`, refusing damage (journals, manifest, keyring, segment index). */
async function openUnpacked(io: FileIO, dir: string, file: string, header: BackupHeader, o: VerifyBackupOptions, restoring: boolean): Promise<Engine> {
  try {
    return await Engine.open({
      dir,
      io,
      ...openKey(header, o, restoring),
      onCorruption: "refuse",
      verifyOnOpen: false, // every block is read and checked once by `checkStore`: not twice
      recordCacheBytes: 0,
      blockCacheBytes: 8 * 1024 * 1024,
      compaction: { auto: false },
    });
  } catch (e) {
    if (isCellarError(e, "E_CORRUPT")) {
      const c = e as CorruptionError;
      throw corrupt(file, `packed \`${c.file}\` at offset ${c.offset}: ${c.reason}`, e);
    }
    throw e;
  }
}

/**
 * True when `b` is a well-formed protobuf encoding (read without a schema): tags with a field number ≥ 1
 * and a known wire type, varints of at most 10 bytes, lengths inside `b`, each group closed by its own
 * field number (what protobuf-es's reader accepts). Allocates nothing without groups (it runs once per
 * record of a backup).
 */
export function wellFormed(b: Uint8Array): boolean {
  let p = 0;
  let groups: number[] | null = null; // field numbers of the open groups (proto2), allocated when one appears
  const varint = (): number => {
    let v = 0;
    for (let i = 0, mul = 1; i < 10; i++, mul *= 128) {
      if (p >= b.length) return -1;
      const x = b[p++]!;
      v += (x & 0x7f) * mul;
      if (x < 0x80) return v;
    }
    return -1;
  };
  while (p < b.length) {
    const tag = varint();
    if (tag < 8 || tag > 0xffffffff) return false; // field number 0 or above 2^29 - 1, or a bad varint
    const wt = tag % 8;
    if (wt === 0) {
      if (varint() < 0) return false;
    } else if (wt === 1 || wt === 5) {
      p += wt === 1 ? 8 : 4;
    } else if (wt === 2) {
      const n = varint();
      if (n < 0) return false;
      p += n;
    } else if (wt === 3) (groups ??= []).push(tag >>> 3);
    else if (wt === 4) {
      if (groups?.pop() !== tag >>> 3) return false;
    } else return false;
    if (p > b.length) return false;
  }
  return !groups?.length;
}

/**
 * Everything the metadata says matches the store, and every record reads and decodes; with `blocks:
 * "sealed"` (restore) a sealed segment block is checked by its crc and tag alone, not inflated and decoded
 * (docs/FORMAT.md, "Backup file", why that is complete for a restore).
 */
async function checkStore(engine: Engine, header: BackupHeader, file: string, blocks: "records" | "sealed" = "records", unpacked?: Pick<ForEachRecordOptions, "scratch" | "crcChecked">): Promise<void> {
  if (!Buffer.from(engine.storeId).equals(Buffer.from(header.storeId))) throw corrupt(file, "the metadata names another store than the packed files");
  const tail = engine.recovery.truncatedTail;
  if (tail) throw corrupt(file, `packed \`${tail.file}\` ends in a torn frame at offset ${tail.offset}`);
  const listed = new Map(header.entities.map((e) => [e.name, e]));
  const names = engine.entityNames();
  for (const name of names) {
    const e = listed.get(name);
    // An entity whose every record the journal deletes, never given a schema version, is not listed (backup.ts).
    if (!e && engine.count(name) === 0 && !engine.storedVersions.has(name)) continue;
    if (!e) throw corrupt(file, `the metadata does not list entity \`${name}\``);
    if (engine.count(name) !== e.records || (engine.storedVersions.get(name) ?? 0) !== e.version) {
      throw corrupt(file, `the metadata of entity \`${name}\` does not match its records`);
    }
  }
  for (const e of header.entities) if (!names.includes(e.name) && e.records > 0) throw corrupt(file, `entity \`${e.name}\` is missing`);
  const ring = engine.keyring;
  const storeId = engine.storeId;
  const check = (entity: string, key: string, version: number, value: Uint8Array) => {
    // A record history entry of a version that did not exist (docs/FORMAT.md, "Record history") is empty.
    if (value.length === 0 && entity.startsWith(HISTORY_ENTITY_PREFIX)) return;
    let ok: boolean;
    try {
      const env = parseEnvelope(value);
      ok = wellFormed(env.public);
      if (ok && env.sealed) {
        const s = ring?.sensitive(env.keyId, entity);
        ok = s !== null && s !== undefined && wellFormed(s.open(env.sealed, recordAd(storeId, version, key)));
      }
    } catch {
      ok = false;
    }
    if (!ok) throw corrupt(file, `a record of \`${entity}\` (schema version ${version}) does not decode`);
  };
  try {
    await engine.forEachRecord(check, { blocks, ...unpacked });
  } catch (e) {
    if (!isCellarError(e, "E_CORRUPT")) throw e;
    const c = e as CorruptionError;
    throw corrupt(file, `packed \`${c.file}\` at offset ${c.offset}: ${c.reason}`, e);
  }
}

/**
 * Check a backup completely (see the file comment) and return its metadata. Throws `E_BACKUP_FORMAT` (not a
 * backup, or a newer format), `E_BACKUP_CORRUPT` (damage: header, length, checksum, a packed file), `E_KEY`
 * (wrong key or password). Needs free space for one unpacked copy in the OS temp directory.
 */
export async function verifyBackup(file: string, options: VerifyBackupOptions = {}): Promise<BackupInfo> {
  const io = options.io ?? nodeFileIO();
  return verifyWith(io, file, (tmp, header, through) => openUnpacked(through, tmp, file, header, options, false));
}

/**
 * {@link verifyBackup} of a store-key backup that an open store just wrote (an archive): the unpacked copy is
 * opened under that store's master key (`Engine.openOwnCopy`), which the store holds and the app may not.
 */
export function verifyOwnBackup(engine: Engine, file: string): Promise<BackupInfo> {
  return verifyWith(engine.io, file, async (tmp) => {
    try {
      return await engine.openOwnCopy(tmp);
    } catch (e) {
      if (!isCellarError(e, "E_CORRUPT")) throw e;
      const c = e as CorruptionError;
      throw corrupt(file, `packed \`${c.file}\` at offset ${c.offset}: ${c.reason}`, e);
    }
  });
}

async function verifyWith(io: FileIO, file: string, open: OpenUnpacked): Promise<BackupInfo> {
  const { header, dispose } = await openChecked(io, file, open, "cellar-verify-");
  await dispose();
  return backupInfo(file, header, readBackupHeader(io, file).size);
}

/**
 * A backup unpacked into a fresh temporary directory, opened by the engine and checked completely as
 * `verifyBackup` checks it, for reading its records (typed/recover.ts); `dispose` closes it and removes the
 * directory. Throws as `verifyBackup` does.
 */
export function openBackup(file: string, options: VerifyBackupOptions = {}): Promise<{ engine: Engine; header: BackupHeader; dispose: () => Promise<void> }> {
  const io = options.io ?? nodeFileIO();
  return openChecked(io, file, (tmp, header, through) => openUnpacked(through, tmp, file, header, options, false), "cellar-recover-");
}

/** Open the unpacked copy in `dir`; `through`: the FileIO to open it with (large reads through the unpack's warm buffer). */
type OpenUnpacked = (dir: string, header: BackupHeader, through: FileIO) => Promise<Engine>;

/** Unpack `file` into a fresh temporary directory (never fsynced), `open` it and check it completely; `dispose` closes it and removes the directory. */
async function openChecked(io: FileIO, file: string, open: OpenUnpacked, prefix: string): Promise<{ engine: Engine; header: BackupHeader; dispose: () => Promise<void> }> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  let engine: Engine | null = null;
  try {
    const { header, scratch } = await unpackBackupDeferred(io, file, tmp, "never"); // a temporary copy: never fsynced
    engine = await open(tmp, header, readsThroughWarm(io, scratch));
    await checkStore(engine, header, file, "records", { scratch });
    const opened = engine;
    return {
      engine: opened,
      header,
      dispose: async () => {
        try {
          await opened.close();
        } finally {
          removeTree(tmp);
        }
      },
    };
  } catch (e) {
    try {
      await engine?.close();
    } finally {
      removeTree(tmp);
    }
    throw e;
  }
}

/** Reads of at least this many bytes into memory other than the warm buffer go through it ({@link readsThroughWarm}). */
export const WARM_READ_MIN = 64 * 1024;

/**
 * `io` whose large reads go through `warm`, a buffer whose memory is already mapped (the unpack's 1 MiB
 * chunk buffer), a chunk at a time, each copied on into the caller's buffer: the bytes and the result are
 * those of `io.read`. Why: on the VMs measured, fresh memory that the kernel fills (a `read(2)` into a new
 * buffer) costs its page faults and then again ~1.5 ms per MB at its first touch from JavaScript, where
 * memory first written by a copy in the process costs its page faults alone. Opening the unpacked store reads
 * its segment index (9.3 MB for 100,000 records) into fresh memory: its crc, the first touch, went from
 * ~14 ms to ~2 ms (docs/BENCHMARKS.md, "restore's staged open", helper rest16). Nothing is trusted that was not before:
 * every byte is read from the file and checked by the engine as it would be.
 */
export function readsThroughWarm(io: FileIO, warm: Uint8Array): FileIO {
  const through = Object.create(io) as FileIO; // every other member is io's own
  through.read = (fd, into, position) => {
    if (into.length < WARM_READ_MIN || into.buffer === warm.buffer) return io.read(fd, into, position);
    let done = 0;
    while (done < into.length) {
      const want = Math.min(warm.length, into.length - done);
      const n = io.read(fd, warm.subarray(0, want), position + done);
      into.set(warm.subarray(0, n), done);
      done += n;
      if (n < want) break; // the end of the file
    }
    return done;
  };
  return through;
}

/** The store id of the store in `dir`, from either manifest copy; null if neither can be read (a damaged store). */
function storeIdOf(io: FileIO, dir: string): Uint8Array | null {
  const paths = new StorePaths(dir);
  for (const f of [paths.manifest, paths.manifestCopy]) {
    try {
      if (io.exists(f)) return peekManifest(io.readFile(f)).storeId;
    } catch (e) {
      if (!isCellarError(e)) throw e;
    }
  }
  return null;
}

/**
 * Restore `file` into `options.dir`: verified completely into a directory beside it first, then switched in
 * atomically (restore-swap.ts); a crash at any moment leaves the old store or the restored one. Refuses a
 * store that is open (`E_LOCKED`), a directory that holds something other than a store (`E_USAGE`), and a
 * store other than the backup's (`E_BACKUP_FOREIGN`, unless `replaceOtherStore`). On any failure the target
 * is unchanged.
 */
export async function restoreBackup(file: string, options: RestoreBackupOptions): Promise<BackupInfo> {
  if (typeof options?.dir !== "string" || !options.dir) throw new UsageError("`restoreBackup` needs `dir`, the store directory to restore into");
  const io = options.io ?? nodeFileIO();
  const fp = options.failpoint ?? (() => {});
  const dir = path.resolve(options.dir);
  settleRestore(io, dir);
  const { header: meta, size } = readBackupHeader(io, file);
  openKey(meta, options, true); // the right kind of key was given, before any work
  const existed = io.exists(dir);
  if (existed && io.readdir(dir).length) {
    const paths = new StorePaths(dir);
    if (!io.exists(paths.manifest) && !io.exists(paths.manifestCopy)) {
      throw new UsageError(`\`${options.dir}\` is not empty and holds no cellar store: a restore replaces only a store`);
    }
  }
  // The target's lock, held to the end (a directory created for it if missing): an open meanwhile is refused.
  io.mkdirp(dir);
  let lock: StoreLock | null;
  try {
    lock = StoreLock.acquire(io, dir);
  } catch (e) {
    if (!existed) removeTree(dir);
    throw e;
  }
  let switched = false;
  try {
    const id = storeIdOf(io, dir);
    if (id && !options.replaceOtherStore && !Buffer.from(id).equals(Buffer.from(meta.storeId))) {
      throw new BackupForeignError(`the backup is of another store than the one in \`${options.dir}\`: pass \`replaceOtherStore: true\` to replace it`);
    }
    removeStaleStaging(dir); // left by a restore killed before its switch began
    const staged = stagingDir(dir);
    try {
      // The unpacked files reach the disk (fsync on the libuv pool) while they are checked: durable before the switch.
      const { header, durable, scratch, frames } = await unpackBackupDeferred(io, file, staged, "later");
      let checked = false;
      try {
        const engine = await openUnpacked(readsThroughWarm(io, scratch), staged, file, header, options, true);
        try {
          await checkStore(engine, header, file, "sealed", { scratch, crcChecked: frames });
          if (header.keyKind === BackupKeyKind.password && options.key !== undefined) await engine.changeMasterKey(provider(options.key));
          // A store that keeps an audit log records its restore in it (audit-log.ts), before the switch.
          await recordRestore(engine, options.auditActor ?? "", { file: path.resolve(file), createdAt: meta.createdAt, protection: header.keyKind === BackupKeyKind.password ? "password" : "store-key" });
        } finally {
          await engine.close();
        }
        checked = true;
      } finally {
        // Awaited also when the check failed (its files are closed then), its own failure reported only after a good check.
        await (checked ? durable : durable.catch(() => {}));
      }
      fp("restore.afterStage");
    } catch (e) {
      removeTree(staged);
      throw e;
    }
    // Windows refuses to rename a directory with an open file inside: the lock goes first there.
    if (process.platform === "win32") {
      lock?.release();
      lock = null;
    }
    await swapIn(io, dir, staged, fp);
    switched = true;
  } finally {
    lock?.release();
    // Created above for the lock, and still holding only `LOCK`: nothing is left behind.
    if (!switched && !existed && io.exists(dir) && io.readdir(dir).every((n) => n === "LOCK")) removeTree(dir);
  }
  return backupInfo(file, meta, size);
}
