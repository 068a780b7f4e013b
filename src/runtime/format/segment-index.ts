/**
 * A segment's index, kept as the bytes it was stored as (docs/FORMAT.md, "Segment") plus one offset
 * per record, and searched in place: keys of an entity are sorted in UTF-8 byte order, so a lookup is a
 * binary search over raw bytes and opening a store decodes no key it is not asked for. (Building a Map of
 * every key at open cost ~130-190 ms and ~200 bytes of heap per key for 100,000 records.)
 *
 * A version 4 segment's index is paged: open parses only its directory (the blocks, and each page's first
 * key); a page's slots are read, checked and decrypted by the storage layer's loader (`attach`) when a lookup
 * or a walk first reaches them, and held in the block cache (issue 15: reading the whole 9.3 MB index of
 * 100,000 records was most of a cold open). Versions 2 and 3 hold one index frame: one page of every slot.
 */
import { ByteReader, DecodeError } from "./bytes.js";
import { FILE_HEADER_SIZE, MAX_COUNT, MAX_ENTITY_NAME_BYTES, MAX_FRAME_PAYLOAD, MAX_KEY_BYTES, MAX_TERMS_PER_RECORD, MAX_VALUE_BYTES } from "./format.js";
import { CorruptionError } from "../errors.js";
import { segmentName } from "./filenames.js";
import { Loc } from "./location.js";
import { IndexPage } from "./index-page.js";

export { IndexPage };


export interface IndexedBlock {
  offset: number;
  frameLength: number;
  entity: string;
  /** First slot of the block and number of slots. */
  first: number;
  count: number;
}

const NO_TERMS: readonly string[] = Object.freeze([]);

/** Thrown by a page loader for a page found damaged (already reported and marked lost by the loader). */
export class LostPageError extends CorruptionError {}

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

/** Compare `b[a, a + alen)` with `b[c, c + clen)` byte by byte (Buffer.compare with offsets checks its arguments: ~15 µs a call at open). */
function compareBytes(b: Uint8Array, a: number, alen: number, c: number, clen: number): number {
  const n = alen < clen ? alen : clen;
  for (let i = 0; i < n; i++) {
    const d = b[a + i]! - b[c + i]!;
    if (d !== 0) return d;
  }
  return alen - clen;
}

/** The last of `runs` (blocks or pages, by ascending first slot) whose first slot is ≤ `slot`; 0 when none is. */
function lastStartingBy(runs: readonly { readonly first: number }[], slot: number): number {
  let lo = 0;
  let hi = runs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (runs[mid]!.first <= slot) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

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


/** Where a version 4 index page lies, and what the directory says of it. */
export interface PageEntry {
  offset: number;
  frameLength: number;
  /** First slot (segment-wide) and number of slots. */
  first: number;
  count: number;
  /** Where its first key's UTF-8 bytes lie in the directory plaintext. */
  keyAt: number;
  keyLen: number;
}

export type PageLoader = (page: number) => IndexPage;

interface Range {
  from: number;
  to: number;
  /** Pages [pFrom, pTo) hold the range (version 4). */
  pFrom: number;
  pTo: number;
}

export class SegmentIndex {
  private constructor(
    readonly file: number,
    readonly blocks: IndexedBlock[],
    /** Slot range [from, to) of each entity. */
    private readonly ranges: Map<string, Range>,
    /** Sum of the value lengths of all slots. */
    readonly valueBytes: number,
    readonly nslots: number,
    /** Version 2/3: the one page of every slot; version 4: null (pages loaded through `loader`). */
    private readonly whole: IndexPage | null,
    /** Version 4: the pages, and the directory plaintext their first keys lie in. */
    readonly pages: readonly PageEntry[],
    private readonly dir: Buffer | null,
  ) {}

  /** Whether this index is paged (version 4): its pages are read through the loader given to `attach`. */
  get paged(): boolean {
    return this.whole === null;
  }

  private static blockTable(r: ByteReader): { blocks: IndexedBlock[]; ranges: Map<string, Range>; nslots: number } {
    const nblocks = r.varint(MAX_COUNT);
    const blocks: IndexedBlock[] = [];
    const ranges = new Map<string, Range>();
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
      } else ranges.set(entity, { from: first, to: first + count, pFrom: 0, pTo: 0 });
      blocks.push({ offset, frameLength, entity, first, count });
    }
    if (r.varint(MAX_COUNT) !== nslots) throw new DecodeError("slot count differs from the blocks' record counts");
    return { blocks, ranges, nslots };
  }

  /**
   * Parse the index plaintext of segment `file` (a version 2/3 index frame, or with `paged` a version 4
   * directory). Slots themselves are decoded (and their bounds checked) when a lookup reaches them, so an open
   * costs the same for 1 or 1,000,000 records. Throws DecodeError on any grammar or bound violation found
   * here; a slot found bad later is a CorruptionError.
   */
  static parse(plain: Uint8Array, file: number, paged = false): SegmentIndex {
    const r = new ByteReader(plain);
    if (paged) return SegmentIndex.parseDirectory(plain, r, file);
    const { termsStart, nterms } = IndexPage.walkTerms(plain, r);
    const { blocks, ranges, nslots } = SegmentIndex.blockTable(r);
    const valueBytes = r.varint();
    const page = IndexPage.from(plain, termsStart, nterms, r.pos, nslots);
    return new SegmentIndex(file, blocks, ranges, valueBytes, nslots, page, [], null);
  }

  private static parseDirectory(plain: Uint8Array, r: ByteReader, file: number): SegmentIndex {
    const { blocks, ranges, nslots } = SegmentIndex.blockTable(r);
    const valueBytes = r.varint();
    const npages = r.varint(MAX_COUNT);
    const last = blocks[blocks.length - 1];
    let offset = last ? last.offset + last.frameLength : FILE_HEADER_SIZE;
    let first = 0;
    let b = 0;
    const pages: PageEntry[] = [];
    const dir = Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
    for (let p = 0; p < npages; p++) {
      const frameLength = r.varint(MAX_FRAME_PAYLOAD + 64);
      const count = r.varint(MAX_COUNT);
      const keyLen = r.varint(MAX_KEY_BYTES);
      const keyAt = r.pos;
      r.skip(keyLen);
      if (count === 0 || first + count > nslots) throw new DecodeError("index pages do not match the slot count");
      // Never two entities in one page: the block holding its first slot and the one holding its last are the same entity's.
      while (blocks[b]!.first + blocks[b]!.count <= first) b++;
      const range = ranges.get(blocks[b]!.entity)!;
      if (first + count > range.to) throw new DecodeError("an index page holds records of two entities");
      if (range.pTo === 0 && range.pFrom === 0 && first === range.from) range.pFrom = p;
      else if (range.pTo !== p) throw new DecodeError("index pages out of order");
      range.pTo = p + 1;
      // First keys ascend within an entity (lookups binary-search them).
      const prev = pages[p - 1];
      if (prev && first !== range.from && compareBytes(dir, keyAt, keyLen, prev.keyAt, prev.keyLen) <= 0) {
        throw new DecodeError("index page keys out of order");
      }
      pages.push({ offset, frameLength, first, count, keyAt, keyLen });
      offset += frameLength;
      first += count;
    }
    if (first !== nslots) throw new DecodeError("index pages do not match the slot count");
    if (!r.done) throw new DecodeError("trailing bytes after the index directory");
    return new SegmentIndex(file, blocks, ranges, valueBytes, nslots, null, pages, dir);
  }

  /** Offset just past the last data block (where the index pages, then the index frame, must start). */
  get dataEnd(): number {
    const last = this.blocks[this.blocks.length - 1];
    return last ? last.offset + last.frameLength : FILE_HEADER_SIZE;
  }

  /** Where the index frame (version 4: the directory) must start: after the blocks and the pages. */
  get indexStart(): number {
    const last = this.pages[this.pages.length - 1];
    return last ? last.offset + last.frameLength : this.dataEnd;
  }

  /** The seq of the index frame: the number of frames before it. */
  get indexSeq(): number {
    return this.blocks.length + this.pages.length;
  }

  entities(): IterableIterator<string> {
    return this.ranges.keys();
  }

  range(entity: string): { from: number; to: number } | undefined {
    return this.ranges.get(entity);
  }

  // ---- pages (version 4)

  private loader: PageLoader | null = null;
  /** Pages found damaged: their slots are not live. */
  readonly lost = new Set<number>();
  /** The page used last, and its number (lookups and walks ask one page many times). */
  private lastPage: IndexPage | null = null;
  private lastPageNo = -1;

  /** Give a paged index the function that reads, checks and caches a page (storage layer). */
  attach(loader: PageLoader): void {
    this.loader = loader;
    this.lastPage = null;
    this.lastPageNo = -1;
  }

  /** The page `p` from the loader (which throws LostPageError for a damaged one, after reporting it). */
  private page(p: number): IndexPage {
    if (p === this.lastPageNo) return this.lastPage!;
    if (this.lost.has(p)) throw new LostPageError(segmentName(this.file), this.pages[p]!.offset, "bad payload (index page lost)");
    if (!this.loader) throw new Error("a paged segment index read before its page loader was attached");
    const page = this.loader(p);
    this.lastPage = page;
    this.lastPageNo = p;
    return page;
  }

  /** Forget the page used last (the loader dropped it from the cache, or found it lost). */
  forgetPage(): void {
    this.lastPage = null;
    this.lastPageNo = -1;
  }

  /**
   * Check a page's plaintext against the directory and make it an IndexPage: its term table, its slot count,
   * its offset table, and that its first key is the one the directory names. Throws DecodeError.
   */
  openPage(p: number, plain: Uint8Array): IndexPage {
    const e = this.pages[p]!;
    const r = new ByteReader(plain);
    const { termsStart, nterms } = IndexPage.walkTerms(plain, r);
    if (r.varint(MAX_COUNT) !== e.count) throw new DecodeError("index page holds another record count than its directory entry");
    const page = IndexPage.from(plain, termsStart, nterms, r.pos, e.count);
    const problem = page.slotKey(0);
    if (problem !== null) throw new DecodeError(`index page slot 0: ${problem}`);
    const dir = this.dir!;
    let same = page.keyLen === e.keyLen;
    for (let i = 0; same && i < e.keyLen; i++) same = page.buf[page.keyStart + i] === dir[e.keyAt + i];
    if (!same) {
      throw new DecodeError("index page does not start at the key its directory entry names");
    }
    return page;
  }

  /** The page holding slot `slot`. */
  pageOf(slot: number): number {
    const pages = this.pages;
    const last = pages[this.lastPageNo];
    if (last && slot >= last.first && slot < last.first + last.count) return this.lastPageNo;
    return lastStartingBy(pages, slot);
  }

  /** The last page of `range` whose first key sorts at or before the `written` bytes of `scratch`, or -1. */
  private pageFor(range: Range, written: number): number {
    const dir = this.dir!;
    let lo = range.pFrom;
    let hi = range.pTo - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.pages[mid]!;
      const n = e.keyLen < written ? e.keyLen : written;
      let c = 0;
      for (let i = 0; i < n; i++) {
        c = dir[e.keyAt + i]! - scratch[i]!;
        if (c !== 0) break;
      }
      if (c === 0) c = e.keyLen - written;
      if (c <= 0) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** Slot `slot`'s page and its number within it. */
  private at(slot: number): { page: IndexPage; local: number } {
    if (this.whole) return { page: this.whole, local: slot };
    const p = this.pageOf(slot);
    return { page: this.page(p), local: slot - this.pages[p]!.first };
  }

  /** The slot holding `key` of `entity`, or -1. */
  find(entity: string, key: string): number {
    const range = this.ranges.get(entity);
    if (!range) return -1;
    if (key.length * 3 > MAX_KEY_BYTES && Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES) return -1; // never stored
    const whole = this.whole;
    if (whole) {
      if (this.table === null && ++this.finds === HASH_AFTER_FINDS) this.buildTable(whole);
      if (this.table) return this.hashFind(whole, range, key);
      const { written } = enc.encodeInto(key, scratch);
      const at = whole.search(range.from, range.to - 1, scratch, written, (s, why) => this.bad(s, why));
      return at >= 0 ? at : -1;
    }
    const { written } = enc.encodeInto(key, scratch);
    const p = this.pageFor(range, written);
    if (p < 0 || this.lost.has(p)) return -1;
    const e = this.pages[p]!;
    const page = this.page(p);
    const at = page.search(0, e.count - 1, scratch, written, (s, why) => this.bad(e.first + s, why));
    return at >= 0 ? e.first + at : -1;
  }

  // ---- hash lookup (version 2/3): a binary search over 100k slots costs ~17 cache misses (~1.3 µs here); a probe, ~2.

  /** Slot + 1 per bucket (0: empty), by FNV-1a hash of the key's UTF-8 bytes; null until built. */
  private table: Int32Array | null = null;
  private finds = 0;

  /**
   * Hash every slot's key once the index is being searched (after {@link HASH_AFTER_FINDS} lookups, so a
   * cold open and its first reads pay nothing; ~5 ms and 8 bytes per record for 100k records). A slot
   * found malformed while building leaves the index on binary search, which reports it when reached.
   */
  private buildTable(page: IndexPage): void {
    const n = page.count;
    let size = 16;
    while (size < n * 2) size *= 2;
    const table = new Int32Array(size);
    const mask = size - 1;
    const buf = page.buf;
    for (let s = 0; s < n; s++) {
      if (page.slotKey(s) !== null) return; // malformed: keep binary search
      let i = fnv1a(buf, page.keyStart, page.keyLen) & mask;
      while (table[i] !== 0) i = (i + 1) & mask;
      table[i] = s + 1;
    }
    this.table = table;
  }

  private hashFind(page: IndexPage, range: { from: number; to: number }, key: string): number {
    const { written } = enc.encodeInto(key, scratch);
    const table = this.table!;
    const mask = table.length - 1;
    const buf = page.buf;
    let i = fnv1a(scratch, 0, written) & mask;
    for (;;) {
      const s = table[i]! - 1;
      if (s < 0) return -1;
      if (s >= range.from && s < range.to && page.slotKey(s) === null) {
        if (page.keyLen === written) {
          const p = page.keyStart;
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
    // keys are at most 1 KiB of UTF-8: encode into a reused buffer instead of allocating one per lookup
    const { written } = enc.encodeInto(key, scratch);
    if (written > MAX_KEY_BYTES) throw new RangeError("a key longer than MAX_KEY_BYTES cannot be searched"); // callers check
    const whole = this.whole;
    if (whole) {
      const at = whole.search(range.from, range.to - 1, scratch, written, (s, why) => this.bad(s, why));
      return at >= 0 ? at + 1 : -at - 1;
    }
    const p = this.pageFor(range, written);
    if (p < 0) return range.from;
    const e = this.pages[p]!;
    if (this.lost.has(p)) return e.first + e.count;
    const at = this.page(p).search(0, e.count - 1, scratch, written, (s, why) => this.bad(e.first + s, why));
    return e.first + (at >= 0 ? at + 1 : -at - 1);
  }

  key(slot: number): string {
    const { page, local } = this.at(slot);
    try {
      return page.reader(local).string(MAX_KEY_BYTES);
    } catch (e) {
      if (e instanceof DecodeError) throw this.bad(slot, e.message);
      throw e;
    }
  }

  /** The location of a slot's value; `withTerms` false: without the record's index terms (a read needs none). */
  loc(slot: number, withTerms = true): Loc {
    const { page, local } = this.at(slot);
    let key: string, version: number, start: number, length: number;
    let terms = NO_TERMS;
    try {
      const r = page.reader(local);
      key = r.string(MAX_KEY_BYTES);
      version = r.varint(0xffffffff);
      start = r.varint(MAX_FRAME_PAYLOAD);
      length = r.varint(MAX_VALUE_BYTES);
      const n = r.varint(MAX_TERMS_PER_RECORD);
      if (n > 0 && withTerms) {
        const arr: string[] = new Array(n);
        const table = page.termTable();
        for (let i = 0; i < n; i++) arr[i] = table[r.varint(page.termCount - 1)]!;
        terms = arr;
      }
      if (r.pos > page.tableStart) throw new DecodeError("slot runs into the slot table");
    } catch (e) {
      if (e instanceof DecodeError) throw this.bad(slot, e.message);
      throw e;
    }
    const i = this.blockOf(slot);
    const b = this.blocks[i]!;
    return new Loc(this.file, b.offset, b.frameLength, i, key, start, length, version, terms);
  }

  /**
   * The location of `key`'s value at `slot` (found by {@link find}), for a read: the key is the caller's
   * string (not decoded again) and the index terms are left out (a read needs none).
   */
  readLoc(slot: number, key: string): Loc {
    const { page, local } = this.at(slot);
    let version: number, start: number, length: number;
    try {
      const r = page.reader(local);
      r.skip(r.varint(MAX_KEY_BYTES));
      version = r.varint(0xffffffff);
      start = r.varint(MAX_FRAME_PAYLOAD);
      length = r.varint(MAX_VALUE_BYTES);
      if (r.pos > page.tableStart) throw new DecodeError("slot runs into the slot table");
    } catch (e) {
      if (e instanceof DecodeError) throw this.bad(slot, e.message);
      throw e;
    }
    const i = this.blockOf(slot);
    const b = this.blocks[i]!;
    return new Loc(this.file, b.offset, b.frameLength, i, key, start, length, version, NO_TERMS);
  }

  /** The error for a malformed slot (also used by Keyspace when slot keys are found out of order). */
  bad(slot: number, why: string): CorruptionError {
    const at = this.whole || this.pages.length === 0 ? 0 : this.pages[this.pageOf(slot)]!.offset;
    return new CorruptionError(segmentName(this.file), at, `bad payload (index slot ${slot}: ${why})`);
  }

  /** The block found last (scans ask slot after slot). */
  private lastBlock = 0;
  /**
   * The block holding `slot` (< the slot count): the last one whose first slot is ≤ it (a block after the one
   * holding it starts past it, even one with no slots).
   */
  blockOf(slot: number): number {
    const blocks = this.blocks;
    const last = blocks[this.lastBlock];
    if (last && slot >= last.first && slot < last.first + last.count) return this.lastBlock;
    return (this.lastBlock = lastStartingBy(blocks, slot));
  }
}
