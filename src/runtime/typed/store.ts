/**
 * The typed layer apps use: `openStore(entities, options)` returns one
 * repository per entity. Every write is validated with the entity's zod schema
 * before anything is encoded; reads return frozen protobuf-es messages.
 *
 * This file owns opening (checks of the entities and options, the engine, migrations at open) and
 * StoreImpl, the facade that wires the rest of the folder: the repositories (collection.ts,
 * singleton.ts), batches (batch.ts), events (events.ts) and reading and encoding records (record-codec.ts,
 * values.ts); it keeps lifecycle, close, the key admin pass-throughs, inspect and stats. The public types
 * live in types.ts; every name this file exported before the split is still exported from here
 * (src/runtime/index.ts, tests and bench import them from typed/store.js).
 */
import path from "node:path";
import { type JsonValue, toJson } from "@bufbuild/protobuf";
import { LruCache } from "../storage/cache.js";
import type { EntityDefinition } from "./entity.js";
import { Engine, type RecoveryReport, type WriteOp } from "../storage/engine.js";
import { CellarError, type CellarErrorCode, CorruptionError, KeyError, SchemaMismatchError, UsageError, StoreClosedError } from "../errors.js";
import { PayloadDecodeError } from "../crypto/value.js";
import type { KeyProvider } from "../crypto/keys.js";
import type { BackupInfo, BackupOptions } from "../storage/backup.js";
import { DecodeError } from "../format/bytes.js";
import { planUpgrade, upgrade, type UpgradeHost } from "./upgrade.js";
import { runBatch } from "./batch.js";
import { CollectionImpl } from "./collection.js";
import { Listeners } from "./events.js";
import { SingletonImpl } from "./singleton.js";
import { readOnlyError, RecordCodec } from "./record-codec.js";
import { type CleanupReport, parseEvery, Retention } from "./retention.js";
import { backupUsage, entityStats } from "./stats.js";
import { checkHistoryRule, INTERNAL_PREFIX } from "./history.js";
import { type ArchiveOptions, type ArchiveResult, Archives } from "./archive.js";
import { defaultBackupDir } from "./auto-backup.js";
import type { CollectionDefinition } from "./entity.js";
import type { InspectedRecord, StoreEvents, StoreOptions, StoreStats, TypedStore } from "./types.js";
import { type ExportOptions, type ExportResult, exportStore, fileFailure } from "./export.js";
import { fileLines, type ImportOptions, type ImportResult, importLines, removeStaging } from "./import.js";
import type { MigrationStep } from "./migration.js";

export type {
  BatchTx,
  ChangeEvent,
  Collection,
  CollectionTx,
  EntityInput,
  FieldPath,
  Frozen,
  HistoryEntry,
  IndexValue,
  PathField,
  PathValue,
  StoredRecord,
  Input,
  InspectedRecord,
  ListOptions,
  Singleton,
  SingletonTx,
  StoreEvents,
  StoreHandle,
  StoreOptions,
  StoreStats,
  TypedStore,
} from "./types.js";
export type { CleanupReport } from "./retention.js";
export type { ArchiveOptions, ArchiveResult, DurationString } from "./archive.js";
export type { EntityStats } from "./stats.js";
export { decodeKey, encodeKey } from "./values.js";

/**
 * Property names an entity cannot take: the store's methods and fields (a repository is a property of the
 * store object, so it would replace one), `then` (a store would look like a promise), and what every object
 * has. test/store/reserved.test.ts checks that every member of a store is listed.
 */
export const RESERVED = new Set([
  "inspect",
  "dir",
  "recoveryReport",
  "migrationBackup",
  "batch",
  "compact",
  "rotateKey",
  "reencrypt",
  "changeMasterKey",
  "keyInfo",
  "stats",
  "cleanup",
  "backup",
  "on",
  "close",
  "export",
  "import",
  "then",
  // fields of StoreImpl
  "engine",
  "defs",
  "redacted",
  "records",
  "listeners",
  "closed",
  "upgradeHost",
  "checkOpen",
  "checkWritable",
  "singletons",
  "setMigrations",
  "importFrom",
  // what every object has
  ...Object.getOwnPropertyNames(Object.prototype),
]);

/** Open (or create) a store holding `entities`. */
export async function openStore<E extends Record<string, EntityDefinition>>(
  entities: E,
  options: StoreOptions,
): Promise<TypedStore<E>> {
  const defs = new Map<string, EntityDefinition>();
  for (const [prop, def] of Object.entries(entities)) {
    if (RESERVED.has(prop)) throw new UsageError(`entity property \`${prop}\` collides with a member of the store; rename it`);
    if (defs.has(def.name)) throw new UsageError(`two entities use the storage name \`${def.name}\``);
    if (typeof def.name !== "string" || def.name.startsWith(INTERNAL_PREFIX)) {
      throw new UsageError(`entity storage name \`${String(def.name)}\` is not allowed: names starting with \`~\` are Cellar's own (record history)`);
    }
    checkHistoryRule(def);
    if (!Number.isInteger(def.version) || def.version < 1) throw new UsageError(`entity \`${def.name}\` needs a version ≥ 1`);
    if (def.kind === "collection" && !def.schema.fields.some((f: { localName: string }) => f.localName === def.key)) {
      throw new UsageError(`entity \`${def.name}\`: key field \`${def.key}\` is not a field of \`${def.schema.typeName}\``);
    }
    defs.set(def.name, def);
  }
  const sensitive = [...defs.values()].filter((d) => d.sensitive.length > 0);
  if (sensitive.length && (options.encryption === "none" || !options.key)) {
    const which = sensitive.map((d) => `\`${d.name}\` (${d.sensitive.map((p: string) => `\`${p}\``).join(", ")})`).join(", ");
    throw new KeyError(
      options.encryption === "none"
        ? `a plaintext store cannot hold sensitive fields: ${which}; pass \`key\` instead of \`encryption: "none"\``
        : `no key configured, and these entities have sensitive fields: ${which}; pass \`key\``,
    );
  }
  for (const internal of ["recordCacheBytes", "keyScope", "readOnly"]) {
    // Engine options the store sets itself: given here they would be silently replaced.
    if (internal in options) {
      throw new UsageError(`\`${internal}\` is not an \`openStore\` option${internal === "recordCacheBytes" ? " (the record cache budget is `cacheBytes`)" : internal === "readOnly" ? " (`redactSensitive` opens read-only)" : " (`redactSensitive` opens without the sensitive-field keys)"}`);
    }
  }
  const { redactSensitive, migrations, backupBeforeMigration, onMigrationProgress, cleanup, ...engineOptions } = options;
  const cleanupEvery = cleanup === false ? null : parseEvery(cleanup?.every);
  const engine = await Engine.open({
    ...engineOptions,
    recordCacheBytes: options.cacheBytes ?? 64 * 1024 * 1024,
    keyScope: redactSensitive ? "records" : "all",
    readOnly: redactSensitive === true,
  });
  let store: StoreImpl;
  try {
    if (!redactSensitive) removeStaging(engine.dir); // an import that did not finish (import.ts)
    store = new StoreImpl(engine, entities, defs, redactSensitive === true);
    StoreImpl.setBackupDir(store, options);
    store.setMigrations(migrations ?? []);
    const host = store.upgradeHost(options);
    const plans = planUpgrade(host, migrations ?? []);
    if (plans.size) {
      store.migrationBackup = await upgrade(host, plans, {
        migrations: migrations ?? [],
        backup: backupBeforeMigration ?? true,
        onProgress: onMigrationProgress,
      });
      store.records.clear();
    }
    if (!redactSensitive) engine.setEntityVersions(new Map([...defs.values()].map((d) => [d.name, d.version])));
    // Record history past its `maxAgeMs` (entries of records not written since): deleted at open.
    if (!redactSensitive) await StoreImpl.sweepHistory(store);
    if (!redactSensitive && cleanup !== false) StoreImpl.startCleanup(store, cleanup?.atOpen ?? true, cleanupEvery);
  } catch (e) {
    await engine.close();
    throw e;
  }
  return store as unknown as TypedStore<E>;
}

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
  /** `repo.archive()` runs (archive.ts). */
  readonly #archives: Archives;
  /** Where archive files go by default (`backups.dir`, else beside the store). */
  #backupDir: string;

  constructor(
    readonly engine: Engine,
    entities: Record<string, EntityDefinition>,
    readonly defs: Map<string, EntityDefinition>,
    readonly redacted: boolean,
  ) {
    // The engine's cache, in a key space per entity (its blocks use the default space).
    this.records = engine.cache as LruCache<string, unknown>;
    this.#codec = new RecordCodec(engine, defs, redacted, this.listeners);
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
    this.#backupDir = defaultBackupDir(engine.dir);
    this.#archives = new Archives({
      engine,
      backupDir: () => this.#backupDir,
      read: (def, key) => this.#codec.read(def, key),
      busy: (def, key) => repo(def.name)?.busy(key) ?? false,
      track: (def, keys, write) => repo(def.name)?.trackMany(keys, write),
      closing: () => this.closed,
    });
    for (const [prop, def] of Object.entries(entities)) {
      Object.defineProperty(this, prop, {
        value: def.kind === "collection" ? new CollectionImpl(this, this.#codec, def, (o) => StoreImpl.archive(this, def, o)) : new SingletonImpl(this, this.#codec, def),
        enumerable: true,
      });
    }
    engine.onCommit = (ops) => {
      // The store's state first, for every op: a listener that reads sees the commit whole.
      this.#codec.committed(ops);
      this.#retention.committed(ops);
      this.#archives.committed(ops);
      this.listeners.changed(ops, this.defs);
    };
    engine.onProblem = (e) => this.listeners.emit(e.code === "E_CORRUPT" ? "corruption" : "error", e);
    if (engine.recovery.damaged.length) {
      // Listeners attach after open; announce on the next turn so they can.
      setImmediate(() => this.listeners.emit("corruption", engine.recovery));
    }
  }

  get dir(): string {
    return this.engine.dir;
  }
  get recoveryReport(): RecoveryReport {
    return this.engine.recovery;
  }

  /** Throws E_CLOSED once `close()` was called. */
  checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  /** Throws E_CLOSED after close, and E_USAGE in a `redactSensitive` store (read-only). */
  checkWritable(): void {
    this.checkOpen();
    if (this.redacted) throw readOnlyError();
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
      openOptions: {
        ...(options.key !== undefined ? { key: options.key } : {}),
        ...(options.encryption !== undefined ? { encryption: options.encryption } : {}),
        ...(options.io !== undefined ? { io: options.io } : {}),
      },
    };
  }

  async rotateKey(): Promise<number> {
    this.checkWritable();
    return this.engine.rotateKey();
  }

  async reencrypt(): Promise<number[]> {
    this.checkWritable();
    return this.engine.reencrypt();
  }

  async changeMasterKey(next: KeyProvider): Promise<void> {
    this.checkWritable();
    return this.engine.changeMasterKey(next);
  }

  keyInfo() {
    this.checkOpen();
    return this.engine.keyInfo();
  }

  async *inspect(options?: { entities?: readonly string[] }): AsyncGenerator<InspectedRecord> {
    this.checkOpen();
    const names = options?.entities ?? [...this.defs.keys()];
    for (const name of names) {
      const def = this.defs.get(name);
      if (!def) throw new UsageError(`no entity \`${name}\` in this store (storage names: ${[...this.defs.keys()].join(", ")})`);
      const codec = this.#codec.codecs.get(name)!;
      let n = 0;
      for (const [key, loc] of this.engine.scan(name)) {
        let json: JsonValue;
        try {
          const { msg, redacted } = codec.decode(this.engine.read(name, loc), key, loc.version, this.#codec.keys, true);
          json = toJson(def.schema, msg, { alwaysEmitImplicit: false });
          if (redacted) json = codec.redact(json);
        } catch (e) {
          if (e instanceof CellarError) throw e;
          if (e instanceof PayloadDecodeError) {
            // Intact bytes that do not decode as the entity's message type: not damage (see RecordCodec.decode).
            const { file, offset } = this.engine.where(loc);
            throw new SchemaMismatchError(name, { key, stored: loc.version, expected: def.version, file, offset }, { cause: e.cause });
          }
          // Bytes that do not decode, or a message that has no JSON form (e.g. a Timestamp out of range):
          // the same error a read gives, naming entity, file and offset, never the record's key or value.
          const { file, offset } = this.engine.where(loc);
          const why = e instanceof DecodeError ? e.message : "the record does not decode to JSON";
          const err = new CorruptionError(file, offset, `bad payload (a \`${name}\` record: ${why})`);
          this.listeners.emit("corruption", err);
          throw err;
        }
        yield { entity: name, key, version: loc.version, json };
        if (++n % 256 === 0) await new Promise<void>((r) => setImmediate(r));
      }
    }
  }

  stats(): StoreStats {
    this.checkOpen();
    const backups = backupUsage(this.engine.io, this.engine.dir);
    const { entities, internalBytes } = entityStats(this.engine.entityUsage(), this.defs.keys(), backups);
    return {
      ...this.engine.stats(),
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
    try {
      return await this.importFrom(fileLines(file), options);
    } catch (e) {
      throw fileFailure(e, "import", file);
    }
  }

  /** Import lines of an export file (`only`: the entities they may hold), with singletons' queues held. */
  importFrom(lines: AsyncIterable<string>, options?: ImportOptions, only?: ReadonlySet<string>): Promise<ImportResult> {
    const host = {
      engine: this.engine,
      codec: this.#codec,
      defs: this.defs,
      migrations: this.#migrations,
      forget: () => this.#codec.forgetAll(),
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

  /** Close the store (a second call does nothing); every other method then throws E_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      // Updates and batches already queued on a singleton finish (or fail) first.
      await Promise.all([...this.singletons()].map((s) => s.idle()));
    } finally {
      await this.#retention.stop();
      await this.#archives.stop();
      this.records.clear();
      await this.engine.close();
    }
  }

  /** An online backup into one file (storage/backup.ts); see `StoreHandle.backup`. */
  async backup(options: BackupOptions): Promise<BackupInfo> {
    this.checkOpen();
    for (const n of [...(options?.entities?.include ?? []), ...(options?.entities?.exclude ?? [])]) {
      if (!this.defs.has(n)) throw new UsageError(`no entity \`${n}\` in this store (storage names: ${[...this.defs.keys()].join(", ")})`);
    }
    return this.engine.backup(options);
  }

  /** `repo.archive()` of collection `def` (archive.ts). Static: a member of the store could collide with an entity's property. */
  private static archive(store: StoreImpl, def: CollectionDefinition, options: ArchiveOptions): Promise<ArchiveResult> {
    store.checkWritable();
    return store.#archives.archive(def, options);
  }

  /** The backup directory archives default to: `backups.dir` when given (read defensively: that option may not exist yet). */
  static setBackupDir(store: StoreImpl, options: StoreOptions): void {
    const dir = (options as { backups?: { dir?: unknown } }).backups?.dir;
    if (typeof dir === "string" && dir) store.#backupDir = path.resolve(dir);
  }

  private *singletons(): Generator<SingletonImpl> {
    for (const prop of Object.keys(this)) {
      const repo = (this as unknown as Record<string, unknown>)[prop];
      if (repo instanceof SingletonImpl) yield repo;
    }
  }
}

export type { CellarErrorCode };
