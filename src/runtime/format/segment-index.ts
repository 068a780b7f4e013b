/**
 * A segment's index, kept as the bytes it was stored as (docs/FORMAT.md, "Segment index") plus one offset
 * per record, and searched in place: keys of an entity are sorted in UTF-8 byte order, so a lookup is a
 * binary search over raw bytes and opening a store decodes no key it is not asked for. (Building a Map of
 * every key at open cost ~130-190 ms and ~200 bytes of heap per key for 100,000 records.)
 */
import { ByteReader, DecodeError } from "./bytes.js";
import { FILE_HEADER_SIZE, MAX_COUNT, MAX_ENTITY_NAME_BYTES, MAX_FRAME_PAYLOAD, MAX_KEY_BYTES, MAX_TERMS_PER_RECORD, MAX_VALUE_BYTES } from "./format.js";
import { CorruptionError } from "../errors.js";
import { segmentName } from "./filenames.js";
import { Loc } from "./location.js";

const BIG_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 0;

export interface IndexedBlock {
  offset: number;
  frameLength: number;
  entity: string;
  /** First slot of the block and number of slots. */
  first: number;
  count: number;
}

const NO_TERMS: readonly string[] = Object.freeze([]);

/** Lookups after which a segment index builds its hash table (see SegmentIndex.buildTable). */
const HASH_AFTER_FINDS = 1024;

/** FNV-1a over `len` bytes of `b` from `start`. */
function fnv1a(b: Uint8Array, start: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = start, end = start + len; i < end; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}
const enc = new TextEncoder();
const scratch = new Uint8Array(MAX_KEY_BYTES * 3 + 4);

/** Compare two strings in UTF-8 byte order (= code point order), the order segment keys are sorted in. */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      // UTF-16 puts surrogates (astral code points) below U+E000-U+FFFF; code point order puts them above.
      if (x >= 0xd800) x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      if (y >= 0xd800) y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      return x - y;
    }
  }
  return a.length - b.length;
}

export class SegmentIndex {
  private constructor(
    readonly file: number,
    private readonly buf: Buffer,
    /** Byte offset and length of each term's UTF-8 bytes in `buf`; a term is decoded when a slot first names it (`term`). */
    private readonly termPos: Uint32Array,
    private readonly termLen: Uint16Array,
    readonly blocks: IndexedBlock[],
    /** Byte offset of each slot in `buf`. */
    private readonly slotPos: Uint32Array,
    /** Block of each slot. */
    private readonly slotBlock: Uint32Array,
    /** Slot range [from, to) of each entity. */
    private readonly ranges: Map<string, { from: number; to: number }>,
    /** Sum of the value lengths of all slots. */
    readonly valueBytes: number,
    /** Where the slots start and where the offset table starts: every slot lies between. */
    private readonly slotsStart: number,
    private readonly tableStart: number,
  ) {}

  /**
   * Parse the index plaintext of segment `file`: terms, blocks and the slot offset table. Slots themselves
   * are decoded (and their bounds checked) when a lookup reaches them, so an open costs the same for 1 or
   * 1,000,000 records (walking 100k slots at open took ~15 ms of a ~35 ms cold open). Terms are located
   * (their lengths checked) but decoded only when a slot naming them is read: decoding the ~100k terms of
   * 100,000 records at open cost ~18 ms and young-generation collections that copied them (a restore's
   * check of the staged store, which reads no term, paid both). Throws DecodeError on
   * any grammar or bound violation found here; a slot found bad later is a CorruptionError.
   */
  static parse(plain: Uint8Array, file: number): SegmentIndex {
    const buf = Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
    const r = new ByteReader(plain);
    const nterms = r.varint(MAX_COUNT);
    const termPos = new Uint32Array(nterms);
    const termLen = new Uint16Array(nterms); // a term is ≤ MAX_KEY_BYTES (1024)
    for (let i = 0; i < nterms; i++) {
      const n = r.varint(MAX_KEY_BYTES);
      termPos[i] = r.pos;
      termLen[i] = n;
      r.skip(n);
    }
    const nblocks = r.varint(MAX_COUNT);
    const blocks: IndexedBlock[] = [];
    const ranges = new Map<string, { from: number; to: number }>();
    let expect = FILE_HEADER_SIZE;
    let nslots = 0;
    for (let b = 0; b < nblocks; b++) {
      const offset = r.varint();
      const frameLength = r.varint(MAX_FRAME_PAYLOAD + 64);
      const entity = r.string(MAX_ENTITY_NAME_BYTES);
      const count = r.varint(MAX_COUNT);
      if (offset !== expect) throw new DecodeError("index points outside the data blocks");
      expect = offset + frameLength;
      const first = nslots;
      nslots += count;
      const range = ranges.get(entity);
      if (range) {
        if (range.to !== first) throw new DecodeError(`blocks of entity \`${entity}\` are not contiguous`);
        range.to = first + count;
      } else ranges.set(entity, { from: first, to: first + count });
      blocks.push({ offset, frameLength, entity, first, count });
    }
    if (r.varint(MAX_COUNT) !== nslots) throw new DecodeError("slot count differs from the blocks' record counts");
    const valueBytes = r.varint();
    const slotsStart = r.pos;
    const tableStart = plain.length - 4 * nslots;
    if (tableStart < slotsStart) throw new DecodeError("slot table runs past the slots");
    // The table is copied into aligned memory (the plaintext may sit at any offset of its buffer).
    const slotPos = new Uint32Array(nslots);
    new Uint8Array(slotPos.buffer).set(plain.subarray(tableStart));
    if (BIG_ENDIAN) for (let i = 0; i < nslots; i++) slotPos[i] = buf.readUInt32LE(tableStart + 4 * i);
    if (nslots > 0 && (slotPos[0] !== slotsStart || slotPos[nslots - 1]! >= tableStart)) {
      throw new DecodeError("slot table points outside the slots");
    }
    const slotBlock = new Uint32Array(nslots);
    blocks.forEach((b, i) => slotBlock.fill(i, b.first, b.first + b.count));
    return new SegmentIndex(file, buf, termPos, termLen, blocks, slotPos, slotBlock, ranges, valueBytes, slotsStart, tableStart);
  }

  /** Offset just past the last data block (where the index frame must start). */
  get dataEnd(): number {
    const last = this.blocks[this.blocks.length - 1];
    return last ? last.offset + last.frameLength : FILE_HEADER_SIZE;
  }

  entities(): IterableIterator<string> {
    return this.ranges.keys();
  }

  range(entity: string): { from: number; to: number } | undefined {
    return this.ranges.get(entity);
  }

  /** The slot holding `key` of `entity`, or -1. */
  find(entity: string, key: string): number {
    const range = this.ranges.get(entity);
    if (!range) return -1;
    if (key.length * 3 > MAX_KEY_BYTES && Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES) return -1; // never stored
    if (this.table === null && ++this.finds === HASH_AFTER_FINDS) this.buildTable();
    if (this.table) return this.hashFind(range, key);
    const at = this.search(range, key);
    return at >= 0 ? at : -1;
  }

  // ---- hash lookup: a binary search over 100k slots costs ~17 cache misses (~1.3 µs here); a probe, ~2.

  /** Slot + 1 per bucket (0: empty), by FNV-1a hash of the key's UTF-8 bytes; null until built. */
  private table: Int32Array | null = null;
  private finds = 0;

  /**
   * Hash every slot's key once the index is being searched (after {@link HASH_AFTER_FINDS} lookups, so a
   * cold open and its first reads pay nothing; ~5 ms and 8 bytes per record for 100k records). A slot
   * found malformed while building leaves the index on binary search, which reports it when reached.
   */
  private buildTable(): void {
    const n = this.slotPos.length;
    let size = 16;
    while (size < n * 2) size *= 2;
    const table = new Int32Array(size);
    const mask = size - 1;
    const buf = this.buf;
    for (let s = 0; s < n; s++) {
      if (this.slotKey(s) !== null) return; // malformed: keep binary search
      let i = fnv1a(buf, this.keyStart, this.keyLen) & mask;
      while (table[i] !== 0) i = (i + 1) & mask;
      table[i] = s + 1;
    }
    this.table = table;
  }

  /**
   * Locate slot `s`'s key bytes (into keyStart/keyLen, no string decoded): null, or why the slot is
   * malformed. The key length is a varint of at most 2 bytes (keys are ≤ 1024 bytes), one below 128.
   */
  private keyStart = 0;
  private keyLen = 0;
  private slotKey(s: number): string | null {
    let p = this.slotPos[s]!;
    if (p < this.slotsStart || p >= this.tableStart) return "slot offset outside the slots";
    const buf = this.buf;
    let len = buf[p]!;
    if (len & 0x80) {
      const hi = buf[p + 1]!;
      if (p + 1 >= this.tableStart || hi & 0x80) return "bad key length";
      len = (len & 0x7f) | (hi << 7);
      p += 2;
    } else p += 1;
    if (p + len > this.tableStart || len > MAX_KEY_BYTES) return "key runs outside the slots";
    this.keyStart = p;
    this.keyLen = len;
    return null;
  }

  private hashFind(range: { from: number; to: number }, key: string): number {
    const { written } = enc.encodeInto(key, scratch);
    const table = this.table!;
    const mask = table.length - 1;
    const buf = this.buf;
    let i = fnv1a(scratch, 0, written) & mask;
    for (;;) {
      const s = table[i]! - 1;
      if (s < 0) return -1;
      if (s >= range.from && s < range.to && this.slotKey(s) === null) {
        if (this.keyLen === written) {
          const p = this.keyStart;
          let j = 0;
          while (j < written && buf[p + j] === scratch[j]) j++;
          if (j === written) return s;
        }
      }
      i = (i + 1) & mask;
    }
  }

  /** The first slot of `entity` whose key sorts after `key` (the end of its range if none). */
  after(entity: string, key: string): number {
    const range = this.ranges.get(entity);
    if (!range) return 0;
    const at = this.search(range, key);
    return at >= 0 ? at + 1 : -at - 1;
  }

  /**
   * Binary search of `key` in the slots `range`: its slot, or `-(insertion point) - 1` when absent (the
   * insertion point is the first slot whose key sorts after it).
   */
  private search(range: { from: number; to: number }, key: string): number {
    // keys are at most 1 KiB of UTF-8: encode into a reused buffer instead of allocating one per lookup
    const { written } = enc.encodeInto(key, scratch);
    if (written > MAX_KEY_BYTES) throw new RangeError("a key longer than MAX_KEY_BYTES cannot be searched"); // callers check
    const target = scratch;
    let lo = range.from;
    let hi = range.to - 1;
    const buf = this.buf;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const problem = this.slotKey(mid);
      if (problem !== null) throw this.bad(mid, problem);
      const p = this.keyStart;
      const len = this.keyLen;
      // Compare the slot key with the target byte by byte (keys usually differ in their first bytes, where
      // a JS loop beats a native Buffer.compare call): > 0 means the slot key sorts after.
      const n = len < written ? len : written;
      let c = 0;
      for (let i = 0; i < n; i++) {
        c = buf[p + i]! - target[i]!;
        if (c !== 0) break;
      }
      if (c === 0) c = len - written;
      if (c === 0) return mid;
      if (c > 0) hi = mid - 1;
      else lo = mid + 1;
    }
    return -lo - 1;
  }

  key(slot: number): string {
    try {
      return this.reader(slot).string(MAX_KEY_BYTES);
    } catch (e) {
      if (e instanceof DecodeError) throw this.bad(slot, e.message);
      throw e;
    }
  }

  /** Terms decoded so far, by position in the term table (allocated at the first). */
  private terms: (string | undefined)[] | null = null;

  /** Term `i` of the term table (its length bounds-checked by `parse`), decoded at its first use. */
  private term(i: number): string {
    const terms = (this.terms ??= new Array<string | undefined>(this.termPos.length));
    let t = terms[i];
    if (t === undefined) {
      const p = this.termPos[i]!;
      t = terms[i] = this.buf.toString("utf8", p, p + this.termLen[i]!);
    }
    return t;
  }

  /** The location of a slot's value. */
  loc(slot: number): Loc {
    let key: string, version: number, start: number, length: number;
    let terms = NO_TERMS;
    try {
      const r = this.reader(slot);
      key = r.string(MAX_KEY_BYTES);
      version = r.varint(0xffffffff);
      start = r.varint(MAX_FRAME_PAYLOAD);
      length = r.varint(MAX_VALUE_BYTES);
      const n = r.varint(MAX_TERMS_PER_RECORD);
      if (n > 0) {
        const arr: string[] = new Array(n);
        for (let i = 0; i < n; i++) arr[i] = this.term(r.varint(this.termPos.length - 1));
        terms = arr;
      }
      if (r.pos > this.tableStart) throw new DecodeError("slot runs into the slot table");
    } catch (e) {
      if (e instanceof DecodeError) throw this.bad(slot, e.message);
      throw e;
    }
    const b = this.blocks[this.slotBlock[slot]!]!;
    return new Loc(this.file, b.offset, b.frameLength, this.slotBlock[slot]!, key, start, length, version, terms);
  }

  /**
   * The location of `key`'s value at `slot` (found by {@link find}), for a read: the key is the caller's
   * string (not decoded again) and the index terms are left out (a read needs none).
   */
  readLoc(slot: number, key: string): Loc {
    let version: number, start: number, length: number;
    try {
      const r = this.reader(slot);
      r.skip(r.varint(MAX_KEY_BYTES));
      version = r.varint(0xffffffff);
      start = r.varint(MAX_FRAME_PAYLOAD);
      length = r.varint(MAX_VALUE_BYTES);
      if (r.pos > this.tableStart) throw new DecodeError("slot runs into the slot table");
    } catch (e) {
      if (e instanceof DecodeError) throw this.bad(slot, e.message);
      throw e;
    }
    const b = this.blocks[this.slotBlock[slot]!]!;
    return new Loc(this.file, b.offset, b.frameLength, this.slotBlock[slot]!, key, start, length, version, NO_TERMS);
  }

  /** The error for a malformed slot (also used by Keyspace when slot keys are found out of order). */
  bad(slot: number, why: string): CorruptionError {
    return new CorruptionError(segmentName(this.file), 0, `bad payload (index slot ${slot}: ${why})`);
  }

  private r: ByteReader | null = null;
  private reader(slot: number): ByteReader {
    this.r ??= new ByteReader(this.buf.subarray(0, this.tableStart));
    const p = this.slotPos[slot]!;
    if (p < this.slotsStart || p >= this.tableStart) throw new DecodeError("slot offset outside the slots");
    this.r.pos = p;
    return this.r;
  }
}
