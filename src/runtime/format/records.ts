/**
 * Payload grammars (docs/FORMAT.md, "Payloads"): the entries of a journal
 * commit frame, the records of a segment block, and a segment's index.
 */
import { ByteReader, ByteWriter, DecodeError, fromUtf8, utf8 } from "./bytes.js";
import {
  MAX_ENTITY_NAME_BYTES,
  MAX_KEY_BYTES,
  MAX_TERMS_PER_RECORD,
  MAX_VALUE_BYTES,
  INDEX_PAGE_TARGET,
  Op,
} from "./format.js";

/** nonce + tag around a journal value sealed under its entity's record key. */
export const SEALED_OVERHEAD = 40;

/** One write as the engine sees it: bytes only. */
export type WriteOp =
  | {
      op: "put";
      entity: string;
      key: string;
      version: number;
      value: Uint8Array;
      /** Secondary index terms of this record (docs/FORMAT.md, "Index terms"; see Engine.orderedIndex). */
      terms: readonly string[];
    }
  | { op: "delete"; entity: string; key: string };

/** A decoded commit entry, with where its value sits inside the frame's plaintext. */
export type CommitEntry =
  | { op: "put"; entity: string; key: string; version: number; terms: string[]; start: number; length: number }
  | { op: "delete"; entity: string; key: string };

/**
 * Encode a commit payload. `starts[i]` is where op i's value begins in the payload (-1 for a delete), so the
 * writer can index what it wrote without parsing it back.
 */
export function encodeCommit(
  ops: readonly WriteOp[],
  w = new ByteWriter(1024),
  /** Seal each value straight into the payload (`SEALED_OVERHEAD` more bytes than the value) instead of copying it. */
  sealInto?: (o: WriteOp & { op: "put" }, out: Uint8Array) => void,
): { plain: Uint8Array; starts: number[] } {
  const starts: number[] = new Array(ops.length);
  encodeCommitOps(ops, 0, ops.length, w, starts, sealInto);
  return { plain: w.finish(), starts };
}

/**
 * Ops `from` to `to` (excluded) of a commit payload appended to `w`, their value offsets put in `starts`: a
 * large commit encoded a part at a time (storage/commit.ts, between turns of the event loop) gives the same
 * bytes as {@link encodeCommit} in one call.
 */
export function encodeCommitOps(
  ops: readonly WriteOp[],
  from: number,
  to: number,
  w: ByteWriter,
  starts: number[],
  sealInto?: (o: WriteOp & { op: "put" }, out: Uint8Array) => void,
): void {
  for (let i = from; i < to; i++) {
    const o = ops[i]!;
    w.u8(o.op === "put" ? Op.put : Op.delete);
    w.string(o.entity);
    w.string(o.key);
    if (o.op === "put") {
      w.varint(o.version);
      w.varint(o.terms.length);
      for (const t of o.terms) w.string(t);
      if (sealInto) {
        const n = o.value.length + SEALED_OVERHEAD;
        w.varint(n);
        starts[i] = w.length;
        sealInto(o, w.reserve(n));
      } else {
        w.varint(o.value.length);
        starts[i] = w.length;
        w.bytes(o.value);
      }
    } else {
      starts[i] = -1;
    }
  }
}

export function decodeCommit(plain: Uint8Array): CommitEntry[] {
  const r = new ByteReader(plain);
  const out: CommitEntry[] = [];
  while (!r.done) {
    const op = r.u8();
    const entity = r.string(MAX_ENTITY_NAME_BYTES);
    const key = r.string(MAX_KEY_BYTES);
    if (op === Op.put) {
      const version = r.varint(0xffffffff);
      const n = r.varint(MAX_TERMS_PER_RECORD);
      // Made at its size: the array stays with the record's location, and a `[]` grown by pushes keeps room for 17.
      const terms = new Array<string>(n);
      for (let i = 0; i < n; i++) terms[i] = r.string(MAX_KEY_BYTES);
      const length = r.varint(MAX_VALUE_BYTES + SEALED_OVERHEAD); // sealed in an encrypted store
      const start = r.pos;
      r.bytes(length);
      out.push({ op: "put", entity, key, version, terms, start, length });
    } else if (op === Op.delete) {
      out.push({ op: "delete", entity, key });
    } else {
      throw new DecodeError(`unknown operation ${op}`);
    }
  }
  return out;
}

// ---- the record a location names -------------------------------------------------------

const keyBytes = new Uint8Array(MAX_KEY_BYTES * 3);
const encoder = new TextEncoder();

/** Bytes of the shortest varint of `v` (what the writer emits). */
function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Whether `b` holds the shortest varint of `v` at `p`: the position after it, or -1. */
function matchVarint(b: Uint8Array, p: number, v: number): number {
  while (v >= 0x80) {
    if (b[p++] !== ((v % 128) | 0x80)) return -1;
    v = Math.floor(v / 128);
  }
  return b[p] === v ? p + 1 : -1;
}

/** Whether `b` holds `str(s)` at `p` (`s` already UTF-8 in `keyBytes[0..n)`): the position after it, or -1. */
function matchEncoded(b: Uint8Array, p: number, n: number): number {
  p = matchVarint(b, p, n);
  if (p < 0) return -1;
  for (let i = 0; i < n; i++) if (b[p + i] !== keyBytes[i]) return -1;
  return p + n;
}

/** `s`'s length when it is ASCII (its UTF-8 length then), else -1. */
function asciiLength(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return -1;
  return s.length;
}

/** Bytes of `s` in UTF-8 (ASCII counted without a call into the runtime). */
function utf8Length(s: string): number {
  const n = asciiLength(s);
  return n >= 0 ? n : Buffer.byteLength(s, "utf8");
}

/** Whether `b` holds `str(s)` at `p`: the position after it, or -1. An ASCII `s` is compared char by char, not encoded first. */
function matchString(b: Uint8Array, p: number, s: string): number {
  if (p < 0) return -1;
  const n = asciiLength(s);
  if (n < 0) return matchEncoded(b, p, encoder.encodeInto(s, keyBytes).written);
  p = matchVarint(b, p, n);
  if (p < 0) return -1;
  for (let i = 0; i < n; i++) if (b[p + i] !== s.charCodeAt(i)) return -1;
  return p + n;
}

/**
 * Whether the bytes before a value at `start` of a segment block plaintext are exactly what the writer put
 * there for this record: `str(key) ‖ varint(version) ‖ varint(length)` (shortest varints). A block put in
 * place of another (a diverged copy of the same store: same store id, keys, offset and seq) authenticates,
 * but its records are not the ones the index names: this is what tells (docs/FORMAT.md, "Reads").
 */
export function blockRecordIs(plain: Uint8Array, start: number, key: string, version: number, length: number): boolean {
  // Keys are mostly ASCII: compare them char by char then, without encoding them first (~2x cheaper).
  const kl = key.length;
  let ascii = true;
  for (let i = 0; i < kl; i++) {
    if (key.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  }
  const n = ascii ? kl : encoder.encodeInto(key, keyBytes).written;
  const p = start - (varintSize(n) + n + varintSize(version) + varintSize(length));
  if (p < 0) return false;
  let q: number;
  if (ascii) {
    q = matchVarint(plain, p, n);
    if (q < 0) return false;
    for (let i = 0; i < n; i++) if (plain[q + i] !== key.charCodeAt(i)) return false;
    q += n;
  } else q = matchEncoded(plain, p, n);
  if (q >= 0) q = matchVarint(plain, q, version);
  if (q >= 0) q = matchVarint(plain, q, length);
  return q === start;
}

/**
 * The same for a put entry of a commit payload: `0x01 ‖ str(entity) ‖ str(key) ‖ varint(version) ‖
 * varint(nterms) ‖ str(term)… ‖ varint(length)` ends at `start`.
 */
export function commitRecordIs(
  plain: Uint8Array,
  start: number,
  entity: string,
  key: string,
  version: number,
  terms: readonly string[],
  length: number,
): boolean {
  const en = utf8Length(entity);
  const kn = utf8Length(key);
  let size = 1 + varintSize(en) + en + varintSize(kn) + kn + varintSize(version) + varintSize(terms.length) + varintSize(length);
  for (const t of terms) {
    const n = utf8Length(t);
    size += varintSize(n) + n;
  }
  let p = start - size;
  if (p < 0 || plain[p] !== Op.put) return false;
  p = matchString(plain, p + 1, entity);
  p = matchString(plain, p, key);
  if (p >= 0) p = matchVarint(plain, p, version);
  if (p >= 0) p = matchVarint(plain, p, terms.length);
  for (const t of terms) p = matchString(plain, p, t);
  if (p >= 0) p = matchVarint(plain, p, length);
  return p === start;
}

/**
 * Byte length of one op in a commit payload (upper bound, for splitting groups into frames; the commit's
 * buffer is made this size). Index terms are counted closely (one byte per ASCII unit, three per other, and
 * their length's varint): they are ~all ASCII, and at three bytes per unit the terms of an indexed record
 * made its frame's buffer ~70% larger than an unindexed one's, where they take ~50 bytes.
 */
export function opSize(o: WriteOp): number {
  let n = 1 + 5 + o.entity.length * 3 + 5 + o.key.length * 3;
  if (o.op === "put") {
    n += 10 + o.value.length;
    for (const t of o.terms) {
      const b = utf8Bound(t);
      n += varintSize(b) + b;
    }
  }
  return n;
}

/** Bytes of `s` in UTF-8, from above: one per ASCII unit, three per other (a surrogate pair's 4 bytes take 6). */
function utf8Bound(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) n += 2;
  return n;
}

// ---- segment blocks ----------------------------------------------------------

export interface BlockRecord {
  key: string;
  version: number;
  value: Uint8Array;
  terms: readonly string[];
}

/** A record's place inside a block plaintext, as the index lists it. */
export interface BlockSlot {
  key: string;
  version: number;
  start: number;
  length: number;
  terms: readonly string[];
}

/** Block plaintext: per record `key, version, value`; returns the slots for the index. */
export function encodeBlock(records: readonly BlockRecord[]): { plaintext: Uint8Array; slots: BlockSlot[] } {
  const w = new ByteWriter(64 * 1024 + 1024);
  const slots: BlockSlot[] = [];
  for (const rec of records) {
    w.string(rec.key);
    w.varint(rec.version);
    w.varint(rec.value.length);
    slots.push({ key: rec.key, version: rec.version, start: w.length, length: rec.value.length, terms: rec.terms });
    w.bytes(rec.value);
  }
  return { plaintext: w.finish(), slots };
}


// ---- segment index -------------------------------------------------------------

export interface IndexBlock<S extends BlockSlot = BlockSlot> {
  offset: number;
  frameLength: number;
  entity: string;
  slots: S[];
}

/**
 * Index plaintext: a table of the distinct index terms; per block its frame, entity and record count; the
 * total value bytes; per record its key, version, value slice and term ids; and last a table of fixed-width
 * offsets, one per record, so that opening a store finds every record without walking them. The term table
 * makes each term one string to decode, not one per record.
 */
export function encodeIndex(blocks: readonly IndexBlock[]): Uint8Array {
  const termIds = new Map<string, number>();
  let nslots = 0;
  let valueBytes = 0;
  for (const b of blocks) {
    nslots += b.slots.length;
    for (const s of b.slots) {
      valueBytes += s.length;
      for (const t of s.terms) if (!termIds.has(t)) termIds.set(t, termIds.size);
    }
  }
  const w = new ByteWriter(64 * 1024);
  w.varint(termIds.size);
  for (const t of termIds.keys()) w.string(t);
  w.varint(blocks.length);
  for (const b of blocks) w.varint(b.offset).varint(b.frameLength).string(b.entity).varint(b.slots.length);
  w.varint(nslots).varint(valueBytes);
  const offsets: number[] = [];
  for (const b of blocks) {
    for (const s of b.slots) {
      offsets.push(w.length);
      w.string(s.key);
      w.varint(s.version);
      w.varint(s.start);
      w.varint(s.length);
      w.varint(s.terms.length);
      for (const t of s.terms) w.varint(termIds.get(t)!);
    }
  }
  for (const o of offsets) w.u32(o);
  return w.finish();
}

/**
 * {@link encodeIndex} built a block at a time (`add` as each block is written, `finish` once): the terms
 * interned and each slot encoded when its block is added, so a segment writer that lets the event loop turn
 * between blocks never encodes the whole index in one step. The same bytes as `encodeIndex` of the same
 * blocks (the term table, the block table and the offsets, which depend on every block, are written by
 * `finish`, a copy of the slot bytes).
 */
export class IndexBuilder {
  private readonly termIds = new Map<string, number>();
  /** The term table's strings, written as each term is first met (term ids are in that order). */
  private readonly terms = new ByteWriter(64 * 1024);
  private readonly blocks: { offset: number; frameLength: number; entity: string; slots: number }[] = [];
  private readonly slots = new ByteWriter(64 * 1024);
  /** Each slot's offset within `slots`. */
  private offsets: number[] = [];
  private valueBytes = 0;

  add(block: IndexBlock): void {
    const { termIds, slots: w } = this;
    this.blocks.push({ offset: block.offset, frameLength: block.frameLength, entity: block.entity, slots: block.slots.length });
    for (const s of block.slots) {
      this.valueBytes += s.length;
      this.offsets.push(w.length);
      writeSlot(w, s, termIds, this.terms);
    }
  }

  finish(): Uint8Array {
    const head = new ByteWriter(64 * 1024);
    head.varint(this.termIds.size);
    head.bytes(this.terms.finish());
    head.varint(this.blocks.length);
    for (const b of this.blocks) head.varint(b.offset).varint(b.frameLength).string(b.entity).varint(b.slots);
    head.varint(this.offsets.length).varint(this.valueBytes);
    const out = withSlotOffsets(head.finish(), this.slots.finish(), this.offsets);
    this.offsets = [];
    return out;
  }
}

/** One slot of an index (or an index page): key, version, value position and its terms as ids into `terms`, a term added there when first met. */
function writeSlot(w: ByteWriter, s: BlockSlot, termIds: Map<string, number>, terms: ByteWriter): void {
  w.string(s.key);
  w.varint(s.version);
  w.varint(s.start);
  w.varint(s.length);
  w.varint(s.terms.length);
  for (const t of s.terms) {
    let id = termIds.get(t);
    if (id === undefined) {
      termIds.set(t, (id = termIds.size));
      terms.string(t);
    }
    w.varint(id);
  }
}

/**
 * An index's (or an index page's) plaintext: `head`, then the slots, then the slot offset table, one u32 LE per
 * slot giving where it starts in the plaintext (`offsets` are relative to the slots' start).
 */
function withSlotOffsets(head: Uint8Array, slots: Uint8Array, offsets: readonly number[]): Uint8Array {
  const base = head.length;
  const out = new Uint8Array(base + slots.length + 4 * offsets.length);
  out.set(head, 0);
  out.set(slots, base);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let at = base + slots.length;
  for (const o of offsets) {
    v.setUint32(at, base + o, true);
    at += 4;
  }
  return out;
}

/** A page of a paged index (format version 4) being filled. */
interface OpenPage {
  entity: string;
  firstKey: string;
  termIds: Map<string, number>;
  terms: ByteWriter;
  slots: ByteWriter;
  offsets: number[];
}

/**
 * A version 4 segment's index (docs/FORMAT.md, "Segment"), built a block at a time like {@link IndexBuilder}:
 * the slots go into pages of about {@link INDEX_PAGE_TARGET} bytes, never two entities in one page, each page
 * with its own term table and slot offset table. `pages()` closes the last page and hands them over (the
 * writer seals each as a frame of its own); `directory` then encodes the block table and, per page, its frame
 * length, record count and first key.
 */
export class PagedIndexBuilder {
  private readonly blocks: { offset: number; frameLength: number; entity: string; slots: number }[] = [];
  private readonly done: { plain: Uint8Array; count: number; firstKey: string }[] = [];
  private cur: OpenPage | null = null;
  private nslots = 0;
  private valueBytes = 0;

  add(block: IndexBlock): void {
    this.blocks.push({ offset: block.offset, frameLength: block.frameLength, entity: block.entity, slots: block.slots.length });
    for (const s of block.slots) {
      let page = this.cur;
      if (page && (page.entity !== block.entity || page.terms.length + page.slots.length + 4 * page.offsets.length >= INDEX_PAGE_TARGET)) {
        this.close();
        page = null;
      }
      if (!page) {
        page = this.cur = { entity: block.entity, firstKey: s.key, termIds: new Map(), terms: new ByteWriter(4096), slots: new ByteWriter(INDEX_PAGE_TARGET + 2048), offsets: [] };
      }
      this.nslots++;
      this.valueBytes += s.length;
      page.offsets.push(page.slots.length);
      writeSlot(page.slots, s, page.termIds, page.terms);
    }
  }

  private close(): void {
    const page = this.cur;
    if (!page) return;
    this.cur = null;
    const head = new ByteWriter(page.terms.length + 16);
    head.varint(page.termIds.size).bytes(page.terms.finish()).varint(page.offsets.length);
    const out = withSlotOffsets(head.finish(), page.slots.finish(), page.offsets);
    this.done.push({ plain: out, count: page.offsets.length, firstKey: page.firstKey });
  }

  /** The pages' plaintexts, in slot order (the last page closed). */
  pages(): readonly { plain: Uint8Array; count: number; firstKey: string }[] {
    this.close();
    return this.done;
  }

  /** The directory's plaintext, given each page's frame length (in the order of `pages()`). */
  directory(pageFrameLengths: readonly number[]): Uint8Array {
    const w = new ByteWriter(64 * 1024);
    w.varint(this.blocks.length);
    for (const b of this.blocks) w.varint(b.offset).varint(b.frameLength).string(b.entity).varint(b.slots);
    w.varint(this.nslots).varint(this.valueBytes);
    w.varint(this.done.length);
    this.done.forEach((p, i) => w.varint(pageFrameLengths[i]!).varint(p.count).string(p.firstKey));
    return w.finish();
  }
}

export { utf8, fromUtf8 };
