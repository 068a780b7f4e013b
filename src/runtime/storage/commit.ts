/**
 * Group commit: `write` queues a caller's ops and `flush` (on a microtask, or on the next event-loop turn
 * after a long run of them) writes every queued group as commit frames in one journal append, indexes them
 * (`applyFrame`) and resolves the callers; with `durability: "relaxed"`, the fdatasync that follows at most
 * `relaxedSyncMs` later (`syncRelaxed`, the sync timer). Called by the `Engine` facade (`write`, `drain`,
 * `close`) and started by it after open. Crash windows of a commit: docs/FORMAT.md, "Crash windows": "Commit".
 */
import path from "node:path";
import { ByteWriter } from "../format/bytes.js";
import { isCellarError, IoError, QuotaError, StoreClosedError, UsageError } from "../errors.js";
import { COMPRESS_MIN_BYTES, END_RECORD_SIZE, FRAME_HEADER_SIZE, FrameType } from "../format/format.js";
import { encodeFrame } from "../format/frame.js";
import { Loc } from "../format/location.js";
import { encodeCommit, encodeCommitOps, SEALED_OVERHEAD, type WriteOp } from "../format/records.js";
import { checkWrite } from "./check-write.js";
import type { Keyring } from "../crypto/keyring.js";
import { scratchRecordAd } from "../crypto/value.js";
import type { LruCache } from "./cache.js";
import type { Compaction } from "./compaction.js";
import type { JournalWriter } from "./journal-writer.js";
import type { ResolvedOptions } from "./options.js";
import type { Reads } from "./reads.js";
import { frameKey, readOnlyError, type ReadFile, type StoreState } from "./state.js";
import { overdue, turn } from "../platform/turn.js";

interface Pending {
  ops: readonly WriteOp[];
  size: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** A frame of a flush: the ops of its writers (each writer's ops in one frame), their size. */
interface Frame {
  ops: WriteOp[];
  members: Pending[];
  size: number;
}
/** A frame's payload, encoded: where each op's value starts in it. */
interface Part {
  plain: Uint8Array;
  starts: number[];
  ops: WriteOp[];
}
/** A frame sealed for the journal, then indexed by `done`. */
type Encoded = Part & { bytes: Uint8Array; seq: number; effective?: readonly WriteOp[] };

/**
 * A flush of this many ops or more (a batch, a bulk load) seals its values in slices, letting the event loop
 * turn between them, and fdatasyncs on the thread pool (issue 15: a batch of 1,000 held the loop ~10 ms at
 * best). Smaller groups (one put, a few dozen in flight) go in one step and sync at once: a round trip to the
 * pool would cost a single put more than it holds the loop.
 */
export const SLICED_MIN_OPS = 128;
const FRAME_SPLIT_BYTES = 8 * 1024 * 1024;
/**
 * Longest run of commit flushes on microtasks without an event-loop turn, in ms. An app that awaits writes
 * back to back never leaves the microtask queue (each flush resolves the promise the next write follows);
 * once a run is this long, the next flush waits for a turn (setImmediate), in which timers, I/O callbacks
 * and compaction's steps run. See `GroupCommit.scheduleFlush`.
 */
const MAX_MICROTASK_RUN_MS = 2;

export class GroupCommit {
  private pending: Pending[] = [];
  /** Quota: bytes the queued writes may add to the journal (upper bounds, see `quotaBytes`), until flushed. */
  private queuedBytes = 0;
  private flushScheduled = false;
  private sealing = false; // a large group's values are being sealed (`sliced`, until it writes or fails)
  private syncTimer: NodeJS.Timeout | null = null;
  /** Relaxed mode: commits were written but not yet fdatasynced. */
  dirty = false;
  /** Relaxed mode: when the flush that wrote the oldest unsynced commit started (`performance.now()`), while `dirty`. */
  private dirtySince = 0;
  /** When the current run of flushes without an event-loop turn began (`performance.now()`); -1 once a turn came. */
  private runStart = -1;
  private readonly flushNow = (): void => this.flush();
  private readonly turnCame = (): void => {
    this.runStart = -1;
  };
  // The state's maps, keys and options, held here too: every flush uses them.
  private readonly cache: LruCache<number | string, unknown>;
  private readonly files: Map<number, ReadFile>;
  private readonly keyring: Keyring | null;
  private readonly opts: ResolvedOptions;

  constructor(
    private readonly state: StoreState,
    private readonly reads: Reads,
    private readonly compaction: Compaction,
  ) {
    this.cache = state.cache;
    this.files = state.files;
    this.keyring = state.keyring;
    this.opts = state.opts;
  }

  /**
   * Commit `ops` atomically. Resolves once durable (`durability: "full"`) or
   * written (`"relaxed"`). Ops issued while a flush runs are grouped into the next one.
   */
  write(ops: readonly WriteOp[]): Promise<void> {
    if (this.state.closed) return Promise.reject(new StoreClosedError());
    if (this.opts.readOnly) return Promise.reject(readOnlyError());
    if (this.state.poisoned) return Promise.reject(this.state.poisoned);
    if (this.keyring && this.keyring.scope !== "all") {
      return Promise.reject(new UsageError("this store was opened without the keys of sensitive fields (`redactSensitive`): it is read-only"));
    }
    let size: number;
    try {
      size = checkWrite(ops);
    } catch (e) {
      return Promise.reject(e);
    }
    if (ops.length === 0) return Promise.resolve();
    const grows = this.opts.quota.maxBytes !== Infinity ? this.quotaBytes(ops, size) : 0;
    if (grows > 0) {
      const refused = this.checkQuota(grows);
      if (refused) return Promise.reject(refused);
      this.queuedBytes += grows;
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ ops, size, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        this.scheduleFlush();
      }
    });
  }

  /**
   * Quota: the bytes `ops` may add to the journal, from above (`opSize` counts 3 bytes per UTF-16 unit of
   * names and keys; sealing and a frame of its own added), or 0 for a write of deletes only: those are
   * always allowed, so that a store at its quota can be freed.
   */
  private quotaBytes(ops: readonly WriteOp[], size: number): number {
    let puts = 0;
    for (const o of ops) if (o.op === "put") puts++;
    if (puts === 0) return 0;
    return size + (this.keyring ? SEALED_OVERHEAD * puts : 0) + FRAME_HEADER_SIZE + 64 + END_RECORD_SIZE;
  }

  /**
   * Quota: the error refusing a write that adds `grows` bytes, or null when it fits. The store's bytes are its
   * data files' (segment, journals up to their last frame) plus what writes already queued may add. When
   * dead bytes would make room, a compaction is started (automatic compaction on) so that a retry can pass.
   */
  private checkQuota(grows: number): QuotaError | null {
    const maxBytes = this.opts.quota.maxBytes;
    let fileBytes = 0;
    for (const f of this.files.values()) fileBytes += f.size;
    const usedBytes = fileBytes + this.queuedBytes;
    if (usedBytes + grows <= maxBytes) return null;
    const deadBytes = this.state.deadBytes;
    if (deadBytes > 0 && usedBytes - deadBytes + grows <= maxBytes && this.opts.compaction.auto) this.compaction.maybeCompact(true);
    return new QuotaError({ usedBytes, maxBytes, writeBytes: grows, deadBytes });
  }

  /**
   * Flush on a microtask (no event-loop turn per commit), unless flushes have run on microtasks alone for
   * `MAX_MICROTASK_RUN_MS`: then on the next turn (setImmediate), so that a loop of awaited writes leaves
   * timers, I/O callbacks and compaction's steps a turn at least that often. A run starts with a marker
   * queued for the next turn; it ends when the marker runs, which it does before the deferred flush. A wait
   * that `state.gather` gives (writes of other processes on their way) comes first.
   */
  private scheduleFlush(): void {
    // Writes about to arrive from other processes (state.gather): the flush waits for them (bounded there).
    const wait = this.state.gather?.();
    if (wait) {
      void wait.then(this.flushNow);
      return;
    }
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
    // A commit's fdatasync still runs aside, or a large one is being sealed (`syncing`): this group goes when it is done (see `afterAside`).
    if (this.state.syncing) return;
    this.flushScheduled = false;
    const group = this.pending;
    this.pending = [];
    this.queuedBytes = 0;
    if (group.length === 0) return;
    if (this.state.closed || this.state.poisoned) {
      for (const p of group) p.reject(this.state.poisoned ?? new StoreClosedError());
      return;
    }
    // Split into frames of ≤ FRAME_SPLIT_BYTES; each caller's ops stay in one frame (atomicity).
    const frames: Frame[] = [];
    let cur: Frame | null = null;
    let ops = 0;
    for (const p of group) {
      if (!cur || (cur.size + p.size > FRAME_SPLIT_BYTES && cur.ops.length)) {
        cur = { ops: [], members: [], size: 0 };
        frames.push(cur);
      }
      for (const o of p.ops) cur.ops.push(o);
      cur.members.push(p);
      cur.size += p.size;
      ops += p.ops.length;
    }
    const ring = this.keyring;
    const keyId = ring ? ring.activeKeyId : 0;
    if (ops >= SLICED_MIN_OPS) {
      // A large group (a batch, a bulk load): sealed in slices with turns of the event loop between, its
      // fdatasync on the thread pool; writes queued meanwhile wait for it, as for a sync aside (issue 15).
      this.sealing = this.flushScheduled = true;
      const run = this.sliced(group, frames, ring, keyId);
      if (this.sealing) this.state.syncing = run; // else sealed with no turn: `sliced` set `syncing` (null, or its sync)
      return;
    }
    let parts: Part[];
    try {
      const seal = this.sealer(ring, keyId);
      parts = frames.map((f) => ({ ...encodeCommit(f.ops, this.writerFor(f), seal), ops: f.ops }));
    } catch (e) {
      this.failed(group, e, this.state.journal);
      return;
    }
    this.writeFrames(group, parts, ring, keyId, false);
  }

  /** The payload writer of frame `f`, sized for its values sealed in place. */
  private writerFor = (f: Frame): ByteWriter => new ByteWriter(f.size + SEALED_OVERHEAD * f.ops.length + 16);

  /** Each value is sealed under its entity's record key (undefined: a plaintext store). */
  private sealer(ring: Keyring | null, keyId: number): ((o: WriteOp & { op: "put" }, out: Uint8Array) => void) | undefined {
    if (!ring) return undefined;
    if (this.sealing_?.keyId !== keyId) this.sealing_ = { keyId, seal: (o, out) => this.sealValue(ring, keyId, o, out) }; // one per key id, not per flush
    return this.sealing_.seal;
  }
  private sealing_: { keyId: number; seal: (o: WriteOp & { op: "put" }, out: Uint8Array) => void } | null = null;

  /**
   * A large group's flush: each frame's payload encoded and its values sealed an op at a time, with a turn
   * whenever the loop is overdue (platform/turn.ts), then written as one append, as `flush` does. Nothing of
   * it is visible before `done` indexes it in one step (atomic); the journal is not written while it seals,
   * and a compaction's rotation waits for it (`syncing`).
   */
  private async sliced(group: readonly Pending[], frames: readonly Frame[], ring: Keyring | null, keyId: number): Promise<void> {
    const parts: Part[] = [];
    try {
      const seal = this.sealer(ring, keyId);
      for (const f of frames) {
        const w = this.writerFor(f);
        const starts = new Array<number>(f.ops.length);
        for (let i = 0; i < f.ops.length; i++) {
          encodeCommitOps(f.ops, i, i + 1, w, starts, seal);
          if (overdue()) await turn();
        }
        parts.push({ plain: w.finish(), starts, ops: f.ops });
      }
      if (this.state.closed || this.state.poisoned) throw this.state.poisoned ?? new StoreClosedError();
    } catch (e) {
      this.sealing = false;
      this.afterAside(() => this.failed(group, e, this.state.journal));
      return;
    }
    this.sealing = false;
    this.state.syncing = null;
    // Its fdatasync runs on the thread pool (`writeFrames` sets `syncing` again); without it, the group is done.
    if (!this.writeFrames(group, parts, ring, keyId, true)) this.afterAside(() => {});
  }

  /**
   * Seal `parts` as commit frames (the next sequence numbers), append them in one write and sync: at once, or
   * on the thread pool (`aside`: with followers connected, or a large group when `poolSync`), after which
   * `done` indexes them. Returns whether the sync went aside (`syncing` set; `afterAside` follows).
   */
  private writeFrames(group: readonly Pending[], parts: readonly Part[], ring: Keyring | null, keyId: number, poolSync: boolean): boolean {
    const w = this.state.journal;
    const encoded: Encoded[] = [];
    let total = 0;
    let seq = this.state.lastSeq;
    let at = 0;
    try {
      for (const { plain, starts, ops } of parts) {
        // The frame (keys, versions, terms, sealed values) sealed under the meta key.
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
        encoded.push({ bytes, plain, starts, seq, ops });
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
      // A zero fill ahead of the journal's tail runs where these frames would go: they wait for it (journal-writer.ts).
      const wait = w.waitFor(total + END_RECORD_SIZE);
      if (wait) {
        this.flushScheduled = true;
        this.state.syncing = wait.then(() => {
          this.state.syncing = null;
          if (!this.writeFrames(group, parts, ring, keyId, poolSync)) this.afterAside(() => {});
        });
        return true;
      }
      // Relaxed mode: a flush that finds unsynced commits `relaxedSyncMs` old syncs before it acknowledges,
      // so under load the window holds whether or not the timer gets a turn; the timer syncs a store that
      // went quiet. Sparse writes still resolve after write(2) alone (the timer synced the last one).
      const relaxed = this.opts.durability !== "full";
      const started = relaxed ? performance.now() : 0;
      const relaxedSync = relaxed && this.dirty && started - this.dirtySince >= this.opts.relaxedSyncMs;
      // Writes of other processes arrive during the fdatasync (state.syncAside): it runs on the thread pool and
      // the event loop takes them meanwhile, queued for the next flush. So does a large group's (`poolSync`).
      const aside = !relaxed && (this.state.syncAside || poolSync) ? this.state.io.datasyncAsync : undefined;
      this.state.fp("commit.beforeWrite");
      at = w.append(all, seq, (!relaxed || relaxedSync) && !aside);
      if (relaxedSync) this.dirty = false;
      else if (relaxed && !this.dirty) {
        this.dirty = true;
        this.dirtySince = started;
      }
      if (aside) {
        // Writes queued meanwhile wait for it (flush returns at once while `syncing`); `drain` and `idle` too.
        this.flushScheduled = true;
        const written = at;
        this.state.syncing = aside.call(this.state.io, w.fd).then(
          () => this.afterAside(() => this.done(group, encoded, w, seq, written, keyId, ring)),
          (e: unknown) => this.afterAside(() => this.failed(group, e, w)),
        );
        return true;
      }
    } catch (e) {
      this.failed(group, e, w);
      return false;
    }
    this.done(group, encoded, w, seq, at, keyId, ring);
    return false;
  }

  /** A commit's fdatasync aside ended: its group resolved (or rejected) by `settle`, then the writes queued meanwhile flushed. */
  private afterAside(settle: () => void): void {
    this.state.syncing = null;
    settle();
    this.flushScheduled = false;
    if (this.pending.length) {
      this.flushScheduled = true;
      // After a turn (the writer's own next write, resolved just now, joins); no gather wait: these writes waited a whole fdatasync.
      setImmediate(this.flushNow);
    }
  }

  /** The commit of `group` is durable: index it, resolve its writers, tell the listeners. */
  private done(
    group: readonly Pending[],
    encoded: readonly Encoded[],
    w: JournalWriter,
    seq: number,
    at: number,
    keyId: number,
    ring: Keyring | null,
  ): void {
    try {
      this.state.fp("commit.afterSync");
      this.state.lastSeq = seq;
      let off = at;
      for (const e of encoded) {
        e.effective = this.applyFrame(w.number, off, e.bytes.length, e.seq, e.plain, keyId, e.ops, e.starts, ring ? SEALED_OVERHEAD : 0);
        off += e.bytes.length;
      }
      const f = this.files.get(w.number);
      if (f) f.size = w.tail;
    } catch (e) {
      this.failed(group, e, w);
      return;
    }
    for (const p of group) p.resolve();
    this.opts.hooks.committed?.(group.length);
    if (this.state.onCommit) for (const e of encoded) if (e.effective!.length) this.state.onCommit(e.effective!, e.seq);
    this.compaction.maybeCompact(false);
  }

  /** The commit of `group` failed: its writers rejected; an I/O error poisons the store. */
  private failed(group: readonly Pending[], e: unknown, w: JournalWriter): void {
    const err = isCellarError(e) ? e : new IoError("write", path.basename(this.state.paths.journal(w.number)), String(e), { cause: e });
    // After a failed fdatasync the page cache state is unknown ("fsyncgate"): stop writing until reopened.
    if (err.code === "E_IO") this.state.poisoned = err;
    for (const p of group) p.reject(err);
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
    if (this.reads.lastBlockKey === frameKey(file, offset)) this.reads.forgetLastBlock();
    const target = this.files.get(file)!;
    // The ops that changed something (`ops` itself unless a delete found nothing to remove).
    let effective: WriteOp[] | null = null;
    for (let i = 0; i < ops.length; i++) {
      const o = ops[i]!;
      if (o.op === "put") {
        this.state.applyPut(target, o.entity, new Loc(file, offset, length, seq, o.key, starts[i]!, o.value.length + overhead, o.version, o.terms));
        effective?.push(o);
      } else if (this.state.applyDelete(target, file, o.entity, o.key)) {
        effective?.push(o);
      } else {
        effective ??= ops.slice(0, i);
      }
    }
    return effective ?? ops;
  }

  private sealValue(ring: Keyring, keyId: number, o: WriteOp & { op: "put" }, out: Uint8Array): void {
    ring.record(keyId, o.entity)!.sealInto(out, o.value, scratchRecordAd(this.state.manifest.storeId, o.version, o.key));
  }

  private syncRelaxed(): void {
    if (!this.dirty || this.state.closed || this.state.poisoned) return;
    try {
      this.state.journal.sync();
      this.dirty = false;
    } catch (e) {
      if (isCellarError(e)) {
        this.state.poisoned = e;
        this.state.onProblem?.(e);
      } else throw e;
    }
  }

  /** No write queued or about to flush. */
  get idle(): boolean {
    return this.pending.length === 0 && !this.flushScheduled;
  }

  async drain(): Promise<void> {
    while (this.pending.length || this.flushScheduled) {
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Relaxed mode: sync a store that went quiet, at most `relaxedSyncMs` after its oldest unsynced write. */
  startSyncTimer(): void {
    this.syncTimer = setInterval(() => this.syncRelaxed(), this.opts.relaxedSyncMs);
    this.syncTimer.unref();
  }

  stopSyncTimer(): void {
    if (this.syncTimer) clearInterval(this.syncTimer);
  }
}
