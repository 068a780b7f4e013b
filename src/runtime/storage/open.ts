/**
 * Open and recovery (docs/FORMAT.md, "Recovery policy" and "Crash windows": "Open"): take the lock, load or
 * create the keyring and manifest, settle the files the manifest does not name (as manifest-choice.ts
 * judged them), load the segment's index, replay the journals over it, and hand the resulting `StoreState` to
 * `make`, which builds the `Engine` facade on it (scrub.ts then checks the segment's blocks in the background).
 * Called by `Engine.open`, and by `Engine`'s re-keying of the store's copies (`openCopy`).
 */
import path from "node:path";
import { CorruptionError, isCellarError, type IoError, UsageError } from "../errors.js";
import { parseName, StorePaths } from "../format/filenames.js";
import { FILE_HEADER_SIZE, FileKind, FORMAT_VERSION, STORE_ID_SIZE } from "../format/format.js";
import { decodeFileHeader, FrameError } from "../format/frame.js";
import { Loc } from "../format/location.js";
import { type Failpoint, type FileIO, preloadNativeLock } from "../platform/io.js";
import { NO_HOOKS } from "./hooks.js";
import { StoreLock } from "../platform/lock.js";
import { randomBytes } from "../crypto/seal.js";
import { Keyring, type KeyScope, type MasterKeySource } from "../crypto/keyring.js";
import { JournalWindow, scanJournalFile } from "./journal-reader.js";
import { JournalWriter } from "./journal-writer.js";
import { Keyspace } from "./keyspace.js";
import { type Manifest, writeManifest, writeManifestBytes } from "./manifest.js";
import { judgeLeftovers, type ManifestChoice, selectManifest } from "./manifest-choice.js";
import { type EngineOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import { settleRestore } from "./restore-swap.js";
import { deadAtOpen, equalBytes, type OpenedSegment, openSegment, SegmentProblem } from "./segment.js";
import { attachPages } from "./reads.js";
import { turn } from "../platform/turn.js";
import { type DamageReport, type ReadFile, type RecoveryReport, StoreState } from "./state.js";

preloadNativeLock(); // with the library's import, not the first open (platform/io.ts)

/**
 * Builds the engine on a store just opened (wiring its jobs and starting them); `retireDamage`: open found
 * damage in files it must retire by a compaction right away.
 */
export type MakeEngine<E> = (state: StoreState, retireDamage: boolean) => E;

/** Open (or create) the store `options` name: `Engine.open`; with `held`, under that lock (a follower's promotion, released on failure). */
export async function openEngine<E>(options: EngineOptions, make: MakeEngine<E>, held?: StoreLock): Promise<E> {
  const { io, fp, provider, opts } = resolveOptions(options);
  const paths = new StorePaths(options.dir);
  settleRestore(io, options.dir); // a restore cut short between its two renames is finished first (restore-swap.ts)
  if (opts.readOnly && !io.exists(paths.manifest) && !io.exists(paths.manifestCopy)) {
    throw new UsageError(`no store in \`${options.dir}\`: a read-only (\`redactSensitive\`) open never creates one`);
  }
  io.mkdirp(options.dir);
  const lock = held ?? StoreLock.acquire(io, options.dir);
  try {
    await turn(); // issue 15: the open lets the event loop turn between its steps (each a few ms; see Opening.load)
    return await openLocked(io, paths, lock, provider, options.keyScope ?? "all", opts, fp, make);
  } catch (e) {
    lock.release();
    throw e;
  }
}

/**
 * Open a copy of a store that Cellar made (a pre-migration backup) in `dir`, under the master key of `keyring`
 * (the store's), for re-keying it: no automatic compaction, no background check, damage refused.
 */
export async function openCopy<E>(io: FileIO, dir: string, keyring: Keyring | null, storeOpts: ResolvedOptions, make: MakeEngine<E>): Promise<E> {
  const opts: ResolvedOptions = {
    ...storeOpts,
    onCorruption: "refuse",
    verifyOnOpen: false,
    readOnly: false,
    blockCacheBytes: 1024 * 1024,
    recordCacheBytes: 0,
    durability: "full",
    compaction: { ...storeOpts.compaction, auto: false },
    hooks: NO_HOOKS, // a copy's work is not the store's
  };
  const paths = new StorePaths(dir);
  const lock = StoreLock.acquire(io, dir);
  try {
    return await openLocked(io, paths, lock, keyring?.unwrappedMasterKey() ?? null, "all", opts, () => {}, make);
  } catch (e) {
    lock.release();
    throw e;
  }
}

async function openLocked<E>(
  io: FileIO,
  paths: StorePaths,
  lock: StoreLock,
  provider: MasterKeySource | null,
  scope: KeyScope,
  opts: ResolvedOptions,
  fp: (name: Failpoint) => void,
  make: MakeEngine<E>,
): Promise<E> {
  let keyring: Keyring | null = null;
  try {
    return await openWithKeys(io, paths, lock, provider, scope, opts, fp, (k) => (keyring = k), make);
  } catch (e) {
    (keyring as Keyring | null)?.destroy();
    throw e;
  }
}

async function openWithKeys<E>(
  io: FileIO,
  paths: StorePaths,
  lock: StoreLock,
  provider: MasterKeySource | null,
  scope: KeyScope,
  opts: ResolvedOptions,
  fp: (name: Failpoint) => void,
  gotKeyring: (k: Keyring) => void,
  make: MakeEngine<E>,
): Promise<E> {
  let keyring: Keyring | null = null;
  const recovery: RecoveryReport = { truncatedTail: null, damaged: [], removedFiles: [], created: false };
  const names = io.readdir(paths.dir);
  let manifest: Manifest;
  /** Which manifest file was chosen, and what is wrong with the other (null for a new store). */
  let chosen: ManifestChoice | null = null;
  if (!io.exists(paths.manifest) && !io.exists(paths.manifestCopy)) {
    ({ manifest, keyring } = await createStore(io, paths, names, provider, scope, fp, recovery, gotKeyring));
  } else {
    const sel = await selectManifest(io, paths, provider, scope, fp, (k) => {
      keyring = k;
      gotKeyring(k);
    });
    manifest = sel.manifest;
    chosen = sel;
    await turn(); // after the keyring and manifest (their reads, checks and key unwrapping)
  }

  const requireSealed = manifest.encrypted;
  const { journals, superseded, unnamed, maxFile } = listFiles(io, paths, names, manifest, opts.readOnly, recovery);
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

  // The state exists from here on so that replay indexes records exactly as live writes do;
  // its journal is set once replay knows which one to continue.
  const state = new StoreState(paths.dir, io, paths, lock, manifest, keyring, null as unknown as JournalWriter, 0, opts, fp, recovery);
  const opening = new Opening(state, requireSealed);
  opening.settle(chosen, leftovers);
  return opening.load(journals, make);
}

/**
 * A new store (or a creation that crashed before its manifest was renamed into place: its keyring, if
 * written, guards nothing yet and is replaced): its keyring and first manifest, written.
 */
async function createStore(
  io: FileIO,
  paths: StorePaths,
  names: readonly string[],
  provider: MasterKeySource | null,
  scope: KeyScope,
  fp: (name: Failpoint) => void,
  recovery: RecoveryReport,
  gotKeyring: (k: Keyring) => void,
): Promise<{ manifest: Manifest; keyring: Keyring | null }> {
  let keyring: Keyring | null = null;
  // The manifest is written before any journal exists, so journals or segments without one mean the
  // manifest was lost: refuse rather than start over on top of acknowledged data.
  const leftovers = names.filter((n) => {
    const k = parseName(n).kind;
    return k === "segment" || k === "journal";
  });
  if (leftovers.length) {
    throw new CorruptionError("MANIFEST", 0, `missing, but the directory holds ${leftovers.join(", ")}`);
  }
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
  const manifest: Manifest = {
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
  return { manifest, keyring };
}

/**
 * The data files in the directory, by what `manifest` says of them: live journals (sorted), files it does not
 * name to be judged (docs/FORMAT.md, "Files the manifest does not name": `superseded` were numbered before it
 * was written, `unnamed` segments after), and the highest file number. Leftovers are removed by a writable
 * open only (a read-only one leaves them, unread): temp files here, the others once judged.
 */
function listFiles(
  io: FileIO,
  paths: StorePaths,
  names: readonly string[],
  manifest: Manifest,
  readOnly: boolean,
  recovery: RecoveryReport,
): { journals: number[]; superseded: string[]; unnamed: number[]; maxFile: number } {
  const live = new Set(manifest.segments);
  const journals: number[] = [];
  const superseded: string[] = [];
  const unnamed: number[] = [];
  let maxFile = manifest.nextFile - 1;
  const sweep = !readOnly;
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
  return { journals, superseded, unnamed, maxFile };
}

/** One open, once its manifest is chosen: puts the directory right, then loads the segment and the journals. */
class Opening {
  private readonly io: FileIO;
  private readonly paths: StorePaths;
  private readonly opts: ResolvedOptions;
  private readonly recovery: RecoveryReport;
  /** The segment's file while it is loaded (then in the state's files). */
  private readonly files = new Map<number, ReadFile>();
  /** Where each damaged file was copied to in quarantine/ (null: it could not be). */
  private readonly copies = new Map<string, string | null>();
  /** Damage reported by `settle`: about whole files already put right (no compaction needed for it). */
  private misfits = 0;
  /** Every delete the journals hold (entity → key → seq of its last delete), kept when damage is found. */
  private readonly deletes = new Map<string, Map<string, number>>();

  constructor(
    private readonly state: StoreState,
    private readonly requireSealed: boolean,
  ) {
    this.io = state.io;
    this.paths = state.paths;
    this.opts = state.opts;
    this.recovery = state.recovery;
  }

  /** Keep a copy of a damaged file in quarantine/ (once per file at open). */
  private quarantine(name: string): string | null {
    if (!this.copies.has(name)) this.copies.set(name, this.state.keepCopy(name));
    return this.copies.get(name)!;
  }

  /** Report damage: refused at once in "refuse" mode (nothing written), else quarantined and listed. */
  private damage(d: Omit<DamageReport, "quarantinedAs">, keepCopy = true): void {
    if (this.opts.onCorruption === "refuse") throw new CorruptionError(d.file, d.offset, d.reason);
    this.recovery.damaged.push({ ...d, quarantinedAs: keepCopy ? this.quarantine(d.file) : null });
  }

  /** Act on the manifest choice and on the judgement of the files it does not name; nothing was changed before. */
  settle(chosen: ManifestChoice | null, leftovers: ReturnType<typeof judgeLeftovers>): void {
    const { io, paths, opts, recovery, state } = this;
    if (chosen?.issue) {
      const i = chosen.issue;
      recovery.damaged.push({ file: i.file, offset: i.offset, bytes: i.bytes, reason: i.reason, records: [], quarantinedAs: i.bytes ? this.quarantine(i.file) : null });
    }
    // A read-only open reads the good copy and leaves the other as it is (reported above).
    if (chosen?.rewrite && !opts.readOnly) writeManifestBytes(io, paths, chosen.bytes, state.fp);
    for (const a of leftovers.aside) {
      recovery.damaged.push({ file: a.file, offset: 0, bytes: a.bytes, reason: a.reason, records: [], quarantinedAs: state.moveAside(a.file) });
    }
    for (const n of leftovers.remove) {
      io.unlink(paths.file(n));
      recovery.removedFiles.push(n);
    }
    if (recovery.removedFiles.length || leftovers.aside.length) io.syncDir(paths.dir);
    // A destruction of old data keys cut short by a crash: finish it (no live file uses them), once the
    // manifest is known to account for the directory (restored older files might still need them).
    if (leftovers.retireKeys && !opts.readOnly) state.keyring?.retireBelow(state.manifest.keyFloor);
    this.misfits = recovery.damaged.length;
  }

  /**
   * Load the segment, replay the journals over it, and build the engine; closes every file opened if that fails.
   * The event loop turns after each step (issue 15: a cold open of 100,000 records held it ~27 ms in one step).
   */
  async load<E>(journals: readonly number[], make: MakeEngine<E>): Promise<E> {
    try {
      const refuse = this.opts.onCorruption === "refuse";
      await turn(); // after the directory is settled (leftovers judged, the store's state built)
      this.loadSegment(refuse);
      await turn();
      const { seq, writer } = this.replayJournals(journals);
      if (refuse && this.state.segment) attachPages(this.state, this.state.segment); // loaded: damage found from here on is handled as usual
      await turn();
      return this.finish(seq, writer, make);
    } catch (e) {
      for (const f of new Set([...this.files.values(), ...this.state.files.values()])) {
        try {
          this.io.close(f.fd);
        } catch {
          // closing after a failed open
        }
      }
      throw e;
    }
  }

  /** Step 1 alone, for a follower (follower.ts): closes the file it opened if that fails. */
  segmentOnly(): void {
    try {
      this.loadSegment();
    } catch (e) {
      for (const f of this.files.values()) this.io.close(f.fd);
      throw e;
    }
  }

  /** 1. The segment: its index gives every record's location without reading values. `refusePages`: see below. */
  private loadSegment(refusePages = false): void {
    const { io, paths, opts, state, files } = this;
    const manifest = state.manifest;
    if (manifest.segments.length > 1) {
      throw new CorruptionError("MANIFEST", FILE_HEADER_SIZE, `names ${manifest.segments.length} segments; format version ${FORMAT_VERSION} has at most one`);
    }
    for (const n of manifest.segments) {
      const name = path.basename(paths.segment(n));
      let seg: OpenedSegment;
      try {
        seg = openSegment(io, paths.segment(n), n, manifest.storeId, state.metaKeys, this.requireSealed, opts.verifyOnOpen === true);
      } catch (e) {
        if (e instanceof SegmentProblem) {
          this.damage({ file: name, offset: e.offset, bytes: 0, reason: e.reason, records: [] });
          continue;
        }
        if (isCellarError(e, "E_IO") && (e as IoError).errno === "ENOENT") {
          this.damage({ file: name, offset: 0, bytes: 0, reason: "file missing", records: [] }, false);
          continue;
        }
        throw e;
      }
      const file: ReadFile = { fd: seg.fd, bound: seg.bound, kind: "segment", size: seg.size, plainTotal: seg.index.valueBytes, plainLive: 0 };
      files.set(n, file);
      state.files.set(n, file); // the page loader reads through it (a damaged block's records are named from its pages)
      // An open that refuses damage (restore's and verify's check of a backup) refuses a damaged index page its
      // replay meets, where another open loses the page's records (re-attached after `load`); that check reads every page (verify-records.ts).
      attachPages(state, seg.index, refusePages);
      const dead = deadAtOpen(seg, name, (d) => this.damage(d));
      state.segment = seg.index;
      for (const entity of seg.index.entities()) state.entities.set(entity, new Keyspace(entity, seg.index, dead.get(entity)));
    }
    for (const [k, v] of files) state.files.set(k, v);
  }

  /** 2. Journals, oldest first, replayed over the segments: the next seq, and the last journal's writer to continue. */
  private replayJournals(journals: readonly number[]): { seq: number; writer: JournalWriter | null } {
    const { io, paths, opts, recovery, state } = this;
    const manifest = state.manifest;
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
        this.damage({ file: name, offset: 0, bytes: size, reason: e.message, records: [] });
        gapExcused = true;
        continue;
      }
      const file: ReadFile = { fd, bound: header.bound, kind: "journal", size: 0, plainTotal: 0, plainLive: 0 };
      state.files.set(n, file);
      const scan = scanJournalFile(src, header.bound, seq, state.metaKeys, this.requireSealed, {
        allowGap: gapExcused,
        requireEnd: header.version >= 3,
        onFrame: (f) => {
          for (const en of f.entries) {
            if (en.op === "put") {
              state.applyPut(file, en.entity, new Loc(n, f.offset, f.length, f.seq, en.key, en.start, en.length, en.version, en.terms));
            } else {
              state.applyDelete(file, n, en.entity, en.key);
              let m = this.deletes.get(en.entity);
              if (!m) this.deletes.set(en.entity, (m = new Map()));
              m.set(en.key, f.seq);
            }
          }
        },
      });
      file.size = scan.end;
      gapExcused = false;
      const resumed = isLast ? JournalWriter.resume(io, fd, n, header.bound, scan.end, scan.nextSeq - 1, header.version >= 3, paths.journal(n)) : null;
      for (const d of scan.damage) {
        if (d.kind === "torn" && resumed) {
          const quarantinedAs = this.quarantine(name);
          // Cut the torn frame: zero it (and put the end record back) so later frames are never read after
          // stale bytes (a read-only open writes nothing, and leaves it).
          if (!opts.readOnly) resumed.cut(d.offset, d.length);
          recovery.truncatedTail = { file: name, offset: d.offset, bytes: d.length, reason: d.reason, quarantinedAs };
        } else {
          // The keys of an unreadable frame are unknown: records it overwrote read back as their earlier values.
          this.damage({ file: name, offset: d.offset, bytes: d.length, reason: d.reason, records: [] });
          gapExcused = true;
          // A journal cut short: put its end record back so that the next open does not report it again.
          if (d.kind === "cut" && resumed && !opts.readOnly) resumed.writeEnd();
        }
      }
      seq = scan.nextSeq;
      if (resumed) writer = resumed;
    }
    return { seq, writer };
  }

  /** 3. The journal writes go to (a new one when replay found none to continue), then the engine. */
  private finish<E>(seq: number, resumed: JournalWriter | null, make: MakeEngine<E>): E {
    const { io, paths, opts, recovery, state } = this;
    const manifest = state.manifest;
    let writer = resumed;
    if (!writer && !opts.readOnly) {
      const n = manifest.nextFile++;
      writer = JournalWriter.create(io, paths.journal(n), n, manifest.storeId, seq - 1);
      state.fp("journal.afterCreate");
      io.syncDir(paths.dir);
      state.files.set(n, { fd: writer.fd, bound: writer.bound, kind: "journal", size: writer.tail, plainTotal: 0, plainLive: 0 });
    }
    // A read-only open may have no journal to continue: it never writes.
    state.journal = writer as JournalWriter;
    state.lastSeq = seq - 1;
    state.recount();
    if (recovery.damaged.length) noteDeletes(state, this.deletes);
    // Damaged files are retired by a compaction right away: their good records move to a fresh segment,
    // the damaged bytes stay in quarantine/.
    return make(state, recovery.damaged.length > this.misfits);
  }
}

/** A follower's (re)load of the segment its state's manifest names (follower.ts): step 1 of open, changing no file. */
export function loadSegment(state: StoreState): void {
  new Opening(state, state.manifest.encrypted).segmentOnly();
}

/**
 * After replay, when open found damage: a segment record that a later journal write replaced or deleted was
 * not lost with its block, so it is not named in `records`; and the deletes the journals hold are kept with
 * their seq (`StoreState.deletedAtOpen`), even those of keys the damage had already removed (they leave no
 * tombstone), since the compaction retiring the damage drops the tombstones and recovery from a backup
 * (typed/recover.ts) must not bring back a record the store deleted.
 */
function noteDeletes(state: StoreState, deletes: Map<string, Map<string, number>>): void {
  for (const d of state.recovery.damaged) {
    // (A delete of a key in a damaged block leaves no tombstone: the key was already gone when it replayed.)
    if (d.records.length) d.records = d.records.filter((r) => !state.entities.get(r.entity)?.overlay.has(r.key) && !deletes.get(r.entity)?.has(r.key));
  }
  state.deletedAtOpen = deletes;
}
