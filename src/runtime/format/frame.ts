/**
 * Encode and decode one frame (docs/FORMAT.md, "Frames") and the 32-byte file
 * header every Cellar file starts with. Checks run in the documented order:
 * magic → format version → checksum → decrypt → decode.
 */
import { crc32 } from "node:zlib";
import { DecodeError } from "./bytes.js";
import { compress, decompress } from "./compress.js";
import {
  FILE_HEADER_BOUND,
  FILE_HEADER_SIZE,
  FORMAT_VERSION,
  type FileKind,
  FRAME_HEADER_SIZE,
  END_RECORD_SIZE,
  FrameFlag,
  FrameType,
  KEY_ID_NONE,
  MAGIC,
  MAX_FILE_NUMBER,
  MAX_FRAME_PAYLOAD,
  MIN_FORMAT_VERSION,
  STORE_ID_SIZE,
} from "./format.js";
import { AuthenticationError, LimitError } from "../errors.js";

export interface FileHeader {
  kind: FileKind;
  storeId: Uint8Array;
  fileNumber: number;
  /** Format version of the file (byte 7): 2 or 3. */
  version: number;
  /** Bytes 0..28, bound into every frame's associated data. */
  bound: Uint8Array;
}

export function encodeFileHeader(kind: FileKind, storeId: Uint8Array, fileNumber: number, version: number = FORMAT_VERSION): Uint8Array {
  // A larger number would be written modulo 2^32 and read back as another file's.
  if (!(fileNumber >= 0 && fileNumber <= MAX_FILE_NUMBER)) throw new LimitError(`file number ${fileNumber} exceeds ${MAX_FILE_NUMBER}`);
  const b = new Uint8Array(FILE_HEADER_SIZE);
  const v = new DataView(b.buffer);
  b.set(MAGIC, 0);
  b[6] = kind;
  b[7] = version;
  b.set(storeId, 8);
  v.setUint32(24, fileNumber, true);
  v.setUint32(28, crc32(b.subarray(0, FILE_HEADER_BOUND)), true);
  return b;
}

/** Why a header or frame was rejected; the fixed reasons of docs/FORMAT.md. */
export type FrameProblem =
  | "bad magic"
  | "unsupported format version"
  | "wrong file kind"
  | "header checksum mismatch"
  | "bad record length"
  | "checksum mismatch"
  | "unexpected frame type"
  | "unexpected sequence"
  | "authentication failed"
  | "missing key"
  | "bad payload";

export class FrameError extends Error {
  constructor(
    readonly problem: FrameProblem,
    detail?: string,
  ) {
    super(detail ? `${problem} (${detail})` : problem);
  }
}

export function decodeFileHeader(b: Uint8Array, expectKind: FileKind): FileHeader {
  if (b.length < FILE_HEADER_SIZE) throw new FrameError("bad magic", "file shorter than its header");
  for (let i = 0; i < MAGIC.length; i++) if (b[i] !== MAGIC[i]) throw new FrameError("bad magic");
  if (b[7]! < MIN_FORMAT_VERSION || b[7]! > FORMAT_VERSION) {
    throw new FrameError("unsupported format version", `found ${b[7]}, expected ${MIN_FORMAT_VERSION} to ${FORMAT_VERSION}`);
  }
  const v = new DataView(b.buffer, b.byteOffset, FILE_HEADER_SIZE);
  if (v.getUint32(28, true) !== crc32(b.subarray(0, FILE_HEADER_BOUND))) throw new FrameError("header checksum mismatch");
  if (b[6] !== expectKind) throw new FrameError("wrong file kind", `found 0x${b[6]!.toString(16)}`);
  return {
    kind: b[6] as FileKind,
    storeId: b.slice(8, 8 + STORE_ID_SIZE),
    fileNumber: v.getUint32(24, true),
    version: b[7]!,
    bound: b.slice(0, FILE_HEADER_BOUND),
  };
}

/**
 * What a frame needs of a key: `crypto/seal.ts`'s `Sealer` is the one implementation. Declared here so
 * the byte grammar does not depend on libsodium; `open` and `openInPlace` throw `AuthenticationError`
 * when the tag does not verify.
 */
export interface FrameSealer {
  readonly keyId: number;
  sealInto(out: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): void;
  open(sealed: Uint8Array, ad: Uint8Array): Uint8Array;
  openInPlace(sealed: Uint8Array, ad: Uint8Array): Uint8Array;
  /** Whether `sealed` is authentic under `ad`, checked without decrypting it. */
  authentic(sealed: Uint8Array, ad: Uint8Array): boolean;
}

export interface FrameSpec {
  type: FrameType;
  seq: number;
  plaintext: Uint8Array;
  /** Compress when true (the caller applies the size policy). */
  compress: boolean;
  /** With `compress`: `compress(plaintext)` already computed (compress.ts's bytes; a segment's blocks are deflated on a worker). */
  compressed?: Uint8Array;
  sealer: FrameSealer | null;
}

function adFor(fileBound: Uint8Array, header: Uint8Array): Uint8Array {
  const ad = new Uint8Array(FILE_HEADER_BOUND + FRAME_HEADER_SIZE - 4);
  ad.set(fileBound, 0);
  ad.set(header.subarray(4, FRAME_HEADER_SIZE), FILE_HEADER_BOUND);
  return ad;
}

function writeHeaderFields(h: Uint8Array, len: number, type: number, flags: number, keyId: number, seq: number): void {
  const v = new DataView(h.buffer, h.byteOffset, FRAME_HEADER_SIZE);
  v.setUint32(4, len, true);
  h[8] = type;
  h[9] = flags;
  h[10] = 0;
  h[11] = 0;
  v.setUint32(12, keyId, true);
  v.setUint32(16, seq % 0x100000000, true);
  v.setUint32(20, Math.floor(seq / 0x100000000), true);
}

/**
 * Write a journal end record into `into` (at least {@link END_RECORD_SIZE} bytes): type 6, no flags, key
 * id 0, seq = the seq of the last commit frame before it, payload = u64 LE `offset` (where it sits).
 */
export function writeEndRecord(into: Uint8Array, seq: number, offset: number): void {
  writeHeaderFields(into, 8, FrameType.end, 0, KEY_ID_NONE, seq);
  const v = new DataView(into.buffer, into.byteOffset, END_RECORD_SIZE);
  v.setUint32(FRAME_HEADER_SIZE, offset % 0x100000000, true);
  v.setUint32(FRAME_HEADER_SIZE + 4, Math.floor(offset / 0x100000000), true);
  v.setUint32(0, crc32(into.subarray(4, END_RECORD_SIZE)), true);
}

/** True when `b` (at least 32 bytes) is an intact end record for `seq` at `offset`. */
export function isEndRecord(b: Uint8Array, seq: number, offset: number): boolean {
  if (b.length < END_RECORD_SIZE || b[8] !== FrameType.end) return false;
  const v = new DataView(b.buffer, b.byteOffset, END_RECORD_SIZE);
  return (
    v.getUint32(4, true) === 8 &&
    v.getUint32(0, true) === crc32(b.subarray(4, END_RECORD_SIZE)) &&
    b[9] === 0 &&
    b[10] === 0 &&
    b[11] === 0 &&
    v.getUint32(12, true) === KEY_ID_NONE &&
    v.getUint32(16, true) + v.getUint32(20, true) * 0x100000000 === seq &&
    v.getUint32(24, true) + v.getUint32(28, true) * 0x100000000 === offset
  );
}

/**
 * Build a whole frame (header + payload) ready to be written. With `reserve`, the frame's buffer has that
 * many spare bytes after it (the journal writer puts its end record there without copying the frame).
 */
export function encodeFrame(spec: FrameSpec, fileBound: Uint8Array, reserve = 0): Uint8Array {
  let body = spec.plaintext;
  let flags = 0;
  if (spec.compress) {
    body = spec.compressed ?? compress(body);
    flags |= FrameFlag.compressed;
  }
  const sealedLen = spec.sealer ? body.length + 40 : body.length;
  if (sealedLen > MAX_FRAME_PAYLOAD) throw new RangeError(`frame payload of ${sealedLen} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
  const keyId = spec.sealer ? spec.sealer.keyId : KEY_ID_NONE;
  if (spec.sealer) flags |= FrameFlag.sealed;
  const frame = new Uint8Array(FRAME_HEADER_SIZE + sealedLen + reserve).subarray(0, FRAME_HEADER_SIZE + sealedLen);
  writeHeaderFields(frame, sealedLen, spec.type, flags, keyId, spec.seq);
  if (spec.sealer) {
    spec.sealer.sealInto(frame.subarray(FRAME_HEADER_SIZE), body, adFor(fileBound, frame));
  } else {
    frame.set(body, FRAME_HEADER_SIZE);
  }
  new DataView(frame.buffer).setUint32(0, crc32(frame.subarray(4)), true);
  return frame;
}

export interface FrameHeader {
  crc: number;
  length: number;
  type: number;
  flags: number;
  keyId: number;
  seq: number;
}

export function readFrameHeader(b: Uint8Array): FrameHeader {
  const v = new DataView(b.buffer, b.byteOffset, FRAME_HEADER_SIZE);
  return {
    crc: v.getUint32(0, true),
    length: v.getUint32(4, true),
    type: b[8]!,
    flags: b[9]!,
    keyId: v.getUint32(12, true),
    // Exact up to 2^53; readers refuse anything above MAX_SEQ, so an inexact value is never used.
    seq: v.getUint32(16, true) + v.getUint32(20, true) * 0x100000000,
  };
}

/** Verify the checksum of a whole frame (`frame` = header + payload). */
export function checksumOk(frame: Uint8Array): boolean {
  const v = new DataView(frame.buffer, frame.byteOffset, 4);
  return v.getUint32(0, true) === crc32(frame.subarray(4));
}

export type KeyLookup = (keyId: number) => FrameSealer | null;

/**
 * Check and open one frame whose bytes are all in `frame`. Returns the plaintext.
 * Throws {@link FrameError} naming the first check that failed.
 */
/**
 * Check a sealed frame whose bytes are all in `frame` as {@link decodeFrame} does (length, checksum, flags,
 * sealed, key, tag), without decrypting or inflating its payload: for a check that needs no plaintext
 * (restore's sealed segment blocks). Returns its header; throws {@link FrameError} naming the first check
 * that failed ("authentication failed" for an unsealed frame).
 */
export function authenticateFrame(
  frame: Uint8Array,
  fileBound: Uint8Array,
  keys: KeyLookup,
  /** true: the caller checked the frame's crc over these very bytes already (restore's unpack, storage/unpack-crc.ts). */
  crcChecked = false,
): FrameHeader {
  if (frame.length < FRAME_HEADER_SIZE) throw new FrameError("bad record length");
  const header = readFrameHeader(frame);
  if (header.length > MAX_FRAME_PAYLOAD || FRAME_HEADER_SIZE + header.length !== frame.length) {
    throw new FrameError("bad record length");
  }
  if (!crcChecked && !checksumOk(frame)) throw new FrameError("checksum mismatch");
  if (header.flags & ~(FrameFlag.compressed | FrameFlag.sealed)) throw new FrameError("bad payload", "unknown flags");
  if (!(header.flags & FrameFlag.sealed)) throw new FrameError("authentication failed", "frame is not sealed");
  const sealer = keys(header.keyId);
  if (!sealer) throw new FrameError("missing key", `key id ${header.keyId}`);
  if (!sealer.authentic(frame.subarray(FRAME_HEADER_SIZE), adFor(fileBound, frame))) throw new FrameError("authentication failed");
  return header;
}

export function decodeFrame(
  frame: Uint8Array,
  fileBound: Uint8Array,
  keys: KeyLookup,
  requireSealed: boolean,
  maxPlain = MAX_FRAME_PAYLOAD,
  /** `frame` is the caller's own copy: decrypt in place (no second buffer of its size). */
  inPlace = false,
  /** false: a compressed payload is returned as it is (still compressed), after its checksum and tag are checked. */
  inflate = true,
): { header: FrameHeader; plaintext: Uint8Array } {
  if (frame.length < FRAME_HEADER_SIZE) throw new FrameError("bad record length");
  const header = readFrameHeader(frame);
  if (header.length > MAX_FRAME_PAYLOAD || FRAME_HEADER_SIZE + header.length !== frame.length) {
    throw new FrameError("bad record length");
  }
  if (!checksumOk(frame)) throw new FrameError("checksum mismatch");
  if (header.flags & ~(FrameFlag.compressed | FrameFlag.sealed)) throw new FrameError("bad payload", "unknown flags");
  // An encrypted store never accepts an unsealed frame: stripping the flag is a downgrade, not data.
  if (requireSealed && !(header.flags & FrameFlag.sealed)) throw new FrameError("authentication failed", "frame is not sealed");
  let body = frame.subarray(FRAME_HEADER_SIZE);
  if (header.flags & FrameFlag.sealed) {
    const sealer = keys(header.keyId);
    if (!sealer) throw new FrameError("missing key", `key id ${header.keyId}`);
    try {
      const ad = adFor(fileBound, frame);
      body = inPlace ? sealer.openInPlace(body, ad) : sealer.open(body, ad);
    } catch (e) {
      if (e instanceof AuthenticationError) throw new FrameError("authentication failed");
      throw e;
    }
  } else if (header.keyId !== KEY_ID_NONE) {
    throw new FrameError("bad payload", "key id set on an unsealed frame");
  }
  if (header.flags & FrameFlag.compressed && inflate) {
    try {
      body = decompress(body, maxPlain);
    } catch (e) {
      if (e instanceof DecodeError) throw new FrameError("bad payload", e.message);
      throw e;
    }
  }
  return { header, plaintext: body };
}
