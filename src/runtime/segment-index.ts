/**
 * A segment's index, kept as the bytes it was stored as (docs/FORMAT.md, "Segment index") plus one offset
 * per record, and searched in place: keys of an entity are sorted in UTF-8 byte order, so a lookup is a
 * binary search over raw bytes and opening a store decodes no key it is not asked for. (Building a Map of
 * every key at open cost ~130-190 ms and ~200 bytes of heap per key for 100,000 records.)
 */
import { ByteReader, DecodeError } from "./bytes.js";
import { FILE_HEADER_SIZE, MAX_COUNT, MAX_ENTITY_NAME_BYTES, MAX_FRAME_PAYLOAD, MAX_KEY_BYTES, MAX_TERMS_PER_RECORD, MAX_VALUE_BYTES } from "./format.js";
import { Loc } from "./location.js";

export interface IndexedBlock {
  offset: number;
  frameLength: number;
  entity: string;
  /** First slot of the block and number of slots. */
  first: number;
  count: number;
}

const NO_TERMS: readonly string[] = Object.freeze([]);
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
    private readonly terms: string[],
    readonly blocks: IndexedBlock[],
    /** Byte offset of each slot in `buf`. */
    private readonly slotPos: Uint32Array,
    /** Block of each slot. */
    private readonly slotBlock: Uint32Array,
    /** Slot range [from, to) of each entity. */
    private readonly ranges: Map<string, { from: number; to: number }>,
    /** Sum of the value lengths of all slots. */
    readonly valueBytes: number,
  ) {}

  /** Parse the index plaintext of segment `file` (throws DecodeError on any grammar or bound violation). */
  static parse(plain: Uint8Array, file: number): SegmentIndex {
    const buf = Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
    const r = new ByteReader(plain);
    const terms: string[] = [];
    for (let i = 0, n = r.varint(MAX_COUNT); i < n; i++) terms.push(r.string(MAX_KEY_BYTES));
    const nblocks = r.varint(MAX_COUNT);
    const blocks: IndexedBlock[] = [];
    let slotPos = new Uint32Array(1024);
    let slotBlock = new Uint32Array(1024);
    let nslots = 0;
    const ranges = new Map<string, { from: number; to: number }>();
    let valueBytes = 0;
    let expect = FILE_HEADER_SIZE;
    const maxRef = terms.length - 1;
    for (let b = 0; b < nblocks; b++) {
      const offset = r.varint();
      const frameLength = r.varint(MAX_FRAME_PAYLOAD + 64);
      const entity = r.string(MAX_ENTITY_NAME_BYTES);
      const count = r.varint(MAX_COUNT);
      if (offset !== expect) throw new DecodeError("index points outside the data blocks");
      expect = offset + frameLength;
      const first = nslots;
      if (nslots + count > slotPos.length) {
        let size = slotPos.length * 2;
        while (size < nslots + count) size *= 2;
        const p2 = new Uint32Array(size);
        p2.set(slotPos.subarray(0, nslots));
        slotPos = p2;
        const b2 = new Uint32Array(size);
        b2.set(slotBlock.subarray(0, nslots));
        slotBlock = b2;
      }
      for (let j = 0; j < count; j++) {
        slotPos[nslots] = r.pos;
        slotBlock[nslots] = b;
        nslots++;
        r.skip(r.varint(MAX_KEY_BYTES)); // key
        r.varint(0xffffffff); // version
        r.varint(MAX_FRAME_PAYLOAD); // start
        valueBytes += r.varint(MAX_VALUE_BYTES); // length
        const nrefs = r.varint(MAX_TERMS_PER_RECORD);
        for (let k = 0; k < nrefs; k++) r.varint(maxRef);
      }
      const range = ranges.get(entity);
      if (range) {
        if (range.to !== first) throw new DecodeError(`blocks of entity \`${entity}\` are not contiguous`);
        range.to = first + count;
      } else ranges.set(entity, { from: first, to: first + count });
      blocks.push({ offset, frameLength, entity, first, count });
    }
    if (!r.done) throw new DecodeError("trailing bytes after index");
    return new SegmentIndex(file, buf, terms, blocks, slotPos.subarray(0, nslots), slotBlock.subarray(0, nslots), ranges, valueBytes);
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
    // keys are at most 1 KiB of UTF-8: encode into a reused buffer instead of allocating one per lookup
    const { written } = enc.encodeInto(key, scratch);
    if (written > MAX_KEY_BYTES) return -1;
    const target = scratch;
    let lo = range.from;
    let hi = range.to - 1;
    const buf = this.buf;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      let p = this.slotPos[mid]!;
      // key length: a varint, one byte below 128
      let len = buf[p]!;
      if (len & 0x80) {
        len = (len & 0x7f) | (buf[p + 1]! << 7);
        p += 2;
      } else p += 1;
      const c = buf.compare(target, 0, written, p, p + len);
      // c compares the slot key with the target: > 0 means the slot key sorts after
      if (c === 0) return mid;
      if (c > 0) hi = mid - 1;
      else lo = mid + 1;
    }
    return -1;
  }

  key(slot: number): string {
    const r = this.reader(slot);
    return r.string(MAX_KEY_BYTES);
  }

  /** The location of a slot's value. */
  loc(slot: number): Loc {
    const r = this.reader(slot);
    const key = r.string(MAX_KEY_BYTES);
    const version = r.varint(0xffffffff);
    const start = r.varint(MAX_FRAME_PAYLOAD);
    const length = r.varint(MAX_VALUE_BYTES);
    const n = r.varint(MAX_TERMS_PER_RECORD);
    let terms = NO_TERMS;
    if (n > 0) {
      const arr: string[] = new Array(n);
      for (let i = 0; i < n; i++) arr[i] = this.terms[r.varint(this.terms.length - 1)]!;
      terms = arr;
    }
    const b = this.blocks[this.slotBlock[slot]!]!;
    return new Loc(this.file, b.offset, b.frameLength, this.slotBlock[slot]!, key, start, length, version, terms);
  }

  private r: ByteReader | null = null;
  private reader(slot: number): ByteReader {
    this.r ??= new ByteReader(this.buf);
    this.r.pos = this.slotPos[slot]!;
    return this.r;
  }
}
