/**
 * The storage engine: bytes in, bytes out. It knows entities by name, keys as
 * strings and values as opaque bytes; the typed layer (store.ts) does
 * validation and protobuf encoding on top.
 *
 * `Engine` is a facade over the engine's jobs, each in a file of its own, sharing one `StoreState`
 * (state.ts): open and recovery (open.ts, with manifest-choice.ts), group commit and relaxed sync
 * (commit.ts), the read path (reads.ts), compaction and migration (compaction.ts) and key management
 * (key-admin.ts). Called by the typed layer (typed/store.ts, typed/upgrade.ts), the tests and the bench.
 *
 * Layout and crash-safety argument: docs/FORMAT.md.
 */
import { type CellarError, CorruptionError, FollowerError, StoreClosedError, UsageError } from "../errors.js";
import type { Loc } from "../format/location.js";
import type { WriteOp } from "../format/records.js";
import type { FileIO } from "../platform/io.js";
import type { Keyring } from "../crypto/keyring.js";
import type { KeyProvider } from "../crypto/keys.js";
import type { LruCache } from "./cache.js";
import { GroupCommit } from "./commit.js";
import { type BackupInfo, type BackupOptions, writeBackup } from "./backup.js";
import { writeReencodedBackup } from "./backup-reencode.js";
import { Compaction, type Rewrite } from "./compaction.js";
import { Follower, openFollowerState, type RefreshHint, writerPid } from "./follower.js";
import { KeyAdmin } from "./key-admin.js";
import type { Keyspace } from "./keyspace.js";
import { OrderedIndex } from "./ordered-index.js";
import { openCopy, openEngine } from "./open.js";
import { scrub } from "./scrub.js";
import type { EngineOptions } from "./options.js";
import { Reads } from "./reads.js";
import { type EntityUsage, entityUsage } from "./usage.js";
import { type ForEachRecordOptions, forEachRecord, type RecordVisitor } from "./verify-records.js";
import type { RecoveryReport, StoreState } from "./state.js";

export type { WriteOp } from "../format/records.js";
export { Loc } from "../format/location.js";
export type { EngineOptions } from "./options.js";
export type { DamageReport, RecoveryReport } from "./state.js";
export type { Rewrite } from "./compaction.js";
export type { EntityUsage } from "./usage.js";
export type { IndexEntry, OrderedIndex, SkBound, SkRange } from "./ordered-index.js";

export class Engine {
  /**
   * Decoded frames and blocks (default key space, by frame key) and the store's decoded records (a key
   * space per entity), under one budget: memory goes to whichever the workload uses.
   */
  readonly cache: LruCache<number | string, unknown>;
  /** Resolves when the background check of the segment's blocks (verifyOnOpen: "background") is done. */
  verified: Promise<void> = Promise.resolve();
  readonly dir: string;
  readonly io: FileIO;
  /** The store's keys; null for a plaintext store. */
  readonly keyring: Keyring | null;
  recovery: RecoveryReport; // (a promotion's open replaces it)
  private state!: StoreState;
  private entities!: Map<string, Keyspace>;
  private reads!: Reads;
  private commit!: GroupCommit;
  private compaction!: Compaction;
  private keyAdmin!: KeyAdmin;
  /** Backups running: `close` waits for them (a re-encoded one reads through the keyring). */
  private readonly backups = new Set<Promise<unknown>>();
  /** Set while this engine follows a store another process writes (follower.ts). */
  private follower: Follower | null = null;
  private promoting: Promise<void> | null = null;

  private constructor(state: StoreState, retireDamage: boolean) {
    this.cache = state.cache;
    this.dir = state.dir;
    this.io = state.io;
    this.keyring = state.keyring;
    this.recovery = state.recovery;
    this.wire(state, retireDamage);
  }

  /** Wire the jobs on a store just opened (open.ts), and start them. */
  private wire(state: StoreState, retireDamage: boolean): void {
    this.state = state;
    this.entities = state.entities;
    this.reads = new Reads(state);
    this.keyAdmin = new KeyAdmin(state, (dir) => openCopy(state.io, dir, state.keyring!, state.opts, Engine.make));
    this.compaction = new Compaction(state, this.reads, this.keyAdmin);
    this.commit = new GroupCommit(state, this.reads, this.compaction);
    if (state.opts.durability === "relaxed") this.commit.startSyncTimer();
    // Damaged files are retired by a compaction right away: their good records move to a fresh segment,
    // the damaged bytes stay in quarantine/.
    if (retireDamage) this.compaction.maybeCompact(true);
    if (state.opts.verifyOnOpen === "background" && state.segment) this.verified = scrub(state, this.reads, this.compaction, state.segment);
  }

  private static make(this: void, state: StoreState, retireDamage: boolean): Engine {
    return new Engine(state, retireDamage);
  }

  static open(options: EngineOptions): Promise<Engine> {
    return openEngine(options, Engine.make);
  }

  /** Follow the store another process writes (follower.ts): no lock, no file changed; `refresh` applies its commits. */
  static async openFollower(options: EngineOptions): Promise<Engine> {
    const state = await openFollowerState(options);
    const engine = new Engine(state, false);
    engine.follower = new Follower(state, engine.reads, options);
    await engine.follower.refresh().catch(async (e: unknown) => {
      await engine.close();
      throw e;
    });
    return engine;
  }

  /** `"writer"` (holds the lock), or `"follower"` (reads what a writer in another process commits). */
  get role(): "writer" | "follower" {
    return this.follower ? "follower" : "writer";
  }

  /** A follower: apply every complete commit on disk (`onCommit` for each, in seq order); resolves with `lastSeq`. `hint`: the writer's `position`. */
  refresh(hint?: RefreshHint): Promise<number> {
    if (this.state.closed) return Promise.reject(new StoreClosedError());
    if (this.promoting) return this.promoting.catch(() => {}).then(() => this.refresh());
    return this.follower ? this.follower.refresh(hint) : Promise.resolve(this.state.lastSeq);
  }

  /** The writer: its manifest generation and journal, which its followers' refreshes are told (`RefreshHint`). */
  get position(): RefreshHint {
    return { generation: this.state.manifest.generation, journal: this.state.journal.number };
  }

  /** The share layer's hooks: the writer's for followers' writes (`StoreState.gather`, `syncAside`), a follower's `beforeRead`. */
  shareWrites(hooks: Partial<Pick<StoreState, "gather" | "syncAside" | "beforeRead">>): void {
    Object.assign(this.state, hooks);
  }

  /** Seq of the write of `key`'s live version (0: absent; in the segment: its `seqFloor`), for write preconditions. */
  locateSeq(entity: string, key: string): number {
    this.checkOpen();
    const loc = this.entities.get(entity)?.get(key);
    if (!loc) return 0;
    return this.state.files.get(loc.file)?.kind === "segment" ? this.state.manifest.seqFloor : loc.seq;
  }

  /** A follower becomes the writer (`E_LOCKED` while the lock is held): `Follower.openAsWriter`, then the writer's jobs. */
  promote(): Promise<void> {
    if (!this.follower || this.promoting) return this.promoting ?? Promise.resolve();
    const seen = this.state.lastSeq;
    this.promoting = this.follower.openAsWriter(this.keyring, this.cache).then(({ state, retire }) => {
      this.follower = null;
      this.recovery = state.recovery;
      this.wire(state, retire);
      if (state.lastSeq > seen) state.onResync?.(state.lastSeq);
    });
    return this.promoting.finally(() => (this.promoting = null));
  }

  private refused(operation: string): Promise<never> { // an operation only the writer runs, on a follower
    return Promise.reject(new FollowerError(operation, this.dir, writerPid(this.io, this.state.paths)));
  }

  /**
   * Called after each committed frame with the ops that changed something: a delete of a key that was not
   * there is written (a tombstone) but not passed on. The store turns these into change events.
   */
  get onCommit(): ((ops: readonly WriteOp[], seq: number) => void) | null {
    return this.state.onCommit;
  }

  set onCommit(f: ((ops: readonly WriteOp[], seq: number) => void) | null) {
    this.state.onCommit = f;
  }

  /** Highest seq applied (writer: acknowledged): the commit the store's reads reflect. */
  get lastSeq(): number {
    return this.state.lastSeq;
  }

  /** Listener for problems found after open (damage on read, failed background compaction). */
  get onProblem(): ((e: CellarError) => void) | null {
    return this.state.onProblem;
  }

  set onProblem(f: ((e: CellarError) => void) | null) {
    this.state.onProblem = f;
  }

  /** A follower that lost track of single commits (a compaction folded them away unread): all up to `seq` may have changed. */
  get onResync(): ((seq: number) => void) | null {
    return this.state.onResync;
  }
  set onResync(f: ((seq: number) => void) | null) {
    this.state.onResync = f;
  }

  get storeId(): Uint8Array { return this.state.manifest.storeId; } // prettier-ignore

  /** Schema versions recorded for each entity. */
  get storedVersions(): ReadonlyMap<string, number> {
    return this.state.manifest.entities;
  }

  // ---------------------------------------------------------------- reads

  private checkOpen(): void {
    if (this.state.closed) throw new StoreClosedError();
    this.state.beforeRead?.(); // a lazy follower applies the commits it was told of (share/sharing.ts `catchUp`)
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
   * those whose key sorts after it; `terms` false: a segment record's location lists no index terms (a read needs none). Consume it within one synchronous step (see Keyspace.scan).
   */
  scan(entity: string, after?: string, terms = true): Iterable<[string, Loc]> {
    this.checkOpen();
    return this.entities.get(entity)?.scan(after, terms) ?? [];
  }

  /**
   * The ordered index of `entity`'s terms starting with `prefix` (entries' sk: the term without it), built on the
   * first call (sync, from every live record's terms), kept up to date by every write. Ask again after an await:
   * a compaction that changed terms, a follower's reload or a promotion starts a new one.
   */
  orderedIndex(entity: string, prefix: string, compareKeys: (a: string, b: string) => number): OrderedIndex {
    this.checkOpen();
    return this.entities.get(entity)?.orderedIndex(prefix, compareKeys) ?? new OrderedIndex(compareKeys, prefix);
  }

  /** {@link orderedIndex}'s first build in slices, writes meanwhile included (Keyspace.buildIndex): await it first (issue 15). */
  buildOrderedIndex(entity: string, prefix: string, compareKeys: (a: string, b: string) => number): Promise<void> {
    this.checkOpen();
    return this.entities.get(entity)?.buildIndex(prefix, compareKeys) ?? Promise.resolve();
  }

  /** The terms of a live record (undefined when absent), without reading its value. */
  termsOf(entity: string, key: string): readonly string[] | undefined {
    this.checkOpen();
    return this.entities.get(entity)?.termsOf(key);
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
    return { version: loc.version, value: this.reads.read(entity, loc) };
  }

  /** Read the value of `entity` at a location: its plaintext (a journal value opened with the entity's record key); damage is reported and thrown (`E_CORRUPT`). */
  read(entity: string, loc: Loc): Uint8Array {
    return this.reads.read(entity, loc);
  }

  /**
   * Whether a live record's value is in a journal (not in the segment): a reader of every record (export)
   * reads the segment's in key order (block after block) and the journals' in file order (frame after frame).
   */
  inJournal(loc: Loc): boolean {
    return this.state.files.get(loc.file)?.kind === "journal";
  }

  /** File name and frame offset of a record's location, for error reports. */
  where(loc: Loc): { file: string; offset: number } {
    return this.reads.where(loc);
  }

  // ---------------------------------------------------------------- writes

  /** Commit `ops` atomically. Resolves once durable (`durability: "full"`) or written (`"relaxed"`); ops issued while a flush runs join the next one. */
  write(ops: readonly WriteOp[]): Promise<void> {
    if (this.follower) return this.refused("write");
    return this.commit.write(ops);
  }

  /** Resolves when every write issued so far has been committed (or failed). */
  drain(): Promise<void> {
    return this.commit.drain();
  }

  /**
   * Null when no write is queued and no compaction merging records in (an import) runs: records read and written
   * again in the same synchronous step (typed/index-build.ts) overwrite nothing newer. Else a wait (ask again).
   */
  unsettled(): Promise<void> | null {
    if (this.commit.idle && !this.compaction.merging) return null;
    return this.commit.drain().then(() => this.compaction.merging ? this.compaction.compacting?.catch(() => {}) : undefined);
  }

  // ---------------------------------------------------------------- compaction

  /** Estimated bytes in files that no live record needs. */
  get deadBytes(): number {
    return this.state.deadBytes;
  }

  stats(): { fileBytes: number; deadBytes: number; journalBytes: number; records: number; blockCacheBytes: number } {
    return this.state.stats();
  }

  /** Records and bytes (live, dead) per engine entity, internal `~` names included (usage.ts). */
  entityUsage(): Map<string, EntityUsage> {
    this.checkOpen();
    return entityUsage(this.state);
  }

  /** Rewrite every live record into one new segment and retire the old files; reads and writes go on meanwhile; a crash at any step leaves the old state or the new one. */
  compact(): Promise<void> {
    if (this.follower) return this.refused("compact");
    return this.compaction.compact();
  }

  /**
   * A compaction that passes every live record of the entities in `rewrite.versions` through
   * `rewrite.transform` (schema migration) and records those entities' new schema versions in the same
   * manifest write: the switch to migrated records is one atomic rename. If `transform` throws, the new
   * segment is removed and the store stays exactly as it was (its new, empty journal aside).
   */
  rewrite(rewrite: Rewrite): Promise<void> {
    if (this.follower) return this.refused("rewrite");
    return this.compaction.rewrite(rewrite);
  }

  /** Record the schema versions the app writes, in the manifest (rewritten only when they change). */
  setEntityVersions(versions: ReadonlyMap<string, number>): void {
    this.state.setEntityVersions(versions);
  }

  // ---------------------------------------------------------------- keys

  /** Key ids and master key kind, for `store.keyInfo()`. Never key material. */
  keyInfo(): { encrypted: boolean; activeKeyId: number; keyIds: number[]; masterKey: "raw" | "passphrase" | "external" | null } {
    return this.keyAdmin.keyInfo();
  }

  /**
   * Make a new random data key the active one: writes from now on use it. Records under older keys are
   * re-encrypted by the next compaction (`reencrypt()` runs one now), after which the old keys are destroyed.
   */
  rotateKey(): number {
    if (this.follower) throw new FollowerError("rotateKey", this.dir, writerPid(this.io, this.state.paths));
    return this.keyAdmin.rotateKey();
  }

  /** Re-encrypt every record under the active data key (a compaction) and destroy older data keys; resolves with the ids destroyed. */
  reencrypt(): Promise<number[]> {
    if (this.follower) return this.refused("reencrypt");
    return this.keyAdmin.reencrypt(this.compaction);
  }

  /**
   * Rewrap the data keys under a new master key (one small file rewritten, whatever the store's size), and
   * those of every keyed copy of the store (pre-migration backups) and of `backupFiles` (the store's own
   * backup files, backup-rekey.ts): the old master key opens none of them after. Copies are rewrapped first and the store's keyring last, so a crash in between leaves copies
   * under the new key and the store under the old: the same call again (with the same new key) finishes.
   */
  changeMasterKey(provider: KeyProvider, backupFiles: readonly string[] = []): Promise<void> {
    if (this.follower) return this.refused("changeMasterKey");
    return this.keyAdmin.changeMasterKey(provider, backupFiles);
  }

  // ---------------------------------------------------------------- backups

  /** The names of every entity that has or had records (`~`-names included). */
  entityNames(): string[] {
    this.checkOpen();
    return [...new Set([...this.entities.keys(), ...this.state.manifest.entities.keys()])];
  }

  /**
   * Every record once in file order (segment blocks, then the journals' live records), each checked as a
   * read checks it: a full check of a store (backup verification). Segment records shadowed by a newer
   * write are visited too. Damage throws `CorruptionError`.
   */
  forEachRecord(visit: RecordVisitor, options?: ForEachRecordOptions): Promise<void> {
    this.checkOpen();
    return forEachRecord(this.state, this.reads, visit, options);
  }

  /**
   * An online backup into one file (storage/backup.ts): everything acknowledged before the call, nothing
   * after; writes go on meanwhile. Sealed bytes are copied, never re-sealed.
   */
  backup(options: BackupOptions, only?: ReadonlyMap<string, ReadonlySet<string>>): Promise<BackupInfo> {
    if (this.follower) return this.refused("backup");
    const end = this.state.opts.hooks.backup?.(options?.label ?? "");
    // A selection, or leaving the sensitive keys out, needs the records re-encoded (backup-reencode.ts).
    const write = () =>
      only || options?.entities !== undefined || options?.includeSensitive === false ? writeReencodedBackup(this.state, options, only) : writeBackup(this.state, options);
    // Damage found in live files is retired by a compaction (started at once): a backup waits for it, and its
    // point is taken then; files still damaged after it are refused (a backup must verify).
    const run = this.state.opts.readOnly || this.state.closed || !this.state.liveDamage() // (write() refuses the first two)
      ? write()
      : (async () => {
          if (this.compaction.compacting) await this.compaction.compacting.catch(() => {});
          const d = this.state.liveDamage();
          if (d) throw new CorruptionError(d.file, d.offset, `${d.reason}; damaged data is still live (compact the store first): no backup was written`);
          return write();
        })();
    this.backups.add(run);
    run.then(
      (info) => (this.backups.delete(run), end?.({ error: null, result: info })),
      (e: unknown) => (this.backups.delete(run), end?.({ error: e, result: null })),
    );
    return run;
  }

  /**
   * Pack a copy of this store that Cellar made (a legacy pre-migration directory, `backups/<name>/`) into
   * the backup file `to`, under this store's master key, dated `createdAt` (backup-legacy.ts).
   */
  async packCopy(dir: string, to: string, label: string, createdAt: number): Promise<BackupInfo> {
    this.checkOpen();
    const copy = await openCopy(this.state.io, dir, this.state.keyring, this.state.opts, Engine.make);
    try {
      return await writeBackup(copy.state, { to, label }, createdAt);
    } finally {
      await copy.close();
    }
  }

  /**
   * Whether the store knows that `key` of `entity` was deleted after the write of seq `afterSeq` (undefined:
   * after anything a segment holds): a delete the journals held at an open that found damage (kept past the
   * compaction that retires it), or, without `afterSeq`, a tombstone in a live journal. Recovery from a
   * backup (typed/recover.ts) never brings such a record back.
   */
  knowsDeleted(entity: string, key: string, afterSeq?: number): boolean {
    this.checkOpen();
    return this.state.knowsDeleted(entity, key, afterSeq);
  }

  /**
   * An archive file (typed/archive.ts): a backup of just the keys of `only`, checked by `verify` once written;
   * then the `archive.afterVerify` failpoint.
   */
  async archive(options: BackupOptions, only: ReadonlyMap<string, ReadonlySet<string>>, verify: (file: string) => Promise<unknown>): Promise<BackupInfo> {
    const info = await this.backup(options, only);
    await verify(info.file);
    this.state.fp("archive.afterVerify");
    return info;
  }

  /** Open the copy of this store in `dir` (a backup unpacked to verify it) under this store's master key. */
  openOwnCopy(dir: string): Promise<Engine> {
    this.checkOpen();
    if (!this.state.keyring) throw new UsageError("a plaintext store has no master key to open a copy with");
    return openCopy(this.state.io, dir, this.state.keyring, this.state.opts, Engine.make);
  }

  // ---------------------------------------------------------------- close

  async close(): Promise<void> {
    await Promise.all([this.promoting?.catch(() => {}), this.follower?.settled()]);
    const s = this.state;
    if (s.closed) return;
    await this.commit.drain();
    await Promise.allSettled([...this.backups]);
    if (this.compaction.compacting) await this.compaction.compacting.catch(() => {});
    s.closed = true;
    await Promise.all([this.verified.catch(() => {}), s.journal?.settled()]); // none after `closed`: the journal's last zero fill ahead (a follower has no journal)
    this.commit.stopSyncTimer();
    try {
      if (this.commit.dirty && !s.poisoned) s.journal.sync();
    } finally {
      for (const f of s.files.values()) {
        try {
          s.io.close(f.fd);
        } catch {
          // closing anyway
        }
      }
      s.files.clear();
      s.cache.clear();
      this.reads.forgetLastBlock();
      s.keyring?.destroy();
      this.reads.recordKeyLookups.clear();
      s.lock?.release();
    }
  }
}
