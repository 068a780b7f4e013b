/**
 * Reads a journal from a known offset, frame by frame (docs/FORMAT.md,
 * "Recovery policy"). Used by open-time replay; written so another process
 * could follow a journal by calling {@link scanJournal} from the last offset it saw.
 *
 * The file is read through a bounded window ({@link JOURNAL_READ_WINDOW},
 * grown only to hold one frame of at most 64 MiB), so a journal of any size
 * (a sparse 5 GB file included) is scanned in bounded memory, and the resync
 * after a damaged frame does bounded work (see {@link scanJournalFile}).
 */
import { crc32 } from "node:zlib";
import { DecodeError, isAllZero } from "../format/bytes.js";
import {
  END_RECORD_SIZE,
  FILE_HEADER_SIZE,
  FRAME_HEADER_SIZE,
  FrameFlag,
  FrameType,
  JOURNAL_READ_WINDOW,
  KEY_ID_NONE,
  MAX_FRAME_PAYLOAD,
  MAX_SEQ,
} from "../format/format.js";
import { decodeFrame, FrameError, isEndRecord, type KeyLookup, readFrameHeader } from "../format/frame.js";
import { type CommitEntry, decodeCommit } from "../format/records.js";

export interface JournalFrame {
  offset: number;
  length: number;
  seq: number;
  /** Valid only during the `onFrame` callback of {@link scanJournalFile} (it may view the read window). */
  plaintext: Uint8Array;
  entries: CommitEntry[];
}

export interface JournalDamage {
  offset: number;
  /** Bytes from `offset` that could not be read as frames. */
  length: number;
  reason: string;
  /** True when nothing valid follows: the shape a crash mid-write leaves (`kind` "torn" or "cut"). */
  atEnd: boolean;
  /**
   * `torn`: unreadable bytes at the end of the frames (a write cut short, or a damaged last frame: `reason`
   * says which it can be); `cut`: a version 3 journal ends where its end record should be (zeros or the end
   * of the file): frames after it, if any were written, are lost; `damage`: anything else.
   */
  kind: "torn" | "cut" | "damage";
}

export interface JournalScan {
  frames: JournalFrame[];
  /** Offset just past the last good frame: where the next frame is written. */
  end: number;
  damage: JournalDamage[];
  /** Sequence number the next frame would carry. */
  nextSeq: number;
  /** Bytes checksummed while resyncing after damage (bounded: see {@link scanJournalFile}). */
  resyncBytes: number;
}

/** Where a journal's bytes come from: the whole file in memory, or read on demand. */
export interface JournalBytes {
  size: number;
  /** Read up to `into.length` bytes at `position`; returns the count (fewer only at the end of the file). */
  read(into: Uint8Array, position: number): number;
}

/** The first read of a journal window, and the chunk `crc` and `lastNonZero` read in (see JournalWindow). */
const WINDOW_FIRST = 64 * 1024;
/**
 * One chunk buffer for every window's `crc` and `lastNonZero`: they use it within one synchronous call and keep
 * nothing in it, so windows can share it. 64 KiB, allocated and touched once: a fresh 256 KiB chunk per open
 * cost its page faults on every cold open (the zero check of a 1 MiB preallocated journal read 1 MiB through
 * it; 64 KiB reads of a file in the page cache take as long as 256 KiB ones, issue 15).
 */
const SCRATCH_BYTES = 64 * 1024;
let sharedScratch: Uint8Array | null = null;

/** A bounded window over a journal's bytes. Views stay valid until the next call that reads. */
export class JournalWindow {
  private buf: Uint8Array;
  private start = 0;
  private len = 0;

  /** The window's size once grown (`windowBytes`, at most the file); 0 when a buffer was given (never grown but for a frame). */
  private readonly max: number;

  constructor(
    private readonly src: JournalBytes | Uint8Array,
    windowBytes = JOURNAL_READ_WINDOW,
    /** A buffer to read into (a follower keeps one between its scans); grown past only for a larger frame. */
    window?: Uint8Array,
  ) {
    // The window starts small and doubles at each read that leaves it, up to `windowBytes`: a journal holding
    // a few frames before its preallocated zeros is not read whole into fresh memory (issue 15: at a cold open
    // the 1 MiB read, its page faults and the zero check's second 1 MiB buffer were ~10-20 ms under load).
    this.max = src instanceof Uint8Array || window ? 0 : Math.min(windowBytes, src.size);
    this.buf = src instanceof Uint8Array ? src : (window ?? new Uint8Array(Math.min(WINDOW_FIRST, this.max)));
    if (src instanceof Uint8Array) this.len = src.length;
  }

  /** Chunks for `crc` and `lastNonZero` (the module's one buffer, allocated on first use; see SCRATCH_BYTES). */
  private get scratch(): Uint8Array {
    return (sharedScratch ??= new Uint8Array(SCRATCH_BYTES));
  }

  get size(): number {
    return this.src instanceof Uint8Array ? this.src.length : this.src.size;
  }

  /** Bytes `[pos, pos + n)`, clipped to the file (n ≤ 64 MiB + 64). */
  view(pos: number, n: number): Uint8Array {
    const end = Math.min(pos + n, this.size);
    if (pos >= this.start && end <= this.start + this.len) return this.buf.subarray(pos - this.start, end - this.start);
    const src = this.src as JournalBytes;
    if (this.len > 0 && this.buf.length < this.max) this.buf = new Uint8Array(Math.min(this.buf.length * 2, this.max));
    if (end - pos > this.buf.length) this.buf = new Uint8Array(end - pos); // one frame larger than the window
    const want = Math.min(this.buf.length, this.size - pos);
    const got = src.read(this.buf.subarray(0, want), pos);
    this.start = pos;
    this.len = got;
    return this.buf.subarray(0, Math.min(end - pos, got));
  }

  /** crc32 of bytes `[pos, pos + n)` read in chunks (the window is not grown for it). */
  crc(pos: number, n: number): number {
    if (this.src instanceof Uint8Array) return crc32(this.src.subarray(pos, pos + n));
    if (pos >= this.start && pos + n <= this.start + this.len) return crc32(this.buf.subarray(pos - this.start, pos + n - this.start));
    let c = 0;
    for (let at = pos; at < pos + n; ) {
      const k = this.src.read(this.scratch.subarray(0, Math.min(this.scratch.length, pos + n - at)), at);
      if (k === 0) break;
      c = crc32(this.scratch.subarray(0, k), c);
      at += k;
    }
    return c;
  }

  /** Offset just past the last non-zero byte at or after `from` (`from` when all are zero). */
  lastNonZero(from: number): number {
    if (this.src instanceof Uint8Array) {
      let i = this.src.length;
      if (i > from && isAllZero(this.src.subarray(from))) return from;
      while (i > from && this.src[i - 1] === 0) i--;
      return Math.max(i, from);
    }
    let last = from;
    for (let at = from; at < this.size; ) {
      const b = this.scratch.subarray(0, this.src.read(this.scratch.subarray(0, Math.min(this.scratch.length, this.size - at)), at));
      if (b.length === 0) break;
      if (!isAllZero(b)) {
        let i = b.length;
        while (i > 0 && b[i - 1] === 0) i--;
        last = at + i;
      }
      at += b.length;
    }
    return last;
  }
}

interface Ctx {
  w: JournalWindow;
  bound: Uint8Array;
  keys: KeyLookup;
  requireSealed: boolean;
}

/** Checks of a frame header that cost no checksum: a resync checksums only headers that pass them. */
function plausible(c: Ctx, h: Uint8Array, pos: number, minSeq: number): boolean {
  if (h[8] !== FrameType.commit || h[10] !== 0 || h[11] !== 0) return false;
  const flags = h[9]!;
  if (flags & ~(FrameFlag.compressed | FrameFlag.sealed)) return false;
  const f = readFrameHeader(h);
  if (f.length === 0 || f.length > MAX_FRAME_PAYLOAD || pos + FRAME_HEADER_SIZE + f.length > c.w.size) return false;
  if (f.seq < minSeq || f.seq > MAX_SEQ) return false;
  if (flags & FrameFlag.sealed) return c.keys(f.keyId) !== null;
  return !c.requireSealed && f.keyId === KEY_ID_NONE;
}

/**
 * Check the frame at `pos`. With `spend` (a resync candidate), the checksum is computed in chunks without
 * growing the window, after `spend(bytes)` agreed to the cost; otherwise the frame is viewed whole first.
 */
function tryFrame(c: Ctx, pos: number, minSeq: number, exactSeq: boolean, spend?: (n: number) => boolean): JournalFrame | FrameError | null {
  const size = c.w.size;
  if (pos + FRAME_HEADER_SIZE > size) return new FrameError("bad record length", "header runs past end of file");
  const h = readFrameHeader(c.w.view(pos, FRAME_HEADER_SIZE));
  if (h.length > MAX_FRAME_PAYLOAD || pos + FRAME_HEADER_SIZE + h.length > size) return new FrameError("bad record length");
  const total = FRAME_HEADER_SIZE + h.length;
  let frame: Uint8Array | null = null;
  if (spend) {
    if (!spend(total - 4)) return null;
    if (c.w.crc(pos + 4, total - 4) !== h.crc) return new FrameError("checksum mismatch");
  } else {
    frame = c.w.view(pos, total);
    if (crc32(frame.subarray(4)) !== h.crc) return new FrameError("checksum mismatch");
  }
  if (h.type !== FrameType.commit) return new FrameError("unexpected frame type", `type ${h.type}`);
  if (h.seq > MAX_SEQ) return new FrameError("unexpected sequence", `found ${h.seq}, above ${MAX_SEQ}`);
  if (exactSeq ? h.seq !== minSeq : h.seq < minSeq) {
    return new FrameError("unexpected sequence", `found ${h.seq}, expected ${minSeq}`);
  }
  frame ??= c.w.view(pos, total);
  if (frame[10] !== 0 || frame[11] !== 0) return new FrameError("bad payload", "reserved bytes set");
  try {
    const { plaintext } = decodeFrame(frame, c.bound, c.keys, c.requireSealed);
    return { offset: pos, length: total, seq: h.seq, plaintext, entries: decodeCommit(plaintext) };
  } catch (e) {
    if (e instanceof FrameError) return e;
    if (e instanceof DecodeError) return new FrameError("bad payload", e.message);
    throw e;
  }
}

export interface ScanOptions {
  /** Offset of the first frame (default 32, just past the file header). */
  from?: number;
  /** A first frame with a later sequence is not reported (the previous journal ended in damage that was reported already). */
  allowGap?: boolean;
  /** Version 3 journal: its frames must be followed by an end record (docs/FORMAT.md, "Journal"). */
  requireEnd?: boolean;
  /** Called for each good frame, in order; without it the frames are collected in the result. */
  onFrame?: (f: JournalFrame) => void;
  /**
   * A follower reading the journal another process writes (follower.ts): stop at the first frame that does not
   * pass, with one `torn` entry in `damage` (a write in progress: "not yet"), or at zeros where the end record
   * should be (`cut`); no resync, nothing read past that point, and a small read window.
   */
  follow?: boolean;
  /** The buffer of the read window (a follower's, reused by each of its scans); default: a new one. */
  window?: Uint8Array;
}

/** Read window of a follower's scan: a refresh usually reads a few frames. */
export const FOLLOW_WINDOW = 64 * 1024;

/**
 * Whether the frames end at `pos`, before any frame is tried there: no whole header left, the end record
 * (version 3), or zeros to the end of the file. What lies there, if it is damage, is pushed to `damage`.
 */
function framesEndAt(w: JournalWindow, pos: number, expected: number, requireEnd: boolean | undefined, damage: JournalDamage[], follow = false): boolean {
  if (pos + FRAME_HEADER_SIZE > w.size && follow) {
    if (requireEnd) damage.push(cutAt(pos));
    return true;
  }
  if (pos + FRAME_HEADER_SIZE > w.size) {
    const stop = w.lastNonZero(pos);
    if (stop > pos) {
      damage.push({ offset: pos, length: stop - pos, reason: tornReason("bad record length (header runs past end of file)", pos), atEnd: true, kind: "torn" });
    } else if (requireEnd) damage.push(cutAt(pos));
    return true;
  }
  const head = w.view(pos, END_RECORD_SIZE);
  if (head[8] === FrameType.end && requireEnd && isEndRecord(head, expected - 1, pos)) {
    // The end record: the frames end here. Anything after it is a write that never reached this place.
    if (follow) return true;
    const stop = w.lastNonZero(pos + END_RECORD_SIZE);
    if (stop > pos + END_RECORD_SIZE) {
      damage.push({
        offset: pos,
        length: stop - pos,
        reason: `bytes after the end record at offset ${pos}: a write cut short before its fdatasync (never acknowledged)`,
        atEnd: true,
        kind: "torn",
      });
    }
    return true;
  }
  if (isAllZero(head.subarray(0, FRAME_HEADER_SIZE)) && (follow || w.lastNonZero(pos) === pos)) {
    if (requireEnd) damage.push(cutAt(pos)); // zeros where the end record should be
    return true; // version 2: clean end, preallocated zeros
  }
  return false;
}

/** A version 3 journal that ends at `at`, where its end record should be. */
function cutAt(at: number): JournalDamage {
  return {
    offset: at,
    length: 0,
    reason: `the journal ends at offset ${at} without its end record: frames after it, if any were written, are lost`,
    atEnd: true,
    kind: "cut",
  };
}

/**
 * After a bad frame at `pos`, whose length field is not trusted: the next frame that passes every check,
 * `null` when none does, or `"exhausted"` when `spend` refused a candidate's checksum (the resync budget of
 * {@link scanJournalFile} ran out).
 */
function resync(c: Ctx, pos: number, expected: number, spend: (n: number) => boolean): JournalFrame | "exhausted" | null {
  const w = c.w;
  const size = w.size;
  const STEP = 64 * 1024;
  for (let q = pos + 1; q + FRAME_HEADER_SIZE <= size; ) {
    // Look at a block of positions at once; a candidate's check may move the window, so re-view after it.
    const blk = w.view(q, STEP + FRAME_HEADER_SIZE);
    const last = blk.length - FRAME_HEADER_SIZE;
    let i = 0;
    for (; i <= last && i < STEP; i++) {
      if (blk[i + 8] !== FrameType.commit || blk[i + 10] !== 0 || blk[i + 11] !== 0) continue;
      if (!plausible(c, blk.subarray(i, i + FRAME_HEADER_SIZE), q + i, expected)) continue;
      const cand = tryFrame(c, q + i, expected, false, spend);
      if (cand === null) return "exhausted";
      if (!(cand instanceof FrameError)) return cand;
      i++;
      break;
    }
    q += i;
  }
  return null;
}

/**
 * Scan a journal (the whole file in memory, or {@link JournalBytes} read through a bounded window) from
 * `from`, expecting the first frame to carry `firstSeq`.
 *
 * Resync after a bad frame looks for the next frame that passes every check; it checksums only positions
 * whose header passes the checks that cost nothing (type, flags, reserved bytes, key id, length, seq), and
 * at most `2 × size + 64 MiB` bytes in all, so the work is linear in the file's size whatever its bytes.
 * If that budget runs out, the rest of the file is reported as damage (never as a torn tail).
 */
export function scanJournalFile(
  src: JournalBytes | Uint8Array,
  bound: Uint8Array,
  firstSeq: number,
  keys: KeyLookup,
  requireSealed: boolean,
  opts: ScanOptions = {},
): JournalScan {
  const from = opts.from ?? FILE_HEADER_SIZE;
  const w = new JournalWindow(src, opts.follow ? FOLLOW_WINDOW : JOURNAL_READ_WINDOW, opts.window);
  const c: Ctx = { w, bound, keys, requireSealed };
  const size = w.size;
  const frames: JournalFrame[] = [];
  const emit = opts.onFrame ?? ((f: JournalFrame) => frames.push(f));
  const damage: JournalDamage[] = [];
  let pos = from;
  let expected = firstSeq;
  let end = from;
  let budget = 2 * size + MAX_FRAME_PAYLOAD;
  let resyncBytes = 0;
  const spend = (n: number) => {
    if (n > budget) return false;
    budget -= n;
    resyncBytes += n;
    return true;
  };
  for (;;) {
    if (framesEndAt(w, pos, expected, opts.requireEnd, damage, opts.follow)) break;
    const got = tryFrame(c, pos, expected, true)!;
    if (!(got instanceof FrameError)) {
      emit(got);
      pos += got.length;
      end = pos;
      expected = got.seq + 1;
      continue;
    }
    if (opts.follow) {
      damage.push({ offset: pos, length: 0, reason: got.message, atEnd: true, kind: "torn" });
      break;
    }
    // A frame that passes every check but carries a later sequence: the frames between are missing.
    const ahead = got.problem === "unexpected sequence" ? tryFrame(c, pos, expected, false)! : got;
    if (!(ahead instanceof FrameError)) {
      if (!(opts.allowGap && pos === from)) {
        damage.push({
          offset: pos,
          length: 0,
          reason: `unexpected sequence (found ${ahead.seq}, expected ${expected}): frames are missing`,
          atEnd: false,
          kind: "damage",
        });
      }
      emit(ahead);
      pos += ahead.length;
      end = pos;
      expected = ahead.seq + 1;
      continue;
    }
    // The length field of a bad frame is not trusted: look for the next frame that passes every check.
    const found = resync(c, pos, expected, spend);
    if (found !== null && found !== "exhausted") {
      damage.push({ offset: pos, length: found.offset - pos, reason: got.message, atEnd: false, kind: "damage" });
      pos = found.offset;
      expected = found.seq; // frames were lost in the damaged bytes: continue from the frame found
      continue;
    }
    const stop = Math.max(w.lastNonZero(pos), pos + 1);
    if (found === "exhausted") {
      damage.push({ offset: pos, length: stop - pos, reason: `${got.message}; resync stopped after checking ${resyncBytes} bytes`, atEnd: false, kind: "damage" });
    } else {
      damage.push({ offset: pos, length: stop - pos, reason: tornReason(got.message, pos), atEnd: true, kind: "torn" });
    }
    break;
  }
  return { frames, end, damage, nextSeq: expected, resyncBytes };
}

/** The honest reading of unreadable bytes at the end of the frames, with no end record before them. */
function tornReason(problem: string, at: number): string {
  return `${problem} at offset ${at}, the last frame: a write cut short by a crash (never acknowledged), or damage to the last acknowledged write (its writes are lost)`;
}

/**
 * Scan journal bytes (the whole file, header included) from `from`, expecting the first frame to carry
 * `firstSeq`; the frames are returned. With `allowGap`, a first frame with a later sequence is not reported.
 */
export function scanJournal(
  bytes: Uint8Array,
  bound: Uint8Array,
  firstSeq: number,
  keys: KeyLookup,
  requireSealed: boolean,
  from = FILE_HEADER_SIZE,
  allowGap = false,
  /** Default: the file header's version says (3: the frames end with an end record). */
  requireEnd = bytes[7]! >= 3,
): JournalScan {
  return scanJournalFile(bytes, bound, firstSeq, keys, requireSealed, { from, allowGap, requireEnd });
}
