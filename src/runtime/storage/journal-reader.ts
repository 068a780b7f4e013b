/**
 * Reads a journal from a known offset, frame by frame (docs/FORMAT.md,
 * "Recovery policy"). Used by open-time replay; written so another process
 * could follow a journal by calling {@link scanJournal} from the last offset it saw.
 */
import { DecodeError, isAllZero } from "../format/bytes.js";
import { FILE_HEADER_SIZE, FRAME_HEADER_SIZE, FrameType, MAX_FRAME_PAYLOAD } from "../format/format.js";
import { checksumOk, decodeFrame, FrameError, type KeyLookup, readFrameHeader } from "../format/frame.js";
import { type CommitEntry, decodeCommit } from "../format/records.js";

export interface JournalFrame {
  offset: number;
  length: number;
  seq: number;
  plaintext: Uint8Array;
  entries: CommitEntry[];
}

export interface JournalDamage {
  offset: number;
  /** Bytes from `offset` that could not be read as frames. */
  length: number;
  reason: string;
  /** True when nothing valid follows: the shape a crash mid-write leaves. */
  atEnd: boolean;
}

export interface JournalScan {
  frames: JournalFrame[];
  /** Offset just past the last good frame: where the next frame is written. */
  end: number;
  damage: JournalDamage[];
  /** Sequence number the next frame would carry. */
  nextSeq: number;
}

function tryFrame(
  bytes: Uint8Array,
  pos: number,
  bound: Uint8Array,
  keys: KeyLookup,
  requireSealed: boolean,
  minSeq: number,
  exactSeq: boolean,
): JournalFrame | FrameError {
  if (pos + FRAME_HEADER_SIZE > bytes.length) return new FrameError("bad record length", "header runs past end of file");
  const h = readFrameHeader(bytes.subarray(pos, pos + FRAME_HEADER_SIZE));
  if (h.length > MAX_FRAME_PAYLOAD || pos + FRAME_HEADER_SIZE + h.length > bytes.length) {
    return new FrameError("bad record length");
  }
  const frame = bytes.subarray(pos, pos + FRAME_HEADER_SIZE + h.length);
  if (!checksumOk(frame)) return new FrameError("checksum mismatch");
  if (h.type !== FrameType.commit) return new FrameError("unexpected frame type", `type ${h.type}`);
  if (exactSeq ? h.seq !== minSeq : h.seq < minSeq) {
    return new FrameError("unexpected sequence", `found ${h.seq}, expected ${minSeq}`);
  }
  try {
    const { plaintext } = decodeFrame(frame, bound, keys, requireSealed);
    return { offset: pos, length: frame.length, seq: h.seq, plaintext, entries: decodeCommit(plaintext) };
  } catch (e) {
    if (e instanceof FrameError) return e;
    if (e instanceof DecodeError) return new FrameError("bad payload", e.message);
    throw e;
  }
}

/** Offset just past the last non-zero byte at or after `from`. */
function lastNonZero(bytes: Uint8Array, from: number): number {
  let i = bytes.length;
  while (i > from && bytes[i - 1] === 0) i--;
  return i;
}

/**
 * Scan journal bytes (the whole file, header included) from `from`,
 * expecting the first frame to carry `firstSeq`. With `allowGap`, a first
 * frame with a later sequence is not reported (the previous journal ended in
 * damage that was reported already).
 */
export function scanJournal(
  bytes: Uint8Array,
  bound: Uint8Array,
  firstSeq: number,
  keys: KeyLookup,
  requireSealed: boolean,
  from = FILE_HEADER_SIZE,
  allowGap = false,
): JournalScan {
  const frames: JournalFrame[] = [];
  const damage: JournalDamage[] = [];
  let pos = from;
  let expected = firstSeq;
  let end = from;
  while (pos + FRAME_HEADER_SIZE <= bytes.length) {
    const head = bytes.subarray(pos, pos + FRAME_HEADER_SIZE);
    if (isAllZero(head) && isAllZero(bytes.subarray(pos))) break; // clean end: preallocated zeros
    const got = tryFrame(bytes, pos, bound, keys, requireSealed, expected, true);
    if (!(got instanceof FrameError)) {
      frames.push(got);
      pos += got.length;
      end = pos;
      expected = got.seq + 1;
      continue;
    }
    // A frame that passes every check but carries a later sequence: the frames between are missing.
    const ahead = got.problem === "unexpected sequence" ? tryFrame(bytes, pos, bound, keys, requireSealed, expected, false) : got;
    if (!(ahead instanceof FrameError)) {
      if (!(allowGap && pos === from)) {
        damage.push({
          offset: pos,
          length: 0,
          reason: `unexpected sequence (found ${ahead.seq}, expected ${expected}): frames are missing`,
          atEnd: false,
        });
      }
      frames.push(ahead);
      pos += ahead.length;
      end = pos;
      expected = ahead.seq + 1;
      continue;
    }
    // The length field of a bad frame is not trusted: look for the next frame that passes every check.
    let next = -1;
    let found: JournalFrame | null = null;
    for (let q = pos + 1; q + FRAME_HEADER_SIZE <= bytes.length; q++) {
      if (bytes[q + 8] !== FrameType.commit) continue;
      const cand = tryFrame(bytes, q, bound, keys, requireSealed, expected, false);
      if (!(cand instanceof FrameError)) {
        next = q;
        found = cand;
        break;
      }
    }
    if (found) {
      damage.push({ offset: pos, length: next - pos, reason: got.message, atEnd: false });
      pos = next;
      expected = found.seq; // frames were lost in the damaged bytes: continue from the frame found
      continue;
    }
    const stop = Math.max(lastNonZero(bytes, pos), pos + 1);
    damage.push({ offset: pos, length: stop - pos, reason: got.message, atEnd: true });
    break;
  }
  if (pos + FRAME_HEADER_SIZE > bytes.length && pos < bytes.length && !isAllZero(bytes.subarray(pos))) {
    damage.push({ offset: pos, length: bytes.length - pos, reason: "bad record length (header runs past end of file)", atEnd: true });
  }
  return { frames, end, damage, nextSeq: expected };
}
