/**
 * A second, deliberately tiny reader of Cellar store directories, written only
 * from docs/FORMAT.md. It must never import src/runtime: its job is to prove
 * that the document is enough to read what the runtime writes.
 *
 * It is strict: any check that fails throws a `FormatViolation` naming the
 * file, the offset and the rule of FORMAT.md that was broken. It reads healthy
 * stores; recovery from damage is the runtime's business.
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
export const VERSION = 1;
export const KIND = { journal: 0x4a, segment: 0x53, manifest: 0x4d } as const;
export const TYPE = { commit: 1, block: 2, index: 3, manifest: 4 } as const;
export const FLAG_COMPRESSED = 0x01;
export const FLAG_SEALED = 0x02;
const FILE_HEADER = 32;
const FRAME_HEADER = 24;
const MAX_FRAME_PAYLOAD = 64 * 1024 * 1024;
const MAX_KEY = 1024;
const MAX_ENTITY = 255;
const MAX_VALUE = 16 * 1024 * 1024;
const MAX_TERMS = 1024;
const MAX_COUNT = 1 << 28;
const FOOTER = 24;
const FOOTER_MAGIC = "CELLEND\0";

// ---- varints and strings (FORMAT.md, "Integers and varints") -----------------
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
    return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes(this.varint(max)));
  }
}

const u32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset + o, 4).getUint32(0, true);
const u64 = (b: Uint8Array, o: number) => Number(new DataView(b.buffer, b.byteOffset + o, 8).getBigUint64(0, true));

// ---- keys (FORMAT.md, "Key derivation") ---------------------------------------
export function deriveDataKey(master: Uint8Array, keyId: number): Buffer {
  const sub = Buffer.alloc(32);
  sodium.crypto_kdf_derive_from_key(sub, keyId, Buffer.from("CellarDK"), Buffer.from(master));
  return sub;
}

// ---- file header (FORMAT.md, "File header") -----------------------------------
export interface Header {
  kind: number;
  storeId: Buffer;
  fileNumber: number;
  /** bytes 0..28: the part bound into every frame's associated data */
  bound: Uint8Array;
}

export function readHeader(file: string, b: Uint8Array, kind: number): Header {
  if (b.length < FILE_HEADER || Buffer.from(b.subarray(0, 6)).toString("latin1") !== MAGIC) {
    throw new FormatViolation(file, 0, "bad magic");
  }
  if (b[7] !== VERSION) throw new FormatViolation(file, 7, "unsupported format version");
  if (u32(b, 28) !== crc32(b.subarray(0, 28))) throw new FormatViolation(file, 28, "header checksum mismatch");
  if (b[6] !== kind) throw new FormatViolation(file, 6, "wrong file kind");
  return { kind: b[6]!, storeId: Buffer.from(b.subarray(8, 24)), fileNumber: u32(b, 24), bound: b.subarray(0, 28) };
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

/** file header bytes 0..28 ‖ frame header bytes 4..24 */
export function associatedData(fileBound: Uint8Array, frameHeader: Uint8Array): Buffer {
  return Buffer.concat([fileBound.subarray(0, 28), frameHeader.subarray(4, 24)]);
}

/** XChaCha20-Poly1305-IETF open of `nonce ‖ ciphertext ‖ tag`; null when authentication fails. */
export function openSealed(payload: Uint8Array, ad: Uint8Array, dataKey: Uint8Array): Buffer | null {
  if (payload.length < 40) return null;
  const out = Buffer.alloc(payload.length - 40);
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      out,
      null,
      Buffer.from(payload.subarray(24)),
      Buffer.from(ad),
      Buffer.from(payload.subarray(0, 24)),
      Buffer.from(dataKey),
    );
  } catch {
    return null;
  }
  return out;
}

/** Checks flags, opens (if sealed) and inflates (if compressed). Returns the plaintext. */
export function framePlaintext(file: string, f: Frame, bound: Uint8Array, master: Uint8Array | null, encrypted: boolean): Uint8Array {
  if (f.flags & ~(FLAG_COMPRESSED | FLAG_SEALED)) throw new FormatViolation(file, f.offset, "unknown flags");
  let body: Uint8Array = f.bytes.subarray(FRAME_HEADER);
  if (f.flags & FLAG_SEALED) {
    if (!master) throw new FormatViolation(file, f.offset, "sealed frame and no key");
    const opened = openSealed(body, associatedData(bound, f.bytes), deriveDataKey(master, f.keyId));
    if (!opened) throw new FormatViolation(file, f.offset, "authentication failed");
    body = opened;
  } else {
    if (encrypted) throw new FormatViolation(file, f.offset, "unsealed frame in an encrypted store");
    if (f.keyId !== 0) throw new FormatViolation(file, f.offset, "key id on an unsealed frame");
  }
  if (f.flags & FLAG_COMPRESSED) {
    if (body.length < 4) throw new FormatViolation(file, f.offset, "compressed payload too short");
    const n = u32(body, 0);
    if (n > MAX_FRAME_PAYLOAD) throw new FormatViolation(file, f.offset, "declared plaintext length above bound");
    const out = inflateSync(body.subarray(4), { out: new Uint8Array(n) });
    if (out.length !== n) throw new FormatViolation(file, f.offset, "inflated length differs");
    body = out;
  }
  return body;
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
  keyId: number;
  entities: Map<string, number>;
}

export function readManifest(dir: string, master: Uint8Array | null): Manifest {
  const b = fs.readFileSync(path.join(dir, "MANIFEST"));
  const h = readHeader("MANIFEST", b, KIND.manifest);
  const f = frameAt("MANIFEST", b, FILE_HEADER);
  if (FILE_HEADER + FRAME_HEADER + f.length !== b.length) throw new FormatViolation("MANIFEST", 32, "trailing bytes");
  if (f.type !== TYPE.manifest) throw new FormatViolation("MANIFEST", 32, "unexpected frame type");
  const encrypted = (f.flags & FLAG_SEALED) !== 0;
  const c = new Cursor(framePlaintext("MANIFEST", f, h.bound, master, encrypted), "MANIFEST body");
  const generation = c.varint(Number.MAX_SAFE_INTEGER);
  const m: Manifest = {
    storeId: h.storeId,
    generation,
    journalStart: c.varint(0xffffffff),
    nextFile: c.varint(0xffffffff),
    seqFloor: c.varint(Number.MAX_SAFE_INTEGER),
    segments: [],
    encrypted: false,
    keyId: 0,
    entities: new Map(),
  };
  for (let i = 0, n = c.varint(MAX_COUNT); i < n; i++) m.segments.push(c.varint(0xffffffff));
  const enc = c.u8();
  if (enc > 1) c.fail("unknown encryption mode");
  m.encrypted = enc === 1;
  if (m.encrypted !== encrypted) c.fail("encryption byte disagrees with the frame's sealed flag");
  m.keyId = c.varint(0xffffffff);
  for (let i = 0, n = c.varint(MAX_COUNT); i < n; i++) m.entities.set(c.str(MAX_ENTITY), c.varint(0xffffffff));
  if (!c.done) c.fail("trailing bytes in manifest body");
  if (f.seq !== generation) throw new FormatViolation("MANIFEST", 32, "frame sequence is not the generation");
  return m;
}

export interface LiveRecord {
  entity: string;
  key: string;
  version: number;
  value: Uint8Array;
}

/** What a decoded segment holds (used by tests that damage segments). */
export interface SegmentIndexBlock {
  offset: number;
  frameLength: number;
  entity: string;
  slots: { key: string; version: number; start: number; length: number; terms: string[] }[];
}

export function readSegment(
  dir: string,
  n: number,
  m: Manifest,
  master: Uint8Array | null,
): { index: SegmentIndexBlock[]; records: LiveRecord[]; indexOffset: number; size: number } {
  const name = `segment-${String(n).padStart(6, "0")}.seg`;
  const b = fs.readFileSync(path.join(dir, name));
  const h = readHeader(name, b, KIND.segment);
  if (h.fileNumber !== n || !h.storeId.equals(m.storeId)) throw new FormatViolation(name, 8, "header names another file");
  if (b.length < FILE_HEADER + FOOTER) throw new FormatViolation(name, 0, "file too short");
  const foot = b.subarray(b.length - FOOTER);
  if (Buffer.from(foot.subarray(16)).toString("latin1") !== FOOTER_MAGIC) throw new FormatViolation(name, b.length - 8, "bad footer magic");
  if (u32(foot, 12) !== crc32(foot.subarray(0, 12))) throw new FormatViolation(name, b.length - FOOTER, "footer checksum mismatch");
  const indexOffset = u64(foot, 0);
  const indexLength = u32(foot, 8);
  if (indexOffset + indexLength !== b.length - FOOTER) throw new FormatViolation(name, b.length - FOOTER, "footer points elsewhere");
  const data = b.subarray(0, b.length - FOOTER);
  const fi = frameAt(name, data, indexOffset);
  if (fi.bytes.length !== indexLength || fi.type !== TYPE.index) throw new FormatViolation(name, indexOffset, "not the index frame");
  const c = new Cursor(framePlaintext(name, fi, h.bound, master, m.encrypted), `${name} index`);
  const index: SegmentIndexBlock[] = [];
  const termTable: string[] = [];
  for (let i = 0, nt = c.varint(MAX_COUNT); i < nt; i++) termTable.push(c.str(MAX_KEY));
  for (let i = 0, nb = c.varint(MAX_COUNT); i < nb; i++) {
    const blk: SegmentIndexBlock = {
      offset: c.varint(Number.MAX_SAFE_INTEGER),
      frameLength: c.varint(MAX_FRAME_PAYLOAD + 64),
      entity: c.str(MAX_ENTITY),
      slots: [],
    };
    for (let j = 0, ns = c.varint(MAX_COUNT); j < ns; j++) {
      const key = c.str(MAX_KEY);
      const version = c.varint(0xffffffff);
      const start = c.varint(MAX_FRAME_PAYLOAD);
      const length = c.varint(MAX_VALUE);
      const terms: string[] = [];
      for (let t = 0, nt = c.varint(MAX_TERMS); t < nt; t++) {
        const ref = c.varint(Number.MAX_SAFE_INTEGER);
        if (ref >= termTable.length) c.fail("term ref outside the term table");
        terms.push(termTable[ref]!);
      }
      blk.slots.push({ key, version, start, length, terms });
    }
    index.push(blk);
  }
  if (!c.done) c.fail("trailing bytes in index");
  if (fi.seq !== index.length) throw new FormatViolation(name, indexOffset, "index sequence is not the block count");
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
    const f = frameAt(name, data.subarray(0, indexOffset), blk.offset);
    if (f.bytes.length !== blk.frameLength || f.type !== TYPE.block || f.seq !== i) {
      throw new FormatViolation(name, blk.offset, "block frame does not match its index entry");
    }
    const plain = framePlaintext(name, f, h.bound, master, m.encrypted);
    const bc = new Cursor(plain, `${name} block ${i}`);
    let slot = 0;
    while (!bc.done) {
      const key = bc.str(MAX_KEY);
      const version = bc.varint(0xffffffff);
      const len = bc.varint(MAX_VALUE);
      const start = bc.pos;
      const value = bc.bytes(len);
      const s = blk.slots[slot++];
      if (!s || s.key !== key || s.version !== version || s.start !== start || s.length !== len) {
        bc.fail("block record disagrees with the index");
      }
      records.push({ entity: blk.entity, key, version, value: Uint8Array.from(value) });
    }
    if (slot !== blk.slots.length) bc.fail("index lists more records than the block holds");
  });
  if (expect !== indexOffset) throw new FormatViolation(name, expect, "gap before the index");
  return { index, records, indexOffset, size: b.length };
}

export type JournalEntry =
  | { op: "put"; entity: string; key: string; version: number; terms: string[]; value: Uint8Array }
  | { op: "delete"; entity: string; key: string };

export function decodeCommitPayload(plain: Uint8Array, where: string): JournalEntry[] {
  const c = new Cursor(plain, where);
  const out: JournalEntry[] = [];
  while (!c.done) {
    const op = c.u8();
    const entity = c.str(MAX_ENTITY);
    const key = c.str(MAX_KEY);
    if (op === 1) {
      const version = c.varint(0xffffffff);
      const terms: string[] = [];
      for (let i = 0, n = c.varint(MAX_TERMS); i < n; i++) terms.push(c.str(MAX_KEY));
      const value = Uint8Array.from(c.bytes(c.varint(MAX_VALUE)));
      out.push({ op: "put", entity, key, version, terms, value });
    } else if (op === 2) {
      out.push({ op: "delete", entity, key });
    } else c.fail(`unknown op ${op}`);
  }
  return out;
}

/** Frames of one journal file, checked strictly (a healthy journal: frames, then zeros). */
export function readJournal(
  dir: string,
  n: number,
  m: Manifest,
  master: Uint8Array | null,
  firstSeq: number,
): { frames: { offset: number; seq: number; entries: JournalEntry[] }[]; nextSeq: number } {
  const name = `journal-${String(n).padStart(6, "0")}.log`;
  const b = fs.readFileSync(path.join(dir, name));
  const h = readHeader(name, b, KIND.journal);
  if (h.fileNumber !== n || !h.storeId.equals(m.storeId)) throw new FormatViolation(name, 8, "header names another file");
  const frames: { offset: number; seq: number; entries: JournalEntry[] }[] = [];
  let pos = FILE_HEADER;
  let seq = firstSeq;
  while (pos + FRAME_HEADER <= b.length) {
    if (b.subarray(pos).every((x) => x === 0)) break; // clean end
    const f = frameAt(name, b, pos);
    if (f.type !== TYPE.commit) throw new FormatViolation(name, pos, "unexpected frame type");
    if (f.seq !== seq) throw new FormatViolation(name, pos, `unexpected sequence ${f.seq}, expected ${seq}`);
    const plain = framePlaintext(name, f, h.bound, master, m.encrypted);
    frames.push({ offset: pos, seq, entries: decodeCommitPayload(plain, `${name}@${pos}`) });
    seq++;
    pos += f.bytes.length;
  }
  if (pos < b.length && !b.subarray(pos).every((x) => x === 0)) throw new FormatViolation(name, pos, "bytes after the last frame");
  return { frames, nextSeq: seq };
}

/**
 * Every live record of the store in `dir`: manifest → segments (in manifest
 * order) → journals numbered ≥ journalStart in ascending order; later wins,
 * deletes remove. Sorted by entity, then key (UTF-16 order).
 */
export function listLiveRecords(dir: string, master: Uint8Array | null = null): LiveRecord[] {
  const m = readManifest(dir, master);
  const live = new Map<string, LiveRecord>();
  const id = (e: string, k: string) => JSON.stringify([e, k]);
  for (const s of m.segments) for (const r of readSegment(dir, s, m, master).records) live.set(id(r.entity, r.key), r);
  const journals = fs
    .readdirSync(dir)
    .map((f) => /^journal-(\d{6,})\.log$/.exec(f))
    .filter((x): x is RegExpExecArray => x !== null)
    .map((x) => Number(x[1]))
    .filter((n) => n >= m.journalStart)
    .sort((a, b) => a - b);
  let seq = m.seqFloor + 1;
  for (const j of journals) {
    const r = readJournal(dir, j, m, master, seq);
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
