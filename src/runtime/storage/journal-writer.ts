/**
 * Appends frames to a preallocated journal file (docs/FORMAT.md, "Journal").
 * Journal space is filled with zeros ahead of the tail so that a commit
 * overwrites allocated blocks and its fdatasync does not have to flush file
 * size metadata (measured 1.3-1.5x the rate of plain appends here).
 */
import { FILE_HEADER_SIZE, FileKind, JOURNAL_DIRECT_BYTES, JOURNAL_PREALLOC_INITIAL, JOURNAL_PREALLOC_MAX_STEP } from "../format/format.js";
import { encodeFileHeader } from "../format/frame.js";
import { isCellarError } from "../errors.js";
import type { FileIO } from "../platform/io.js";

export class JournalWriter {
  private constructor(
    private readonly io: FileIO,
    readonly fd: number,
    readonly number: number,
    readonly bound: Uint8Array,
    /** Offset where the next frame goes. */
    public tail: number,
    /** Bytes allocated (written, possibly zeros). */
    private allocated: number,
  ) {}

  /** Create a new journal: header, zero fill, fsync. The caller fsyncs the directory. */
  static create(io: FileIO, file: string, number: number, storeId: Uint8Array): JournalWriter {
    const header = encodeFileHeader(FileKind.journal, storeId, number);
    const fd = io.open(file, "wx+");
    try {
      const first = new Uint8Array(JOURNAL_PREALLOC_INITIAL);
      first.set(header);
      io.write(fd, first, 0);
      io.fsync(fd);
    } catch (e) {
      io.close(fd);
      io.unlink(file);
      throw e;
    }
    return new JournalWriter(io, fd, number, header.slice(0, 28), FILE_HEADER_SIZE, JOURNAL_PREALLOC_INITIAL);
  }

  /** Continue an existing journal whose valid frames end at `tail`. */
  static resume(io: FileIO, fd: number, number: number, bound: Uint8Array, tail: number): JournalWriter {
    return new JournalWriter(io, fd, number, bound, tail, io.size(fd));
  }

  /**
   * Write `bytes` at the tail, then fdatasync when `sync`. On failure the tail
   * does not move, and bytes that may have landed are overwritten with zeros
   * where possible, so no half frame is left ahead of later ones.
   */
  append(bytes: Uint8Array, sync: boolean): number {
    const at = this.tail;
    const end = at + bytes.length;
    try {
      // A large group (a bulk batch) is written past the end as it is: zero-filling ahead of it first would
      // write its bytes twice, and its size amortizes the file-size update its fdatasync then flushes.
      if (end > this.allocated && bytes.length < JOURNAL_DIRECT_BYTES) this.extend(end);
      this.io.write(this.fd, bytes, at);
      if (end > this.allocated) this.allocated = end;
      if (sync) this.io.datasync(this.fd);
    } catch (e) {
      try {
        // Up to the file's end: a group written past the preallocation may have extended the file partly.
        const size = Math.max(this.allocated, this.io.size(this.fd));
        if (at < size) this.io.write(this.fd, new Uint8Array(Math.min(bytes.length, size - at)), at);
      } catch {
        // best effort: recovery treats leftover bytes after the last good frame as a torn tail
      }
      throw e;
    }
    this.tail = at + bytes.length;
    return at;
  }

  sync(): void {
    this.io.datasync(this.fd);
  }

  private extend(needed: number): void {
    const step = Math.min(Math.max(this.allocated, JOURNAL_PREALLOC_INITIAL), JOURNAL_PREALLOC_MAX_STEP);
    let target = this.allocated + step;
    if (target < needed) target = needed + step;
    try {
      this.fillZeros(target);
    } catch (e) {
      // Nearly full disk: take only the space this write needs (rounded to 64 KiB), if that much is free.
      if (!isCellarError(e, "E_NOSPACE")) throw e;
      this.fillZeros(Math.ceil(needed / 65536) * 65536);
    }
  }

  private fillZeros(target: number): void {
    const zeros = new Uint8Array(Math.min(Math.max(target - this.allocated, 0), 4 * 1024 * 1024));
    let at = this.allocated;
    while (at < target) {
      const n = Math.min(zeros.length, target - at);
      this.io.write(this.fd, n === zeros.length ? zeros : zeros.subarray(0, n), at);
      at += n;
      this.allocated = at;
    }
  }

  /** Bytes of frames written so far (excluding the header and zero fill). */
  get used(): number {
    return this.tail - FILE_HEADER_SIZE;
  }
}
