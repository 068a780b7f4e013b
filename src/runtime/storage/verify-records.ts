/**
 * Every record of a store, read once in file order for a full check (restore.ts verifies backups with it):
 * each index page (format version 4) is read and checked once, each segment block read, checked (crc, tag)
 * and opened once, and its records walked in order (their
 * number, first and last keys checked against the index); then the journals' live records through
 * `Reads.read`. Much cheaper per record than a scan plus a read per key. Damage is a
 * `CorruptionError` naming file and offset.
 */
import path from "node:path";
import { CorruptionError } from "../errors.js";
import { authenticateFrame, FrameError } from "../format/frame.js";
import { Loc } from "../format/location.js";
import { ByteReader, DecodeError } from "../format/bytes.js";
import { FrameType, MAX_FRAME_PAYLOAD, MAX_KEY_BYTES, MAX_VALUE_BYTES } from "../format/format.js";
import { turn } from "../platform/turn.js";
import type { Reads } from "./reads.js";
import { openIndexPage, readBlock } from "./segment.js";
import type { StoreState } from "./state.js";

/** Called with each record: entity, key, schema version and value (valid during the call only). */
export type RecordVisitor = (entity: string, key: string, version: number, value: Uint8Array) => void;

export interface ForEachRecordOptions {
  /**
   * `"records"` (default): every segment block is read, checked, opened, inflated and its records visited.
   * `"sealed"`: in an encrypted store, each block's and each index page's crc, tag, type and position are
   * checked (the tag over its still-sealed bytes) and the block is neither inflated nor walked: its records
   * are not visited (restore's check, docs/FORMAT.md "Backup file"). A plaintext store's blocks are walked
   * either way.
   */
  blocks?: "records" | "sealed";
  /** With `"sealed"`: a buffer the check may read blocks into (overwritten), e.g. one already in use, whose memory is mapped. */
  scratch?: Uint8Array;
  /**
   * With `"sealed"`: frames whose crc was checked already over the bytes now in the file (restore's unpack):
   * segment file name → offset → frame length. A block listed with its length is not crc'd again.
   */
  crcChecked?: ReadonlyMap<string, ReadonlyMap<number, number>>;
}

/** Bytes of consecutive frames (blocks, index pages) read with one read when their records are not walked. */
const RUN_BYTES = 1024 * 1024;

/** One frame of the segment for {@link checkRuns}: where it lies, and what it must be. */
interface SegmentFrame {
  offset: number;
  frameLength: number;
}

/**
 * Read `frames` (in file order) in runs of consecutive frames of up to ~1 MiB into one buffer (`scratch` when
 * given: memory already mapped, not a fresh buffer per frame), call `check` on each frame's bytes (a view into
 * that buffer, overwritten by the next run), and let the event loop turn after each run. A `FrameError` from
 * `check` is damage: a `CorruptionError` naming the segment and the frame's offset.
 */
async function checkRuns<F extends SegmentFrame>(s: StoreState, frames: readonly F[], check: (frame: Buffer, f: F, i: number) => void, scratch?: Uint8Array): Promise<void> {
  const seg = s.segment!;
  const f = s.files.get(seg.file);
  const name = path.basename(s.paths.segment(seg.file));
  if (!f) throw new CorruptionError(name, 0, "file missing");
  let buf: Uint8Array = scratch ?? Buffer.allocUnsafe(RUN_BYTES);
  for (let i = 0; i < frames.length; ) {
    // A run of frames that follow each other in the file (they do: the index lists them in file order).
    const start = frames[i]!.offset;
    let end = i;
    let to = start;
    while (end < frames.length && frames[end]!.offset === to && (end === i || to + frames[end]!.frameLength - start <= RUN_BYTES)) {
      to += frames[end]!.frameLength;
      end++;
    }
    if (to - start > buf.length) buf = Buffer.allocUnsafe(to - start);
    const run = Buffer.from(buf.buffer, buf.byteOffset, to - start);
    if (s.io.read(f.fd, run, start) !== run.length) throw new CorruptionError(name, start, "bad record length (short read)");
    for (; i < end; i++) {
      const fr = frames[i]!;
      try {
        check(run.subarray(fr.offset - start, fr.offset - start + fr.frameLength), fr, i);
      } catch (e) {
        if (e instanceof FrameError) throw new CorruptionError(name, fr.offset, e.message);
        throw e;
      }
    }
    await turn();
  }
}

/**
 * Restore's check of a sealed segment (encrypted store): every block's and every index page's (format
 * version 4) crc, tag, type and position, the tag over the still-sealed bytes (`authenticateFrame`): neither
 * decrypted, inflated nor walked. Blocks and pages lie one after the other, so the runs go straight on from
 * the last block into the pages. A frame listed in `crcChecked` with its length is not crc'd again.
 */
async function checkSealedFrames(s: StoreState, scratch?: Uint8Array, crcChecked?: ForEachRecordOptions["crcChecked"]): Promise<void> {
  const seg = s.segment!;
  const checked = crcChecked?.get(path.basename(s.paths.segment(seg.file)));
  const nblocks = seg.blocks.length;
  const frames: (SegmentFrame & { entity: string | null })[] = seg.blocks.map((b) => ({ offset: b.offset, frameLength: b.frameLength, entity: b.entity }));
  for (const pg of seg.pages) frames.push({ offset: pg.offset, frameLength: pg.frameLength, entity: null });
  const bound = s.files.get(seg.file)?.bound;
  await checkRuns(
    s,
    frames,
    (frame, fr, i) => {
      const entity = fr.entity;
      const lookup = entity === null ? s.metaKeys : (id: number) => s.keyring?.record(id, entity) ?? null;
      const header = authenticateFrame(frame, bound!, lookup, checked?.get(fr.offset) === fr.frameLength);
      // As a read checks each (segment.ts readBlock, openIndexPage); a page's seq is nblocks + its number = i.
      if (i < nblocks ? header.type !== FrameType.block : header.type !== FrameType.indexPage) throw new FrameError(i < nblocks ? "unexpected sequence" : "unexpected frame type");
      if (header.seq !== i) throw new FrameError("unexpected sequence");
    },
    scratch,
  );
}

/**
 * Check every page of a paged index (format version 4; none before) as a read of it would (crc, tag,
 * grammar, its directory entry), read in runs. A full check must refuse a damaged page even where no record
 * is read through it; an open that refuses damage checks only the pages its journal replay meets (open.ts).
 */
async function checkPages(s: StoreState, scratch?: Uint8Array): Promise<void> {
  const seg = s.segment!;
  const f = s.files.get(seg.file)!;
  await checkRuns(
    s,
    seg.pages,
    (frame, _e, p) => {
      openIndexPage(frame, f.bound, seg, p, s.metaKeys, s.manifest.encrypted); // decrypted in place, in the run buffer
    },
    scratch,
  );
}

export async function forEachRecord(s: StoreState, reads: Reads, visit: RecordVisitor, options: ForEachRecordOptions = {}): Promise<void> {
  const seg = s.segment;
  if (seg && options.blocks === "sealed" && s.manifest.encrypted) await checkSealedFrames(s, options.scratch, options.crcChecked);
  else if (seg) {
    if (seg.paged) await checkPages(s, options.scratch);
    const f = s.files.get(seg.file);
    const name = path.basename(s.paths.segment(seg.file));
    if (!f) throw new CorruptionError(name, 0, "file missing");
    for (let i = 0; i < seg.blocks.length; i++) {
      const b = seg.blocks[i]!;
      let plain: Uint8Array;
      try {
        plain = readBlock(s.io, f, b, i, (id) => s.keyring?.record(id, b.entity) ?? null, s.manifest.encrypted);
      } catch (e) {
        if (e instanceof FrameError) throw new CorruptionError(name, b.offset, e.message);
        throw e;
      }
      // The block's records in order (`str(key) varint(version) varint(length) value`, FORMAT.md "Segment"),
      // as many as the index gives it, the first and last being the keys the index names there.
      const bad = (why: string) => new CorruptionError(name, b.offset, `bad payload (${why})`);
      const r = new ByteReader(plain);
      let key = "";
      try {
        for (let j = 0; j < b.count; j++) {
          key = r.string(MAX_KEY_BYTES);
          if (j === 0 && key !== seg.key(b.first)) throw bad("the block's first record is not the one the index names");
          const version = r.varint(0xffffffff);
          const value = r.bytes(r.varint(MAX_VALUE_BYTES));
          visit(b.entity, key, version, value);
        }
      } catch (e) {
        if (e instanceof DecodeError) throw bad(e.message);
        throw e;
      }
      if (!r.done || (b.count > 0 && key !== seg.key(b.first + b.count - 1))) throw bad("the block's records are not the ones the index names");
      if (i % 16 === 15) await new Promise<void>((r) => setImmediate(r));
    }
  }
  let n = 0;
  for (const [entity, ks] of s.entities) {
    const live = [...ks.overlay.values()].filter((o): o is Loc => o instanceof Loc);
    for (const loc of live) {
      visit(entity, loc.key, loc.version, reads.read(entity, loc));
      if (++n % 512 === 0) await new Promise<void>((r) => setImmediate(r));
    }
  }
}
