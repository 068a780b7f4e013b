/**
 * The typed layer apps use: `openStore(entities, options)` returns one
 * repository per entity. Every write is validated with the entity's zod schema
 * before anything is encoded; reads return frozen protobuf-es messages.
 *
 * Opening (checks of the entities and options, the engine, migrations at open, what starts after open) is
 * open-store.ts; this file owns StoreImpl, the facade that wires the rest of the folder: the repositories (collection.ts,
 * singleton.ts), batches (batch.ts), events (events.ts) and reading and encoding records (record-codec.ts,
 * values.ts); it keeps lifecycle, close, the key admin pass-throughs, inspect and stats. The public types
 * live in types.ts; every name this file exported before the split is still exported from here
 * (src/runtime/index.ts, tests and bench import them from typed/store.js).
 */
import { LruCache } from "../storage/cache.js";
import type { EntityDefinition } from "./entity.js";
import { Engine, type RecoveryReport, type WriteOp } from "../storage/engine.js";
import { CellarError, type CellarErrorCode, FollowerError, UsageError, StoreClosedError } from "../errors.js";
import type { KeyProvider } from "../crypto/keys.js";
import type { BackupInfo, BackupOptions } from "../storage/backup.js";
import { inspectRecords } from "./inspect.js";
import { INDEXES_ENTITY } from "./index-build.js";
import { AUDIT_ENTITY } from "../format/audit.js";
import { revivedInfo } from "./shared-write.js";
import type { Sharing } from "../share/sharing.js";
import type { UpgradeHost } from "./upgrade.js";
import { runBatch } from "./batch.js";
import { CollectionImpl } from "./collection.js";
import { Listeners } from "./events.js";
import { SingletonImpl } from "./singleton.js";
import { readOnlyError, RecordCodec } from "./record-codec.js";
import { type CleanupReport, Retention } from "./retention.js";
import { entityStats } from "./stats.js";
import { RESERVED_LABEL_PREFIX, resolveBackupDir, StoreBackups } from "./backups.js";
import { type ArchiveOptions, type ArchiveResult, Archives } from "./archive.js";
import type { CollectionDefinition } from "./entity.js";
import type { InspectedRecord, StoreEvents, StoreOptions, StoreStats } from "./types.js";
import { type ExportOptions, type ExportResult, exportStore, fileFailure } from "./export.js";
import { fileLines, type ImportOptions, type ImportResult, importLines } from "./import.js";
import { backupsOf, checkRecoverArgs, type Found, recover, type RecoverOptions, type RecoverReport } from "./recover.js";
import type { MigrationStep } from "./migration.js";
import { Watchers } from "./watch.js";
import type { StoreAudit } from "./audit.js";
import { auditOperations } from "./audit-ops.js";

export type {
  BatchTx, ChangeEvent, Collection, CollectionTx, EntityInput, FieldPath, Frozen, HistoryEntry, IndexValue,
  PathField, PathValue, StoredRecord, Input, InspectedRecord, ListOptions, Singleton, SingletonTx, StoreEvents,
  StoreHandle, StoreOptions, StoreStats, TypedStore, QueryWhere, Watch, WatchUpdate
} from "./types.js";
export type { CleanupReport } from "./retention.js";
export type { MissingRecord, RecoverOptions, RecoverReport } from "./recover.js";
export type { ArchiveOptions, ArchiveResult, DurationString } from "./archive.js";
export type { EntityStats } from "./stats.js";
export { decodeKey, encodeKey } from "./values.js";
export { openStore } from "./open-store.js";

export { RESERVED } from "./reserved.js";

export class StoreImpl {
  /** Decoded records, one key space per entity. */
  readonly records: LruCache<string, unknown>;
  private readonly listeners = new Listeners();
  /**
   * Reads and writes of records: decode through the cache, validate and encode. An ES private field: the
   * entities' repositories are properties of this object, so a new string-named field could collide with one.
   */
  readonly #codec: RecordCodec;
  migrationBackup: string | null = null;
  private closed = false;
  /** Retention cleanups (retention.ts); an ES private field, like #codec. */
  readonly #retention: Retention;
  /** The backup directory, automatic backups, legacy moves (backups.ts); an ES private field, like #codec. */
  readonly #backups: StoreBackups;
  /** The key the store was opened with: recovery opens store-key backups with it (recover.ts). */
  readonly #key: StoreOptions["key"];
  /** Keys (`entity\0key`) deleted in this session since damage was found (recover.ts). */
  readonly #deletedInSession = new Set<string>();
  /** `onCorruption: "restore"`: what the recovery at open brought back and what it could not (null: none ran). */
  recoveredAtOpen: RecoverReport | null = null;
  /** `repo.archive()` runs (archive.ts). */
  readonly #archives: Archives;
  /** Several processes on the store (share/sharing.ts); null with `sharing: false`. An ES private field, like #codec. */
  #sharing: Sharing | null = null;
  /** Live subscriptions, `repo.watch()` (watch.ts); an ES private field, like #codec. */
  readonly #watchers: Watchers;
  /** The audit log (audit.ts), set at open; an ES private field, like #codec. */
  #audit: StoreAudit | null = null;

  constructor(
    readonly engine: Engine,
    entities: Record<string, EntityDefinition>,
    readonly defs: Map<string, EntityDefinition>,
    readonly redacted: boolean,
    backupDir: ReturnType<typeof resolveBackupDir> = resolveBackupDir(undefined, engine.dir),
    key?: Uint8Array | KeyProvider,
  ) {
    // The engine's cache, in a key space per entity (its blocks use the default space).
    this.records = engine.cache as LruCache<string, unknown>;
    this.#codec = new RecordCodec(engine, defs, redacted, this.listeners);
    this.#backups = new StoreBackups(engine, backupDir, key, (e) => this.listeners.emit("error", e));
    this.#key = key;
    this.#watchers = new Watchers(() => engine.lastSeq, (e) => this.listeners.listenerFailed("watch", e), (e) => StoreImpl.readFailed(this, e));
    let repos: Map<string, CollectionImpl> | undefined;
    const repo = (name: string) => {
      repos ??= new Map(Object.values(this).flatMap((r) => (r instanceof CollectionImpl ? [[r.def.name, r] as const] : [])));
      return repos.get(name);
    };
    this.#retention = new Retention({
      engine,
      defs,
      read: (def, key) => this.#codec.read(def, key),
      busy: (def, key) => repo(def.name)?.busy(key) ?? false,
      track: (def, keys, write) => repo(def.name)?.trackMany(keys, write),
      closing: () => this.closed,
    });
    this.#archives = new Archives({
      engine,
      backupDir: () => this.#backups.dir,
      read: (def, key) => this.#codec.read(def, key),
      busy: (def, key) => repo(def.name)?.busy(key) ?? false,
      track: (def, keys, write) => repo(def.name)?.trackMany(keys, write),
      closing: () => this.closed,
    });
    for (const [prop, def] of Object.entries(entities)) {
      Object.defineProperty(this, prop, {
        value:
          def.kind === "collection"
            ? new CollectionImpl(this, this.#codec, def, (o) => StoreImpl.archive(this, def, o), this.#watchers)
            : new SingletonImpl(this, this.#codec, def, this.#watchers),
        enumerable: true,
      });
    }
    engine.onCommit = (ops, seq) => {
      // The store's state first, for every op: a listener that reads sees the commit whole.
      this.#codec.committed(ops);
      this.#retention.committed(ops);
      // Once damage is on record, this session's deletes are kept: recovery from a backup must not undo them.
      if (engine.recovery.damaged.length) for (const op of ops) if (op.op === "delete") this.#deletedInSession.add(`${op.entity}\u0000${op.key}`);
      this.#archives.committed(ops);
      this.listeners.changed(ops, this.defs, seq);
      this.#watchers.committed(ops, seq);
    };
    engine.onProblem = (e) => this.listeners.emit(e.code === "E_CORRUPT" ? "corruption" : "error", e);
    if (engine.recovery.damaged.length) {
      // Listeners attach after open; announce on the next turn so they can.
      setImmediate(() => this.listeners.emit("corruption", engine.recovery));
    }
  }

  get dir(): string { return this.engine.dir; } // prettier-ignore
  get recoveryReport(): RecoveryReport { return this.engine.recovery; } // prettier-ignore

  /** Throws E_CLOSED once `close()` was called. */
  checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  /** Throws E_CLOSED after close, and E_USAGE in a `redactSensitive` store (read-only). */
  checkWritable(): void {
    this.checkOpen();
    if (this.redacted) throw readOnlyError();
  }

  get role(): "writer" | "follower" {
    return this.#sharing?.role ?? "writer";
  }

  /** Throws E_FOLLOWER, naming the writer's pid, in a follower process: `what` runs only in the writer. */
  checkWriter(what: string): void {
    if (this.#sharing?.role === "follower") throw new FollowerError(what, this.dir, this.#sharing.writerPid);
  }

  /** Share the store with other processes (typed/share-open.ts): writes go through `sharing`, which hears of every commit. */
  static share(store: StoreImpl, sharing: Sharing): void {
    store.#sharing = sharing;
    store.#codec.sharing = sharing;
    const inner = store.engine.onCommit;
    store.engine.onCommit = (ops, seq) => {
      inner?.(ops, seq); // (no rest/spread: every commit's path)
      sharing.committed();
    };
    // A follower that missed single commits (folded by a compaction before it read them): caches and watches start over.
    store.engine.onResync = (seq) => {
      store.#codec.forgetAll();
      store.#watchers.resync(seq);
    };
    sharing.onRequest = (op, args) => (op === "compact" ? store.compact() : op === "backup" ? store.backup(args as BackupOptions) : Promise.reject(new UsageError(`no request \`${op}\``)));
    sharing.onError = (e) => store.listeners.emit("error", e instanceof CellarError ? e : new UsageError(String(e)));
    sharing.eager = () => store.listeners.listening("change") || store.#watchers.active; // else commits wait for a read
  }

  /** `f` is told the store's events but `change` (its telemetry and logger: observe-store.ts). */
  static observe(store: StoreImpl, f: (event: keyof StoreEvents, arg: unknown) => void): void {
    store.listeners.observer = f;
  }

  /** The audit log (open-store.ts): when recording, the codec counts reads and writes and the store's operations are recorded (audit-ops.ts). */
  static audit(store: StoreImpl, audit: StoreAudit): void {
    store.#audit = audit;
    audit.sharing = store.#sharing;
    audit.onError = (e) => store.listeners.emit("error", e);
    const s = store.#sharing;
    const inner = s?.onRequest;
    if (s && inner) s.onRequest = (op, args) => (op === "audit" ? audit.fromFollower(args) : inner(op, args)); // a follower's events
    if (audit.recording) [store.#codec.audit] = [audit, auditOperations(store, (e) => audit.record(e), store.singletons(), store.#archives)];
    Object.defineProperty(store, "audit", { value: audit.api(() => store.checkOpen()), enumerable: false });
  }

  static startAudit(store: StoreImpl): Promise<void> {
    return store.#audit?.started() ?? Promise.resolve();
  }

  /** Announce a promotion (`role` event). */
  static roleChanged(store: StoreImpl): void {
    store.listeners.emit("role", store.role);
  }

  on<N extends keyof StoreEvents>(event: N, listener: StoreEvents[N]): () => void {
    this.checkOpen();
    return this.listeners.on(event, listener);
  }

  /** Commit writes to several entities atomically (batch.ts). */
  batch(fn: (tx: Record<string, unknown>) => void | Promise<void>): Promise<void> {
    return runBatch(this, this.#codec, fn);
  }

  async compact(): Promise<void> {
    this.checkWritable();
    if (this.#sharing?.role === "follower") return void (await this.#sharing.request("compact", null)); // run by the writer
    return this.engine.compact();
  }

  /**
   * Delete record history entries older than their entity's `history.maxAgeMs` (history.ts); resolves with
   * the count. Static: a member of the store could collide with an entity's property.
   */
  static sweepHistory(store: StoreImpl): Promise<number> {
    return store.#codec.history.sweep();
  }

  upgradeHost(options: StoreOptions): UpgradeHost {
    return {
      engine: this.engine,
      defs: this.defs,
      keys: this.#codec.keys,
      redacted: this.redacted,
      encode: (def, value) => {
        const { op } = this.#codec.encodePut(def, value, false);
        if (op.op !== "put") throw new Error("unreachable");
        return { key: op.key, version: op.version, value: op.value, terms: op.terms };
      },
      backupDir: this.#backups.dir,
      openOptions: {
        ...(options.key !== undefined ? { key: options.key } : {}),
        ...(options.encryption !== undefined ? { encryption: options.encryption } : {}),
        ...(options.io !== undefined ? { io: options.io } : {}),
      },
    };
  }

  async rotateKey(): Promise<number> {
    this.checkWritable();
    this.checkWriter("rotateKey");
    return this.engine.rotateKey();
  }

  async reencrypt(): Promise<number[]> {
    this.checkWritable();
    this.checkWriter("reencrypt");
    // Not while a legacy pre-migration directory is being moved (it re-keys those directories).
    return this.#backups.hold(() => this.engine.reencrypt());
  }

  async changeMasterKey(next: KeyProvider): Promise<void> {
    this.checkWritable();
    this.checkWriter("changeMasterKey");
    // This store's own backup files are rewrapped too (storage/backup-rekey.ts), with no backup running.
    return this.#backups.hold(async () => this.engine.changeMasterKey(next, await this.#backups.ownFiles()));
  }

  keyInfo() {
    this.checkOpen();
    return this.engine.keyInfo();
  }

  async *inspect(options?: { entities?: readonly string[] }): AsyncGenerator<InspectedRecord> {
    this.checkOpen();
    yield* inspectRecords(this.engine, this.#codec, this.defs, this.listeners, options);
  }

  stats(): StoreStats {
    this.checkOpen();
    const backups = this.#backups.usage();
    const { entities, internalBytes } = entityStats(this.engine.entityUsage(), this.defs.keys(), backups, this.engine.storedVersions);
    const engine = this.engine.stats();
    return {
      ...engine,
      records: engine.records - this.engine.count(INDEXES_ENTITY) - this.engine.count(AUDIT_ENTITY), // Cellar's index bookkeeping and audit log are not records of the app's
      recordCacheBytes: this.records.bytes - this.records.defaultSpaceBytes,
      entities,
      internalBytes,
      backups: { dir: backups.dir, files: backups.files, bytes: backups.bytes },
    };
  }

  /**
   * Apply every entity's `retention` rule now (retention.ts), after a cleanup already running; resolves with
   * what was removed.
   */
  async cleanup(): Promise<CleanupReport> {
    this.checkWritable();
    this.checkWriter("cleanup");
    return this.#retention.run();
  }

  /** Cleanups at open and every `everyMs` while open (openStore); a failure goes to the `error` event. */
  static startCleanup(store: StoreImpl, atOpen: boolean, everyMs: number | null): void {
    store.#retention.start(atOpen, everyMs, (e) => {
      if (e instanceof CellarError) store.listeners.emit("error", e);
      else process.emitWarning(e instanceof Error ? e : new Error(String(e)));
    });
  }

  /** The migration steps the store was opened with (imports of older records go through them). */
  #migrations: readonly MigrationStep[] = [];
  setMigrations(steps: readonly MigrationStep[]): void {
    this.#migrations = steps;
  }

  /** Write records to an NDJSON file (export.ts; docs/FORMAT.md, "Export file (NDJSON)"). */
  async export(options: ExportOptions): Promise<ExportResult> {
    this.checkOpen();
    return exportStore(this.engine, this.#codec, this.defs, this.redacted, options);
  }

  /** Import an export file, all or nothing (import.ts). */
  async import(file: string, options?: ImportOptions): Promise<ImportResult> {
    this.checkWritable();
    this.checkWriter("import");
    try {
      return await this.importFrom(fileLines(file), options);
    } catch (e) {
      throw fileFailure(e, "import", file);
    }
  }

  /** Import lines of an export file (`only`: the entities they may hold), with singletons' queues held. */
  importFrom(lines: AsyncIterable<readonly string[]>, options?: ImportOptions, only?: ReadonlySet<string>): Promise<ImportResult> {
    const host = {
      engine: this.engine,
      codec: this.#codec,
      defs: this.defs,
      migrations: this.#migrations,
      forget: () => {
        this.#codec.forgetAll();
        this.#watchers.resync(this.engine.lastSeq); // merged in by a compaction: no commit says which records changed
      },
      // As a batch does: an `update` of a key the import writes, issued from now on, waits for the commit.
      track: (ops: readonly WriteOp[], write: Promise<void>) => {
        const repos = new Map<string, CollectionImpl>();
        for (const prop of Object.keys(this)) {
          const r = (this as unknown as Record<string, unknown>)[prop];
          if (r instanceof CollectionImpl) repos.set(r.def.name, r);
        }
        for (const o of ops) void repos.get(o.entity)?.track(o.key, write).catch(() => {});
      },
    };
    // Singleton updates queued before the import finish first, and those after it wait for it.
    const singletons = [...this.singletons()].filter((s) => !only || only.has(s.def.name));
    return SingletonImpl.exclusive(singletons, () => importLines(host, lines, options, only));
  }

  /** Automatic backups (when configured) and the move of legacy pre-migration copies, after open (backups.ts). */
  static startBackups(store: StoreImpl): void {
    store.#backups.start();
  }

  /** Close the store (a second call does nothing); every other method then throws E_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.#watchers.closeAll();
    try {
      // Updates and batches already queued on a singleton finish (or fail) first.
      await Promise.all([...this.singletons()].map((s) => s.idle()));
    } finally {
      await this.#audit?.close(); // what is counted, appended while the writer (a follower's) is still reachable
      await this.#retention.stop();
      await this.#archives.stop();
      await this.#backups.stop();
      await this.#sharing?.close();
      this.records.clear();
      await this.engine.close();
    }
  }

  /** An online backup into one file (storage/backup.ts); see `StoreHandle.backup`. */
  async backup(options: BackupOptions): Promise<BackupInfo> {
    this.checkOpen();
    if (this.#sharing?.role === "follower") return revivedInfo(await this.#sharing.request("backup", options)); // run by the writer
    if (typeof options?.label === "string" && options.label.startsWith(RESERVED_LABEL_PREFIX)) {
      throw new UsageError(`labels starting with \`${RESERVED_LABEL_PREFIX}\` are Cellar's own (automatic and pre-migration backups); choose another \`label\``);
    }
    for (const n of [...(options?.entities?.include ?? []), ...(options?.entities?.exclude ?? [])]) {
      if (!this.defs.has(n)) throw new UsageError(`no entity \`${n}\` in this store (storage names: ${[...this.defs.keys()].join(", ")})`);
    }
    return this.engine.backup(options);
  }

  /**
   * Bring back the records that damage found by this open (or since) made unreadable, from `file` (or from
   * each of a list, newest first, until every lost record is found); see `StoreHandle.recoverFrom` and recover.ts.
   */
  async recoverFrom(file: string | readonly string[], options?: RecoverOptions): Promise<RecoverReport> {
    this.checkWritable();
    this.checkWriter("recoverFrom");
    const files = checkRecoverArgs(file, options);
    await this.engine.verified; // damage the background check of the segment finds is part of what was lost
    return recover(this.#recoverHost(), files, options ?? {}, true);
  }

  /**
   * `onCorruption: "restore"`: after the background check of the segment, when damage was found, recover
   * from this store's intact backups in its backup directory (`backups.dir`, or `<dir>.backups`), newest first.
   */
  static async recoverAtOpen(store: StoreImpl): Promise<void> {
    await store.engine.verified;
    if (!store.engine.recovery.damaged.length) return;
    try {
      store.recoveredAtOpen = await recover(store.#recoverHost(), backupsOf(store.engine, store.#backups.dir), {}, false);
    } catch (e) {
      if (!(e instanceof CellarError)) throw e;
      // A write refused (a quota, a full disk): the store opens as "quarantine" would leave it; the report says why.
      store.recoveredAtOpen = { restored: {}, missing: [{ reason: `the recovered records could not be written (${e.code})` }], from: [], skipped: [], writes: 0 };
      setImmediate(() => store.listeners.emit("error", e));
    }
  }

  #recoverHost() {
    const repos = new Map<string, [string, CollectionImpl | SingletonImpl]>();
    for (const prop of Object.keys(this)) {
      const r = (this as unknown as Record<string, unknown>)[prop];
      if (r instanceof CollectionImpl || r instanceof SingletonImpl) repos.set(r.def.name, [prop, r]);
    }
    return {
      engine: this.engine,
      defs: this.defs,
      migrations: this.#migrations,
      storeKey: this.#key,
      knowsDeleted: (entity: string, key: string, afterSeq?: number) =>
        this.#deletedInSession.has(`${entity}\u0000${key}`) || this.engine.knowsDeleted(entity, key, afterSeq),
      write: async (items: readonly Found[]) => {
        const left = new Map<Found, string>();
        await this.batch((tx) => {
          for (const f of items) {
            const [prop, repo] = repos.get(f.def.name)!;
            // Checked as the batch is built: a record the app wrote meanwhile (or is writing) is kept.
            if (this.engine.has(f.def.name, f.key) || (repo instanceof CollectionImpl && repo.busy(f.key))) {
              left.set(f, "written by the app meanwhile: kept");
              continue;
            }
            const t = tx[prop] as { put?: (v: unknown) => void; update?: (v: unknown) => void };
            try {
              if (repo instanceof CollectionImpl) t.put!(f.input);
              else t.update!(f.input);
            } catch (e) {
              // One record the current schema refuses stays out; the others are written (a refused op adds nothing to the batch).
              if (!(e instanceof CellarError)) throw e;
              left.set(f, `refused by the current schema (${e.code})`);
            }
          }
        });
        return left;
      },
    };
  }

  /** A watch could not read its value (watch.ts): damage was reported by the read; anything else goes to `error`. */
  private static readFailed(store: StoreImpl, e: unknown): void {
    if (e instanceof CellarError) {
      if (e.code !== "E_CORRUPT") store.listeners.emit("error", e);
    } else process.emitWarning(e instanceof Error ? e : new Error(String(e)));
  }

  /** `repo.archive()` of collection `def` (archive.ts). Static: a member of the store could collide with an entity's property. */
  private static archive(store: StoreImpl, def: CollectionDefinition, options: ArchiveOptions): Promise<ArchiveResult> {
    store.checkWritable();
    store.checkWriter("archive");
    return store.#archives.archive(def, options);
  }

  private *singletons(): Generator<SingletonImpl> {
    for (const prop of Object.keys(this)) {
      const repo = (this as unknown as Record<string, unknown>)[prop];
      if (repo instanceof SingletonImpl) yield repo;
    }
  }
}
export type { CellarErrorCode };
