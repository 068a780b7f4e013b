/**
 * The storage engine: bytes in, bytes out. It knows entities by name, keys as
 * strings and values as opaque bytes; the typed layer (store.ts) does
 * validation and protobuf encoding on top.
 *
 * Layout and crash-safety argument: docs/FORMAT.md.
 */
import path from "node:path";
import { ByteWriter, isAllZero, isWellFormed } from "../format/bytes.js";
import { LruCache } from "./cache.js";
import {
  CorruptionError,
  type CellarError,
  isCellarError,
  IoError,
  KeyError,
  LimitError,
  StoreClosedError,
  UsageError,
} from "../errors.js";
import { BACKUPS_DIR, KEYRING_FILE, MANIFEST_COPY_FILE, MANIFEST_FILE, parseName, segmentName, StorePaths } from "../format/filenames.js";
import { COMPRESS_MIN_BYTES, END_RECORD_SIZE, FILE_HEADER_SIZE, FileKind, FORMAT_VERSION, MAX_ENTITY_NAME_BYTES, MAX_FRAME_PAYLOAD, MAX_KEY_BYTES, MAX_TERMS_PER_RECORD, MAX_VALUE_BYTES, STORE_ID_SIZE, FrameType } from "../format/format.js";
import { decodeFileHeader, decodeFrame, encodeFrame, FrameError, type KeyLookup } from "../format/frame.js";
import { type Failpoint, type FileIO, writeNewFile } from "../platform/io.js";
import { JournalWriter } from "./journal-writer.js";
import { JournalWindow, scanJournalFile } from "./journal-reader.js";
import { StoreLock } from "../platform/lock.js";
import { type Manifest, peekManifest, readManifest, writeManifest, writeManifestBytes } from "./manifest.js";
import { Keyspace } from "./keyspace.js";
import { judgeLeftovers, type ManifestChoice, selectManifest } from "./manifest-choice.js";
import { type EngineOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import { Loc } from "../format/location.js";
import { type BlockRecord, blockRecordIs, commitRecordIs, encodeCommit, opSize, SEALED_OVERHEAD, type WriteOp } from "../format/records.js";
import { compareUtf8, type SegmentIndex } from "../format/segment-index.js";
import { randomBytes, type Sealer } from "../crypto/seal.js";
import { Keyring, type KeyScope, type MasterKeySource } from "../crypto/keyring.js";
import type { KeyProvider } from "../crypto/keys.js";
import { resealValue, scratchRecordAd, type SensitiveKeys } from "../crypto/value.js";
import { blockProblem, equalBytes, type OpenedSegment, openSegment, readBlock, SegmentProblem, writeSegment } from "./segment.js";

export type { WriteOp } from "../format/records.js";
export { Loc } from "../format/location.js";
export type { EngineOptions } from "./options.js";

export interface DamageReport {
  file: string;
  offset: number;
  bytes: number;
  reason: string;
  /** Records known to be lost (entity/key), when the damaged part's index survived. */
  records: { entity: string; key: string }[];
  /** Where a copy of the damaged file was kept, relative to the store directory (null if it could not be written). */
  quarantinedAs: string | null;
}

export interface RecoveryReport {
  /**
   * Unreadable bytes at the end of the last journal, cut off (zeroed). `reason` says what they can be: a
   * write cut short by a crash (never acknowledged), or damage to the last acknowledged write, when the file
   * cannot tell the two apart.
   */
  truncatedTail: { file: string; offset: number; bytes: number; reason: string; quarantinedAs: string | null } | null;
  damaged: DamageReport[];
  /** Leftovers of interrupted compactions or manifest writes that were removed. */
  removedFiles: string[];
  /** True when the store was created by this open. */
  created: boolean;
}


/** A record transformation applied by {@link Engine.rewrite}: plaintext value in, the new record out. */
export interface Rewrite {
  /**
   * New schema version of each entity whose records go through `transform`; its records already at that
   * version are copied as they are.
   */
  versions: ReadonlyMap<string, number>;
  transform(
    entity: string,
    key: string,
    version: number,
    value: Uint8Array,
  ): Promise<{ version: number; value: Uint8Array; terms: readonly string[] }>;
}

interface Pending {
  ops: readonly WriteOp[];
  size: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** A frame or block plaintext in the block cache. */
interface Cached {
  plain: Uint8Array;
  /** Journal frames of an encrypted store: the data key its values are sealed under. 0: values in the clear. */
  keyId: number;
  /** A segment block (else a journal commit frame): how the record before a value is laid out. */
  block: boolean;
}

interface ReadFile {
  fd: number;
  bound: Uint8Array;
  kind: "journal" | "segment";
  /** Bytes of the file that hold frames (a journal's tail, a segment's size). */
  size: number;
  /** Record bytes (plaintext) ever written to the file, and those still live: their ratio estimates dead space. */
  plainTotal: number;
  plainLive: number;
}

const MAX_WRITE_BYTES = 32 * 1024 * 1024;
const FRAME_SPLIT_BYTES = 8 * 1024 * 1024;
/** Plaintext bytes a delete (tombstone) is counted as, for dead-space estimates. */
const TOMBSTONE_BYTES = 16;
/**
 * Longest run of commit flushes on microtasks without an event-loop turn, in ms. An app that awaits writes
 * back to back never leaves the microtask queue (each flush resolves the promise the next write follows);
 * once a run is this long, the next flush waits for a turn (setImmediate), in which timers, I/O callbacks
 * and compaction's steps run. See `Engine.scheduleFlush`.
 */
const MAX_MICROTASK_RUN_MS = 2;

export class Engine {
  private readonly entities = new Map<string, Keyspace>();
  /** The store's segment (at most one: compaction writes all live records into one), searched in place. */
  private segment: SegmentIndex | null = null;
  private readonly files = new Map<number, ReadFile>();
  /** Decoded frame and block plaintexts by `file * 2^32 + offset`. */
  /**
   * Decoded frames and blocks (default key space, by frame key) and the store's decoded records (a key
   * space per entity), under one budget: memory goes to whichever the workload uses.
   */
  readonly cache: LruCache<number | string, unknown>;
  /** The block `read` used last (a frame key, -1 for none), and its plaintext: reset wherever the cache is. */
  private lastBlockKey = -1;
  private lastBlock: Cached | undefined;
  /** Per entity, the lookup of its record key by data key id. */
  private readonly recordKeyLookups = new Map<string, KeyLookup>();
  private pending: Pending[] = [];
  private flushScheduled = false;
  private poisoned: CellarError | null = null;
  private closed = false;
  private syncTimer: NodeJS.Timeout | null = null;
  private dirty = false;
  /** Relaxed mode: when the flush that wrote the oldest unsynced commit started (`performance.now()`), while `dirty`. */
  private dirtySince = 0;
  /** When the current run of flushes without an event-loop turn began (`performance.now()`); -1 once a turn came. */
  private runStart = -1;
  private readonly flushNow = (): void => this.flush();
  private readonly turnCame = (): void => {
    this.runStart = -1;
  };
  private compacting: Promise<void> | null = null;
  /** Resolves when the background check of the segment's blocks (verifyOnOpen: "background") is done. */
  verified: Promise<void> = Promise.resolve();
  /** Listeners for committed writes (the store turns these into change events). */
  /**
   * Called after each committed frame with the ops that changed something: a delete of a key that was not
   * there is written (a tombstone) but not passed on.
   */
  onCommit: ((ops: readonly WriteOp[]) => void) | null = null;
  /** Listener for problems found after open (damage on read, failed background compaction). */
  onProblem: ((e: CellarError) => void) | null = null;

  private constructor(
    readonly dir: string,
    readonly io: FileIO,
    private readonly paths: StorePaths,
    private readonly lock: StoreLock,
    private manifest: Manifest,
    /** The store's keys; null for a plaintext store. */
    readonly keyring: Keyring | null,
    private journal: JournalWriter,
    private lastSeq: number,
    private readonly opts: ResolvedOptions,
    private readonly fp: (name: Failpoint) => void,
    readonly recovery: RecoveryReport,
  ) {
    this.cache = new LruCache(opts.blockCacheBytes + opts.recordCacheBytes);
  }

  get storeId(): Uint8Array {
    return this.manifest.storeId;
  }

  /** Schema versions recorded for each entity. */
  get storedVersions(): ReadonlyMap<string, number> {
    return this.manifest.entities;
  }

  // ---------------------------------------------------------------- open

  static async open(options: EngineOptions): Promise<Engine> {
    const { io, fp, provider, opts } = resolveOptions(options);
    const paths = new StorePaths(options.dir);
    if (opts.readOnly && !io.exists(paths.manifest) && !io.exists(paths.manifestCopy)) {
      throw new UsageError(`no store in \`${options.dir}\`: a read-only (\`redactSensitive\`) open never creates one`);
    }
    io.mkdirp(options.dir);
    const lock = StoreLock.acquire(io, options.dir);
    try {
      return await Engine.openLocked(io, paths, lock, provider, options.keyScope ?? "all", opts, fp);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /**
   * Open a copy of this store that Cellar made (a pre-migration backup), under this store's master key, for
   * re-keying it: no automatic compaction, no background check, damage refused.
   */
  private async openCopy(dir: string): Promise<Engine> {
    const opts: Engine["opts"] = {
      ...this.opts,
      onCorruption: "refuse",
      verifyOnOpen: false,
      readOnly: false,
      blockCacheBytes: 1024 * 1024,
      recordCacheBytes: 0,
      durability: "full",
      compaction: { ...this.opts.compaction, auto: false },
    };
    const paths = new StorePaths(dir);
    const lock = StoreLock.acquire(this.io, dir);
    try {
      return await Engine.openLocked(this.io, paths, lock, this.keyring!.unwrappedMasterKey(), "all", opts, () => {});
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** The directories of this store's copies that hold a keyring (`backups/<name>/KEYRING`). */
  private keyedCopies(): string[] {
    const root = this.paths.file(BACKUPS_DIR);
    if (!this.io.exists(root)) return [];
    return this.io
      .readdir(root)
      .sort()
      .map((n) => path.join(root, n))
      .filter((d) => this.io.exists(path.join(d, KEYRING_FILE)));
  }

  /**
   * Re-encrypt every keyed copy under a fresh data key of its own and destroy its older ones, so that no
   * data key this store destroyed survives in a copy. A copy that cannot be re-keyed is reported (`onProblem`)
   * and named in the error; the others are still done.
   */
  private async rekeyCopies(): Promise<void> {
    const failed: string[] = [];
    for (const dir of this.keyedCopies()) {
      let copy: Engine | null = null;
      try {
        copy = await this.openCopy(dir);
        copy.rotateKey();
        await copy.reencrypt();
      } catch (e) {
        if (!isCellarError(e)) throw e;
        failed.push(path.relative(this.dir, dir));
        this.onProblem?.(e);
      } finally {
        await copy?.close();
      }
    }
    if (failed.length) {
      throw new KeyError(`the old data keys were destroyed in the store but not in ${failed.map((f) => `\`${f}\``).join(", ")} (see the \`error\` events); run \`reencrypt()\` again, or delete those copies`);
    }
  }

  private static async openLocked(
    io: FileIO,
    paths: StorePaths,
    lock: StoreLock,
    provider: MasterKeySource | null,
    scope: KeyScope,
    opts: Engine["opts"],
    fp: (name: Failpoint) => void,
  ): Promise<Engine> {
    let keyring: Keyring | null = null;
    try {
      return await Engine.openWithKeys(io, paths, lock, provider, scope, opts, fp, (k) => (keyring = k));
    } catch (e) {
      (keyring as Keyring | null)?.destroy();
      throw e;
    }
  }

  private static async openWithKeys(
    io: FileIO,
    paths: StorePaths,
    lock: StoreLock,
    provider: MasterKeySource | null,
    scope: KeyScope,
    opts: Engine["opts"],
    fp: (name: Failpoint) => void,
    gotKeyring: (k: Keyring) => void,
  ): Promise<Engine> {
    let keyring: Keyring | null = null;
    const recovery: RecoveryReport = { truncatedTail: null, damaged: [], removedFiles: [], created: false };
    const names = io.readdir(paths.dir);
    let manifest: Manifest;
    /** Which manifest file was chosen, and what is wrong with the other (null for a new store). */
    let chosen: ManifestChoice | null = null;
    if (!io.exists(paths.manifest) && !io.exists(paths.manifestCopy)) {
      // The manifest is written before any journal exists, so journals or segments without one mean the
      // manifest was lost: refuse rather than start over on top of acknowledged data.
      const leftovers = names.filter((n) => {
        const k = parseName(n).kind;
        return k === "segment" || k === "journal";
      });
      if (leftovers.length) {
        throw new CorruptionError("MANIFEST", 0, `missing, but the directory holds ${leftovers.join(", ")}`);
      }
      // New store (or a creation that crashed before its manifest was renamed into place: its keyring,
      // if written, guards nothing yet and is replaced).
      for (const n of names) {
        const k = parseName(n).kind;
        if (k === "temp" || k === "keyring") {
          io.unlink(paths.file(n));
          recovery.removedFiles.push(n);
        }
      }
      const storeId = randomBytes(STORE_ID_SIZE);
      if (provider?.kind === "unwrapped") throw new CorruptionError("MANIFEST", 0, "missing in a copy of the store");
      if (provider) {
        keyring = await Keyring.create(io, paths, storeId, provider, scope, fp);
        gotKeyring(keyring);
        fp("create.afterKeyring");
      }
      manifest = {
        storeId,
        generation: 1,
        journalStart: 1,
        nextFile: 1,
        seqFloor: 0,
        segments: [],
        encrypted: keyring !== null,
        keyFloor: keyring ? keyring.activeKeyId : 0,
        entities: new Map(),
      };
      writeManifest(io, paths, manifest, keyring?.meta(keyring.activeKeyId) ?? null, fp);
      recovery.created = true;
    } else {
      const sel = await selectManifest(io, paths, provider, scope, fp, (k) => {
        keyring = k;
        gotKeyring(k);
      });
      manifest = sel.manifest;
      chosen = sel;
    }

    const requireSealed = manifest.encrypted;
    const live = new Set(manifest.segments);
    const journals: number[] = [];
    // Files the manifest does not name are judged below (docs/FORMAT.md, "Files the manifest does not name"):
    // `superseded` were numbered before it was written, `unnamed` segments after.
    const superseded: string[] = [];
    const unnamed: number[] = [];
    let maxFile = manifest.nextFile - 1;
    // Leftovers are removed by a writable open only (a read-only one leaves them, unread).
    const sweep = !opts.readOnly;
    for (const n of names) {
      const p = parseName(n);
      if (!sweep) {
        if (p.kind === "journal" && p.number >= manifest.journalStart) journals.push(p.number);
      } else if (p.kind === "temp") {
        io.unlink(paths.file(n));
        recovery.removedFiles.push(n);
      } else if (p.kind === "segment" && !live.has(p.number)) {
        if (p.number < manifest.nextFile) superseded.push(n);
        else unnamed.push(p.number);
      } else if (p.kind === "journal") {
        if (p.number < manifest.journalStart) superseded.push(n);
        else journals.push(p.number);
      }
      if ((p.kind === "segment" || p.kind === "journal") && p.number > maxFile) maxFile = p.number;
    }
    journals.sort((a, b) => a - b);
    const ringNow = keyring as Keyring | null;
    const leftovers = judgeLeftovers(io, paths, manifest, journals, superseded, unnamed, (id) => ringNow?.meta(id) ?? null, {
      requireSealed,
      keysToRetire: ringNow !== null && ringNow.keyIds.some((id) => id < manifest.keyFloor && id !== ringNow.activeKeyId),
    });
    if (opts.onCorruption === "refuse") {
      // Refused before anything is changed.
      const first = chosen?.issue ?? leftovers.aside[0];
      if (first) throw new CorruptionError(first.file, first.offset, first.refusal);
    }
    manifest.nextFile = maxFile + 1;

    const files = new Map<number, ReadFile>();
    // The engine exists from here on so that replay indexes records exactly as live writes do;
    // its journal is set once replay knows which one to continue.
    const engine = new Engine(paths.dir, io, paths, lock, manifest, keyring, null as unknown as JournalWriter, 0, opts, fp, recovery);
    const keys = engine.metaKeys;
    const copies = new Map<string, string | null>();
    /** Keep a copy of a damaged file in quarantine/ (once per file at open). */
    const quarantine = (name: string): string | null => {
      if (!copies.has(name)) copies.set(name, engine.keepCopy(name));
      return copies.get(name)!;
    };
    /** Report damage: refused at once in "refuse" mode (nothing written), else quarantined and listed. */
    const damage = (d: Omit<DamageReport, "quarantinedAs">, keepCopy = true) => {
      if (opts.onCorruption === "refuse") throw new CorruptionError(d.file, d.offset, d.reason);
      recovery.damaged.push({ ...d, quarantinedAs: keepCopy ? quarantine(d.file) : null });
    };

    // The manifest and the files it does not name, as judged above; nothing was changed before this point.
    if (chosen?.issue) {
      const i = chosen.issue;
      recovery.damaged.push({ file: i.file, offset: i.offset, bytes: i.bytes, reason: i.reason, records: [], quarantinedAs: i.bytes ? quarantine(i.file) : null });
    }
    // A read-only open reads the good copy and leaves the other as it is (reported above).
    if (chosen?.rewrite && !opts.readOnly) writeManifestBytes(io, paths, chosen.bytes, fp);
    for (const a of leftovers.aside) {
      recovery.damaged.push({ file: a.file, offset: 0, bytes: a.bytes, reason: a.reason, records: [], quarantinedAs: engine.moveAside(a.file) });
    }
    for (const n of leftovers.remove) {
      io.unlink(paths.file(n));
      recovery.removedFiles.push(n);
    }
    if (recovery.removedFiles.length || leftovers.aside.length) io.syncDir(paths.dir);
    // A destruction of old data keys cut short by a crash: finish it (no live file uses them), once the
    // manifest is known to account for the directory (restored older files might still need them).
    if (leftovers.retireKeys && !opts.readOnly) (keyring as Keyring | null)?.retireBelow(manifest.keyFloor);
    /** Damage reported so far is about whole files already put right (no compaction needed for it). */
    const misfits = recovery.damaged.length;

    try {
      // 1. The segment: its index gives every record's location without reading values.
      if (manifest.segments.length > 1) {
        throw new CorruptionError("MANIFEST", FILE_HEADER_SIZE, `names ${manifest.segments.length} segments; format version ${FORMAT_VERSION} has at most one`);
      }
      for (const n of manifest.segments) {
        const name = path.basename(paths.segment(n));
        let seg: OpenedSegment;
        try {
          seg = openSegment(io, paths.segment(n), n, manifest.storeId, keys, requireSealed, opts.verifyOnOpen === true);
        } catch (e) {
          if (e instanceof SegmentProblem) {
            damage({ file: name, offset: e.offset, bytes: 0, reason: e.reason, records: [] });
            continue;
          }
          if (isCellarError(e, "E_IO") && (e as IoError).errno === "ENOENT") {
            damage({ file: name, offset: 0, bytes: 0, reason: "file missing", records: [] }, false);
            continue;
          }
          throw e;
        }
        files.set(n, { fd: seg.fd, bound: seg.bound, kind: "segment", size: seg.size, plainTotal: seg.index.valueBytes, plainLive: 0 });
        const dead = new Map<string, Set<number>>();
        seg.index.blocks.forEach((b, i) => {
          const bad = seg.badBlocks.get(i);
          if (!bad) return;
          let set = dead.get(b.entity);
          if (!set) dead.set(b.entity, (set = new Set()));
          const records: { entity: string; key: string }[] = [];
          for (let slot = b.first; slot < b.first + b.count; slot++) {
            set.add(slot);
            records.push({ entity: b.entity, key: seg.index.key(slot) });
          }
          damage({ file: name, offset: b.offset, bytes: b.frameLength, reason: bad, records });
        });
        engine.segment = seg.index;
        for (const entity of seg.index.entities()) engine.entities.set(entity, new Keyspace(entity, seg.index, dead.get(entity)));
      }
      for (const [k, v] of files) engine.files.set(k, v);

      // 2. Journals, oldest first, replayed over the segments.
      let seq = manifest.seqFloor + 1;
      let gapExcused = false;
      let writer: JournalWriter | null = null;
      for (let ji = 0; ji < journals.length; ji++) {
        const n = journals[ji]!;
        const isLast = ji === journals.length - 1;
        const name = path.basename(paths.journal(n));
        const fd = io.open(paths.journal(n), opts.readOnly ? "r" : "r+");
        const size = io.size(fd);
        // Read through a bounded window: a journal may be far larger than memory (a sparse file, say).
        const src = { size, read: (into: Uint8Array, at: number) => io.read(fd, into, at) };
        const window = new JournalWindow(src, FILE_HEADER_SIZE);
        let header;
        try {
          header = decodeFileHeader(window.view(0, FILE_HEADER_SIZE), FileKind.journal);
          if (header.fileNumber !== n) throw new FrameError("bad magic", "header names another file number");
          if (!equalBytes(header.storeId, manifest.storeId)) throw new FrameError("bad magic", "journal belongs to another store");
        } catch (e) {
          if (!(e instanceof FrameError)) throw e;
          if (isLast && window.lastNonZero(0) === 0) {
            // A journal whose creation was cut short holds no frames: recreate it below.
            io.close(fd);
            if (!opts.readOnly) {
              io.unlink(paths.journal(n));
              recovery.removedFiles.push(name);
            }
            continue;
          }
          io.close(fd);
          damage({ file: name, offset: 0, bytes: size, reason: e.message, records: [] });
          gapExcused = true;
          continue;
        }
        const file: ReadFile = { fd, bound: header.bound, kind: "journal", size: 0, plainTotal: 0, plainLive: 0 };
        engine.files.set(n, file);
        const scan = scanJournalFile(src, header.bound, seq, keys, requireSealed, {
          allowGap: gapExcused,
          requireEnd: header.version >= 3,
          onFrame: (f) => {
            for (const en of f.entries) {
              if (en.op === "put") {
                engine.applyPut(file, en.entity, new Loc(n, f.offset, f.length, f.seq, en.key, en.start, en.length, en.version, en.terms));
              } else {
                engine.applyDelete(file, n, en.entity, en.key);
              }
            }
          },
        });
        file.size = scan.end;
        gapExcused = false;
        const resumed = isLast ? JournalWriter.resume(io, fd, n, header.bound, scan.end, scan.nextSeq - 1, header.version >= 3) : null;
        for (const d of scan.damage) {
          if (d.kind === "torn" && resumed) {
            const quarantinedAs = quarantine(name);
            // Cut the torn frame: zero it (and put the end record back) so later frames are never read after
            // stale bytes (a read-only open writes nothing, and leaves it).
            if (!opts.readOnly) resumed.cut(d.offset, d.length);
            recovery.truncatedTail = { file: name, offset: d.offset, bytes: d.length, reason: d.reason, quarantinedAs };
          } else {
            // The keys of an unreadable frame are unknown: records it overwrote read back as their earlier values.
            damage({ file: name, offset: d.offset, bytes: d.length, reason: d.reason, records: [] });
            gapExcused = true;
            // A journal cut short: put its end record back so that the next open does not report it again.
            if (d.kind === "cut" && resumed && !opts.readOnly) resumed.writeEnd();
          }
        }
        seq = scan.nextSeq;
        if (resumed) writer = resumed;
      }
      if (!writer && !opts.readOnly) {
        const n = manifest.nextFile++;
        writer = JournalWriter.create(io, paths.journal(n), n, manifest.storeId, seq - 1);
        fp("journal.afterCreate");
        io.syncDir(paths.dir);
        engine.files.set(n, { fd: writer.fd, bound: writer.bound, kind: "journal", size: writer.tail, plainTotal: 0, plainLive: 0 });
      }
      // A read-only open may have no journal to continue: it never writes.
      engine.journal = writer as JournalWriter;
      engine.lastSeq = seq - 1;
      engine.recount();
      if (opts.durability === "relaxed") {
        engine.syncTimer = setInterval(() => engine.syncRelaxed(), opts.relaxedSyncMs);
        engine.syncTimer.unref();
      }
      // Damaged files are retired by a compaction right away: their good records move to a fresh segment,
      // the damaged bytes stay in quarantine/.
      if (recovery.damaged.length > misfits) engine.maybeCompact(true);
      if (opts.verifyOnOpen === "background" && engine.segment) engine.verified = engine.scrub(engine.segment);
      return engine;
    } catch (e) {
      for (const f of new Set([...files.values(), ...engine.files.values()])) {
        try {
          io.close(f.fd);
        } catch {
          // closing after a failed open
        }
      }
      throw e;
    }
  }

  /**
   * Check every block of `seg` (length, crc, type, position), one at a time between other work. A bad block's
   * records stop being live; the damage is reported like damage found at open, and a compaction retires the file.
   */
  private async scrub(seg: SegmentIndex): Promise<void> {
    const name = path.basename(this.paths.segment(seg.file));
    let found = 0;
    for (let i = 0; i < seg.blocks.length; i++) {
      await new Promise<void>((r) => setImmediate(r));
      if (this.closed || this.segment !== seg) return;
      const f = this.files.get(seg.file);
      if (!f) return;
      const b = seg.blocks[i]!;
      const frame = new Uint8Array(b.frameLength);
      let problem: string | null = null;
      if (this.io.read(f.fd, frame, b.offset) !== frame.length) problem = "bad record length (short read)";
      else problem = blockProblem(frame, i);
      if (!problem) continue;
      found++;
      const records: { entity: string; key: string }[] = [];
      for (let slot = b.first; slot < b.first + b.count; slot++) records.push({ entity: b.entity, key: seg.key(slot) });
      this.entities.get(b.entity)?.markDead(b.first, b.first + b.count);
      this.cache.delete(frameKey(seg.file, b.offset));
      this.forgetLastBlock();
      const d: DamageReport = { file: name, offset: b.offset, bytes: b.frameLength, reason: problem, records, quarantinedAs: this.keepCopy(name) };
      this.recovery.damaged.push(d);
      this.onProblem?.(new CorruptionError(name, b.offset, `${problem}; ${records.length} record(s) lost, listed in the recovery report`));
    }
    if (found) {
      this.recount();
      this.maybeCompact(true);
    }
  }

  /** Copy a damaged file into quarantine/; null if it cannot be written (disk full): the report still names the damage. */
  private keepCopy(name: string): string | null {
    if (this.opts.readOnly) return null;
    const io = this.io;
    try {
      io.mkdirp(this.paths.quarantineDir);
      const target = `${name}.${Date.now()}`;
      copyFile(io, this.paths.file(name), this.paths.quarantine(target));
      io.syncDir(this.paths.quarantineDir);
      return path.join("quarantine", target);
    } catch (e) {
      if (!isCellarError(e)) throw e;
      return null;
    }
  }

  /** Move a file the manifest does not name into quarantine/ (never deleted); null if it cannot be moved (it stays put). */
  private moveAside(name: string): string | null {
    const io = this.io;
    try {
      io.mkdirp(this.paths.quarantineDir);
      const target = `${name}.${Date.now()}`;
      io.rename(this.paths.file(name), this.paths.quarantine(target));
      io.syncDir(this.paths.quarantineDir);
      return path.join("quarantine", target);
    } catch (e) {
      if (!isCellarError(e)) throw e;
      return null;
    }
  }

  /** Recompute each file's live record bytes from the keyspaces. */
  private recount(): void {
    for (const f of this.files.values()) f.plainLive = 0;
    const seg = this.segment ? this.files.get(this.segment.file) : undefined;
    if (seg) seg.plainLive = seg.plainTotal;
    for (const ks of this.entities.values()) {
      for (const len of ks.shadowedSegmentBytes()) if (seg) seg.plainLive -= len;
      for (const o of ks.overlay.values()) {
        if (o instanceof Loc) {
          const f = this.files.get(o.file);
          if (f) f.plainLive += o.length;
        }
      }
    }
  }

  /** The keyspace of an entity, created on first use. */
  private ks(entity: string): Keyspace {
    let k = this.entities.get(entity);
    if (!k) this.entities.set(entity, (k = new Keyspace(entity, this.segment)));
    return k;
  }

  /** Index a put written to `file` (replay and live writes alike), keeping the dead-space accounting. */
  private applyPut(file: ReadFile, entity: string, loc: Loc): void {
    const old = this.ks(entity).put(loc);
    if (old) {
      const of = this.files.get(old.file);
      if (of) of.plainLive -= old.length;
    }
    file.plainTotal += loc.length;
    file.plainLive += loc.length;
  }

  /** Index a delete; returns whether it removed a live record. */
  private applyDelete(file: ReadFile, fileNo: number, entity: string, key: string): boolean {
    const old = this.entities.get(entity)?.delete(key, fileNo);
    if (old) {
      const of = this.files.get(old.file);
      if (of) of.plainLive -= old.length;
    }
    file.plainTotal += TOMBSTONE_BYTES;
    return old !== undefined;
  }

  // ---------------------------------------------------------------- reads

  private checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  has(entity: string, key: string): boolean {
    this.checkOpen();
    return this.entities.get(entity)?.get(key) !== undefined;
  }

  count(entity: string): number {
    this.checkOpen();
    return this.entities.get(entity)?.count ?? 0;
  }

  /** Keys of an entity (segment keys in key order, then newer ones; the store sorts). */
  keys(entity: string): IterableIterator<string> {
    this.checkOpen();
    return (this.entities.get(entity)?.keys() ?? []).values();
  }

  /**
   * Live records of an entity in UTF-8 key order, with their locations (no per-key search); with `after`,
   * those whose key sorts after it. Consume it within one synchronous step (see Keyspace.scan).
   */
  scan(entity: string, after?: string): Iterable<[string, Loc]> {
    this.checkOpen();
    return this.entities.get(entity)?.scan(after) ?? [];
  }

  /** Keys whose record carries index term `term`. */
  lookup(entity: string, term: string): ReadonlySet<string> {
    this.checkOpen();
    return this.entities.get(entity)?.lookup(term) ?? EMPTY;
  }

  /** The location of a live record, for reading its value (`Loc.terms` is not filled in for segment records). */
  locate(entity: string, key: string): Loc | undefined {
    this.checkOpen();
    return this.entities.get(entity)?.getForRead(key);
  }


  get(entity: string, key: string): { version: number; value: Uint8Array } | undefined {
    this.checkOpen();
    const loc = this.entities.get(entity)?.get(key);
    if (!loc) return undefined;
    return { version: loc.version, value: this.read(entity, loc) };
  }

  /** The key of manifest, commit frames and segment indexes, by data key id. */
  private readonly metaKeys: KeyLookup = (id) => this.keyring?.meta(id) ?? null;

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
          const plain = readBlock(this.io, f, { offset: loc.frameOffset, frameLength: loc.frameLength }, loc.seq, this.recordKeys(entity), this.manifest.encrypted);
          cached = { plain, keyId: 0, block: true };
        } else {
          const frame = Buffer.allocUnsafe(loc.frameLength);
          if (this.io.read(f.fd, frame, loc.frameOffset) !== frame.length) throw new FrameError("bad record length", "short read");
          const { header, plaintext } = decodeFrame(frame, f.bound, this.metaKeys, this.manifest.encrypted, MAX_FRAME_PAYLOAD, true);
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
      return sealer.open(value, scratchRecordAd(this.manifest.storeId, loc.version, loc.key));
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
    this.onProblem?.(err);
    return err;
  }

  private fileName(n: number): string {
    const f = this.files.get(n);
    return path.basename(f?.kind === "segment" ? this.paths.segment(n) : this.paths.journal(n));
  }

  // ---------------------------------------------------------------- writes

  /**
   * Commit `ops` atomically. Resolves once durable (`durability: "full"`) or
   * written (`"relaxed"`). Ops issued while a flush runs are grouped into the next one.
   */
  write(ops: readonly WriteOp[]): Promise<void> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    if (this.opts.readOnly) return Promise.reject(readOnlyError());
    if (this.poisoned) return Promise.reject(this.poisoned);
    if (this.keyring && this.keyring.scope !== "all") {
      return Promise.reject(new UsageError("this store was opened without the keys of sensitive fields (`redactSensitive`): it is read-only"));
    }
    let size = 0;
    try {
      for (const o of ops) {
        checkOp(o);
        size += opSize(o);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    if (size > MAX_WRITE_BYTES) {
      return Promise.reject(new LimitError(`a single write or batch may hold at most ${MAX_WRITE_BYTES} bytes, got ~${size}`));
    }
    if (ops.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.pending.push({ ops, size, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        this.scheduleFlush();
      }
    });
  }

  /**
   * Flush on a microtask (no event-loop turn per commit), unless flushes have run on microtasks alone for
   * `MAX_MICROTASK_RUN_MS`: then on the next turn (setImmediate), so that a loop of awaited writes leaves
   * timers, I/O callbacks and compaction's steps a turn at least that often. A run starts with a marker
   * queued for the next turn; it ends when the marker runs, which it does before the deferred flush.
   */
  private scheduleFlush(): void {
    if (this.runStart < 0) {
      this.runStart = performance.now();
      setImmediate(this.turnCame);
      queueMicrotask(this.flushNow);
    } else if (performance.now() - this.runStart >= MAX_MICROTASK_RUN_MS) {
      setImmediate(this.flushNow);
    } else {
      queueMicrotask(this.flushNow);
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const group = this.pending;
    this.pending = [];
    if (group.length === 0) return;
    if (this.closed || this.poisoned) {
      for (const p of group) p.reject(this.poisoned ?? new StoreClosedError());
      return;
    }
    // Split into frames of ≤ FRAME_SPLIT_BYTES; each caller's ops stay in one frame (atomicity).
    const frames: { ops: WriteOp[]; members: Pending[]; size: number }[] = [];
    let cur: { ops: WriteOp[]; members: Pending[]; size: number } | null = null;
    for (const p of group) {
      if (!cur || (cur.size + p.size > FRAME_SPLIT_BYTES && cur.ops.length)) {
        cur = { ops: [], members: [], size: 0 };
        frames.push(cur);
      }
      for (const o of p.ops) cur.ops.push(o);
      cur.members.push(p);
      cur.size += p.size;
    }
    const w = this.journal;
    const encoded: { bytes: Uint8Array; plain: Uint8Array; starts: number[]; seq: number; ops: WriteOp[]; effective?: readonly WriteOp[] }[] = [];
    let total = 0;
    let seq = this.lastSeq;
    const ring = this.keyring;
    const keyId = ring ? ring.activeKeyId : 0;
    try {
      for (const f of frames) {
        // Each value is sealed under its entity's record key; the frame (keys, versions, terms) under the meta key.
        const { plain, starts } = encodeCommit(
          f.ops,
          new ByteWriter(f.size + SEALED_OVERHEAD * f.ops.length + 16),
          ring ? (o, out) => this.sealValue(ring, keyId, o, out) : undefined,
        );
        seq++;
        const bytes = encodeFrame(
          {
            type: FrameType.commit,
            seq,
            plaintext: plain,
            compress: this.opts.compressJournal && plain.length >= COMPRESS_MIN_BYTES,
            sealer: ring ? ring.meta(keyId) : null,
          },
          w.bound,
          END_RECORD_SIZE, // room for the journal's end record after the last frame, so append() copies nothing
        );
        encoded.push({ bytes, plain, starts, seq, ops: f.ops });
        total += bytes.length;
      }
      let all = encoded[0]!.bytes;
      if (encoded.length > 1) {
        all = new Uint8Array(total + END_RECORD_SIZE).subarray(0, total);
        let o = 0;
        for (const e of encoded) {
          all.set(e.bytes, o);
          o += e.bytes.length;
        }
      }
      // Relaxed mode: a flush that finds unsynced commits `relaxedSyncMs` old syncs before it acknowledges,
      // so under load the window holds whether or not the timer gets a turn; the timer syncs a store that
      // went quiet. Sparse writes still resolve after write(2) alone (the timer synced the last one).
      const relaxed = this.opts.durability !== "full";
      const started = relaxed ? performance.now() : 0;
      const relaxedSync = relaxed && this.dirty && started - this.dirtySince >= this.opts.relaxedSyncMs;
      this.fp("commit.beforeWrite");
      const at = w.append(all, seq, !relaxed || relaxedSync);
      if (relaxedSync) this.dirty = false;
      else if (relaxed && !this.dirty) {
        this.dirty = true;
        this.dirtySince = started;
      }
      this.fp("commit.afterSync");
      this.lastSeq = seq;
      let off = at;
      for (const e of encoded) {
        e.effective = this.applyFrame(w.number, off, e.bytes.length, e.seq, e.plain, keyId, e.ops, e.starts, ring ? SEALED_OVERHEAD : 0);
        off += e.bytes.length;
      }
      const f = this.files.get(w.number);
      if (f) f.size = w.tail;
    } catch (e) {
      const err = isCellarError(e) ? e : new IoError("write", path.basename(this.paths.journal(w.number)), String(e), { cause: e });
      // After a failed fdatasync the page cache state is unknown ("fsyncgate"): stop writing until reopened.
      if (err.code === "E_IO") this.poisoned = err;
      for (const p of group) p.reject(err);
      return;
    }
    for (const p of group) p.resolve();
    if (this.onCommit) for (const e of encoded) if (e.effective!.length) this.onCommit(e.effective!);
    this.maybeCompact(false);
  }

  private forgetLastBlock(): void {
    this.lastBlockKey = -1;
    this.lastBlock = undefined;
  }

  /** Index what a commit frame just wrote: the ops it holds and where each value sits in its plaintext. */
  private applyFrame(
    file: number,
    offset: number,
    length: number,
    seq: number,
    plain: Uint8Array,
    keyId: number,
    ops: readonly WriteOp[],
    starts: readonly number[],
    /** Bytes a stored value has beyond `o.value` (sealing in an encrypted store). */
    overhead: number,
  ): readonly WriteOp[] {
    this.cache.set(frameKey(file, offset), { plain, keyId }, plain.length + 64);
    if (this.lastBlockKey === frameKey(file, offset)) this.forgetLastBlock();
    const target = this.files.get(file)!;
    // The ops that changed something (`ops` itself unless a delete found nothing to remove).
    let effective: WriteOp[] | null = null;
    for (let i = 0; i < ops.length; i++) {
      const o = ops[i]!;
      if (o.op === "put") {
        this.applyPut(target, o.entity, new Loc(file, offset, length, seq, o.key, starts[i]!, o.value.length + overhead, o.version, o.terms));
        effective?.push(o);
      } else if (this.applyDelete(target, file, o.entity, o.key)) {
        effective?.push(o);
      } else {
        effective ??= ops.slice(0, i);
      }
    }
    return effective ?? ops;
  }

  private sealValue(ring: Keyring, keyId: number, o: WriteOp & { op: "put" }, out: Uint8Array): void {
    ring.record(keyId, o.entity)!.sealInto(out, o.value, scratchRecordAd(this.manifest.storeId, o.version, o.key));
  }

  private syncRelaxed(): void {
    if (!this.dirty || this.closed || this.poisoned) return;
    try {
      this.journal.sync();
      this.dirty = false;
    } catch (e) {
      if (isCellarError(e)) {
        this.poisoned = e;
        this.onProblem?.(e);
      } else throw e;
    }
  }

  /** Resolves when every write issued so far has been committed (or failed). */
  async drain(): Promise<void> {
    while (this.pending.length || this.flushScheduled) {
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  // ---------------------------------------------------------------- compaction

  /** Estimated bytes in files that no live record needs. */
  get deadBytes(): number {
    let dead = 0;
    for (const f of this.files.values()) {
      if (f.plainTotal > 0) dead += f.size * (1 - Math.max(0, f.plainLive) / f.plainTotal);
    }
    return Math.round(dead);
  }

  stats(): { fileBytes: number; deadBytes: number; journalBytes: number; records: number; blockCacheBytes: number } {
    let records = 0;
    for (const s of this.entities.values()) records += s.count;
    let fileBytes = 0;
    let journalBytes = 0;
    for (const f of this.files.values()) {
      fileBytes += f.size;
      if (f.kind === "journal") journalBytes += f.size - FILE_HEADER_SIZE;
    }
    return { fileBytes, deadBytes: this.deadBytes, journalBytes, records, blockCacheBytes: this.cache.defaultSpaceBytes };
  }

  private maybeCompact(force: boolean): void {
    if (this.compacting || this.closed || this.poisoned || this.opts.readOnly) return;
    const c = this.opts.compaction;
    if (!force) {
      if (!c.auto) return;
      const { deadBytes, fileBytes, journalBytes } = this.stats();
      const wantDead = deadBytes >= c.minDeadBytes && deadBytes * 2 >= fileBytes;
      const wantJournal = journalBytes >= c.maxJournalBytes;
      if (!wantDead && !wantJournal) return;
    }
    this.compact().catch((e: unknown) => {
      if (isCellarError(e)) this.onProblem?.(e);
    });
  }

  /**
   * Rewrite every live record into one new segment and retire the old files.
   * Reads and writes go on meanwhile; a crash at any step leaves the old state or the new one.
   */
  compact(): Promise<void> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    if (this.opts.readOnly) return Promise.reject(readOnlyError());
    if (this.compacting) return this.compacting;
    this.compacting = this.runCompaction().finally(() => {
      this.compacting = null;
    });
    return this.compacting;
  }

  /**
   * A compaction that passes every live record of the entities in `rewrite.versions` through
   * `rewrite.transform` (schema migration) and records those entities' new schema versions in the same
   * manifest write: the switch to migrated records is one atomic rename. If `transform` throws, the new
   * segment is removed and the store stays exactly as it was (its new, empty journal aside).
   */
  async rewrite(rewrite: Rewrite): Promise<void> {
    this.checkOpen();
    if (this.opts.readOnly) throw readOnlyError();
    while (this.compacting) await this.compacting.catch(() => {});
    const before = this.journal;
    const run = this.runCompaction(rewrite);
    const tracked = run.finally(() => {
      this.compacting = null;
    });
    tracked.catch(() => {}); // the caller gets the failure from `run`
    this.compacting = tracked;
    try {
      await run;
    } catch (e) {
      // Nothing was written since (a rewrite runs at open, before the store is handed out): drop the
      // empty journal the rotation created, so that the store's files are exactly what they were.
      const j = this.journal;
      if (j !== before && j.tail === FILE_HEADER_SIZE && this.manifest.journalStart <= before.number) {
        this.journal = before;
        const f = this.files.get(j.number);
        this.files.delete(j.number);
        if (f) this.io.close(f.fd);
        this.io.unlink(this.paths.journal(j.number));
        this.io.syncDir(this.paths.dir);
      }
      throw e;
    }
  }

  private async runCompaction(rewrite?: Rewrite): Promise<void> {
    const io = this.io;
    // 1. Rotate: new writes go to a fresh journal; the old files become read-only input.
    const newJ = this.manifest.nextFile++;
    const writer = JournalWriter.create(io, this.paths.journal(newJ), newJ, this.manifest.storeId, this.lastSeq);
    io.syncDir(this.paths.dir);
    const oldFiles = [...this.files.keys()];
    this.journal = writer;
    this.files.set(newJ, { fd: writer.fd, bound: writer.bound, kind: "journal", size: writer.tail, plainTotal: 0, plainLive: 0 });
    const seqFloor = this.lastSeq;
    // Every frame written from here on (new journal, new segment) uses this data key or a later one:
    // once the manifest names only those files, older data keys protect nothing and are destroyed.
    const ring = this.keyring;
    const keyId = ring ? ring.activeKeyId : 0;
    this.fp("compaction.afterRotate");

    // 2. Snapshot of everything that lives in the old files, sorted in UTF-8 byte order (segment order).
    const snapshot: { entity: string; keys: string[]; locs: Loc[] }[] = [];
    for (const [entity, ks] of [...this.entities].sort((a, b) => compareUtf8(a[0], b[0]))) {
      const { keys, locs } = ks.sortedEntries();
      if (keys.length) snapshot.push({ entity, keys, locs });
    }
    const segNo = this.manifest.nextFile++;
    const self = this;
    const lost: DamageReport[] = [];
    let written: Awaited<ReturnType<typeof writeSegment>> | null = null;
    if (snapshot.length) {
      written = await writeSegment(
        io,
        this.paths.segmentTemp(segNo),
        this.paths.segment(segNo),
        segNo,
        this.manifest.storeId,
        ring ? { meta: ring.meta(keyId), record: (entity) => ring.record(keyId, entity) } : null,
        snapshot.map((part) => ({
          entity: part.entity,
          records: (async function* (): AsyncGenerator<BlockRecord> {
            const values = await self.readInFileOrder(part.entity, part.locs, lost);
            for (let i = 0; i < part.keys.length; i++) {
              const loc = part.locs[i]!;
              const value = values[i];
              if (value === undefined) continue; // damaged: reported in `lost`
              const key = part.keys[i]!;
              const target = rewrite?.versions.get(part.entity);
              if (rewrite && target !== undefined && loc.version !== target) {
                const out = await rewrite.transform(part.entity, key, loc.version, value);
                yield { key, ...out };
              } else {
                // Sensitive parts sealed under an older data key move to the current one (rotation).
                const v = ring ? resealValue(value, part.entity, key, loc.version, self.sensitiveKeys(keyId)) : value;
                yield { key, version: loc.version, value: v, terms: loc.terms };
              }
              values[i] = undefined;
            }
          })(),
        })),
        this.fp,
        () => new Promise<void>((r) => setImmediate(r)),
        this.opts.compression,
      );
      this.fp("compaction.beforeDirSync");
      io.syncDir(this.paths.dir);
    }
    // Writes waiting since the segment was started go through before the switch (they land in the new journal).
    await new Promise<void>((r) => setImmediate(r));
    if (this.closed) throw new StoreClosedError();

    // 3. Switch the manifest.
    const next: Manifest = {
      ...this.manifest,
      generation: this.manifest.generation + 1,
      journalStart: newJ,
      seqFloor,
      segments: written ? [segNo] : [],
      keyFloor: keyId,
      entities: new Map([...this.manifest.entities, ...(rewrite?.versions ?? [])]),
    };
    this.fp("compaction.beforeManifestRename");
    writeManifest(io, this.paths, next, this.metaSealer(), this.fp);
    this.manifest = next;
    this.fp("compaction.afterManifestRename");

    // 4. The new segment holds every record of the retired files: fold the overlays onto it.
    const retired = new Set(oldFiles);
    if (written) {
      const segFd = io.open(this.paths.segment(segNo), "r");
      this.files.set(segNo, {
        fd: segFd,
        bound: written.bound,
        kind: "segment",
        size: written.size,
        plainTotal: written.index.valueBytes,
        plainLive: 0,
      });
    }
    this.segment = written ? written.index : null;
    for (const ks of this.entities.values()) ks.rebase(this.segment, retired);

    // 5. Retire the old files; damaged ones are copied to quarantine/ first, and the loss is announced.
    for (const d of lost) {
      d.quarantinedAs = this.keepCopy(d.file);
      this.recovery.damaged.push(d);
      this.onProblem?.(new CorruptionError(d.file, d.offset, `${d.reason}; ${d.records.length} record(s) lost, listed in the recovery report`));
    }
    this.fp("compaction.beforeDelete");
    for (const n of oldFiles) {
      const f = this.files.get(n)!;
      const file = f.kind === "segment" ? this.paths.segment(n) : this.paths.journal(n);
      io.close(f.fd);
      this.files.delete(n);
      io.unlink(file);
    }
    io.syncDir(this.paths.dir);
    // The old files' frames and blocks go; decoded records stay (their values did not change).
    this.cache.clearDefaultSpace();
    this.forgetLastBlock();
    this.recount();
    // 6. Destroy data keys no live file uses (rotation): the keyring is rewritten without them, then the
    // store's copies are re-keyed so that the old keys survive nowhere.
    if (ring) {
      this.fp("compaction.beforeKeyRetire");
      if (ring.retireBelow(keyId).length) await this.rekeyCopies();
    }
  }

  /** The sensitive-field keys as value.ts needs them, with `activeKeyId` the key compaction writes under. */
  private sensitiveKeys(activeKeyId: number): SensitiveKeys {
    const ring = this.keyring!;
    return { storeId: this.manifest.storeId, activeKeyId, sensitive: (id, entity) => ring.sensitive(id, entity) };
  }

  private metaSealer(): Sealer | null {
    return this.keyring ? this.keyring.meta(this.keyring.activeKeyId) : null;
  }

  /**
   * Read the values at `locs` visiting frames in file order, each frame once, yielding to other work
   * between frames. Reading in key order instead made every record decrypt a whole (possibly 500 KiB) journal
   * frame once the block cache thrashed: minutes for a 100,000-record bulk load. Holds one entity's live
   * values in memory at a time.
   */
  private async readInFileOrder(entity: string, locs: readonly Loc[], lost: DamageReport[]): Promise<(Uint8Array | undefined)[]> {
    const order = locs.map((_, i) => i);
    order.sort((a, b) => {
      const x = locs[a]!;
      const y = locs[b]!;
      return x.file - y.file || x.frameOffset - y.frameOffset || x.start - y.start;
    });
    const values: (Uint8Array | undefined)[] = new Array(locs.length);
    let lastFrame = -1;
    let frames = 0;
    let bad: DamageReport | null = null;
    // Let waiting writes through before the first frame, however small the store: compaction never holds
    // the event loop from rotation to the end.
    await new Promise<void>((r) => setImmediate(r));
    for (const i of order) {
      const loc = locs[i]!;
      const frame = frameKey(loc.file, loc.frameOffset);
      if (frame !== lastFrame) {
        lastFrame = frame;
        bad = null;
        if (++frames % 16 === 0) await new Promise<void>((r) => setImmediate(r));
        this.checkOpen();
      }
      if (bad) {
        bad.records.push({ entity, key: loc.key });
        continue;
      }
      try {
        values[i] = this.read(entity, loc).slice(); // a copy: the frame's plaintext may leave the cache
      } catch (e) {
        // A frame that fails its checks here (authentication, after its crc passed at open) cannot be
        // copied: its records are left out of the new segment and reported, and compaction goes on.
        if (!isCellarError(e, "E_CORRUPT")) throw e;
        const c = e as CorruptionError;
        bad = { file: c.file, offset: c.offset, bytes: loc.frameLength, reason: c.reason, records: [{ entity, key: loc.key }], quarantinedAs: null };
        lost.push(bad);
      }
    }
    return values;
  }


  /** Record the schema versions the app writes, in the manifest (rewritten only when they change). */
  setEntityVersions(versions: ReadonlyMap<string, number>): void {
    if (this.opts.readOnly) return;
    let changed = false;
    for (const [k, v] of versions) if (this.manifest.entities.get(k) !== v) changed = true;
    if (!changed) return;
    const next: Manifest = {
      ...this.manifest,
      generation: this.manifest.generation + 1,
      entities: new Map([...this.manifest.entities, ...versions]),
    };
    writeManifest(this.io, this.paths, next, this.metaSealer(), this.fp);
    this.manifest = next;
  }

  // ---------------------------------------------------------------- keys

  /** Key ids and master key kind, for `store.keyInfo()`. Never key material. */
  keyInfo(): { encrypted: boolean; activeKeyId: number; keyIds: number[]; masterKey: "raw" | "passphrase" | "external" | null } {
    const r = this.keyring;
    return { encrypted: r !== null, activeKeyId: r?.activeKeyId ?? 0, keyIds: r?.keyIds ?? [], masterKey: r?.kekKind ?? null };
  }

  private requireKeyring(): Keyring {
    this.checkOpen();
    if (!this.keyring) throw new UsageError('this store was created with `encryption: "none"`: it has no keys to rotate or rewrap');
    return this.keyring;
  }

  /** The keyring, for changing keys: refused in a records-only scope (`redactSensitive`), which is read-only. */
  private requireFullKeyring(): Keyring {
    this.checkOpen();
    if (this.opts.readOnly) throw readOnlyError();
    const ring = this.requireKeyring();
    if (ring.scope !== "all") throw new UsageError("this store was opened with `redactSensitive`: it cannot rotate or rewrap keys");
    return ring;
  }

  /**
   * Make a new random data key the active one: writes from now on use it. Records under older keys are
   * re-encrypted by the next compaction (`reencrypt()` runs one now), after which the old keys are destroyed.
   */
  rotateKey(): number {
    const ring = this.requireFullKeyring();
    if (this.poisoned) throw this.poisoned;
    return ring.rotate();
  }

  /**
   * Re-encrypt every record under the active data key (a compaction) and destroy older data keys.
   * Resolves with the ids destroyed.
   */
  async reencrypt(): Promise<number[]> {
    const ring = this.requireFullKeyring();
    const before = ring.keyIds;
    // A compaction started before the rotation writes under the old key: wait for it, then run one more.
    if (this.compacting) await this.compacting.catch(() => {});
    // The compaction re-keys the store's copies when it destroys keys; with none to destroy here (a call
    // repeated after a crash or a failure), the copies are re-keyed anyway.
    if (ring.keyIds.some((id) => id < ring.activeKeyId)) await this.compact();
    else await this.rekeyCopies();
    return before.filter((id) => !ring.keyIds.includes(id));
  }

  /**
   * Rewrap the data keys under a new master key (one small file rewritten, whatever the store's size), and
   * those of every keyed copy of the store (pre-migration backups): the old master key opens none of them
   * after. Copies are rewrapped first and the store's keyring last, so a crash in between leaves copies
   * under the new key and the store under the old: the same call again (with the same new key) finishes.
   */
  async changeMasterKey(provider: KeyProvider): Promise<void> {
    const ring = this.requireFullKeyring();
    if (this.poisoned) throw this.poisoned;
    // The new master key, derived once (Argon2id for a passphrase), in a keyring of its own.
    const next = await ring.withMasterKey(provider);
    const copies: Keyring[] = [];
    try {
      // Every copy's keyring is opened before any file changes.
      for (const dir of this.keyedCopies()) {
        const paths = new StorePaths(dir);
        try {
          copies.push(await Keyring.load(this.io, paths, ring.unwrappedMasterKey(), "records", () => {}));
        } catch (e) {
          if (!isCellarError(e, "E_KEY")) throw e;
          // Rewrapped already by a call cut short (it opens with the new key), or not under this store's key.
          try {
            (await Keyring.load(this.io, paths, next.unwrappedMasterKey(), "records", () => {})).destroy();
          } catch (e2) {
            if (!isCellarError(e2, "E_KEY")) throw e2;
            throw new KeyError(`the keyring of \`${path.relative(this.dir, dir)}\` opens with neither the current master key nor the new one; nothing was changed`);
          }
        }
      }
      for (const copy of copies) copy.rewrapAs(next);
      ring.rewrapAs(next);
    } finally {
      for (const copy of copies) copy.destroy();
      next.destroy();
    }
  }

  // ---------------------------------------------------------------- close

  async close(): Promise<void> {
    if (this.closed) return;
    await this.drain();
    if (this.compacting) await this.compacting.catch(() => {});
    this.closed = true;
    await this.verified.catch(() => {});
    if (this.syncTimer) clearInterval(this.syncTimer);
    try {
      if (this.dirty && !this.poisoned) this.journal.sync();
    } finally {
      for (const f of this.files.values()) {
        try {
          this.io.close(f.fd);
        } catch {
          // closing anyway
        }
      }
      this.files.clear();
      this.cache.clear();
      this.forgetLastBlock();
      this.keyring?.destroy();
      this.recordKeyLookups.clear();
      this.lock.release();
    }
  }
}

const EMPTY: ReadonlySet<string> = new Set();

function readOnlyError(): UsageError {
  return new UsageError("this store was opened read-only (`redactSensitive`): it cannot be written, compacted or re-keyed");
}

/** Whether the UTF-8 form of `s` is longer than `max` bytes (no count needed when even 3 bytes per unit fit). */
function longerThan(s: string, max: number): boolean {
  return s.length * 3 > max && Buffer.byteLength(s, "utf8") > max;
}

function checkOp(o: WriteOp): void {
  if (!o.entity || longerThan(o.entity, MAX_ENTITY_NAME_BYTES)) {
    throw new LimitError(`entity name must be 1 to ${MAX_ENTITY_NAME_BYTES} bytes`);
  }
  if (longerThan(o.key, MAX_KEY_BYTES)) throw new LimitError(`a key may be at most ${MAX_KEY_BYTES} bytes (entity \`${o.entity}\`)`);
  if (!isWellFormed(o.key) || !isWellFormed(o.entity)) {
    throw new UsageError(`a key or entity name holds a lone UTF-16 surrogate, which cannot be stored (entity \`${o.entity}\`)`);
  }
  if (o.op === "put") {
    if (o.value.length > MAX_VALUE_BYTES) {
      throw new LimitError(`a record may be at most ${MAX_VALUE_BYTES} bytes encoded, got ${o.value.length} (entity \`${o.entity}\`)`);
    }
    if (o.terms.length > MAX_TERMS_PER_RECORD) throw new LimitError(`at most ${MAX_TERMS_PER_RECORD} index terms per record`);
    for (const t of o.terms) {
      if (longerThan(t, MAX_KEY_BYTES)) throw new LimitError(`an index value may be at most ${MAX_KEY_BYTES} bytes`);
      if (!isWellFormed(t)) throw new UsageError("an index value holds a lone UTF-16 surrogate, which cannot be stored");
    }
  }
}

/** Key of a frame or block in the block cache: its file number and offset in one safe integer. */
function frameKey(file: number, offset: number): number {
  return file * 4294967296 + offset;
}

/** Copy `from` to a new file `to` (fsynced) 4 MiB at a time: a damaged journal may be larger than memory. */
function copyFile(io: FileIO, from: string, to: string): void {
  const src = io.open(from, "r");
  try {
    const dst = io.open(to, "wx+");
    try {
      const buf = new Uint8Array(Math.min(io.size(src), 4 * 1024 * 1024));
      for (let at = 0; ; ) {
        const n = io.read(src, buf, at);
        if (n === 0) break;
        const chunk = n === buf.length ? buf : buf.subarray(0, n);
        if (!isAllZero(chunk)) io.write(dst, chunk, at); // runs of zeros stay holes (a sparse journal stays sparse)
        at += n;
      }
      io.truncate(dst, io.size(src));
      io.fsync(dst);
    } finally {
      io.close(dst);
    }
  } finally {
    io.close(src);
  }
}
