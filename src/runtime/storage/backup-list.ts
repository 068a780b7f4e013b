/**
 * Listing backup files without holding the event loop (automatic backups list their directory at every
 * tick, and `store.stats()` counts it): the reads go through `fs.promises` (the libuv pool), the body's
 * checksum is computed a chunk per read, and a file already checked is not read again while its size, mtime
 * and inode stay the same (a backup file is written once, by a rename). Each entry is what
 * {@link listBackups} (backup.ts, synchronous) says of the file: its metadata, or why it is damaged.
 */
import fsp from "node:fs/promises";
import path from "node:path";
import { crc32 } from "node:zlib";
import { BackupCorruptError, isCellarError } from "../errors.js";
import { BACKUP_FIXED_SIZE, type BackupHeader, backupFileLength, backupHeaderLength, decodeBackupHeader } from "../format/backup-file.js";
import { backupInfo, headerError, type ListedBackup } from "./backup.js";

const CHUNK = 1024 * 1024;

async function readAt(fh: fsp.FileHandle, length: number, position: number): Promise<Buffer> {
  const b = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(b, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return b.subarray(0, got);
}

/** The header of an open backup file, checked against the file's size (E_BACKUP_FORMAT, E_BACKUP_CORRUPT). */
async function header(fh: fsp.FileHandle, file: string, size: number): Promise<{ header: BackupHeader; headerLength: number }> {
  let headerLength: number;
  let h: BackupHeader;
  try {
    headerLength = backupHeaderLength(await readAt(fh, Math.min(size, BACKUP_FIXED_SIZE), 0));
    h = decodeBackupHeader(await readAt(fh, Math.min(size, headerLength), 0));
  } catch (e) {
    headerError(file, e);
  }
  const want = backupFileLength(h, headerLength);
  if (size < want) throw new BackupCorruptError(path.basename(file), size, `file cut short (${size} bytes, expected ${want})`);
  if (size > want) throw new BackupCorruptError(path.basename(file), want, `unexpected bytes after the end (${size} bytes, expected ${want})`);
  return { header: h, headerLength };
}

/** The crc32 of everything before the 4-byte trailer, compared with the trailer. */
async function checkSum(fh: fsp.FileHandle, file: string, size: number): Promise<void> {
  let crc = 0;
  const end = size - 4;
  for (let pos = 0; pos < end; ) {
    const chunk = await readAt(fh, Math.min(CHUNK, end - pos), pos);
    if (chunk.length === 0) throw new BackupCorruptError(path.basename(file), pos, "file cut short");
    crc = crc32(chunk, crc);
    pos += chunk.length;
  }
  const trailer = await readAt(fh, 4, end);
  if (trailer.length !== 4 || trailer.readUInt32LE(0) !== crc) throw new BackupCorruptError(path.basename(file), end, "checksum mismatch");
}

export interface ListOptions {
  /** Check the whole file's checksum (default true); false reads the headers only. */
  checksum?: boolean;
}

/** Lists backup directories; remembers the files it checked (see the file comment). */
export class BackupLister {
  private readonly checked = new Map<string, { stamp: string; entry: ListedBackup; at: number }>();

  /**
   * The backups in `dir` (not its subdirectories), newest first, damaged ones marked; none when `dir` does
   * not exist. Files that do not start like a backup are left out unless their name ends in `.cellarbackup`.
   */
  async list(dir: string, options: ListOptions = {}): Promise<ListedBackup[]> {
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    const out: { entry: ListedBackup; at: number }[] = [];
    const seen = new Set<string>();
    for (const name of names.sort()) {
      if (name.endsWith(".tmp")) continue;
      const file = path.resolve(dir, name);
      const r = await this.one(file, name, options.checksum !== false);
      if (!r) continue;
      seen.add(file);
      out.push(r);
    }
    for (const f of this.checked.keys()) if (path.dirname(f) === path.resolve(dir) && !seen.has(f)) this.checked.delete(f);
    return out.sort((a, b) => b.at - a.at).map((r) => r.entry);
  }

  private async one(file: string, name: string, checksum: boolean): Promise<{ entry: ListedBackup; at: number } | null> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, "r");
    } catch {
      return null; // removed meanwhile, or a directory we cannot open
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) return null;
      const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      const known = this.checked.get(file);
      if (known && known.stamp === stamp) return known;
      let h: { header: BackupHeader; headerLength: number };
      try {
        h = await header(fh, file, st.size);
      } catch (e) {
        if (isCellarError(e, "E_BACKUP_FORMAT") && !name.endsWith(".cellarbackup")) return null;
        if (!isCellarError(e, "E_BACKUP_CORRUPT") && !isCellarError(e, "E_BACKUP_FORMAT")) throw e;
        return { entry: { file, bytes: st.size, damaged: e.message, info: null }, at: st.mtimeMs };
      }
      const info = backupInfo(file, h.header, st.size);
      const at = h.header.createdAt;
      if (!checksum) return { entry: { ...info, damaged: null }, at };
      let entry: ListedBackup;
      try {
        await checkSum(fh, file, st.size);
        entry = { ...info, damaged: null };
      } catch (e) {
        if (!isCellarError(e, "E_BACKUP_CORRUPT")) throw e;
        entry = { file, bytes: st.size, damaged: (e as BackupCorruptError).reason, info };
      }
      this.checked.set(file, { stamp, entry, at });
      return { entry, at };
    } finally {
      await fh.close();
    }
  }
}
