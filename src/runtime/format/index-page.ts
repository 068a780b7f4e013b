/**
 * One page of a segment's index (docs/FORMAT.md, "Segment"): a version 4 index page, or the whole slot area of a
 * version 2/3 index frame, kept as the bytes it was stored as with its slot offset table, and searched in place
 * (segment-index.ts finds the page).
 */
import { ByteReader, DecodeError } from "./bytes.js";
import { MAX_COUNT, MAX_KEY_BYTES } from "./format.js";

const BIG_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 0;

/**
 * The slots of one index page (or of a whole version 2/3 index), searched in place. Slot numbers here are
 * local to the page (0 … count − 1).
 */
export class IndexPage {
  constructor(
    readonly buf: Buffer,
    /** Where the term table's entries start, and how many there are: decoded on first use (`termTable`). */
    private readonly termsStart: number,
    private readonly nterms: number,
    /** Byte offset of each slot in `buf`. */
    readonly slotPos: Uint32Array,
    /** Where the slots start and where the offset table starts: every slot lies between. */
    readonly slotsStart: number,
    readonly tableStart: number,
  ) {}

  get count(): number {
    return this.slotPos.length;
  }

  /** Walk a term table of `plain` at `r` (each length checked against the payload, no string decoded): where its entries start, and how many. */
  static walkTerms(plain: Uint8Array, r: ByteReader): { termsStart: number; nterms: number } {
    // The term table is walked (each length checked against the payload), not decoded: a record's terms
    // are needed only by an ordered index build, a compaction or a `loc` that lists them, and decoding
    // them here made every open pay for one string per distinct term (100,017 strings, 3.8 MB of the
    // 9.3 MB index of the benchmark's 100,000 records: issue 15's cold open).
    const nterms = r.varint(MAX_COUNT);
    const termsStart = r.pos;
    let p = termsStart;
    for (let i = 0; i < nterms; i++) {
      let len = plain[p] ?? 0x80;
      if (len < 0x80) p++; // one-byte length (MAX_KEY_BYTES > 127): the common case, inline
      else {
        r.pos = p;
        len = r.varint(MAX_KEY_BYTES);
        p = r.pos;
      }
      if (len > plain.length - p) throw new DecodeError(`length ${len} runs past the end of the payload`);
      p += len;
    }
    r.pos = p;
    return { termsStart, nterms };
  }

  /** The page of the slots from `slotsStart` to the offset table (the last `4 × nslots` bytes of `plain`). */
  static from(plain: Uint8Array, termsStart: number, nterms: number, slotsStart: number, nslots: number): IndexPage {
    const buf = Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
    const tableStart = plain.length - 4 * nslots;
    if (tableStart < slotsStart) throw new DecodeError("slot table runs past the slots");
    // Used where it lies when it is 4-byte aligned (openSegment places the index so that it is); else copied
    // into aligned memory. At open, every byte of fresh memory costs a page fault (issue 15).
    const at = plain.byteOffset + tableStart;
    let slotPos: Uint32Array;
    if (BIG_ENDIAN) {
      slotPos = new Uint32Array(nslots);
      for (let i = 0; i < nslots; i++) slotPos[i] = buf.readUInt32LE(tableStart + 4 * i);
    } else if (at % 4 === 0) slotPos = new Uint32Array(plain.buffer, at, nslots);
    else {
      slotPos = new Uint32Array(nslots);
      new Uint8Array(slotPos.buffer).set(plain.subarray(tableStart));
    }
    if (nslots > 0 && (slotPos[0] !== slotsStart || slotPos[nslots - 1]! >= tableStart)) {
      throw new DecodeError("slot table points outside the slots");
    }
    return new IndexPage(buf, termsStart, nterms, slotPos, slotsStart, tableStart);
  }

  /**
   * Locate slot `s`'s key bytes (into keyStart/keyLen, no string decoded): null, or why the slot is
   * malformed. The key length is a varint of at most 2 bytes (keys are ≤ 1024 bytes), one below 128.
   */
  keyStart = 0;
  keyLen = 0;
  slotKey(s: number): string | null {
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

  /**
   * Binary search of the `written` bytes of `target` in the slots [lo, hi]: the slot, or `-(insertion point) - 1`
   * (the first slot whose key sorts after it). `bad` makes the error for a malformed slot.
   */
  search(lo: number, hi: number, target: Uint8Array, written: number, bad: (s: number, why: string) => Error): number {
    const buf = this.buf;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const problem = this.slotKey(mid);
      if (problem !== null) throw bad(mid, problem);
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

  private terms: string[] | null = null;
  /** The term table, decoded on first use (its lengths were checked when parsed, so this cannot fail). */
  termTable(): string[] {
    if (this.terms) return this.terms;
    const r = new ByteReader(this.buf.subarray(0, this.slotsStart));
    r.pos = this.termsStart;
    const terms: string[] = new Array(this.nterms);
    for (let i = 0; i < this.nterms; i++) terms[i] = r.string(MAX_KEY_BYTES);
    return (this.terms = terms);
  }

  get termCount(): number {
    return this.nterms;
  }

  private r: ByteReader | null = null;
  reader(slot: number): ByteReader {
    this.r ??= new ByteReader(this.buf.subarray(0, this.tableStart));
    const p = this.slotPos[slot]!;
    if (p < this.slotsStart || p >= this.tableStart) throw new DecodeError("slot offset outside the slots");
    this.r.pos = p;
    return this.r;
  }
}
