/**
 * The backup file's header (docs/FORMAT.md, "Backup file"): magic, backup format version, key protection,
 * and the metadata (created-at, store id, label, per entity its schema version and record count, the packed
 * files' names and lengths), checked by its own crc32. Pure functions over bytes: the packing and unpacking
 * I/O lives in storage/backup.ts.
 */
import { crc32 } from "node:zlib";
import { ByteReader, ByteWriter, DecodeError } from "./bytes.js";
import { MAX_ENTITY_NAME_BYTES, STORE_ID_SIZE } from "./format.js";
import { parseName } from "./filenames.js";

/** First 8 bytes of a backup file: "CELLARBK". */
export const BACKUP_MAGIC = new Uint8Array([0x43, 0x45, 0x4c, 0x4c, 0x41, 0x52, 0x42, 0x4b]);
/** The backup format this version writes and the newest it reads. */
export const BACKUP_FORMAT_VERSION = 1;
/** Bytes before the metadata: magic, version, key kind, reserved, metadata length. */
export const BACKUP_FIXED_SIZE = 16;
/** Upper bound of the metadata's length (a length above it is damage, not a bigger header). */
export const MAX_BACKUP_META = 1024 * 1024;
export const MAX_LABEL_BYTES = 1024;
const MAX_FILES = 1 << 20;
const MAX_ENTITIES = 1 << 20;

/** How the data keys inside a backup are protected (byte 9). */
export const BackupKeyKind = { none: 0, store: 1, password: 2 } as const;
export type BackupKeyKind = (typeof BackupKeyKind)[keyof typeof BackupKeyKind];

export interface BackupEntity {
  name: string;
  /** Schema version of the entity's records as the store's manifest records it. */
  version: number;
  records: number;
}

export interface BackupHeader {
  formatVersion: number;
  keyKind: BackupKeyKind;
  /** Milliseconds since the epoch. */
  createdAt: number;
  storeId: Uint8Array;
  label: string;
  entities: BackupEntity[];
  /** The packed files, in the order their bytes follow the header. */
  files: { name: string; length: number }[];
}

/** Thrown by {@link decodeBackupHeader}: `kind` tells a newer format or another kind of file from damage. */
export class BackupHeaderError extends Error {
  constructor(
    readonly kind: "format" | "corrupt",
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/** The header bytes: fixed part, metadata, crc32 of both. */
export function encodeBackupHeader(h: Omit<BackupHeader, "formatVersion">): Uint8Array {
  const m = new ByteWriter(512);
  m.varint(h.createdAt).bytes(h.storeId).string(h.label);
  m.varint(h.entities.length);
  for (const e of h.entities) m.string(e.name).varint(e.version).varint(e.records);
  m.varint(h.files.length);
  for (const f of h.files) m.string(f.name).varint(f.length);
  const meta = m.finish();
  if (meta.length > MAX_BACKUP_META) throw new RangeError("backup metadata too large");
  const out = new Uint8Array(BACKUP_FIXED_SIZE + meta.length + 4);
  const v = new DataView(out.buffer);
  out.set(BACKUP_MAGIC, 0);
  out[8] = BACKUP_FORMAT_VERSION;
  out[9] = h.keyKind;
  v.setUint32(12, meta.length, true);
  out.set(meta, BACKUP_FIXED_SIZE);
  v.setUint32(BACKUP_FIXED_SIZE + meta.length, crc32(out.subarray(0, BACKUP_FIXED_SIZE + meta.length)), true);
  return out;
}

/**
 * Length of the whole header from its first {@link BACKUP_FIXED_SIZE} bytes (magic, then version, checked
 * first so that a newer format is told apart from damage).
 */
export function backupHeaderLength(fixed: Uint8Array): number {
  if (fixed.length < BACKUP_FIXED_SIZE || BACKUP_MAGIC.some((b, i) => fixed[i] !== b)) {
    throw new BackupHeaderError("format", "not a cellar backup (bad magic)", 0);
  }
  if (fixed[8] !== BACKUP_FORMAT_VERSION) {
    throw new BackupHeaderError("format", `unsupported backup format version (found ${fixed[8]}, expected ${BACKUP_FORMAT_VERSION})`, 8);
  }
  const len = new DataView(fixed.buffer, fixed.byteOffset, BACKUP_FIXED_SIZE).getUint32(12, true);
  if (len > MAX_BACKUP_META) throw new BackupHeaderError("corrupt", "bad metadata length", 12);
  return BACKUP_FIXED_SIZE + len + 4;
}

/** Check and decode a header (all of {@link backupHeaderLength}'s bytes). */
export function decodeBackupHeader(b: Uint8Array): BackupHeader {
  const total = backupHeaderLength(b);
  if (b.length < total) throw new BackupHeaderError("corrupt", "file cut short in the header", b.length);
  const metaEnd = total - 4;
  const v = new DataView(b.buffer, b.byteOffset, total);
  if (v.getUint32(metaEnd, true) !== crc32(b.subarray(0, metaEnd))) throw new BackupHeaderError("corrupt", "header checksum mismatch", metaEnd);
  const keyKind = b[9]!;
  if (keyKind !== BackupKeyKind.none && keyKind !== BackupKeyKind.store && keyKind !== BackupKeyKind.password) {
    throw new BackupHeaderError("corrupt", `unknown key protection ${keyKind}`, 9);
  }
  if (b[10] !== 0 || b[11] !== 0) throw new BackupHeaderError("corrupt", "reserved bytes set", 10);
  try {
    const r = new ByteReader(b.subarray(BACKUP_FIXED_SIZE, metaEnd));
    const createdAt = r.varint();
    const storeId = r.bytes(STORE_ID_SIZE).slice();
    const label = r.string(MAX_LABEL_BYTES);
    const entities: BackupEntity[] = [];
    for (let i = 0, n = r.varint(MAX_ENTITIES); i < n; i++) {
      entities.push({ name: r.string(MAX_ENTITY_NAME_BYTES + 16), version: r.varint(0xffffffff), records: r.varint() });
    }
    const files: { name: string; length: number }[] = [];
    const seen = new Set<string>();
    for (let i = 0, n = r.varint(MAX_FILES); i < n; i++) {
      const name = r.string(64);
      const kind = parseName(name).kind;
      // Only the store's own files, by their exact names: never a path.
      if ((kind !== "manifest" && kind !== "keyring" && kind !== "journal" && kind !== "segment") || seen.has(name)) {
        throw new DecodeError(`unexpected packed file name`);
      }
      seen.add(name);
      files.push({ name, length: r.varint() });
    }
    if (!r.done) throw new DecodeError("trailing bytes in the metadata");
    return { formatVersion: b[8]!, keyKind: keyKind as BackupKeyKind, createdAt, storeId, label, entities, files };
  } catch (e) {
    if (e instanceof DecodeError) throw new BackupHeaderError("corrupt", `bad metadata (${e.message})`, BACKUP_FIXED_SIZE);
    throw e;
  }
}

/** Total length of a backup file with header `h` of `headerLength` bytes: header, the files, the 4-byte trailer. */
export function backupFileLength(h: BackupHeader, headerLength: number): number {
  return headerLength + h.files.reduce((n, f) => n + f.length, 0) + 4;
}
