/**
 * The state the engine's jobs share: the store's keyspaces, segment and open files, its manifest, keys,
 * journal and options, the cache, the recovery report, and whether it is closed or poisoned; with the small
 * helpers every job uses (indexing a put or a delete, dead-space accounting, quarantine copies). Built by
 * open.ts; read and changed by the jobs the `Engine` facade wires (reads.ts, commit.ts, compaction.ts,
 * key-admin.ts).
 */
import path from "node:path";
import { isAllZero } from "../format/bytes.js";
import { type CellarError, isCellarError, StoreClosedError, UsageError } from "../errors.js";
import { parseName, type StorePaths } from "../format/filenames.js";
import { FILE_HEADER_SIZE } from "../format/format.js";
import type { KeyLookup } from "../format/frame.js";
import { Loc } from "../format/location.js";
import type { WriteOp } from "../format/records.js";
import type { SegmentIndex } from "../format/segment-index.js";
import type { Failpoint, FileIO } from "../platform/io.js";
import type { StoreLock } from "../platform/lock.js";
import type { Sealer } from "../crypto/seal.js";
import type { Keyring } from "../crypto/keyring.js";
import { LruCache } from "./cache.js";
import type { JournalWriter } from "./journal-writer.js";
import { Keyspace, Tomb } from "./keyspace.js";
import { type Manifest, writeManifest } from "./manifest.js";
import type { ResolvedOptions } from "./options.js";

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


/** A data file open for reading, with its dead-space accounting. */
export interface ReadFile {
  fd: number;
  bound: Uint8Array;
  kind: "journal" | "segment";
  /** Bytes of the file that hold frames (a journal's tail, a segment's size). */
  size: number;
  /** Record bytes (plaintext) ever written to the file, and those still live: their ratio estimates dead space. */
  plainTotal: number;
  plainLive: number;
  /** Journals: the part of `plainTotal` each entity wrote (usage.ts, `stats()` per entity); created on first write. */
  byEntity?: Map<string, number>;
}

/** Plaintext bytes a delete (tombstone) is counted as, for dead-space estimates. */
const TOMBSTONE_BYTES = 16;

export class StoreState {
  readonly entities = new Map<string, Keyspace>();
  /** The store's segment (at most one: compaction writes all live records into one), searched in place. */
  segment: SegmentIndex | null = null;
  readonly files = new Map<number, ReadFile>();
  /**
   * Decoded frames and blocks (default key space, by frame key) and the store's decoded records (a key
   * space per entity), under one budget: memory goes to whichever the workload uses.
   */
  cache: LruCache<number | string, unknown>;
  poisoned: CellarError | null = null;
  closed = false;
  /**
   * Called after each committed frame with the ops that changed something: a delete of a key that was not
   * there is written (a tombstone) but not passed on.
   */
  onCommit: ((ops: readonly WriteOp[], seq: number) => void) | null = null;
  /** Listener for problems found after open (damage on read, failed background compaction). */
  onProblem: ((e: CellarError) => void) | null = null;
  /**
   * At an open that found damage: every delete the journals held (entity → key → seq of its last delete;
   * open.ts `noteDeletes`), for recovery from backups; else null.
   */
  deletedAtOpen: Map<string, Map<string, number>> | null = null;
  /**
   * A follower (follower.ts) that could not report commits one by one (a compaction folded them into a
   * segment before it read them, or the segment changed): everything up to `seq` may have changed.
   */
  onResync: ((seq: number) => void) | null = null;
  /**
   * Consulted before each commit flush is scheduled: a wait for writes about to arrive, so that they join the
   * flush (share/server.ts: the followers just acknowledged, across processes); null (or returning null): none.
   */
  gather: (() => Promise<void> | null) | null = null;
  /**
   * Commit fdatasyncs run on the thread pool (commit.ts), so the event loop turns during them: set by a shared
   * store's writer while followers are connected (share/server.ts), whose writes then arrive meanwhile.
   */
  syncAside = false;
  /** A follower: called before each read of the engine's state (share/sharing.ts: a lazy follower's catch-up); null: none. */
  beforeRead: (() => void) | null = null;
  /** A commit's fdatasync running aside (commit.ts); what writes to the journal otherwise (a compaction's rotation) waits for it. */
  syncing: Promise<void> | null = null;
  /** The key of manifest, commit frames and segment indexes, by data key id. */
  readonly metaKeys: KeyLookup = (id) => this.keyring?.meta(id) ?? null;

  constructor(
    readonly dir: string,
    readonly io: FileIO,
    readonly paths: StorePaths,
    /** Null in a follower (follower.ts), which reads without the lock. */
    readonly lock: StoreLock | null,
    public manifest: Manifest,
    /** The store's keys; null for a plaintext store. (A promotion puts the follower's `Keyring` object here.) */
    public keyring: Keyring | null,
    /** The journal writes go to (null in a read-only open that found none to continue: it never writes). */
    public journal: JournalWriter,
    public lastSeq: number,
    readonly opts: ResolvedOptions,
    readonly fp: (name: Failpoint) => void,
    readonly recovery: RecoveryReport,
  ) {
    this.cache = new LruCache(opts.blockCacheBytes + opts.recordCacheBytes);
  }

  checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  /** Copy a damaged file into quarantine/; null if it cannot be written (disk full): the report still names the damage. */
  keepCopy(name: string): string | null {
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
  moveAside(name: string): string | null {
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
  recount(): void {
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
  ks(entity: string): Keyspace {
    let k = this.entities.get(entity);
    if (!k) this.entities.set(entity, (k = new Keyspace(entity, this.segment)));
    return k;
  }

  /** Index a put written to `file` (replay and live writes alike), keeping the dead-space accounting. */
  applyPut(file: ReadFile, entity: string, loc: Loc): void {
    const old = this.ks(entity).put(loc);
    if (old) {
      const of = this.files.get(old.file);
      if (of) of.plainLive -= old.length;
    }
    file.plainTotal += loc.length;
    file.plainLive += loc.length;
    const by = (file.byEntity ??= new Map());
    by.set(entity, (by.get(entity) ?? 0) + loc.length);
  }

  /** Index a delete; returns whether it removed a live record. */
  applyDelete(file: ReadFile, fileNo: number, entity: string, key: string): boolean {
    const old = this.entities.get(entity)?.delete(key, fileNo);
    if (old) {
      const of = this.files.get(old.file);
      if (of) of.plainLive -= old.length;
    }
    file.plainTotal += TOMBSTONE_BYTES;
    const by = (file.byEntity ??= new Map());
    by.set(entity, (by.get(entity) ?? 0) + TOMBSTONE_BYTES);
    return old !== undefined;
  }

  /** Record the schema versions the app writes, in the manifest (rewritten only when they change). */
  setEntityVersions(versions: ReadonlyMap<string, number>): void {
    if (this.opts.readOnly) return;
    let changed = false;
    for (const [k, v] of versions) if (this.manifest.entities.get(k) !== v) changed = true;
    if (!changed) return;
    const next: Manifest = { ...this.manifest, generation: this.manifest.generation + 1, entities: new Map([...this.manifest.entities, ...versions]) };
    writeManifest(this.io, this.paths, next, this.metaSealer(), this.fp);
    this.manifest = next;
  }

  /** See `Engine.knowsDeleted`. */
  knowsDeleted(entity: string, key: string, afterSeq?: number): boolean {
    const seq = this.deletedAtOpen?.get(entity)?.get(key);
    if (seq !== undefined && (afterSeq === undefined || seq > afterSeq)) return true;
    return afterSeq === undefined && this.entities.get(entity)?.overlay.get(key) instanceof Tomb;
  }

  /** A damage report whose file is still one of the store's live files (not yet retired by a compaction). */
  liveDamage(): DamageReport | undefined {
    return this.recovery.damaged.find((d) => {
      const p = parseName(d.file);
      return (p.kind === "segment" || p.kind === "journal") && this.files.has(p.number);
    });
  }

  metaSealer(): Sealer | null {
    return this.keyring ? this.keyring.meta(this.keyring.activeKeyId) : null;
  }

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
}

export function readOnlyError(): UsageError {
  return new UsageError("this store was opened read-only (`redactSensitive`): it cannot be written, compacted or re-keyed");
}

/** Key of a frame or block in the block cache: its file number and offset in one safe integer. */
export function frameKey(file: number, offset: number): number {
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
