/**
 * A follower: an engine on a store that another process writes (docs/FORMAT.md, "Followers (reading without
 * the lock)"). `openFollowerState` opens the store's files read-only and without the lock, changing no file;
 * `Follower.refresh` applies the commits written since, by tailing the journals from where it stopped up to
 * the writer's end record, across journal rotations. A frame that does not pass its checks at the tail is a
 * write in progress ("not yet"): never reported, never repaired. When the manifest's generation changed (a
 * compaction, a migration, an import), the manifest, the keyring if it changed and the segment are loaded
 * again and the journals replayed from `journalStart`. Old files stay readable through the descriptors held
 * (POSIX unlink). Called by the `Engine` facade (`openFollower`, `refresh`, `promote`).
 */
import { CorruptionError, isCellarError, type IoError, UsageError } from "../errors.js";
import { fromUtf8 } from "../format/bytes.js";
import { MANIFEST_COPY_FILE, MANIFEST_FILE, parseName, StorePaths } from "../format/filenames.js";
import { FILE_HEADER_SIZE, FileKind } from "../format/format.js";
import { decodeFileHeader, FrameError } from "../format/frame.js";
import { Loc } from "../format/location.js";
import type { WriteOp } from "../format/records.js";
import type { FileIO } from "../platform/io.js";
import { StoreLock } from "../platform/lock.js";
import { Keyring } from "../crypto/keyring.js";
import type { LruCache } from "./cache.js";
import { FOLLOW_WINDOW, type JournalFrame, scanJournalFile } from "./journal-reader.js";
import type { JournalWriter } from "./journal-writer.js";
import { type Manifest, readManifest } from "./manifest.js";
import { selectManifest } from "./manifest-choice.js";
import { loadSegment, openEngine } from "./open.js";
import { type EngineOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import type { Reads } from "./reads.js";
import { equalBytes } from "./segment.js";
import { type ReadFile, type RecoveryReport, StoreState } from "./state.js";

/** How long `openFollower` waits for a store being created to get its `MANIFEST`, and how often it looks. */
const CREATE_WAIT_MS = 5000;
const CREATE_POLL_MS = 10;
/** Manifest generations one refresh follows before it gives up (a writer compacting without pause). */
const MAX_RESYNCS = 16;

/** The journal a follower reads: where its frames stop so far. */
interface Tail {
  n: number;
  file: ReadFile;
  /** Offset just past the last frame applied. */
  pos: number;
  /** Version 3: its frames end with an end record. */
  v3: boolean;
}

/**
 * Where the writer's newest commits are, as it tells its followers with each commit (docs/FORMAT.md,
 * "Channel"): its manifest's generation and the number of the journal it writes. A follower whose manifest
 * has that generation and that reads that journal finds every commit up to the writer's seq in it.
 */
export interface RefreshHint {
  generation: number;
  journal: number;
}

/** A commit applied, for `onCommit`: the ops that changed something. */
interface Applied {
  seq: number;
  ops: WriteOp[];
}

/**
 * The state of a follower just opened: manifest (and keyring) read, the segment loaded, no journal read yet
 * (`Follower.refresh` reads them). Waits, briefly, for a store being created. Changes no file.
 */
export async function openFollowerState(options: EngineOptions): Promise<StoreState> {
  const { io, provider, opts } = resolveOptions(options);
  const paths = new StorePaths(options.dir);
  // A store being created gets its MANIFEST last (renamed into place): wait for it, briefly.
  for (let waited = 0; !io.exists(paths.manifest) && !io.exists(paths.manifestCopy); waited += CREATE_POLL_MS) {
    if (waited >= CREATE_WAIT_MS) throw new UsageError(`no store in \`${options.dir}\` to follow (no \`MANIFEST\` after ${CREATE_WAIT_MS} ms)`);
    await new Promise((r) => setTimeout(r, CREATE_POLL_MS));
  }
  let keyring: Keyring | null = null;
  try {
    const { manifest } = await selectManifest(io, paths, provider, options.keyScope ?? "all", () => {}, (k) => (keyring = k));
    // Read-only: nothing the engine's jobs could start (compaction, key retirement, quarantine copies) writes.
    const followerOpts: ResolvedOptions = { ...opts, readOnly: true, verifyOnOpen: false, durability: "full", compaction: { ...opts.compaction, auto: false } };
    const recovery: RecoveryReport = { truncatedTail: null, damaged: [], removedFiles: [], created: false };
    const state = new StoreState(paths.dir, io, paths, null, manifest, keyring, null as unknown as JournalWriter, manifest.seqFloor, followerOpts, () => {}, recovery);
    loadSegment(state);
    return state;
  } catch (e) {
    (keyring as Keyring | null)?.destroy();
    throw e;
  }
}

/** The pid the store's `LOCK` file names (its writer), for error messages; null when it names none. */
export function writerPid(io: FileIO, paths: StorePaths): number | null {
  try {
    const h = JSON.parse(fromUtf8(io.readFile(paths.lock))) as { pid?: unknown } | null;
    return Number.isSafeInteger(h?.pid) ? (h!.pid as number) : null;
  } catch {
    return null; // information only
  }
}

export class Follower {
  private tail: Tail | null = null;
  private running: Promise<number> | null = null;
  private queued: Promise<number> | null = null;
  /** Commits up to this seq were reported already (before a reload replays them again). */
  private quietUpTo = 0;
  /** A reload replaced the segment: `onResync` is due before the next commit reported. */
  private resyncDue = false;
  /** What the queued run may skip: the newest hint given to it, unless a call without one asked for a full run. */
  private queuedHint: RefreshHint | null = null;
  private queuedFull = false;
  /** Set while `onCommit` is told of commits applied (a refresh asked for then runs after). */
  private reporting = false;
  /** The read window of the journal scans, kept between refreshes (a refresh usually reads a frame or two). */
  private readonly window = new Uint8Array(FOLLOW_WINDOW);

  constructor(
    private readonly state: StoreState,
    private readonly reads: Reads,
    /** As given to `openFollower`: a promotion opens the store with them. */
    readonly options: EngineOptions,
  ) {}

  /**
   * Apply every complete commit now on disk, calling `onCommit(ops, seq)` for each in seq order; resolves
   * with the highest seq applied. A call while one runs is served by the next run (which starts after it).
   * With the writer's `hint` (its generation and journal) matching this follower's manifest and journal, only
   * the new frames of that journal are read: not the manifest, not the directory (what a refresh costs most).
   */
  refresh(hint?: RefreshHint): Promise<number> {
    // Called from a commit's report (a listener that reads, catching up): after it, not inside it (seq order).
    if (this.reporting) return Promise.resolve().then(() => this.refresh(hint));
    if (!this.running) return this.start(hint ?? null);
    // What the hinted journal holds is applied now even so (a read waits for it: share/sharing.ts `catchUp`):
    // a run's steps between its awaits are synchronous, each leaving the tail consistent, so this is one more.
    if (hint) {
      try {
        this.quick(hint);
      } catch {
        // the queued run meets it again, and rejects with it
      }
      this.queuedHint = hint;
    } else this.queuedFull = true;
    this.queued ??= this.running
      .catch(() => {})
      .then(() => {
        const next = this.queuedFull ? null : this.queuedHint;
        this.queued = this.queuedHint = null;
        this.queuedFull = false;
        return this.start(next);
      });
    return this.queued;
  }

  private start(hint: RefreshHint | null): Promise<number> {
    const p: Promise<number> = this.run(hint).finally(() => {
      if (this.running === p) this.running = null;
    });
    this.running = p;
    return p;
  }

  /**
   * A promotion (`Engine.promote`): take the lock (`E_LOCKED` while held), apply what the old writer left, then
   * open the store as a writer (open.ts: the recovery open runs) and hand over to its state this follower's
   * `keyring` and `cache` objects (the typed layer holds them) and listeners; this follower's files are closed.
   */
  async openAsWriter(keyring: Keyring | null, cache: LruCache<number | string, unknown>): Promise<{ state: StoreState; retire: boolean }> {
    const old = this.state;
    old.checkOpen();
    const lock = StoreLock.acquire(old.io, old.dir);
    let opened: { state: StoreState; retire: boolean };
    try {
      await this.settled();
      await this.refresh();
      opened = await openEngine(this.options, (state, retire) => ({ state, retire }), lock);
    } catch (e) {
      lock.release();
      throw e;
    }
    const state = opened.state;
    if (keyring && state.keyring) {
      keyring.adopt(state.keyring);
      keyring.dropUnlisted();
      state.keyring = keyring;
    }
    state.cache = cache;
    cache.clear();
    for (const f of old.files.values()) old.io.close(f.fd);
    old.files.clear();
    old.closed = true;
    state.onCommit = old.onCommit;
    state.onProblem = old.onProblem;
    state.onResync = old.onResync;
    return opened;
  }

  /** Resolves once no refresh is running (a promotion waits for it). */
  async settled(): Promise<void> {
    while (this.running) await this.running.catch(() => {});
  }

  private async run(hint: RefreshHint | null): Promise<number> {
    const s = this.state;
    s.checkOpen();
    // The writer's commits up to its seq are all in the journal this follower reads (it read the older ones
    // whole), and no reload is due (same generation): the new frames of that journal are all there is to read.
    // A frame under a key not yet known (a rotation) takes the full way, which reads the keyring again.
    if (hint && this.quick(hint)) return this.finish();
    const mark = s.recovery.damaged.length;
    for (let round = 0; ; round++) {
      s.checkOpen();
      const m = await this.currentManifest();
      if (m.generation === s.manifest.generation) break;
      if (round === MAX_RESYNCS) throw new CorruptionError(MANIFEST_FILE, 0, `changed ${MAX_RESYNCS} times during one refresh of a follower`);
      if (round > 0) s.recovery.damaged.length = mark; // damage found in a generation already replaced (files gone) is not damage
      await this.follow(); // first what the files held open still have: fewer commits folded away unseen
      this.reload(m);
    }
    await this.follow();
    return this.finish();
  }

  /** Apply the new frames of the journal `hint` names, when it is the one read in the manifest it names; false: a full run is needed. */
  private quick(hint: RefreshHint): boolean {
    const t = this.tail;
    return t !== null && hint.generation === this.state.manifest.generation && hint.journal === t.n && this.scan(t, true) !== "key";
  }

  /** The end of a run: `onResync` if a reload is still unreported; the seq applied. */
  private finish(): number {
    const s = this.state;
    if (this.resyncDue) {
      this.resyncDue = false;
      s.onResync?.(s.lastSeq);
    }
    return s.lastSeq;
  }

  /** The manifest on disk now (`MANIFEST`, else its copy), reading the keyring again if it is sealed under a newer key. */
  private async currentManifest(): Promise<Manifest> {
    const s = this.state;
    let err: unknown;
    for (let attempt = 0; attempt < 2; attempt++) {
      for (const [name, file] of [
        [MANIFEST_FILE, s.paths.manifest],
        [MANIFEST_COPY_FILE, s.paths.manifestCopy],
      ] as const) {
        try {
          const m = readManifest(s.io.readFile(file), s.keyring ? s.metaKeys : null, name);
          if (!equalBytes(m.storeId, s.manifest.storeId)) throw new CorruptionError(name, 8, "belongs to another store than the one this follower opened");
          return m;
        } catch (e) {
          if (!isCellarError(e, "E_IO") && !isCellarError(e, "E_CORRUPT") && !isCellarError(e, "E_KEY")) throw e;
          err ??= e;
        }
      }
      if (!(await this.reloadKeys())) break;
    }
    throw err;
  }

  /** Read the keyring file again; when it changed (a rotation), its keys join this follower's. */
  private async reloadKeys(): Promise<boolean> {
    const ring = this.state.keyring;
    if (!ring) return false;
    const fresh = await Keyring.load(this.state.io, this.state.paths, ring.unwrappedMasterKey(), ring.scope, () => {});
    if (fresh.generation === ring.generation) {
      fresh.destroy();
      return false;
    }
    ring.adopt(fresh);
    return true;
  }

  /**
   * A new manifest generation: same files (entity versions recorded), or a new segment and journals (a
   * compaction): every file closed, the segment loaded, the journals replayed from `journalStart` by `follow`
   * (commits already reported stay quiet; `onResync` before the next one reported).
   */
  private reload(m: Manifest): void {
    const s = this.state;
    const same = m.journalStart === s.manifest.journalStart && m.segments.length === s.manifest.segments.length && m.segments.every((n, i) => s.manifest.segments[i] === n);
    if (same) {
      s.manifest = m;
      return;
    }
    for (const f of s.files.values()) s.io.close(f.fd);
    s.files.clear();
    s.entities.clear();
    s.segment = null;
    this.reads.forgetLastBlock();
    s.cache.clear();
    this.tail = null;
    this.quietUpTo = Math.max(this.quietUpTo, s.lastSeq);
    this.resyncDue = true;
    s.manifest = m;
    s.lastSeq = m.seqFloor;
    loadSegment(s);
    s.keyring?.dropUnlisted();
  }

  /**
   * Apply the frames of the journals from where this follower stopped, journal after journal, up to the end
   * record of the newest or a frame being written there (not yet).
   */
  private async follow(): Promise<void> {
    for (;;) {
      if (!this.tail && !this.openJournal(this.newerJournal(this.state.manifest.journalStart - 1))) return;
      const t = this.tail!;
      const got = this.scan(t, true);
      if (got === "key") {
        if (await this.reloadKeys()) continue;
        return;
      }
      const next = this.newerJournal(t.n);
      if (next === null) return; // the newest: at its end record, or at a write in progress
      // The writer moved on to a newer journal: this one is complete. Read what it gained meanwhile; a frame
      // that still does not pass is damage, read past as open reads it.
      if (this.scan(t, true) === "stop") this.scan(t, false);
      if (!this.openJournal(next)) return;
    }
  }

  /** Apply the good frames of `t` from where it stopped; how they end: "end" record, "stop" (not yet / damage), unknown "key". */
  private scan(t: Tail, follow: boolean): "end" | "stop" | "key" {
    const s = this.state;
    const io = s.io;
    const fd = t.file.fd;
    const applied: Applied[] = [];
    const src = { size: io.size(fd), read: (into: Uint8Array, at: number) => io.read(fd, into, at) };
    const scan = scanJournalFile(src, t.file.bound, s.lastSeq + 1, s.metaKeys, s.manifest.encrypted, {
      from: t.pos,
      window: this.window,
      requireEnd: t.v3,
      follow,
      allowGap: !follow,
      onFrame: (f) => {
        applied.push(this.apply(t, f));
        s.lastSeq = f.seq;
        t.pos = f.offset + f.length;
      },
    });
    t.file.size = t.pos;
    this.report(applied);
    const stop = scan.damage[0];
    if (!stop) return "end";
    return stop.reason.startsWith("missing key") ? "key" : "stop";
  }

  /** Index one commit frame of journal `t` as replay does; the ops that changed something, for `onCommit`. */
  private apply(t: Tail, f: JournalFrame): Applied {
    const s = this.state;
    const ops: WriteOp[] = [];
    for (const en of f.entries) {
      if (en.op === "put") {
        const loc = new Loc(t.n, f.offset, f.length, f.seq, en.key, en.start, en.length, en.version, en.terms);
        s.applyPut(t.file, en.entity, loc);
        ops.push(this.putOp(en.entity, loc));
      } else if (s.applyDelete(t.file, t.n, en.entity, en.key)) {
        ops.push({ op: "delete", entity: en.entity, key: en.key });
      }
    }
    return { seq: f.seq, ops };
  }

  /** A put as `onCommit` passes it; its value is read (and opened) only if a listener asks for it. */
  private putOp(entity: string, loc: Loc): WriteOp {
    const reads = this.reads;
    return {
      op: "put",
      entity,
      key: loc.key,
      version: loc.version,
      terms: loc.terms,
      get value(): Uint8Array {
        return reads.read(entity, loc);
      },
    };
  }

  /** `onCommit` for each commit not reported before, in seq order (`onResync` first when a reload is due). */
  private report(applied: readonly Applied[]): void {
    const s = this.state;
    this.reporting = true;
    try {
      for (const a of applied) {
        if (a.seq <= this.quietUpTo) continue;
        if (this.resyncDue) {
          this.resyncDue = false;
          s.onResync?.(a.seq - 1);
        }
        if (a.ops.length) s.onCommit?.(a.ops, a.seq);
      }
    } finally {
      this.reporting = false;
    }
  }

  /** The lowest-numbered journal in the directory after journal `n` (and live in the manifest), or null. */
  private newerJournal(n: number): number | null {
    const s = this.state;
    let best: number | null = null;
    for (const name of s.io.readdir(s.dir)) {
      const p = parseName(name);
      if (p.kind === "journal" && p.number > n && p.number >= s.manifest.journalStart && (best === null || p.number < best)) best = p.number;
    }
    return best;
  }

  /** Start reading journal `n` (its header checked); false when it is not there or not whole yet. */
  private openJournal(n: number | null): boolean {
    if (n === null) return false;
    const s = this.state;
    const io = s.io;
    let fd: number;
    try {
      fd = io.open(s.paths.journal(n), "r");
    } catch (e) {
      if (isCellarError(e, "E_IO") && (e as IoError).errno === "ENOENT") return false; // retired: a newer manifest says more
      throw e;
    }
    try {
      const head = new Uint8Array(FILE_HEADER_SIZE);
      if (io.read(fd, head, 0) < FILE_HEADER_SIZE) throw new FrameError("bad magic", "header not written yet");
      const h = decodeFileHeader(head, FileKind.journal);
      if (h.fileNumber !== n || !equalBytes(h.storeId, s.manifest.storeId)) throw new FrameError("bad magic", "not a journal of this store");
      const file: ReadFile = { fd, bound: h.bound, kind: "journal", size: FILE_HEADER_SIZE, plainTotal: 0, plainLive: 0 };
      s.files.set(n, file);
      this.tail = { n, file, pos: FILE_HEADER_SIZE, v3: h.version >= 3 };
      return true;
    } catch (e) {
      io.close(fd);
      if (e instanceof FrameError) return false; // being created: not yet
      throw e;
    }
  }
}
