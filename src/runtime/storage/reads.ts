/**
 * The read path: a record's value from its location (`read`), through the last-block memo and the block
 * cache, opening journal values with their entity's record key; damage found on the way is reported to
 * `onProblem` and thrown. Called by the `Engine` facade (`get`, `read`) and by compaction (which reads every
 * live record); commit and compaction forget the memo where the cache changes.
 */
import path from "node:path";
import { CorruptionError } from "../errors.js";
import { MAX_FRAME_PAYLOAD, FrameType } from "../format/format.js";
import { decodeFrame, FrameError, type KeyLookup } from "../format/frame.js";
import type { Loc } from "../format/location.js";
import { blockRecordIs, commitRecordIs } from "../format/records.js";
import type { FileIO } from "../platform/io.js";
import type { Keyring } from "../crypto/keyring.js";
import { scratchRecordAd } from "../crypto/value.js";
import type { LruCache } from "./cache.js";
import { IndexPage } from "../format/index-page.js";
import { LostPageError, type SegmentIndex } from "../format/segment-index.js";
import { readBlock, readIndexPage } from "./segment.js";
import { type DamageReport, frameKey, type ReadFile, type StoreState } from "./state.js";

/** A frame or block plaintext in the block cache. */
interface Cached {
  plain: Uint8Array;
  /** Journal frames of an encrypted store: the data key its values are sealed under. 0: values in the clear. */
  keyId: number;
  /** A segment block (else a journal commit frame): how the record before a value is laid out. */
  block: boolean;
}

export class Reads {
  /** The block `read` used last (a frame key, -1 for none), and its plaintext: reset wherever the cache is. */
  lastBlockKey = -1;
  private lastBlock: Cached | undefined;
  /** Per entity, the lookup of its record key by data key id. */
  readonly recordKeyLookups = new Map<string, KeyLookup>();
  // The state's maps, io and keys, held here too: `read` is the hot path.
  private readonly cache: LruCache<number | string, unknown>;
  private readonly files: Map<number, ReadFile>;
  private readonly io: FileIO;
  private readonly keyring: Keyring | null;
  private readonly metaKeys: KeyLookup;

  constructor(private readonly state: StoreState) {
    this.cache = state.cache;
    this.files = state.files;
    this.io = state.io;
    this.keyring = state.keyring;
    this.metaKeys = state.metaKeys;
  }

  /** The key of `entity`'s values and segment blocks, by data key id. */
  private recordKeys(entity: string): KeyLookup {
    let l = this.recordKeyLookups.get(entity);
    if (!l) this.recordKeyLookups.set(entity, (l = (id) => this.keyring?.record(id, entity) ?? null));
    return l;
  }

  /**
   * Read the value of `entity` at a location: the record's plaintext bytes (a journal value is opened with
   * the entity's record key here). Damage found here is reported and thrown as a CorruptionError.
   */
  read(entity: string, loc: Loc): Uint8Array {
    const ck = frameKey(loc.file, loc.frameOffset);
    // A scan reads the records of one block after another: the last block is checked before the LRU.
    let cached = ck === this.lastBlockKey ? this.lastBlock : (this.cache.get(ck) as Cached | undefined);
    if (!cached) {
      const f = this.files.get(loc.file);
      if (!f) throw new CorruptionError(this.fileName(loc.file), loc.frameOffset, "file missing");
      try {
        if (f.kind === "segment") {
          const plain = readBlock(this.io, f, { offset: loc.frameOffset, frameLength: loc.frameLength }, loc.seq, this.recordKeys(entity), this.state.manifest.encrypted);
          cached = { plain, keyId: 0, block: true };
        } else {
          const frame = Buffer.allocUnsafe(loc.frameLength);
          if (this.io.read(f.fd, frame, loc.frameOffset) !== frame.length) throw new FrameError("bad record length", "short read");
          const { header, plaintext } = decodeFrame(frame, f.bound, this.metaKeys, this.state.manifest.encrypted, MAX_FRAME_PAYLOAD, true);
          if (header.seq !== loc.seq || header.type !== FrameType.commit) throw new FrameError("unexpected sequence");
          cached = { plain: plaintext, keyId: header.keyId, block: false };
        }
      } catch (e) {
        if (e instanceof FrameError) throw this.damaged(this.fileName(loc.file), loc.frameOffset, e.message);
        throw e;
      }
      this.cache.set(ck, cached, cached.plain.length + 64);
    }
    this.lastBlockKey = ck;
    this.lastBlock = cached;
    const plain = cached.plain;
    if (loc.start + loc.length > plain.length) {
      throw new CorruptionError(this.fileName(loc.file), loc.frameOffset, "bad record length (record outside its frame)");
    }
    // The record found must be the one asked for: a frame or block of a diverged copy of this store put in
    // the same place passes every check of the frame, but holds other records.
    if (
      cached.block
        ? !blockRecordIs(plain, loc.start, loc.key, loc.version, loc.length)
        : !commitRecordIs(plain, loc.start, entity, loc.key, loc.version, loc.terms, loc.length)
    ) {
      throw this.damaged(this.fileName(loc.file), loc.frameOffset, "bad payload (the record at this place is not the one the index names)");
    }
    const value = plain.subarray(loc.start, loc.start + loc.length);
    if (cached.keyId === 0) return value;
    // A journal value: sealed under the entity's record key of the frame's data key.
    const sealer = this.keyring?.record(cached.keyId, entity);
    if (!sealer) throw this.damaged(this.fileName(loc.file), loc.frameOffset, `missing key (key id ${cached.keyId})`);
    try {
      return sealer.open(value, scratchRecordAd(this.state.manifest.storeId, loc.version, loc.key));
    } catch {
      throw this.damaged(this.fileName(loc.file), loc.frameOffset, "authentication failed (record value)");
    }
  }

  /** File name and frame offset of a record's location, for error reports. */
  where(loc: Loc): { file: string; offset: number } {
    return { file: this.fileName(loc.file), offset: loc.frameOffset };
  }

  private damaged(file: string, offset: number, reason: string): CorruptionError {
    const err = new CorruptionError(file, offset, reason);
    this.state.onProblem?.(err);
    return err;
  }

  private fileName(n: number): string {
    const f = this.files.get(n);
    return path.basename(f?.kind === "segment" ? this.state.paths.segment(n) : this.state.paths.journal(n));
  }

  forgetLastBlock(): void {
    this.lastBlockKey = -1;
    this.lastBlock = undefined;
  }
}

/**
 * Give a paged segment index (format version 4) its page loader: a page is read, checked (crc, tag, grammar,
 * its directory entry) and decrypted when a lookup or a walk first reaches it, and kept in the block cache
 * (default space, by frame key, like a block: within the cache budget). A damaged page is handled by
 * {@link pageLost}, and the lookup that met it throws the error. `refuse` (an open under `onCorruption:
 * "refuse"` while it loads, open.ts): a damaged page is a `CorruptionError` instead, neither reported nor
 * marked lost, which fails the open.
 */
export function attachPages(state: StoreState, index: SegmentIndex, refuse = false): void {
  if (!index.paged) return;
  index.attach((p) => {
    const e = index.pages[p]!;
    const ck = frameKey(index.file, e.offset);
    const hit = state.cache.get(ck);
    if (hit instanceof IndexPage) return hit;
    const f = state.files.get(index.file);
    if (!f) throw new CorruptionError(path.basename(state.paths.segment(index.file)), e.offset, "file missing");
    let page: IndexPage;
    try {
      page = readIndexPage(state.io, f, index, p, state.metaKeys, state.manifest.encrypted);
    } catch (err) {
      if (err instanceof FrameError) throw refuse ? new CorruptionError(path.basename(state.paths.segment(index.file)), e.offset, err.message) : pageLost(state, index, p, err.message);
      throw err;
    }
    state.cache.set(ck, page, page.buf.byteLength + 64);
    return page;
  });
}

/**
 * Page `p` of a paged index failed a check: its records stop being live (their keys are in the page, so they
 * cannot be named: `records` is empty and `offset`/`bytes` give the page's frame), the damage is reported as a
 * damaged block's is (recovery report, a copy of the file in quarantine/, onProblem), and the next compaction
 * retires the file. Returns the error to throw (already reported).
 */
export function pageLost(state: StoreState, index: SegmentIndex, p: number, reason: string): LostPageError {
  const e = index.pages[p]!;
  const name = path.basename(state.paths.segment(index.file));
  const err = new LostPageError(name, e.offset, `${reason}; the ${e.count} record(s) of this index page are lost (their keys are in the damaged page)`);
  if (index.lost.has(p)) return err;
  index.lost.add(p);
  index.forgetPage();
  state.cache.delete(frameKey(index.file, e.offset));
  const entity = index.blocks[index.blockOf(e.first)]!.entity;
  if (state.segment === index) state.entities.get(entity)?.markLost(e.first, e.first + e.count);
  const d: DamageReport = { file: name, offset: e.offset, bytes: e.frameLength, reason, records: [], quarantinedAs: state.keepCopy(name) };
  state.recovery.damaged.push(d);
  state.onProblem?.(err);
  return err;
}
