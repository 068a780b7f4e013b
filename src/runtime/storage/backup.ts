/**
 * Online single-file backups (docs/FORMAT.md, "Backup file"). `writeBackup` takes a consistent point in one
 * synchronous step (the manifest, the keyring, a read descriptor of its own on every live journal and
 * segment, each journal's tail) and then copies the sealed bytes a chunk at a time, yielding between chunks:
 * writes go on meanwhile, and a compaction that retires files does not disturb the copy (the descriptors keep
 * them readable). Nothing is decrypted or re-sealed. `readBackupHeader`, `unpackBackup` and `listBackups`
 * read backup files without a key; verifying and restoring (which open the unpacked files as a store) live
 * in restore.ts.
 */
import fs from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { BackupCorruptError, BackupFormatError, isCellarError, UsageError } from "../errors.js";
import {
  BACKUP_FIXED_SIZE,
  type BackupHeader,
  BackupHeaderError,
  BackupKeyKind,
  backupFileLength,
  backupHeaderLength,
  decodeBackupHeader,
  encodeBackupHeader,
  MAX_LABEL_BYTES,
} from "../format/backup-file.js";
import { journalName, KEYRING_FILE, MANIFEST_COPY_FILE, MANIFEST_FILE, parseName, segmentName, tempName } from "../format/filenames.js";
import { END_RECORD_SIZE, FILE_HEADER_SIZE } from "../format/format.js";
import { writeEndRecord } from "../format/frame.js";
import { compareUtf8 } from "../format/segment-index.js";
import { type FileIO, fsyncOffLoop, nodeFileIO, syncDirOffLoop, writeNewFile } from "../platform/io.js";
import { keys, type PassphraseCost } from "../crypto/keys.js";
import type { Keyring } from "../crypto/keyring.js";
import { encodeManifestFile } from "./manifest.js";
import { SegmentCrcWalk } from "./unpack-crc.js";
import { readOnlyError, type StoreState } from "./state.js";

/** Bytes copied per step; the event loop gets a turn between steps. */
const CHUNK = 1024 * 1024;

export interface BackupProgress {
  /** Bytes of the backup file written so far, and its full size. */
  bytes: number;
  totalBytes: number;
}

export interface BackupOptions {
  /** The backup file to write (its directory is created if missing). An existing file is replaced atomically. */
  to: string;
  /**
   * Protect the backup with a password instead of the store's master key: the data keys are wrapped under
   * Argon2id(password), so the file restores anywhere with the password alone.
   */
  password?: string | Uint8Array;
  /** Argon2id cost for `password` (default: `DEFAULT_PASSPHRASE_COST`). */
  passwordCost?: PassphraseCost;
  /**
   * Only these entities (storage names; `include` and/or `exclude`). Record history `~history:E` goes with
   * `E`. A selective backup is re-encoded: the selected live records are written into a fresh segment.
   */
  entities?: { include?: readonly string[]; exclude?: readonly string[] };
  /**
   * `false`: leave out the keys of `sensitive` fields (needs `password`): the backup is re-encoded under
   * a data key of its own and every record's sealed sensitive part is dropped. Default true.
   */
  includeSensitive?: boolean;
  /** Free text kept in the backup's metadata (at most 1 KiB of UTF-8), e.g. why it was taken. */
  label?: string;
  onProgress?: (p: BackupProgress) => void;
}

/** What a backup file says about itself (readable without any key). */
export interface BackupInfo {
  /** The backup file (absolute path). */
  file: string;
  formatVersion: number;
  createdAt: Date;
  /** The id of the store it was taken of, hex (32 characters). */
  storeId: string;
  label: string;
  /** `"store-key"`: restoring needs the store's master key; `"password"`: the password; `"none"`: a plaintext store. */
  protection: "none" | "store-key" | "password";
  /** Every entity with its schema version and record count at the backup's point (`~`-names are Cellar's own, e.g. record history). */
  entities: { name: string; version: number; records: number }[];
  /** Size of the backup file in bytes. */
  bytes: number;
}

/** A packed file: bytes held in memory, or `length` bytes read from `fd` followed by `extra`. */
export type Part = { name: string; length: number } & ({ bytes: Uint8Array } | { fd: number; copy: number; extra: Uint8Array; offset?: number });

const PROTECTION = { [BackupKeyKind.none]: "none", [BackupKeyKind.store]: "store-key", [BackupKeyKind.password]: "password" } as const;

export function backupInfo(file: string, h: BackupHeader, bytes: number): BackupInfo {
  return {
    file: path.resolve(file),
    formatVersion: h.formatVersion,
    createdAt: new Date(h.createdAt),
    storeId: Buffer.from(h.storeId).toString("hex"),
    label: h.label,
    protection: PROTECTION[h.keyKind],
    entities: h.entities.map((e) => ({ ...e })),
    bytes,
  };
}

/**
 * The checks every backup makes before any work (the store open and writable, `to`, `label`, `password` on an
 * encrypted store, a full keyring); returns the label. Shared by {@link writeBackup} and backup-reencode.ts.
 */
export function checkBackupOptions(s: StoreState, options: BackupOptions): string {
  s.checkOpen();
  if (s.opts.readOnly) throw readOnlyError();
  if (s.poisoned) throw s.poisoned;
  if (typeof options?.to !== "string" || !options.to) throw new UsageError("`backup` needs `to`, the backup file to write");
  const label = options.label ?? "";
  if (typeof label !== "string" || Buffer.byteLength(label) > MAX_LABEL_BYTES) throw new UsageError(`\`label\` must be a string of at most ${MAX_LABEL_BYTES} bytes`);
  const ring = s.keyring;
  if (options.password !== undefined && !ring) throw new UsageError("a plaintext store's backup cannot be protected by a `password` (its records are not sealed)");
  if (ring && ring.scope !== "all") throw new UsageError("a store opened with `redactSensitive` cannot be backed up");
  return label;
}

/** Write a backup of the store `s` into `options.to` (see the file comment). */
export async function writeBackup(s: StoreState, options: BackupOptions, createdAt?: number): Promise<BackupInfo> {
  const label = checkBackupOptions(s, options);
  const ring = s.keyring;
  // The password's key is derived first (Argon2id takes a while): the consistent point below is one synchronous step.
  const under = options.password !== undefined ? await ring!.withMasterKey(keys.passphrase(options.password, options.passwordCost)) : null;
  let parts: Part[];
  let header: Uint8Array;
  try {
    s.checkOpen();
    if (s.poisoned) throw s.poisoned;
    ({ parts, header } = takePoint(s, ring, under, label, createdAt ?? Date.now()));
  } finally {
    under?.destroy();
  }
  const io = s.io;
  try {
    const total = header.length + parts.reduce((n, p) => n + p.length, 0) + 4;
    await writePacked(io, options.to, header, parts, total, options.onProgress ?? (() => {}), s.fp);
    return backupInfo(options.to, decodeBackupHeader(header), total);
  } finally {
    for (const p of parts) if ("fd" in p) io.close(p.fd);
  }
}

/**
 * The consistent point, in one synchronous step: every commit acknowledged so far is below the journals'
 * tails recorded here, every later one above. Opens a read descriptor on each live file.
 */
function takePoint(s: StoreState, ring: Keyring | null, under: Keyring | null, label: string, createdAt: number): { parts: Part[]; header: Uint8Array } {
  const io = s.io;
  const parts: Part[] = [];
  try {
    // A segment open found damaged (not loaded; its good records go to the next compaction) is left out.
    const manifest = encodeManifestFile({ ...s.manifest, segments: s.manifest.segments.filter((n) => s.files.has(n)) }, s.metaSealer());
    parts.push({ name: MANIFEST_FILE, length: manifest.length, bytes: manifest });
    if (ring) {
      const keyring = under ? ring.encodeUnder(under) : io.readFile(s.paths.keyring);
      parts.push({ name: KEYRING_FILE, length: keyring.length, bytes: keyring });
    }
    for (const [n, f] of [...s.files].sort((a, b) => a[0] - b[0])) {
      const name = f.kind === "segment" ? segmentName(n) : journalName(n);
      const fd = io.open(s.paths.file(name), "r");
      let extra = new Uint8Array(0);
      if (f.kind === "journal") {
        const head = new Uint8Array(FILE_HEADER_SIZE);
        io.read(fd, head, 0);
        if (head[7]! >= 3) {
          // A version 3 journal ends with its end record. The live one's is written fresh (the bytes after
          // its tail change with the next commit); a rotated journal's is read as it is (never written again).
          extra = new Uint8Array(END_RECORD_SIZE);
          if (n === s.journal.number) writeEndRecord(extra, s.lastSeq, f.size);
          else io.read(fd, extra, f.size);
        }
      }
      parts.push({ name, length: f.size + extra.length, fd, copy: f.size, extra });
    }
  } catch (e) {
    for (const p of parts) if ("fd" in p) io.close(p.fd);
    throw e;
  }
  const entities = [...s.entities]
    .filter(([name, ks]) => ks.count > 0 || s.manifest.entities.has(name))
    .map(([name, ks]) => ({ name, version: s.manifest.entities.get(name) ?? 0, records: ks.count }));
  for (const [name, version] of s.manifest.entities) if (!s.entities.has(name)) entities.push({ name, version, records: 0 });
  entities.sort((a, b) => compareUtf8(a.name, b.name));
  const header = encodeBackupHeader({
    keyKind: !ring ? BackupKeyKind.none : under ? BackupKeyKind.password : BackupKeyKind.store,
    createdAt,
    storeId: s.manifest.storeId,
    label,
    entities,
    files: parts.map((p) => ({ name: p.name, length: p.length })),
  });
  return { parts, header };
}

/** Write header, parts and checksum to `<to>.tmp` a chunk per event-loop turn, fsync, rename to `to`, fsync the directory. */
export async function writePacked(
  io: FileIO,
  to: string,
  header: Uint8Array,
  parts: readonly Part[],
  total: number,
  progress: (p: BackupProgress) => void,
  fp: (name: "backup.afterChunk" | "backup.beforeRename") => void,
): Promise<void> {
  const dir = path.dirname(path.resolve(to));
  io.mkdirp(dir);
  const tmp = tempName(to);
  io.unlink(tmp);
  const out = io.open(tmp, "wx+");
  let pos = 0;
  let crc = 0;
  const put = (b: Uint8Array) => {
    io.write(out, b, pos);
    pos += b.length;
    crc = crc32(b, crc);
  };
  try {
    put(header);
    const buf = new Uint8Array(CHUNK);
    for (const p of parts) {
      if ("bytes" in p) {
        put(p.bytes);
        continue;
      }
      for (let at = 0; at < p.copy; at += CHUNK) {
        const want = Math.min(CHUNK, p.copy - at);
        const chunk = buf.subarray(0, want);
        if (io.read(p.fd, chunk, (p.offset ?? 0) + at) !== want) throw new UsageError(`\`${p.name}\` is shorter than the store recorded; the backup was not written`);
        put(chunk);
        progress({ bytes: pos, totalBytes: total });
        fp("backup.afterChunk");
        await new Promise<void>((r) => setImmediate(r));
      }
      put(p.extra);
    }
    const trailer = new Uint8Array(4);
    new DataView(trailer.buffer).setUint32(0, crc, true);
    io.write(out, trailer, pos);
    io.fsync(out);
  } catch (e) {
    io.close(out);
    io.unlink(tmp);
    throw e;
  }
  io.close(out);
  try {
    fp("backup.beforeRename");
    io.rename(tmp, to);
  } catch (e) {
    io.unlink(tmp);
    throw e;
  }
  io.syncDir(dir);
  progress({ bytes: total, totalBytes: total });
}

// ---------------------------------------------------------------- reading a backup file

export function headerError(file: string, e: unknown): never {
  if (e instanceof BackupHeaderError) {
    if (e.kind === "format") throw new BackupFormatError(`\`${path.basename(file)}\`: ${e.message}`);
    throw new BackupCorruptError(path.basename(file), e.offset, e.message);
  }
  throw e;
}

/** Read and check a backup file's header (no key needed); `size` is the file's size, checked against the header's. */
export function readBackupHeader(io: FileIO, file: string): { header: BackupHeader; headerLength: number; size: number } {
  const fd = io.open(file, "r");
  try {
    const size = io.size(fd);
    const fixed = new Uint8Array(Math.min(size, BACKUP_FIXED_SIZE));
    io.read(fd, fixed, 0);
    let headerLength: number;
    let header: BackupHeader;
    try {
      headerLength = backupHeaderLength(fixed);
      const b = new Uint8Array(Math.min(size, headerLength));
      io.read(fd, b, 0);
      header = decodeBackupHeader(b);
    } catch (e) {
      headerError(file, e);
    }
    const want = backupFileLength(header, headerLength);
    if (size < want) throw new BackupCorruptError(path.basename(file), size, `file cut short (${size} bytes, expected ${want})`);
    if (size > want) throw new BackupCorruptError(path.basename(file), want, `unexpected bytes after the end (${size} bytes, expected ${want})`);
    return { header, headerLength, size };
  } finally {
    io.close(fd);
  }
}

/**
 * Stream the whole file through crc32 and compare with its trailer (or, with `into`, also write each packed
 * file there: fsynced and closed with `sync` "now", closed with "never", left open in `opened` with "later").
 * A generator that yields after each chunk (1 MiB): {@link drain} runs it in one step, {@link withTurns}
 * with a turn of the event loop per chunk (restore and verify, issue 15).
 */
function* checkBody(
  io: FileIO,
  file: string,
  r: ReturnType<typeof readBackupHeader>,
  into: string | null,
  sync: Sync = "now",
  opened: number[] = [],
  buf = new Uint8Array(CHUNK),
  /** Given: each packed segment's frame crcs are checked on the way (unpack-crc.ts), the frames that matched listed here by file name. */
  frames?: Map<string, ReadonlyMap<number, number>>,
): Generator<void, void, void> {
  const fd = io.open(file, "r");
  try {
    const head = new Uint8Array(r.headerLength);
    io.read(fd, head, 0);
    let crc = crc32(head);
    let pos = r.headerLength;
    for (const f of r.header.files) {
      const out = into ? io.open(path.join(into, f.name), "wx+") : -1;
      const walk = frames && parseName(f.name)?.kind === "segment" ? new SegmentCrcWalk(f.length) : null;
      try {
        for (let at = 0; at < f.length; ) {
          const n = io.read(fd, buf.subarray(0, Math.min(CHUNK, f.length - at)), pos);
          if (n === 0) throw new BackupCorruptError(path.basename(file), pos, "file cut short"); // shrunk since its header was read
          const chunk = buf.subarray(0, n);
          crc = walk ? walk.feed(chunk, crc) : crc32(chunk, crc);
          if (out >= 0) io.write(out, chunk, at);
          at += n;
          pos += n;
          yield;
        }
        if (walk) {
          crc = walk.end(crc);
          frames!.set(f.name, walk.checked);
        }
        if (out >= 0 && sync === "now") io.fsync(out);
      } finally {
        if (out >= 0 && sync === "later") opened.push(out);
        else if (out >= 0) io.close(out);
      }
    }
    const trailer = new Uint8Array(4);
    io.read(fd, trailer, pos);
    if (new DataView(trailer.buffer).getUint32(0, true) !== crc) throw new BackupCorruptError(path.basename(file), pos, "checksum mismatch");
  } finally {
    io.close(fd);
  }
}

/** Run a {@link checkBody} in one synchronous step. */
function drain(steps: Generator<void, void, void>): void {
  for (const _ of steps);
}

/** Run a {@link checkBody} with a turn of the event loop after each step. */
async function withTurns(steps: Generator<void, void, void>): Promise<void> {
  for (const _ of steps) await new Promise<void>((r) => setImmediate(r));
}

/**
 * Check the backup file's header and checksum and write its packed files into the new directory `into`
 * (fsynced; `MANIFEST.copy` is written as a copy of `MANIFEST`). Throws `E_BACKUP_FORMAT` or `E_BACKUP_CORRUPT`.
 */
export function unpackBackup(io: FileIO, file: string, into: string): BackupHeader {
  const r = readBackupHeader(io, file);
  if (!r.header.files.some((f) => f.name === MANIFEST_FILE)) throw new BackupCorruptError(path.basename(file), BACKUP_FIXED_SIZE, "no `MANIFEST` packed");
  io.mkdirp(into);
  drain(checkBody(io, file, r, into));
  writeNewFile(io, path.join(into, MANIFEST_COPY_FILE), io.readFile(path.join(into, MANIFEST_FILE)));
  io.syncDir(into);
  return r.header;
}

/** When {@link unpackBackupDeferred}'s files reach the disk: "later" (see there), or "never" (a copy checked and removed). */
export type Sync = "now" | "later" | "never";

/**
 * {@link unpackBackup} without waiting for the disk: with `sync` "later" every unpacked file is fsynced on
 * the libuv pool (`FileIO.fsyncAsync`, else at once) while the caller goes on checking them, and `durable`
 * resolves when all are, and the directory, on disk (it closes them; the caller always awaits it, also on
 * failure); with "never" nothing is fsynced (verify's temporary copy). The checks are the same. `scratch` is
 * the buffer the bytes went through, free for the caller's next reads (restore checks the blocks in it: a
 * buffer whose memory is already mapped, where fresh memory costs ~3 ms per MiB of page faults on the VMs
 * measured). With "later" (restore), each packed segment's frame crcs are checked on the way and the frames
 * that matched listed in `frames` (file name → offset → length; unpack-crc.ts).
 */
export async function unpackBackupDeferred(
  io: FileIO,
  file: string,
  into: string,
  sync: "later" | "never",
): Promise<{ header: BackupHeader; durable: Promise<void>; scratch: Uint8Array; frames: ReadonlyMap<string, ReadonlyMap<number, number>> }> {
  const r = readBackupHeader(io, file);
  if (!r.header.files.some((f) => f.name === MANIFEST_FILE)) throw new BackupCorruptError(path.basename(file), BACKUP_FIXED_SIZE, "no `MANIFEST` packed");
  io.mkdirp(into);
  const opened: number[] = [];
  const scratch = new Uint8Array(CHUNK);
  const frames = new Map<string, ReadonlyMap<number, number>>();
  try {
    await withTurns(checkBody(io, file, r, into, sync, opened, scratch, sync === "later" ? frames : undefined));
    const copy = io.open(path.join(into, MANIFEST_COPY_FILE), "wx+");
    if (sync === "later") opened.push(copy);
    try {
      io.write(copy, io.readFile(path.join(into, MANIFEST_FILE)), 0);
    } finally {
      if (sync !== "later") io.close(copy);
    }
  } catch (e) {
    for (const fd of opened) io.close(fd);
    throw e;
  }
  if (sync === "never") return { header: r.header, durable: Promise.resolve(), scratch, frames };
  const durable = Promise.allSettled(opened.map((fd) => fsyncOffLoop(io, fd))).then((done) => {
    for (const fd of opened) io.close(fd);
    const failed = done.find((d) => d.status === "rejected");
    if (failed) throw failed.reason;
    return syncDirOffLoop(io, into); // on the pool too: it would hold the loop in the middle of the caller's check
  });
  durable.catch(() => {}); // awaited by the caller, which may fail first: no unhandled rejection meanwhile
  return { header: r.header, durable, scratch, frames };
}

/** One entry of {@link listBackups}: the metadata, or why the file is damaged. */
export type ListedBackup = (BackupInfo & { damaged: null }) | { file: string; bytes: number; damaged: string; info: BackupInfo | null };

/**
 * The backups in `dir` (not its subdirectories), newest first, each checked (header, length, checksum) but
 * not decrypted: no key is needed. Files that do not start like a backup are left out unless their name ends
 * in `.cellarbackup`, then they are listed as damaged.
 */
export function listBackups(dir: string, io: FileIO = nodeFileIO()): ListedBackup[] {
  const out: (ListedBackup & { at: number })[] = [];
  for (const name of io.readdir(dir).sort()) {
    const file = path.resolve(dir, name);
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      continue;
    }
    if (!st.isFile() || name.endsWith(".tmp")) continue;
    try {
      const r = readBackupHeader(io, file);
      const info = backupInfo(file, r.header, r.size);
      try {
        drain(checkBody(io, file, r, null));
        out.push({ ...info, damaged: null, at: r.header.createdAt });
      } catch (e) {
        if (!isCellarError(e, "E_BACKUP_CORRUPT")) throw e;
        out.push({ file, bytes: st.size, damaged: (e as BackupCorruptError).reason, info, at: r.header.createdAt });
      }
    } catch (e) {
      if (isCellarError(e, "E_BACKUP_FORMAT") && !name.endsWith(".cellarbackup")) continue;
      if (!isCellarError(e, "E_BACKUP_CORRUPT") && !isCellarError(e, "E_BACKUP_FORMAT")) throw e;
      out.push({ file, bytes: st.size, damaged: e.message, info: null, at: st.mtimeMs });
    }
  }
  return out.sort((a, b) => b.at - a.at).map(({ at: _, ...rest }) => rest as ListedBackup);
}
