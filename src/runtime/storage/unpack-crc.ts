/**
 * The crcs of a packed segment's frames, checked as an unpack streams the segment out of a backup file
 * (backup.ts): each frame's crc (docs/FORMAT.md, "Frame": over its bytes from offset 4) is computed once, on
 * the bytes in memory, and folded into the backup file's running crc (`crc32Combine`) instead of being
 * computed a second time over the same bytes for the file's checksum. The frames whose crc matched are
 * listed (`checked`, offset → length) so that restore's later check of the staged segment does not compute
 * them again; a frame whose crc does not match ends the walk (its length is not trusted) and is left to that
 * check, which reports it as it reports any damaged frame. The walk goes frame by frame from the file header
 * to the footer by each frame's length field, trusting nothing: it only decides which bytes each crc covers.
 */
import { crc32 } from "node:zlib";
import { FILE_HEADER_SIZE, FRAME_HEADER_SIZE, MAX_FRAME_PAYLOAD, SEGMENT_FOOTER_SIZE } from "../format/format.js";
import { crc32Combine } from "../format/crc32-combine.js";

export class SegmentCrcWalk {
  /** Offset → length of each frame whose crc matched. */
  readonly checked = new Map<number, number>();
  /** Position in the segment of the next byte fed. */
  private pos = 0;
  /** Where the frame being walked starts (-1: the walk ended; the bytes left are crc'd as they come). */
  private frameAt: number;
  /** Where it ends, once its length field was read (-1 before). */
  private frameEnd = -1;
  /** Its first 8 bytes: the stored crc and the payload length. */
  private readonly head = new Uint8Array(8);
  /** crc of its bytes from offset 4 so far. */
  private body = 0;
  /** Frames end by here: the footer follows. */
  private readonly limit: number;

  constructor(length: number) {
    this.limit = length - SEGMENT_FOOTER_SIZE;
    this.frameAt = this.limit > FILE_HEADER_SIZE ? FILE_HEADER_SIZE : -1;
  }

  /** Feed the segment's next bytes; returns the backup file's running crc `crc` carried over them. */
  feed(chunk: Uint8Array, crc: number): number {
    const n = chunk.length;
    for (let i = 0; i < n; ) {
      if (this.frameAt < 0 || this.pos < this.frameAt) {
        const stop = this.frameAt < 0 ? n : Math.min(n, i + (this.frameAt - this.pos));
        crc = crc32(chunk.subarray(i, stop), crc);
        this.pos += stop - i;
        i = stop;
        continue;
      }
      const o = this.pos - this.frameAt;
      if (o === 0 && n - i >= 8) {
        // A frame that lies whole in the chunk (most do): one crc32 over its bytes from offset 4.
        const len = (chunk[i + 4]! | (chunk[i + 5]! << 8) | (chunk[i + 6]! << 16) | (chunk[i + 7]! << 24)) >>> 0;
        const length = FRAME_HEADER_SIZE + len;
        if (len <= MAX_FRAME_PAYLOAD && this.frameAt + length <= this.limit && length <= n - i) {
          const stored = (chunk[i]! | (chunk[i + 1]! << 8) | (chunk[i + 2]! << 16) | (chunk[i + 3]! << 24)) >>> 0;
          const body = crc32(chunk.subarray(i + 4, i + length));
          crc = crc32Combine(crc32Bytes4(crc, stored), body, length - 4);
          this.pos += length;
          i += length;
          if (body !== stored) {
            this.frameAt = -1;
            continue;
          }
          this.checked.set(this.frameAt, length);
          this.frameAt = this.pos < this.limit ? this.pos : -1;
          continue;
        }
      }
      if (o < 8) {
        // The stored crc (into the file's crc: it is not covered by the frame's) and the length field.
        const take = Math.min(8 - o, n - i);
        for (let k = 0; k < take; k++) this.head[o + k] = chunk[i + k]!;
        const split = Math.max(0, Math.min(take, 4 - o)); // bytes of the stored crc in this piece
        if (split) crc = crc32(chunk.subarray(i, i + split), crc);
        if (take > split) this.body = crc32(chunk.subarray(i + split, i + take), this.body);
        this.pos += take;
        i += take;
        if (o + take === 8) {
          const len = new DataView(this.head.buffer).getUint32(4, true);
          const end = this.frameAt + FRAME_HEADER_SIZE + len;
          if (len > MAX_FRAME_PAYLOAD || end > this.limit) crc = this.stop(crc);
          else this.frameEnd = end;
        }
        continue;
      }
      const take = Math.min(this.frameEnd - this.pos, n - i);
      this.body = crc32(chunk.subarray(i, i + take), this.body);
      this.pos += take;
      i += take;
      if (this.pos === this.frameEnd) {
        const start = this.frameAt;
        const end = this.frameEnd;
        const ok = this.body === new DataView(this.head.buffer).getUint32(0, true);
        crc = this.stop(crc);
        if (ok) {
          this.checked.set(start, end - start);
          if (end < this.limit) this.frameAt = end;
        }
      }
    }
    return crc;
  }

  /** End the walk (or the frame): the frame's bytes from offset 4 so far folded into `crc`. */
  private stop(crc: number): number {
    const bodyBytes = this.pos - this.frameAt - 4;
    if (bodyBytes > 0) crc = crc32Combine(crc, this.body, bodyBytes);
    this.frameAt = -1;
    this.frameEnd = -1;
    this.body = 0;
    return crc;
  }

  /** After the segment's last byte: `crc` with any frame left open folded in (a segment cut inside a frame). */
  end(crc: number): number {
    return this.frameAt >= 0 && this.pos > this.frameAt ? this.stop(crc) : crc;
  }
}

/** The reflected crc32 table (polynomial 0xedb88320), for the 4 bytes of a stored crc. */
const TABLE = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  TABLE[n] = c >>> 0;
}

/** `crc32(le32(v), crc)` without a call into zlib. */
function crc32Bytes4(crc: number, v: number): number {
  let c = ~crc >>> 0;
  for (let k = 0; k < 4; k++, v >>>= 8) c = TABLE[(c ^ v) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
