/**
 * A master key change reaches this store's own backup files (automatic and pre-migration backups, which
 * hold a copy of the store's KEYRING wrapped under its master key): each file's packed keyring is rewrapped
 * under the new master key and the file rewritten (temp file, fsync, rename: backup.ts `writePacked`, the
 * checksum recomputed), so that the old master key opens none of them. The sealed records are copied as
 * they are. Called by key-admin.ts `changeMasterKey` before the store's own keyring is rewrapped.
 */
import path from "node:path";
import { KeyError, isCellarError } from "../errors.js";
import { type BackupHeader, BackupKeyKind, encodeBackupHeader } from "../format/backup-file.js";
import { KEYRING_FILE, StorePaths } from "../format/filenames.js";
import type { FileIO } from "../platform/io.js";
import { Keyring, type MasterKeySource } from "../crypto/keyring.js";
import { type Part, readBackupHeader, writePacked } from "./backup.js";
import type { StoreState } from "./state.js";

/** A backup file whose packed keyring opened under the current master key: to be rewritten. */
export interface PackedKeyring {
  file: string;
  header: BackupHeader;
  headerLength: number;
  ring: Keyring;
}

/** The packed keyring of a backup file, opened with `source` (E_KEY when it does not open). */
async function loadPacked(io: FileIO, file: string, header: BackupHeader, headerLength: number, source: MasterKeySource): Promise<Keyring> {
  let at = headerLength;
  for (const f of header.files) {
    if (f.name === KEYRING_FILE) {
      const fd = io.open(file, "r");
      const bytes = new Uint8Array(f.length);
      try {
        io.read(fd, bytes, at);
      } finally {
        io.close(fd);
      }
      // Keyring.load reads the file through `io`: hand it the packed bytes (nothing is written through it).
      const view = Object.assign(Object.create(io) as FileIO, { exists: () => true, readFile: () => bytes });
      return Keyring.load(view, new StorePaths(path.dirname(file)), source, "all", () => {});
    }
    at += f.length;
  }
  throw new KeyError(`backup \`${path.basename(file)}\` has no packed keyring`);
}

/**
 * Open the packed keyring of each of `files` (store-key backups of this store) with the current master key;
 * a file whose keyring opens with `next` already (a change cut short) is skipped; one that opens with
 * neither is an error before anything changed.
 */
export async function loadPackedKeyrings(s: StoreState, current: Keyring, next: Keyring, files: readonly string[]): Promise<PackedKeyring[]> {
  const out: PackedKeyring[] = [];
  try {
    for (const file of files) {
      const { header, headerLength } = readBackupHeader(s.io, file);
      if (header.keyKind !== BackupKeyKind.store) continue;
      try {
        out.push({ file, header, headerLength, ring: await loadPacked(s.io, file, header, headerLength, current.unwrappedMasterKey()) });
      } catch (e) {
        if (!isCellarError(e, "E_KEY")) throw e;
        try {
          (await loadPacked(s.io, file, header, headerLength, next.unwrappedMasterKey())).destroy();
        } catch (e2) {
          if (!isCellarError(e2, "E_KEY")) throw e2;
          throw new KeyError(`the keyring packed in backup \`${path.basename(file)}\` opens with neither the current master key nor the new one; nothing was changed`);
        }
      }
    }
  } catch (e) {
    for (const p of out) p.ring.destroy();
    throw e;
  }
  return out;
}

/** Rewrite `p.file` with its keyring wrapped under `next`'s master key (atomically; the header's lengths and the checksum follow). */
export async function rewrapPacked(s: StoreState, p: PackedKeyring, next: Keyring): Promise<void> {
  const io = s.io;
  const keyring = p.ring.encodeUnder(next);
  const fd = io.open(p.file, "r");
  try {
    const parts: Part[] = [];
    let at = p.headerLength;
    for (const f of p.header.files) {
      if (f.name === KEYRING_FILE) parts.push({ name: f.name, length: keyring.length, bytes: keyring });
      else parts.push({ name: f.name, length: f.length, fd, copy: f.length, extra: new Uint8Array(0), offset: at });
      at += f.length;
    }
    const header = encodeBackupHeader({ ...p.header, files: parts.map((x) => ({ name: x.name, length: x.length })) });
    const total = header.length + parts.reduce((n, x) => n + x.length, 0) + 4;
    await writePacked(io, p.file, header, parts, total, () => {}, s.fp);
  } finally {
    io.close(fd);
  }
}
