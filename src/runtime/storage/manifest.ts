/**
 * The manifest names the live files of a store (docs/FORMAT.md, "Manifest").
 * It is kept twice, `MANIFEST` and an identical `MANIFEST.copy`, each replaced only
 * by writing a temp file, fsyncing it, renaming it over the old one and fsyncing
 * the directory, the way LevelDB writes `CURRENT`: a damaged or missing copy is
 * recovered from the other.
 */
import { ByteReader, ByteWriter, DecodeError } from "../format/bytes.js";
import { CorruptionError, KeyError } from "../errors.js";
import { FILE_HEADER_SIZE, FileKind, FRAME_HEADER_SIZE, FrameFlag, FrameType, MAX_COUNT, MAX_ENTITY_NAME_BYTES } from "../format/format.js";
import {
  checksumOk,
  decodeFileHeader,
  decodeFrame,
  encodeFileHeader,
  encodeFrame,
  FrameError,
  type KeyLookup,
  readFrameHeader,
} from "../format/frame.js";
import { type Failpoint, type FileIO, writeNewFile } from "../platform/io.js";
import type { StorePaths } from "../format/filenames.js";
import type { Sealer } from "../crypto/seal.js";
import { compareUtf8 } from "../format/segment-index.js";

export interface Manifest {
  storeId: Uint8Array;
  generation: number;
  /** The first live journal file; journals with smaller numbers are dead. */
  journalStart: number;
  /** Next unused file number (journals and segments share one sequence). */
  nextFile: number;
  /** The first frame of `journalStart` must carry sequence `seqFloor + 1`. */
  seqFloor: number;
  segments: number[];
  encrypted: boolean;
  /** Data keys with smaller ids are used by no live file (destroyed, or to be destroyed at open). */
  keyFloor: number;
  /** Schema version of each entity's records as last written. */
  entities: Map<string, number>;
}

export function encodeManifestBody(m: Manifest): Uint8Array {
  const w = new ByteWriter(256);
  w.varint(m.generation).varint(m.journalStart).varint(m.nextFile).varint(m.seqFloor);
  w.varint(m.segments.length);
  for (const s of m.segments) w.varint(s);
  w.u8(m.encrypted ? 1 : 0).varint(m.keyFloor);
  const names = [...m.entities.keys()].sort(compareUtf8);
  w.varint(names.length);
  for (const n of names) w.string(n).varint(m.entities.get(n)!);
  return w.finish();
}

export function decodeManifestBody(storeId: Uint8Array, plain: Uint8Array): Manifest {
  const r = new ByteReader(plain);
  const generation = r.varint();
  const journalStart = r.varint(0xffffffff);
  const nextFile = r.varint(0xffffffff);
  const seqFloor = r.varint();
  const segments: number[] = [];
  for (let i = 0, n = r.varint(MAX_COUNT); i < n; i++) segments.push(r.varint(0xffffffff));
  const encByte = r.u8();
  if (encByte > 1) throw new DecodeError(`unknown encryption mode ${encByte}`);
  const keyFloor = r.varint(0xffffffff);
  const entities = new Map<string, number>();
  for (let i = 0, n = r.varint(MAX_COUNT); i < n; i++) entities.set(r.string(MAX_ENTITY_NAME_BYTES), r.varint(0xffffffff));
  if (!r.done) throw new DecodeError("trailing bytes after manifest");
  return { storeId, generation, journalStart, nextFile, seqFloor, segments, encrypted: encByte === 1, keyFloor, entities };
}

export function encodeManifestFile(m: Manifest, sealer: Sealer | null): Uint8Array {
  const header = encodeFileHeader(FileKind.manifest, m.storeId, m.generation >>> 0);
  const frame = encodeFrame(
    { type: FrameType.manifest, seq: m.generation, plaintext: encodeManifestBody(m), compress: false, sealer },
    header.subarray(0, 28),
  );
  const out = new Uint8Array(header.length + frame.length);
  out.set(header);
  out.set(frame, header.length);
  return out;
}

/** Peek at the plaintext part of the manifest: store id and whether it is sealed, without a key. */
export function peekManifest(bytes: Uint8Array, file = "MANIFEST"): { storeId: Uint8Array; sealed: boolean } {
  let h;
  try {
    h = decodeFileHeader(bytes, FileKind.manifest);
  } catch (e) {
    if (e instanceof FrameError) throw new CorruptionError(file, 0, e.message);
    throw e;
  }
  // The flags byte is trusted only once the frame's checksum holds.
  const frame = bytes.subarray(FILE_HEADER_SIZE);
  if (frame.length < FRAME_HEADER_SIZE || FRAME_HEADER_SIZE + readFrameHeader(frame).length !== frame.length) {
    throw new CorruptionError(file, FILE_HEADER_SIZE, "bad record length");
  }
  if (!checksumOk(frame)) throw new CorruptionError(file, FILE_HEADER_SIZE, "checksum mismatch");
  return { storeId: h.storeId, sealed: (frame[9]! & FrameFlag.sealed) !== 0 };
}

/**
 * Read and check the manifest. A checksum failure is corruption; a good checksum
 * whose authentication fails means the key is wrong (the manifest is the store's key check).
 */
export function readManifest(bytes: Uint8Array, keys: KeyLookup | null, file = "MANIFEST"): Manifest {
  let header;
  try {
    header = decodeFileHeader(bytes, FileKind.manifest);
  } catch (e) {
    if (e instanceof FrameError) throw new CorruptionError(file, 0, e.message);
    throw e;
  }
  const frame = bytes.subarray(FILE_HEADER_SIZE);
  let plain: Uint8Array;
  try {
    const opened = decodeFrame(frame, header.bound, keys ?? (() => null), keys !== null);
    if (opened.header.type !== FrameType.manifest) throw new FrameError("unexpected frame type");
    plain = opened.plaintext;
  } catch (e) {
    if (e instanceof FrameError) {
      if (e.problem === "authentication failed") {
        throw new KeyError("the key does not open this store (wrong key or passphrase)");
      }
      throw new CorruptionError(file, FILE_HEADER_SIZE, e.message);
    }
    throw e;
  }
  try {
    return decodeManifestBody(header.storeId, plain);
  } catch (e) {
    if (e instanceof DecodeError) throw new CorruptionError(file, FILE_HEADER_SIZE, `bad payload (${e.message})`);
    throw e;
  }
}

/** Atomically replace the manifest and its copy (see {@link writeManifestBytes}). */
export function writeManifest(
  io: FileIO,
  paths: StorePaths,
  m: Manifest,
  sealer: Sealer | null,
  failpoint: (name: Failpoint) => void,
): void {
  writeManifestBytes(io, paths, encodeManifestFile(m, sealer), failpoint);
}

/**
 * Replace `MANIFEST` and `MANIFEST.copy` with the same bytes: unlink stale temps; create, write and fsync
 * `MANIFEST.tmp` and `MANIFEST.copy.tmp`; `manifest.beforeRename`; rename `MANIFEST.tmp` → `MANIFEST`;
 * `manifest.beforeCopyRename`; rename `MANIFEST.copy.tmp` → `MANIFEST.copy`; fsync the directory. Until that
 * fsync either rename may be the one that reached the disk, so at any crash each name holds a complete
 * manifest of the old or the new generation (or, at creation, is absent), and nothing is deleted before the
 * directory fsync. Any failure removes both temps and rethrows.
 */
export function writeManifestBytes(io: FileIO, paths: StorePaths, bytes: Uint8Array, failpoint: (name: Failpoint) => void): void {
  const temps = [paths.manifestTemp, paths.manifestCopyTemp];
  try {
    for (const t of temps) {
      io.unlink(t);
      writeNewFile(io, t, bytes);
    }
    failpoint("manifest.beforeRename");
    io.rename(paths.manifestTemp, paths.manifest);
    failpoint("manifest.beforeCopyRename");
    io.rename(paths.manifestCopyTemp, paths.manifestCopy);
  } catch (e) {
    for (const t of temps) io.unlink(t);
    throw e;
  }
  io.syncDir(paths.dir);
}
