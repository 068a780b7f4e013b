/**
 * Segments: immutable snapshot files written by compaction (docs/FORMAT.md,
 * "Segment"). Data blocks of one entity each, then an index frame, then a
 * fixed footer that points at the index.
 */
import { crc32 } from "node:zlib";
import { DecodeError } from "../format/bytes.js";
import {
  FILE_HEADER_SIZE,
  FileKind,
  FORMAT_VERSION,
  FRAME_HEADER_SIZE,
  FrameType,
  MAX_FRAME_PAYLOAD,
  PAGED_INDEX_VERSION,
  SEGMENT_BLOCK_TARGET,
  SEGMENT_FOOTER_MAGIC,
  SEGMENT_FOOTER_SIZE,
} from "../format/format.js";
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
import { compressAside } from "../platform/deflate-aside.js";
import { type Failpoint, type FileIO, fsyncOffLoop } from "../platform/io.js";
import { type BlockRecord, encodeBlock, IndexBuilder, PagedIndexBuilder } from "../format/records.js";
import type { IndexPage } from "../format/index-page.js";
import { SegmentIndex } from "../format/segment-index.js";
import type { Sealer } from "../crypto/seal.js";

/** Blocks a segment writer keeps being deflated on the worker while it reads the next ones' records. */
const BLOCKS_IN_FLIGHT = 4;

export interface SegmentInput {
  entity: string;
  /** Awaited before `records` is read (compaction reads the entity's values there). */
  prepare?: () => Promise<void>;
  /** Records in the order they are written (the engine sorts by key); a sync iterable is read without an await per record. */
  records: AsyncIterable<BlockRecord> | Iterable<BlockRecord>;
}

export interface WrittenSegment {
  number: number;
  size: number;
  /** File header bytes 0..28, bound into every frame's associated data. */
  bound: Uint8Array;
  index: SegmentIndex;
}

/**
 * The format version new segments are written in: 4 (a paged index). Tests set 3 to write the version 3
 * layout (one index frame), as the previous release did, and check that it is still read.
 */
let segmentWriteVersion: number = FORMAT_VERSION;
export function setSegmentWriteVersion(version: number): void {
  segmentWriteVersion = version;
}

/**
 * Write a segment under `tmpPath`, fsync it, and rename it to `finalPath`.
 * The caller fsyncs the directory. On any failure the temp file is removed.
 */
export async function writeSegment(
  io: FileIO,
  tmpPath: string,
  finalPath: string,
  number: number,
  storeId: Uint8Array,
  /** The index's key and each entity's block key; null for a plaintext store. */
  keys: { meta: Sealer | null; record: (entity: string) => Sealer | null } | null,
  inputs: Iterable<SegmentInput>,
  failpoint: (name: Failpoint) => void,
  yieldEvery: () => Promise<void>,
  compress = true,
): Promise<WrittenSegment> {
  io.unlink(tmpPath);
  const fd = io.open(tmpPath, "wx+");
  let ok = false;
  const version = segmentWriteVersion;
  const paged = version >= PAGED_INDEX_VERSION;
  try {
    const header = encodeFileHeader(FileKind.segment, storeId, number, version);
    const bound = header.subarray(0, 28);
    io.write(fd, header, 0);
    let offset = FILE_HEADER_SIZE;
    // The index is encoded a block at a time, as blocks are written (the turns between blocks split it too).
    const index = paged ? new PagedIndexBuilder() : new IndexBuilder();
    let blockCount = 0;
    // Blocks encoded and being deflated on the worker (platform/deflate-aside.ts), written in order by `drain`
    // (a frame's offset follows from the lengths of those before it); meanwhile the next blocks' records are read.
    const queue: { entity: string; plaintext: Uint8Array; slots: ReturnType<typeof encodeBlock>["slots"]; deflated: Promise<Uint8Array> | null }[] = [];
    const drain = async (keep: number) => {
      while (queue.length > keep) {
        const { entity, plaintext, slots, deflated } = queue.shift()!;
        const compressed = deflated ? await deflated : undefined;
        const sealer = keys ? keys.record(entity) : null;
        const frame = encodeFrame({ type: FrameType.block, seq: blockCount++, plaintext, compress, ...(compressed ? { compressed } : {}), sealer }, bound);
        io.write(fd, frame, offset);
        index.add({ offset, frameLength: frame.length, entity, slots });
        offset += frame.length;
      }
    };
    const flush = (entity: string, pending: BlockRecord[]) => {
      const { plaintext, slots } = encodeBlock(pending);
      queue.push({ entity, plaintext, slots, deflated: compress ? compressAside(plaintext) : null });
    };
    /** After a block is queued: the oldest ones written once more than BLOCKS_IN_FLIGHT wait, then a turn if due. */
    const written = async () => {
      await drain(BLOCKS_IN_FLIGHT);
      await yieldEvery();
    };
    for (const input of inputs) {
      await input.prepare?.();
      let pending: BlockRecord[] = [];
      let size = 0;
      /** Add a record; true when a block was written (then a turn is taken). */
      const add = (rec: BlockRecord): boolean => {
        pending.push(rec);
        size += rec.value.length + rec.key.length + 8;
        if (size < SEGMENT_BLOCK_TARGET) return false;
        flush(input.entity, pending);
        pending = [];
        size = 0;
        return true;
      };
      const records = input.records;
      if (Symbol.asyncIterator in records) {
        for await (const rec of records) if (add(rec)) await written();
      } else {
        for (const rec of records) if (add(rec)) await written();
      }
      if (pending.length) flush(input.entity, pending);
    }
    await drain(0);
    // The index is not compressed: it is mostly keys, which deflate little, and it is read at every open,
    // where inflating it cost more than reading the extra bytes (measured: 67 ms vs ~3 ms for 100k keys).
    let indexPlain: Uint8Array;
    let seq = blockCount;
    if (index instanceof PagedIndexBuilder) {
      // Version 4: each page a frame of its own after the blocks, then the directory (docs/FORMAT.md, "Segment").
      const lengths: number[] = [];
      for (const page of index.pages()) {
        const frame = encodeFrame({ type: FrameType.indexPage, seq: seq++, plaintext: page.plain, compress: false, sealer: keys ? keys.meta : null }, bound);
        io.write(fd, frame, offset);
        offset += frame.length;
        lengths.push(frame.length);
        if (lengths.length % 64 === 0) await yieldEvery();
      }
      indexPlain = index.directory(lengths);
    } else indexPlain = index.finish();
    const indexFrame = encodeFrame({ type: FrameType.index, seq, plaintext: indexPlain, compress: false, sealer: keys ? keys.meta : null }, bound);
    io.write(fd, indexFrame, offset);
    const footer = new Uint8Array(SEGMENT_FOOTER_SIZE);
    const v = new DataView(footer.buffer);
    v.setBigUint64(0, BigInt(offset), true);
    v.setUint32(8, indexFrame.length, true);
    v.setUint32(12, crc32(footer.subarray(0, 12)), true);
    footer.set(SEGMENT_FOOTER_MAGIC, 16);
    io.write(fd, footer, offset + indexFrame.length);
    const size = offset + indexFrame.length + SEGMENT_FOOTER_SIZE;
    failpoint("compaction.afterSegmentWrite");
    // On the thread pool when the seam has it (issue 15: a 20 MB segment's fsync held the loop tens of ms).
    await fsyncOffLoop(io, fd);
    io.close(fd);
    failpoint("compaction.beforeSegmentRename");
    io.rename(tmpPath, finalPath);
    ok = true;
    return { number, size, bound: bound.slice(), index: SegmentIndex.parse(indexPlain, number, paged) };
  } finally {
    if (!ok) {
      try {
        io.close(fd);
      } catch {
        // already closed
      }
      io.unlink(tmpPath);
    }
  }
}

export class SegmentProblem extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

export interface OpenedSegment {
  number: number;
  fd: number;
  size: number;
  bound: Uint8Array;
  index: SegmentIndex;
  /** Indexes of blocks whose checksum failed when verified at open. */
  badBlocks: Map<number, string>;
  /** Version 4: index pages that failed a check when verified at open (`verifyBlocks`), by page number. */
  badPages: Map<number, string>;
}

/** Open a segment: header, footer, index; optionally verify every block's checksum. */
export function openSegment(
  io: FileIO,
  file: string,
  number: number,
  storeId: Uint8Array,
  keys: KeyLookup,
  requireSealed: boolean,
  verifyBlocks: boolean,
  /** Version 4: check every index page before returning (with `verifyBlocks`, or alone: an open that refuses damage). */
  verifyPages = verifyBlocks,
): OpenedSegment {
  const fd = io.open(file, "r");
  try {
    const size = io.size(fd);
    if (size < FILE_HEADER_SIZE + SEGMENT_FOOTER_SIZE) throw new SegmentProblem(0, "bad record length (file too short)");
    const whole = verifyBlocks ? new Uint8Array(size) : null;
    if (whole) io.read(fd, whole, 0);
    const readAt = (off: number, len: number, alignEnd = false) => {
      if (whole) return whole.subarray(off, off + len);
      // Not zero-filled first (the index of 100k records is ~5 MB): every byte is read or refused. `alignEnd`:
      // placed so that it ends on a 4-byte boundary, where the index's slot offset table then lies (its
      // plaintext ends there or 16 bytes before), so SegmentIndex.parse uses the table in place.
      const pad = alignEnd ? (4 - (len % 4)) % 4 : 0;
      const b = pad === 0 ? Buffer.allocUnsafe(len) : Buffer.from(new ArrayBuffer(len + pad), pad, len);
      if (io.read(fd, b, off) !== len) throw new SegmentProblem(off, "bad record length (short read)");
      return b;
    };
    let header;
    try {
      header = decodeFileHeader(readAt(0, FILE_HEADER_SIZE), FileKind.segment);
    } catch (e) {
      if (e instanceof FrameError) throw new SegmentProblem(0, e.message);
      throw e;
    }
    if (header.fileNumber !== number) throw new SegmentProblem(24, "header names another file number");
    if (!equalBytes(header.storeId, storeId)) throw new SegmentProblem(8, "segment belongs to another store");
    const footer = readAt(size - SEGMENT_FOOTER_SIZE, SEGMENT_FOOTER_SIZE);
    const fv = new DataView(footer.buffer, footer.byteOffset, SEGMENT_FOOTER_SIZE);
    for (let i = 0; i < 8; i++) {
      if (footer[16 + i] !== SEGMENT_FOOTER_MAGIC[i]) throw new SegmentProblem(size - 8, "bad magic (footer)");
    }
    if (fv.getUint32(12, true) !== crc32(footer.subarray(0, 12))) {
      throw new SegmentProblem(size - SEGMENT_FOOTER_SIZE, "checksum mismatch (footer)");
    }
    const indexOffset = Number(fv.getBigUint64(0, true));
    const indexLength = fv.getUint32(8, true);
    if (
      indexOffset < FILE_HEADER_SIZE ||
      indexLength > MAX_FRAME_PAYLOAD + FRAME_HEADER_SIZE ||
      indexOffset + indexLength !== size - SEGMENT_FOOTER_SIZE
    ) {
      throw new SegmentProblem(size - SEGMENT_FOOTER_SIZE, "bad record length (index)");
    }
    let index: SegmentIndex;
    try {
      const { header: fh, plaintext } = decodeFrame(readAt(indexOffset, indexLength, true), header.bound, keys, requireSealed, MAX_FRAME_PAYLOAD, whole === null);
      if (fh.type !== FrameType.index) throw new FrameError("unexpected frame type");
      // Version 4: the frame is the directory; the pages are read when first needed (readIndexPage).
      index = SegmentIndex.parse(plaintext, number, header.version >= PAGED_INDEX_VERSION);
      if (fh.seq !== index.indexSeq) throw new FrameError("unexpected sequence", "index does not match block count");
    } catch (e) {
      if (e instanceof FrameError) throw new SegmentProblem(indexOffset, e.message);
      if (e instanceof DecodeError) {
        if (e.message === "index points outside the data blocks") {
          throw new SegmentProblem(indexOffset, "bad record length (index points outside the data blocks)");
        }
        throw new SegmentProblem(indexOffset, `bad payload (${e.message})`);
      }
      throw e;
    }
    const blocks = index.blocks;
    if (index.indexStart > indexOffset) throw new SegmentProblem(indexOffset, "bad record length (index points outside the data blocks)");
    if (index.indexStart !== indexOffset) throw new SegmentProblem(indexOffset, "bad record length (gap before index)");
    const badBlocks = new Map<number, string>();
    const badPages = new Map<number, string>();
    if (whole) {
      blocks.forEach((b, i) => {
        const problem = blockProblem(whole.subarray(b.offset, b.offset + b.frameLength), i);
        if (problem) badBlocks.set(i, problem);
      });
    }
    if (verifyPages) {
      for (let p = 0; p < index.pages.length; p++) {
        const problem = pageProblem(whole, io, fd, header.bound, index, p, keys, requireSealed);
        if (problem) badPages.set(p, problem);
      }
    }
    return { number, fd, size, bound: header.bound, index, badBlocks, badPages };
  } catch (e) {
    io.close(fd);
    throw e;
  }
}

/**
 * The slots of `seg` lost to what its check at open found (`verifyOnOpen: true`), by entity, each damaged
 * part passed to `damage`: a damaged block loses the records its index entry lists (named); a damaged index
 * page (version 4) loses its records unnamed (their keys are in it), and is marked lost in the index.
 */
export function deadAtOpen(seg: OpenedSegment, name: string, damage: (d: { file: string; offset: number; bytes: number; reason: string; records: { entity: string; key: string }[] }) => void): Map<string, Set<number>> {
  const dead = new Map<string, Set<number>>();
  const index = seg.index;
  const deadSet = (entity: string) => {
    let set = dead.get(entity);
    if (!set) dead.set(entity, (set = new Set()));
    return set;
  };
  for (const [p, bad] of seg.badPages) {
    const e = index.pages[p]!;
    index.lost.add(p);
    const set = deadSet(index.blocks[index.blockOf(e.first)]!.entity);
    for (let slot = e.first; slot < e.first + e.count; slot++) set.add(slot);
    damage({ file: name, offset: e.offset, bytes: e.frameLength, reason: bad, records: [] });
  }
  index.blocks.forEach((b, i) => {
    const bad = seg.badBlocks.get(i);
    if (!bad) return;
    const set = deadSet(b.entity);
    const records: { entity: string; key: string }[] = [];
    for (let slot = b.first; slot < b.first + b.count; slot++) {
      if (set.has(slot)) continue; // on a lost index page: not named
      set.add(slot);
      records.push({ entity: b.entity, key: index.key(slot) });
    }
    damage({ file: name, offset: b.offset, bytes: b.frameLength, reason: bad, records });
  });
  return dead;
}

/** The first check a segment block frame fails (length, checksum, type and position), or null. */
export function blockProblem(frame: Uint8Array, blockIndex: number): string | null {
  if (frame.length < FRAME_HEADER_SIZE) return "bad record length";
  const h = readFrameHeader(frame);
  if (FRAME_HEADER_SIZE + h.length !== frame.length) return "bad record length";
  if (!checksumOk(frame)) return "checksum mismatch";
  if (h.type !== FrameType.block || h.seq !== blockIndex) return "unexpected sequence";
  return null;
}

/**
 * Check and open page `p` of a version 4 index from the frame bytes `frame` (length, crc, type, seq, key,
 * tag, grammar, and that it holds what its directory entry says). Throws FrameError. `frame` is decrypted in place.
 */
export function openIndexPage(frame: Uint8Array, bound: Uint8Array, index: SegmentIndex, p: number, keys: KeyLookup, requireSealed: boolean): IndexPage {
  const e = index.pages[p]!;
  if (frame.length !== e.frameLength) throw new FrameError("bad record length", "short read");
  const { header, plaintext } = decodeFrame(frame, bound, keys, requireSealed, MAX_FRAME_PAYLOAD, true);
  if (header.type !== FrameType.indexPage) throw new FrameError("unexpected frame type");
  if (header.seq !== index.blocks.length + p) throw new FrameError("unexpected sequence", `found ${header.seq}, expected ${index.blocks.length + p}`);
  try {
    return index.openPage(p, plaintext);
  } catch (err) {
    if (err instanceof DecodeError) throw new FrameError("bad payload", err.message);
    throw err;
  }
}

/** Read page `p` of a version 4 index from the segment's file and open it (see {@link openIndexPage}). */
export function readIndexPage(io: FileIO, seg: { fd: number; bound: Uint8Array }, index: SegmentIndex, p: number, keys: KeyLookup, requireSealed: boolean): IndexPage {
  const e = index.pages[p]!;
  const frame = Buffer.allocUnsafe(e.frameLength);
  if (io.read(seg.fd, frame, e.offset) !== frame.length) throw new FrameError("bad record length", "short read");
  return openIndexPage(frame, seg.bound, index, p, keys, requireSealed);
}

/** The first check page `p` (of a segment read whole into `whole`, else read from `fd`) fails, or null. */
function pageProblem(whole: Uint8Array | null, io: FileIO, fd: number, bound: Uint8Array, index: SegmentIndex, p: number, keys: KeyLookup, requireSealed: boolean): string | null {
  const e = index.pages[p]!;
  try {
    if (whole) openIndexPage(whole.slice(e.offset, e.offset + e.frameLength), bound, index, p, keys, requireSealed);
    else readIndexPage(io, { fd, bound }, index, p, keys, requireSealed);
    return null;
  } catch (err) {
    if (err instanceof FrameError) return err.message;
    throw err;
  }
}

/** Read and open one data block; checks type and position (seq = block index). */
export function readBlock(
  io: FileIO,
  seg: { fd: number; bound: Uint8Array },
  block: { offset: number; frameLength: number },
  blockIndex: number,
  keys: KeyLookup,
  requireSealed: boolean,
): Uint8Array {
  // A Buffer of its own, decrypted in place: record values are then Buffer views (what the codec reader wants).
  const frame = Buffer.allocUnsafe(block.frameLength);
  if (io.read(seg.fd, frame, block.offset) !== frame.length) throw new FrameError("bad record length", "short read");
  const { header, plaintext } = decodeFrame(frame, seg.bound, keys, requireSealed, MAX_FRAME_PAYLOAD, true);
  if (header.type !== FrameType.block || header.seq !== blockIndex) throw new FrameError("unexpected sequence");
  return plaintext;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
