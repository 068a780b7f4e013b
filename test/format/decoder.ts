/**
 * A second, deliberately tiny reader of Cellar store directories, written only
 * from docs/FORMAT.md. It must never import src/runtime: its job is to prove
 * that the document is enough to read what the runtime writes.
 *
 * It is strict: any check that fails throws a `FormatViolation` naming the
 * file, the offset and the rule of FORMAT.md that was broken. It reads healthy
 * stores; recovery from damage is the runtime's business.
 *
 * Keys (FORMAT.md, "Sealing and key derivation", "Keyring"): the master key
 * (32 raw bytes, or a passphrase stretched with Argon2id) unwraps the data keys
 * listed in KEYRING; frames are opened with crypto_kdf subkeys of a data key:
 * meta (manifest, commit frames, segment indexes), record(entity) (journal
 * values, segment blocks) and sensitive(entity) (sensitive parts of record values).
 */
import fs from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { inflateSync } from "fflate";
import sodium from "sodium-native";

export class FormatViolation extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly rule: string,
  ) {
    super(`${file} @ ${offset}: ${rule}`);
  }
}

// ---- constants (FORMAT.md, "Constants and bounds") ---------------------------
export const MAGIC = "CELLAR";
/** Version every new file is written at; version 2 files (journals without end records) are still read. */
export const VERSION = 4;
/** From this version on a segment's index is paged: a directory frame (type 3) and index page frames (type 7). */
export const PAGED_VERSION = 4;
export const MIN_VERSION = 2;
export const KIND = { journal: 0x4a, segment: 0x53, manifest: 0x4d, keyring: 0x4b } as const;
export const TYPE = { commit: 1, block: 2, index: 3, manifest: 4, keyring: 5, end: 6, indexPage: 7 } as const;
export const FLAG_COMPRESSED = 0x01;
export const FLAG_SEALED = 0x02;
const FILE_HEADER = 32;
const FRAME_HEADER = 24;
const NONCE = 24;
const TAG = 16;
const MAX_FRAME_PAYLOAD = 64 * 1024 * 1024;
const MAX_KEY = 1024;
const MAX_ENTITY = 255;
const MAX_VALUE = 16 * 1024 * 1024;
const MAX_TERMS = 1024;
const MAX_COUNT = 1 << 28;
const U32_MAX = 0xffffffff;
const FOOTER = 24;
const FOOTER_MAGIC = "CELLEND\0";
const WRAPPED = NONCE + 32 + TAG; // 72
const MAX_KEYS = 1024;
const ARGON2ID13 = 2;

// ---- varints and strings (FORMAT.md, "Varints and strings") -------------------
export class Cursor {
  pos = 0;
  constructor(
    readonly b: Uint8Array,
    readonly where: string,
  ) {}
  get done(): boolean {
    return this.pos >= this.b.length;
  }
  fail(rule: string): never {
    throw new FormatViolation(this.where, this.pos, rule);
  }
  u32(): number {
    const b = this.bytes(4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16)) + b[3]! * 2 ** 24;
  }
  u8(): number {
    if (this.pos >= this.b.length) this.fail("payload ends early");
    return this.b[this.pos++]!;
  }
  varint(max: number): number {
    let v = 0;
    for (let i = 0, mul = 1; i < 8; i++, mul *= 128) {
      const byte = this.u8();
      v += (byte & 0x7f) * mul;
      if (byte < 0x80) {
        if (v > max) this.fail(`varint ${v} above bound ${max}`);
        return v;
      }
    }
    return this.fail("varint longer than 8 bytes");
  }
  bytes(n: number): Uint8Array {
    if (n > this.b.length - this.pos) this.fail("length runs past the payload");
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  str(max: number): string {
    const b = this.bytes(this.varint(max));
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(b);
    } catch {
      return this.fail("invalid utf-8");
    }
  }
}

const u32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset + o, 4).getUint32(0, true);
const u64 = (b: Uint8Array, o: number) => Number(new DataView(b.buffer, b.byteOffset + o, 8).getBigUint64(0, true));
const u32le = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

// ---- sealing (FORMAT.md, "Sealing and key derivation") -------------------------

/** XChaCha20-Poly1305-IETF open of `nonce ‖ ciphertext ‖ tag`; null when authentication fails. */
export function openSealed(sealed: Uint8Array, ad: Uint8Array, key: Uint8Array): Buffer | null {
  if (sealed.length < NONCE + TAG) return null;
  const out = Buffer.alloc(sealed.length - NONCE - TAG);
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      out,
      null,
      Buffer.from(sealed.subarray(NONCE)),
      Buffer.from(ad),
      Buffer.from(sealed.subarray(0, NONCE)),
      Buffer.from(key),
    );
  } catch {
    return null;
  }
  return out;
}

/** file header bytes 0..28 ‖ frame header bytes 4..24 */
export function associatedData(fileBound: Uint8Array, frameHeader: Uint8Array): Buffer {
  return Buffer.concat([fileBound.subarray(0, 28), frameHeader.subarray(4, 24)]);
}

/** AD of a sealed journal value and of a sealed sensitive part: store id ‖ u32 LE schema version ‖ UTF-8 key. */
export function valueAD(storeId: Uint8Array, version: number, key: string): Buffer {
  return Buffer.concat([storeId, u32le(version), Buffer.from(key, "utf8")]);
}

export const KDF_CONTEXT = { meta: "CellarMK", record: "CellarRK", sensitive: "CellarSK" } as const;

/** entityId(e): the first 6 bytes, unsigned little-endian, of BLAKE2b-256 (unkeyed) of the UTF-8 name. */
export function entityId(entity: string): number {
  const h = Buffer.alloc(32);
  sodium.crypto_generichash(h, Buffer.from(entity, "utf8"));
  return h.readUIntLE(0, 6);
}

/** crypto_kdf_derive_from_key(32, subkeyId, ctx, dataKey). */
export function kdf(dataKey: Uint8Array, subkeyId: number, ctx: string): Buffer {
  const out = Buffer.alloc(32);
  sodium.crypto_kdf_derive_from_key(out, subkeyId, Buffer.from(ctx, "latin1"), Buffer.from(dataKey));
  return out;
}

/** The data keys of a store (by key id) and their subkeys. */
export class DataKeys {
  constructor(readonly byId: ReadonlyMap<number, Uint8Array>) {}
  private sub(id: number, ctx: string, subId: number): Buffer | null {
    const dk = this.byId.get(id);
    return dk ? kdf(dk, subId, ctx) : null;
  }
  meta(id: number): Buffer | null {
    return this.sub(id, KDF_CONTEXT.meta, 0);
  }
  record(id: number, entity: string): Buffer | null {
    return this.sub(id, KDF_CONTEXT.record, entityId(entity));
  }
  sensitive(id: number, entity: string): Buffer | null {
    return this.sub(id, KDF_CONTEXT.sensitive, entityId(entity));
  }
}

/** A master key: 32 raw bytes (keyring kinds 1 and 3) or a passphrase (kind 2). */
export type MasterKey = Uint8Array | { passphrase: string | Uint8Array };
/** What the readers accept: a master key (the KEYRING is read), data keys already unwrapped, or none. */
export type KeyInput = MasterKey | DataKeys | null;

// ---- file header (FORMAT.md, "File header") -----------------------------------
export interface Header {
  kind: number;
  version: number;
  storeId: Buffer;
  fileNumber: number;
  /** bytes 0..28: the part bound into every frame's associated data */
  bound: Uint8Array;
}

export function readHeader(file: string, b: Uint8Array, kind: number): Header {
  if (b.length < FILE_HEADER || Buffer.from(b.subarray(0, 6)).toString("latin1") !== MAGIC) {
    throw new FormatViolation(file, 0, "bad magic");
  }
  if (b[7]! < MIN_VERSION || b[7]! > VERSION) throw new FormatViolation(file, 7, "unsupported format version");
  if (u32(b, 28) !== crc32(b.subarray(0, 28))) throw new FormatViolation(file, 28, "header checksum mismatch");
  if (b[6] !== kind) throw new FormatViolation(file, 6, "wrong file kind");
  return { kind: b[6]!, version: b[7]!, storeId: Buffer.from(b.subarray(8, 24)), fileNumber: u32(b, 24), bound: b.subarray(0, 28) };
}

// ---- frames (FORMAT.md, "Frames") -------------------------------------------------
export interface Frame {
  offset: number;
  /** header + payload */
  bytes: Uint8Array;
  length: number;
  type: number;
  flags: number;
  keyId: number;
  seq: number;
}

/** Parse the frame header at `offset` and check its length and crc32. Does not open the payload. */
export function frameAt(file: string, b: Uint8Array, offset: number): Frame {
  if (offset + FRAME_HEADER > b.length) throw new FormatViolation(file, offset, "bad record length");
  const length = u32(b, offset + 4);
  if (length > MAX_FRAME_PAYLOAD || offset + FRAME_HEADER + length > b.length) {
    throw new FormatViolation(file, offset, "bad record length");
  }
  const bytes = b.subarray(offset, offset + FRAME_HEADER + length);
  if (u32(bytes, 0) !== crc32(bytes.subarray(4))) throw new FormatViolation(file, offset, "checksum mismatch");
  return { offset, bytes, length, type: bytes[8]!, flags: bytes[9]!, keyId: u32(bytes, 12), seq: u64(bytes, 16) };
}

/** Which subkey opens a frame, by the frame's key id (null: that data key is not known). */
export type SubkeyFor = (keyId: number) => Uint8Array | null;

/**
 * Checks flags, opens (if sealed) and inflates (if compressed), in the order of FORMAT.md "Frames"
 * (checks 4–8). `subkey` is null for a plaintext store. Returns the plaintext.
 */
export function framePlaintext(file: string, f: Frame, bound: Uint8Array, subkey: SubkeyFor | null, encrypted: boolean, keyFloor = 0): Uint8Array {
  if (f.flags & ~(FLAG_COMPRESSED | FLAG_SEALED)) throw new FormatViolation(file, f.offset, "bad payload (unknown flags)");
  // Stricter than the runtime (FORMAT.md, Oddities 2: reserved is "written as 0" but the runtime does not check it).
  if (f.bytes[10] !== 0 || f.bytes[11] !== 0) throw new FormatViolation(file, f.offset + 10, "reserved bytes are not 0");
  let body: Uint8Array = f.bytes.subarray(FRAME_HEADER);
  if (f.flags & FLAG_SEALED) {
    if (!subkey) throw new FormatViolation(file, f.offset, "sealed frame and no key");
    if (f.keyId < keyFloor) throw new FormatViolation(file, f.offset, `key id ${f.keyId} below the manifest's keyFloor ${keyFloor}`);
    const key = subkey(f.keyId);
    if (!key) throw new FormatViolation(file, f.offset, `missing key (key id ${f.keyId})`);
    const opened = openSealed(body, associatedData(bound, f.bytes), key);
    if (!opened) throw new FormatViolation(file, f.offset, "authentication failed");
    body = opened;
  } else {
    if (encrypted) throw new FormatViolation(file, f.offset, "authentication failed (frame is not sealed)");
    if (f.keyId !== 0) throw new FormatViolation(file, f.offset, "bad payload (key id set on an unsealed frame)");
  }
  if (f.flags & FLAG_COMPRESSED) {
    if (body.length < 4) throw new FormatViolation(file, f.offset, "bad payload (compressed body too short)");
    const n = u32(body, 0);
    if (n > MAX_FRAME_PAYLOAD) throw new FormatViolation(file, f.offset, "bad payload (declared plaintext length above bound)");
    let out: Uint8Array;
    try {
      out = inflateSync(body.subarray(4), { out: new Uint8Array(n) });
    } catch {
      throw new FormatViolation(file, f.offset, "bad payload (invalid deflate stream)");
    }
    if (out.length !== n) throw new FormatViolation(file, f.offset, "bad payload (inflated length differs)");
    body = out;
  }
  return body;
}

// ---- keyring (FORMAT.md, "Keyring") -------------------------------------------------
export interface Keyring {
  storeId: Buffer;
  generation: number;
  /** 1 raw · 2 passphrase · 3 external */
  kekKind: number;
  providerName: string;
  pwhash: { salt: Buffer; opsLimit: number; memLimit: number } | null;
  activeKeyId: number;
  /** key id → nonce ‖ ciphertext ‖ tag (72 bytes), ascending key ids */
  wrapped: Map<number, Uint8Array>;
  /** file offset of each wrapped key (for violations) */
  wrappedAt: Map<number, number>;
  bound: Uint8Array;
  /** payload bytes from its start through the nkeys varint: bound into every wrapping's AD */
  params: Uint8Array;
}

/** The keyring's plaintext part: header, crc, frame rules and payload grammar. No key needed. */
export function parseKeyring(b: Uint8Array, file = "KEYRING"): Keyring {
  const h = readHeader(file, b, KIND.keyring);
  const f = frameAt(file, b, FILE_HEADER);
  if (FILE_HEADER + f.bytes.length !== b.length) throw new FormatViolation(file, FILE_HEADER, "trailing bytes after the keyring frame");
  if (f.type !== TYPE.keyring) throw new FormatViolation(file, FILE_HEADER, "unexpected frame type");
  if (f.flags !== 0 || f.keyId !== 0) throw new FormatViolation(file, FILE_HEADER, "keyring frame must be flags 0, key id 0");
  if (f.bytes[10] !== 0 || f.bytes[11] !== 0) throw new FormatViolation(file, FILE_HEADER + 10, "reserved bytes are not 0");
  if (f.seq !== h.fileNumber) throw new FormatViolation(file, FILE_HEADER, "frame seq is not the generation (= the file number)");
  const payloadAt = FILE_HEADER + FRAME_HEADER;
  const c = new Cursor(f.bytes.subarray(FRAME_HEADER), file);
  const fail = (rule: string): never => {
    throw new FormatViolation(file, payloadAt + c.pos, rule);
  };
  const kekKind = c.u8();
  if (kekKind < 1 || kekKind > 3) fail(`bad payload (unknown kekKind ${kekKind})`);
  const providerName = c.str(255);
  let pwhash: Keyring["pwhash"] = null;
  if (kekKind === 2) {
    const salt = Buffer.from(c.bytes(16));
    const opsLimit = c.varint(64);
    const memLimit = c.varint(4 * 1024 * 1024 * 1024);
    const alg = c.u8();
    if (alg !== ARGON2ID13) fail(`bad payload (unknown password hash ${alg})`);
    if (opsLimit < 1 || memLimit < 8192) fail("bad payload (Argon2id cost below the minimum)");
    pwhash = { salt, opsLimit, memLimit };
  }
  const activeKeyId = c.varint(U32_MAX);
  const wrapped = new Map<number, Uint8Array>();
  const wrappedAt = new Map<number, number>();
  let prev = 0;
  const nkeys = c.varint(MAX_KEYS);
  const params = Uint8Array.from(f.bytes.subarray(FRAME_HEADER, FRAME_HEADER + c.pos));
  for (let i = 0; i < nkeys; i++) {
    const id = c.varint(U32_MAX);
    if (id <= prev) fail("bad payload (key ids not ascending, or key id 0)");
    prev = id;
    wrappedAt.set(id, payloadAt + c.pos);
    wrapped.set(id, Uint8Array.from(c.bytes(WRAPPED)));
  }
  if (!c.done) fail("bad payload (trailing bytes)");
  if (!wrapped.has(activeKeyId)) fail(`bad payload (active key ${activeKeyId} is not listed)`);
  return { storeId: h.storeId, generation: f.seq, kekKind, providerName, pwhash, activeKeyId, wrapped, wrappedAt, bound: Uint8Array.from(h.bound), params };
}

/** The key-encryption key: the raw 32 bytes (kinds 1, 3) or Argon2id of the NFC/UTF-8 passphrase (kind 2). */
export function masterKeyOf(ring: Keyring, master: MasterKey, file = "KEYRING"): Buffer {
  const isPass = !(master instanceof Uint8Array);
  if (ring.kekKind === 2 && !isPass) throw new FormatViolation(file, FILE_HEADER + FRAME_HEADER, "wrong key kind: this keyring needs a passphrase");
  if (ring.kekKind !== 2 && isPass) throw new FormatViolation(file, FILE_HEADER + FRAME_HEADER, "wrong key kind: this keyring needs a 32-byte key");
  if (!isPass) {
    if (master.length !== 32) throw new FormatViolation(file, 0, "a raw master key is 32 bytes");
    return Buffer.from(master);
  }
  const p = master.passphrase;
  const pw = typeof p === "string" ? Buffer.from(p.normalize("NFC"), "utf8") : Buffer.from(p);
  const out = Buffer.alloc(32);
  sodium.crypto_pwhash(out, pw, ring.pwhash!.salt, ring.pwhash!.opsLimit, ring.pwhash!.memLimit, ARGON2ID13);
  return out;
}

/** Unwrap every listed data key: AD = keyring header bytes [0..28) ‖ u32 LE keyId ‖ params. */
export function unwrapDataKeys(ring: Keyring, kek: Uint8Array, file = "KEYRING"): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const [id, w] of ring.wrapped) {
    const dk = openSealed(w, Buffer.concat([ring.bound, u32le(id), ring.params]), kek);
    if (!dk || dk.length !== 32) throw new FormatViolation(file, ring.wrappedAt.get(id)!, `authentication failed (wrapped key ${id}: wrong key or passphrase)`);
    out.set(id, dk);
  }
  return out;
}

/** Read KEYRING of `dir` and unwrap its data keys with `master`. */
export function readKeyring(dir: string, master: MasterKey): Keyring & { kek: Buffer; dataKeys: Map<number, Buffer>; keys: DataKeys } {
  const p = path.join(dir, "KEYRING");
  if (!fs.existsSync(p)) throw new FormatViolation("KEYRING", 0, "missing (the store is encrypted)");
  const ring = parseKeyring(fs.readFileSync(p));
  const kek = masterKeyOf(ring, master);
  const dataKeys = unwrapDataKeys(ring, kek);
  return { ...ring, kek, dataKeys, keys: new DataKeys(dataKeys) };
}

function toDataKeys(dir: string, key: KeyInput): { keys: DataKeys; ringStoreId: Buffer | null } | null {
  if (key === null) return null;
  if (key instanceof DataKeys) return { keys: key, ringStoreId: null };
  const r = readKeyring(dir, key);
  return { keys: r.keys, ringStoreId: r.storeId };
}

// ---- the store --------------------------------------------------------------------
export interface Manifest {
  storeId: Buffer;
  generation: number;
  journalStart: number;
  nextFile: number;
  seqFloor: number;
  segments: number[];
  encrypted: boolean;
  keyFloor: number;
  entities: Map<string, number>;
  /** Key id of the manifest frame (0 when unsealed). */
  frameKeyId: number;
  /** The data keys the reader used (null for a plaintext store). */
  keys: DataKeys | null;
}

/**
 * FORMAT.md, "Manifest", "Two copies": `MANIFEST` and `MANIFEST.copy`; the one that passes every check with
 * the higher generation (`MANIFEST` on a tie). Throws the error of `MANIFEST` when neither does.
 */
export function readManifest(dir: string, key: KeyInput): Manifest {
  const got: Manifest[] = [];
  let first: unknown = null;
  for (const name of ["MANIFEST", "MANIFEST.copy"]) {
    if (name === "MANIFEST.copy" && !fs.existsSync(path.join(dir, name))) continue;
    try {
      got.push(readManifestFile(dir, name, key));
    } catch (e) {
      first ??= e;
    }
  }
  if (!got.length) throw first;
  return got.length === 2 && got[1]!.generation > got[0]!.generation ? got[1]! : got[0]!;
}

function readManifestFile(dir: string, name: string, key: KeyInput): Manifest {
  const b = fs.readFileSync(path.join(dir, name));
  const h = readHeader("MANIFEST", b, KIND.manifest);
  const f = frameAt("MANIFEST", b, FILE_HEADER);
  if (FILE_HEADER + FRAME_HEADER + f.length !== b.length) throw new FormatViolation("MANIFEST", 32, "trailing bytes");
  if (f.type !== TYPE.manifest) throw new FormatViolation("MANIFEST", 32, "unexpected frame type");
  if (f.flags & FLAG_COMPRESSED) throw new FormatViolation("MANIFEST", 32, "the manifest frame is never compressed");
  const encrypted = (f.flags & FLAG_SEALED) !== 0;
  let keys: DataKeys | null = null;
  if (encrypted) {
    if (key === null) throw new FormatViolation("MANIFEST", 41, "sealed frame and no key");
    const k = toDataKeys(dir, key)!;
    if (k.ringStoreId && !k.ringStoreId.equals(h.storeId)) throw new FormatViolation("KEYRING", 8, "keyring store id differs from the manifest's");
    keys = k.keys;
  } else {
    if (key !== null) throw new FormatViolation("MANIFEST", 41, "unsealed manifest opened with a key");
    if (fs.existsSync(path.join(dir, "KEYRING"))) throw new FormatViolation("KEYRING", 0, "a plaintext store has no keyring");
  }
  const plain = framePlaintext("MANIFEST", f, h.bound, keys ? (id) => keys!.meta(id) : null, encrypted);
  const c = new Cursor(plain, "MANIFEST body");
  const generation = c.varint(Number.MAX_SAFE_INTEGER);
  const m: Manifest = {
    storeId: h.storeId,
    generation,
    journalStart: c.varint(U32_MAX),
    nextFile: c.varint(U32_MAX),
    seqFloor: c.varint(Number.MAX_SAFE_INTEGER),
    segments: [],
    encrypted: false,
    keyFloor: 0,
    entities: new Map(),
    frameKeyId: f.keyId,
    keys,
  };
  for (let i = 0, n = c.varint(MAX_COUNT); i < n; i++) m.segments.push(c.varint(U32_MAX));
  const enc = c.u8();
  if (enc > 1) c.fail("unknown encryption mode");
  m.encrypted = enc === 1;
  if (m.encrypted !== encrypted) c.fail("encryption byte disagrees with the frame's sealed flag");
  m.keyFloor = c.varint(U32_MAX);
  if (!encrypted && m.keyFloor !== 0) c.fail("keyFloor of a plaintext store is 0");
  if (encrypted && f.keyId < m.keyFloor) throw new FormatViolation("MANIFEST", 32, "manifest sealed with a key below its keyFloor");
  let prevName: Buffer | null = null;
  for (let i = 0, n = c.varint(MAX_COUNT); i < n; i++) {
    const name = c.str(MAX_ENTITY);
    const nb = Buffer.from(name, "utf8");
    if (prevName && Buffer.compare(prevName, nb) >= 0) c.fail("entities not sorted by name");
    prevName = nb;
    m.entities.set(name, c.varint(U32_MAX));
  }
  if (!c.done) c.fail("trailing bytes in manifest body");
  if (f.seq !== generation) throw new FormatViolation("MANIFEST", 32, "frame sequence is not the generation");
  if (h.fileNumber !== generation % 2 ** 32) throw new FormatViolation("MANIFEST", 24, "file number is not the generation");
  return m;
}

export interface LiveRecord {
  entity: string;
  key: string;
  version: number;
  /** The record value (journal values already opened with the entity's record key). */
  value: Uint8Array;
}

/** What a decoded segment holds (used by tests that damage segments). */
export interface SegmentIndexBlock {
  offset: number;
  frameLength: number;
  entity: string;
  /** key id of the block frame */
  keyId: number;
  slots: { key: string; version: number; start: number; length: number; terms: string[] }[];
}

export const segmentName = (n: number) => `segment-${String(n).padStart(6, "0")}.seg`;
export const journalName = (n: number) => `journal-${String(n).padStart(6, "0")}.log`;

export function readSegment(
  dir: string,
  n: number,
  m: Manifest,
  key: DataKeys | null = m.keys,
): { index: SegmentIndexBlock[]; records: LiveRecord[]; indexOffset: number; indexKeyId: number; size: number } {
  const name = segmentName(n);
  const b = fs.readFileSync(path.join(dir, name));
  const h = readHeader(name, b, KIND.segment);
  if (h.fileNumber !== n || !h.storeId.equals(m.storeId)) throw new FormatViolation(name, 8, "header names another file");
  if (b.length < FILE_HEADER + FOOTER) throw new FormatViolation(name, 0, "file too short");
  const foot = b.subarray(b.length - FOOTER);
  if (Buffer.from(foot.subarray(16)).toString("latin1") !== FOOTER_MAGIC) throw new FormatViolation(name, b.length - 8, "bad footer magic");
  if (u32(foot, 12) !== crc32(foot.subarray(0, 12))) throw new FormatViolation(name, b.length - FOOTER, "footer checksum mismatch");
  const indexOffset = u64(foot, 0);
  const indexLength = u32(foot, 8);
  if (indexOffset < FILE_HEADER || indexLength > MAX_FRAME_PAYLOAD + FRAME_HEADER || indexOffset + indexLength !== b.length - FOOTER) {
    throw new FormatViolation(name, b.length - FOOTER, "bad record length (index)");
  }
  const data = b.subarray(0, b.length - FOOTER);
  const fi = frameAt(name, data, indexOffset);
  if (fi.bytes.length !== indexLength || fi.type !== TYPE.index) throw new FormatViolation(name, indexOffset, "not the index frame");
  if (fi.flags & FLAG_COMPRESSED) throw new FormatViolation(name, indexOffset, "an index frame is never compressed");
  const c = new Cursor(framePlaintext(name, fi, h.bound, key ? (id) => key.meta(id) : null, m.encrypted, m.keyFloor), `${name} index`);
  const paged = h.version >= PAGED_VERSION;
  const index: SegmentIndexBlock[] = [];
  type Slot = SegmentIndexBlock["slots"][number];
  /** The slots of `count` records at `cur`, their term refs into `termTable`, then their u32 offset table (offsets from `base`). */
  const slotsAt = (cur: Cursor, count: number, termTable: string[]): Slot[] => {
    const out: Slot[] = [];
    const slotAt: number[] = [];
    for (let j = 0; j < count; j++) {
      slotAt.push(cur.pos);
      const key = cur.str(MAX_KEY);
      const version = cur.varint(U32_MAX);
      const start = cur.varint(MAX_FRAME_PAYLOAD);
      const length = cur.varint(MAX_VALUE);
      const terms: string[] = [];
      for (let t = 0, nt = cur.varint(MAX_TERMS); t < nt; t++) {
        const ref = cur.varint(Number.MAX_SAFE_INTEGER);
        if (ref >= termTable.length) cur.fail("term ref outside the term table");
        terms.push(termTable[ref]!);
      }
      out.push({ key, version, start, length, terms });
    }
    // The slot offset table: the last 4 × count bytes, u32 LE, each the offset of its slot.
    for (const at of slotAt) {
      const got = cur.u32();
      if (got !== at) cur.fail(`slot offset ${got} is not where its slot starts (${at})`);
    }
    if (!cur.done) cur.fail("trailing bytes in index");
    return out;
  };
  const termTable: string[] = [];
  if (!paged) for (let i = 0, nt = c.varint(MAX_COUNT); i < nt; i++) termTable.push(c.str(MAX_KEY));
  const counts: number[] = [];
  for (let i = 0, nb = c.varint(MAX_COUNT); i < nb; i++) {
    index.push({
      offset: c.varint(Number.MAX_SAFE_INTEGER),
      frameLength: c.varint(MAX_FRAME_PAYLOAD + 64),
      entity: c.str(MAX_ENTITY),
      keyId: 0,
      slots: [],
    });
    counts.push(c.varint(MAX_COUNT));
  }
  const nslots = c.varint(MAX_COUNT);
  if (nslots !== counts.reduce((a, b) => a + b, 0)) c.fail("nslots is not the sum of the blocks' counts");
  const valueBytes = c.varint(Number.MAX_SAFE_INTEGER);
  const last = index[index.length - 1];
  /** Where the blocks end: the index frame (version 2/3) or the first index page (version 4) starts there. */
  const blocksEnd = last ? last.offset + last.frameLength : FILE_HEADER;
  let all: Slot[];
  let frames = index.length;
  if (!paged) all = slotsAt(c, nslots, termTable);
  else {
    // Version 4: the directory lists the pages (frame length, record count, first key); each page frame
    // (type 7, seq = nblocks + page) holds its own term table, its slots and their offset table.
    const pages: { frameLength: number; count: number; firstKey: string }[] = [];
    for (let p = 0, np = c.varint(MAX_COUNT); p < np; p++) pages.push({ frameLength: c.varint(MAX_FRAME_PAYLOAD + 64), count: c.varint(MAX_COUNT), firstKey: c.str(MAX_KEY) });
    if (!c.done) c.fail("trailing bytes in index directory");
    all = [];
    let at = blocksEnd;
    for (const pg of pages) {
      const f = frameAt(name, data.subarray(0, indexOffset), at);
      if (f.bytes.length !== pg.frameLength || f.type !== TYPE.indexPage || f.seq !== frames) throw new FormatViolation(name, at, "index page frame does not match the directory");
      if (f.flags & FLAG_COMPRESSED) throw new FormatViolation(name, at, "an index page is never compressed");
      const pc = new Cursor(framePlaintext(name, f, h.bound, key ? (id) => key.meta(id) : null, m.encrypted, m.keyFloor), `${name} index page ${frames - index.length}`);
      const terms: string[] = [];
      for (let i = 0, nt = pc.varint(MAX_COUNT); i < nt; i++) terms.push(pc.str(MAX_KEY));
      if (pc.varint(MAX_COUNT) !== pg.count || pg.count === 0) pc.fail("page record count differs from the directory's");
      const slots = slotsAt(pc, pg.count, terms);
      if (slots[0]!.key !== pg.firstKey) pc.fail("first key differs from the directory's");
      // A page never holds records of two entities.
      let b = 0;
      for (let first = all.length; counts.slice(0, b + 1).reduce((x, y) => x + y, 0) <= first; ) b++;
      const blockEnds = counts.slice(0, b + 1).reduce((x, y) => x + y, 0);
      let entityEnd = blockEnds;
      for (let k = b + 1; k < index.length && index[k]!.entity === index[b]!.entity; k++) entityEnd += counts[k]!;
      if (all.length + pg.count > entityEnd) pc.fail("a page holds records of two entities");
      all.push(...slots);
      at += pg.frameLength;
      frames++;
    }
    if (at !== indexOffset) throw new FormatViolation(name, at, "gap before the index");
    if (all.length !== nslots) c.fail("the pages' record counts do not add up to nslots");
  }
  let lengths = 0;
  let k = 0;
  for (const [i, blk] of index.entries()) {
    for (let j = 0; j < counts[i]!; j++) {
      const slot = all[k++]!;
      lengths += slot.length;
      blk.slots.push(slot);
    }
  }
  if (lengths !== valueBytes) c.fail("valueBytes is not the sum of the slots' lengths");
  if (fi.seq !== frames) throw new FormatViolation(name, indexOffset, "index sequence is not the block count");
  // Order: an entity's blocks are consecutive and its keys strictly ascending in UTF-8 byte order.
  const seen = new Set<string>();
  let prev = null as { entity: string; key: Buffer } | null;
  for (const blk of index) {
    if (prev?.entity !== blk.entity) {
      if (seen.has(blk.entity)) throw new FormatViolation(name, blk.offset, "blocks of an entity are not consecutive");
      seen.add(blk.entity);
      prev = null;
    }
    for (const slot of blk.slots) {
      const key = Buffer.from(slot.key, "utf8");
      if (prev && Buffer.compare(prev.key, key) >= 0) throw new FormatViolation(name, blk.offset, "keys are not ascending in UTF-8 byte order");
      prev = { entity: blk.entity, key };
    }
  }
  const records: LiveRecord[] = [];
  let expect = FILE_HEADER;
  index.forEach((blk, i) => {
    if (blk.offset !== expect) throw new FormatViolation(name, blk.offset, "blocks are not contiguous");
    expect += blk.frameLength;
    const f = frameAt(name, data.subarray(0, paged ? blocksEnd : indexOffset), blk.offset);
    if (f.bytes.length !== blk.frameLength || f.type !== TYPE.block || f.seq !== i) {
      throw new FormatViolation(name, blk.offset, "block frame does not match its index entry");
    }
    blk.keyId = f.keyId;
    // A block is sealed under record(id, e) of the entity its index entry names.
    const plain = framePlaintext(name, f, h.bound, key ? (id) => key.record(id, blk.entity) : null, m.encrypted, m.keyFloor);
    const bc = new Cursor(plain, `${name} block ${i}`);
    let slot = 0;
    while (!bc.done) {
      const key = bc.str(MAX_KEY);
      const version = bc.varint(U32_MAX);
      const len = bc.varint(MAX_VALUE);
      const start = bc.pos;
      const value = bc.bytes(len);
      const s = blk.slots[slot++];
      if (!s || s.key !== key || s.version !== version || s.start !== start || s.length !== len) {
        bc.fail("block record disagrees with the index");
      }
      records.push({ entity: blk.entity, key, version, value: Uint8Array.from(value) });
    }
    if (slot === 0) bc.fail("a block holds at least one record");
    if (slot !== blk.slots.length) bc.fail("index lists more records than the block holds");
  });
  if (expect !== (paged ? blocksEnd : indexOffset)) throw new FormatViolation(name, expect, "gap before the index");
  return { index, records, indexOffset, indexKeyId: fi.keyId, size: b.length };
}

export type JournalEntry =
  | { op: "put"; entity: string; key: string; version: number; terms: string[]; value: Uint8Array }
  | { op: "delete"; entity: string; key: string };

/** The commit grammar. In an encrypted store each put's `value` is still sealed (see openJournalValue). */
export function decodeCommitPayload(plain: Uint8Array, where: string): JournalEntry[] {
  const c = new Cursor(plain, where);
  const out: JournalEntry[] = [];
  if (c.done) c.fail("a commit holds at least one entry");
  while (!c.done) {
    const op = c.u8();
    if (op !== 1 && op !== 2) c.fail(`bad payload (unknown operation ${op})`);
    const entity = c.str(MAX_ENTITY);
    const key = c.str(MAX_KEY);
    if (op === 1) {
      const version = c.varint(U32_MAX);
      const terms: string[] = [];
      for (let i = 0, n = c.varint(MAX_TERMS); i < n; i++) terms.push(c.str(MAX_KEY));
      const value = Uint8Array.from(c.bytes(c.varint(MAX_VALUE + NONCE + TAG)));
      out.push({ op: "put", entity, key, version, terms, value });
    } else {
      out.push({ op: "delete", entity, key });
    }
  }
  return out;
}

/** Open a put's value sealed under record(keyId, entity) with valueAD; throws a violation if it fails. */
export function openJournalValue(
  keys: DataKeys,
  storeId: Uint8Array,
  keyId: number,
  e: { entity: string; key: string; version: number; value: Uint8Array },
  where: string,
  offset: number,
): Buffer {
  const k = keys.record(keyId, e.entity);
  if (!k) throw new FormatViolation(where, offset, `missing key (key id ${keyId})`);
  const v = openSealed(e.value, valueAD(storeId, e.version, e.key), k);
  if (!v) throw new FormatViolation(where, offset, `authentication failed (value of ${e.entity}/${e.key})`);
  return v;
}

export interface JournalFrame {
  offset: number;
  seq: number;
  keyId: number;
  /** puts with their values opened (the record values) */
  entries: JournalEntry[];
  /** puts as stored (values sealed in an encrypted store) */
  raw: JournalEntry[];
}

/** Frames of one journal file, checked strictly (a healthy journal: frames, then zeros). */
export function readJournal(dir: string, n: number, m: Manifest, firstSeq: number): { frames: JournalFrame[]; nextSeq: number } {
  const name = journalName(n);
  const b = fs.readFileSync(path.join(dir, name));
  const h = readHeader(name, b, KIND.journal);
  if (h.fileNumber !== n || !h.storeId.equals(m.storeId)) throw new FormatViolation(name, 8, "header names another file");
  const keys = m.keys;
  const frames: JournalFrame[] = [];
  let pos = FILE_HEADER;
  let seq = firstSeq;
  while (pos + FRAME_HEADER <= b.length) {
    if (b.subarray(pos).every((x) => x === 0)) {
      if (h.version === 2) break; // version 2: clean end
      throw new FormatViolation(name, pos, "the journal ends without its end record");
    }
    const f = frameAt(name, b, pos);
    if (h.version >= 3 && f.type === TYPE.end) {
      // The end record: seq of the last frame, payload = u64 its own offset, then only zeros.
      if (f.length !== 8 || f.flags !== 0 || f.keyId !== 0 || f.bytes[10] !== 0 || f.bytes[11] !== 0) throw new FormatViolation(name, pos, "bad end record");
      if (f.seq !== seq - 1) throw new FormatViolation(name, pos, `end record names seq ${f.seq}, the last frame carries ${seq - 1}`);
      if (u64(f.bytes, FRAME_HEADER) !== pos) throw new FormatViolation(name, pos, "end record names another offset");
      pos += f.bytes.length;
      if (!b.subarray(pos).every((x) => x === 0)) throw new FormatViolation(name, pos, "bytes after the end record");
      return { frames, nextSeq: seq };
    }
    if (f.type !== TYPE.commit) throw new FormatViolation(name, pos, "unexpected frame type");
    if (f.seq !== seq) throw new FormatViolation(name, pos, `unexpected sequence ${f.seq}, expected ${seq}`);
    if (f.seq > Number.MAX_SAFE_INTEGER) throw new FormatViolation(name, pos, "sequence above 2^53 - 1");
    const plain = framePlaintext(name, f, h.bound, keys ? (id) => keys.meta(id) : null, m.encrypted, m.keyFloor);
    const raw = decodeCommitPayload(plain, `${name}@${pos}`);
    const entries = raw.map((e): JournalEntry => {
      if (e.op !== "put") return e;
      const value = keys ? openJournalValue(keys, m.storeId, f.keyId, e, name, pos) : e.value;
      if (value.length > MAX_VALUE) throw new FormatViolation(name, pos, "value above 16 MiB");
      return { ...e, value: Uint8Array.from(value) };
    });
    frames.push({ offset: pos, seq, keyId: f.keyId, entries, raw });
    seq++;
    pos += f.bytes.length;
  }
  if (h.version >= 3) throw new FormatViolation(name, pos, "the journal ends without its end record");
  if (pos < b.length && !b.subarray(pos).every((x) => x === 0)) throw new FormatViolation(name, pos, "bytes after the last frame");
  return { frames, nextSeq: seq };
}

/** Live journal numbers: journal-N.log with N ≥ journalStart, ascending. */
export function liveJournals(dir: string, m: Manifest): number[] {
  return fs
    .readdirSync(dir)
    .map((f) => /^journal-(\d{6,})\.log$/.exec(f))
    .filter((x): x is RegExpExecArray => x !== null)
    .map((x) => Number(x[1]))
    .filter((n) => n >= m.journalStart && n <= U32_MAX) // file numbers are u32: a larger one is not a Cellar file
    .sort((a, b) => a - b);
}

/**
 * Every live record of the store in `dir`: manifest → segments (in manifest
 * order) → journals numbered ≥ journalStart in ascending order; later wins,
 * deletes remove. Sorted by entity, then key (UTF-16 order).
 */
export function listLiveRecords(dir: string, key: KeyInput = null): LiveRecord[] {
  const m = readManifest(dir, key);
  const live = new Map<string, LiveRecord>();
  const id = (e: string, k: string) => JSON.stringify([e, k]);
  for (const s of m.segments) for (const r of readSegment(dir, s, m).records) live.set(id(r.entity, r.key), r);
  let seq = m.seqFloor + 1;
  for (const j of liveJournals(dir, m)) {
    const r = readJournal(dir, j, m, seq);
    seq = r.nextSeq;
    for (const f of r.frames) {
      for (const e of f.entries) {
        if (e.op === "put") live.set(id(e.entity, e.key), { entity: e.entity, key: e.key, version: e.version, value: e.value });
        else live.delete(id(e.entity, e.key));
      }
    }
  }
  return [...live.values()].sort((a, b) => (a.entity === b.entity ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : a.entity < b.entity ? -1 : 1));
}

// ---- record values (FORMAT.md, "Record values") ---------------------------------------
export type RecordValue =
  | { kind: 0; message: Uint8Array }
  | { kind: 1; keyId: number; public: Uint8Array; sealed: Uint8Array };

export function parseRecordValue(v: Uint8Array, where: string): RecordValue {
  const c = new Cursor(v, where);
  const kind = c.u8();
  if (kind === 0) return { kind: 0, message: v.subarray(1) };
  if (kind !== 1) c.fail(`bad payload (unknown record value kind ${kind})`);
  const keyId = c.varint(U32_MAX);
  if (keyId === 0) c.fail("bad payload (sensitive part under key id 0)");
  const pub = c.bytes(c.varint(v.length));
  const sealed = v.subarray(c.pos);
  if (sealed.length < NONCE + TAG) c.fail("bad payload (sealed sensitive part shorter than nonce and tag)");
  return { kind: 1, keyId, public: pub, sealed };
}

/**
 * The protobuf bytes of a record: `message`, or `public ‖ sensitivePart` with the part opened under
 * sensitive(keyId, entity) and AD = store id ‖ u32 LE version ‖ UTF-8 key.
 */
export function openRecordValue(
  m: Manifest,
  r: LiveRecord,
): { kind: 0 | 1; keyId: number; public: Uint8Array; sensitivePart: Uint8Array | null; protobuf: Uint8Array } {
  const where = `${r.entity}/${r.key}`;
  const v = parseRecordValue(r.value, where);
  if (v.kind === 0) return { kind: 0, keyId: 0, public: v.message, sensitivePart: null, protobuf: v.message };
  if (!m.keys) throw new FormatViolation(where, 0, "a sensitive part in a store without keys");
  if (v.keyId < m.keyFloor) throw new FormatViolation(where, 1, `sensitive part under key ${v.keyId}, below keyFloor ${m.keyFloor}`);
  const k = m.keys.sensitive(v.keyId, r.entity);
  if (!k) throw new FormatViolation(where, 1, `missing key (key id ${v.keyId})`);
  const part = openSealed(v.sealed, valueAD(m.storeId, r.version, r.key), k);
  if (!part) throw new FormatViolation(where, r.value.length - v.sealed.length, "authentication failed (sensitive part)");
  return { kind: 1, keyId: v.keyId, public: v.public, sensitivePart: part, protobuf: new Uint8Array(Buffer.concat([v.public, part])) };
}
