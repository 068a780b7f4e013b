/**
 * The typed layer's public types: the options of `openStore`, write inputs, the repositories (`Collection`,
 * `Singleton`), batch transactions, events, the store handle and `TypedStore`. Types only, no code: store.ts
 * re-exports them (src/runtime/index.ts, tests and generated code import them from there), and the
 * repositories, batch and events files of this folder implement them.
 */
import type { DescMessage, JsonValue, Message, MessageShape } from "@bufbuild/protobuf";
import type { CellarError } from "../errors.js";
import type { AuditOptions, StoreAuditApi } from "./audit.js";
import type { KeyProvider } from "../crypto/keys.js";
import type { Engine, EngineOptions, RecoveryReport } from "../storage/engine.js";
import type { BackupInfo, BackupOptions } from "../storage/backup.js";
import type { CollectionDefinition, EntityDefinition, KeyValue, SingletonDefinition } from "./entity.js";
import type { MigrationStep } from "./migration.js";
import type { MigrationProgress } from "./upgrade.js";
import type { CleanupReport } from "./retention.js";
import type { ArchiveOptions, ArchiveResult } from "./archive.js";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { EntityStats } from "./stats.js";
import type { ExportOptions, ExportResult } from "./export.js";
import type { ImportOptions, ImportResult } from "./import.js";
import type { AutoBackupOptions } from "./auto-backup.js";
import type { RecoverOptions, RecoverReport } from "./recover.js";
import type { QueryMethods, QueryWhere } from "./query-types.js";
import type { ObserveOptions } from "../observe/telemetry.js";
export type { IndexValue, QueryWhere } from "./query-types.js";
export type { EntityInput, Frozen, Input, StoredRecord } from "./input-types.js";
import type { EntityInput, Frozen, InputField, StoredRecord } from "./input-types.js";

export interface StoreOptions extends Omit<EngineOptions, "dir" | "keyScope" | "readOnly" | "recordCacheBytes" | "onCorruption" | "hooks">, ObserveOptions {
  /**
   * What to do when damage (other than a torn final frame) is found at open. `"quarantine"` (default): the
   * damaged file is copied to `quarantine/`, the store opens without the unreadable records (named in
   * `recoveryReport`). `"refuse"`: open throws `E_CORRUPT`. `"restore"`: as `"quarantine"`, then, before open
   * returns (after the background check of the segment), the lost records are brought back from this store's
   * intact backups in its backup directory (`backups.dir`, default `<dir>.backups`), newest first, as
   * `recoverFrom` does; `recoveredAtOpen` says what came back. A missing directory is no error.
   * Example: `onCorruption: "restore"`.
   */
  onCorruption?: "quarantine" | "refuse" | "restore";
  /**
   * Open an existing store read-only, without the keys of sensitive fields (they are never derived): reads
   * return records with every sensitive field unset; every write, compaction and key change is refused
   * (E_USAGE), and open and close change no file (leftovers, torn tails and damage are reported, not
   * repaired or copied). For inspection and support tools.
   */
  redactSensitive?: boolean;
  /**
   * Migration steps (generated code passes `src/migrations/registry.ts`). When records are older than an
   * entity's `version`, open backs the store up, migrates them through each step, validates the results
   * and switches atomically; see docs/SCHEMAS.md, "Schema evolution".
   */
  migrations?: readonly MigrationStep[];
  /**
   * Take and verify a full backup before a migration (default true): a backup file labelled
   * `cellar:pre-migration …` in the backup directory (`backups.dir`, default `<store dir>.backups`).
   */
  backupBeforeMigration?: boolean;
  /** Called as a migration at open goes through its phases and records. */
  onMigrationProgress?: (p: MigrationProgress) => void;
  /** The store directory (created if missing). One process at a time may open it. */
  dir: string;
  /**
   * Byte budget of decoded records (a record is counted as 3x its encoded size + 128 bytes: measured 3.0x
   * for decoded task records). Default 64 MiB. Records and the engine's decoded blocks (`blockCacheBytes`,
   * default 64 MiB) share one cache of the two budgets' sum, so memory goes where the workload needs it.
   */
  cacheBytes?: number;
  /**
   * Retention cleanups (the entities' `retention` rules, docs/SCHEMAS.md): one in the background right after
   * open (`atOpen`, default true) and one every `every` while the store is open (default `"1h"`:
   * milliseconds, or a whole number and a unit `ms`, `s`, `m`, `h`, `d`, `w`), on an unref'ed timer that
   * `close()` stops. `false`: only `store.cleanup()` cleans. A background cleanup's failure goes to the
   * `error` event. Example: `cleanup: { every: "10m" }`.
   */
  cleanup?: false | { every?: number | string; atOpen?: boolean };
  /**
   * Automatic backups while the store is open: one at open when the newest automatic backup is older than
   * `every`, then every `every`, in the background (open never waits for one; `close()` waits for one
   * running); after each, Cellar's own backups of this store in `dir` (automatic and pre-migration ones) are
   * pruned by `keep` (restic-style: the `last` n, the newest of each of the last `daily` days, `weekly` ISO
   * weeks, `monthly` months, local time). Backups taken with `store.backup()` and other stores' files are never
   * removed. No automatic backup is taken in a session whose open (or background check, or a compaction)
   * found damage (`E_BACKUP_SKIPPED` on the `error` event), and pruning always keeps the newest backup from
   * before the last damage the store has in `quarantine/`. `dir` defaults to `<store dir>.backups` beside
   * the store (a directory inside the store is refused, E_USAGE); the pre-migration backups go there too.
   * Example: `backups: { every: "1d", keep: { last: 3, daily: 7, weekly: 4, monthly: 12 } }`.
   */
  backups?: AutoBackupOptions;
  /**
   * A tamper-evident audit log in the store (docs/SECURITY.md, "Audit log"): reads and writes of the audited
   * entities (default: those with sensitive fields; never a value) and the store's operations. Needs `key`.
   * A store that keeps a log records with the defaults when opened without `audit`; `false`: no recording.
   */
  audit?: boolean | AuditOptions;
}

/** `store.stats()`: the engine's totals, and bytes per entity. */
export interface StoreStats {
  /** Bytes of the data files (segment, and journals up to their last frame): what `quota.maxBytes` limits. */
  fileBytes: number;
  /** Of `fileBytes`, the estimated bytes no live record needs (a compaction frees them). */
  deadBytes: number;
  journalBytes: number;
  records: number;
  blockCacheBytes: number;
  recordCacheBytes: number;
  /** Per entity (storage name): records, live, dead and history bytes, backup bytes when known. */
  entities: Record<string, EntityStats>;
  /** Bytes of internal entities other than history. */
  internalBytes: number;
  /** The store's backups: this store's backup files in the backup directory `dir` (headers checked), and legacy pre-migration directories not moved yet. */
  backups: { dir: string; files: number; bytes: number };
}

export interface ListOptions {
  limit?: number;
  offset?: number;
}

/** One value a watch delivers: the value as of commit `seq` (the store's commit sequence number). */
export interface WatchUpdate<T> {
  readonly value: T;
  /** The commit the value was read after; strictly increasing across a watch's updates. */
  readonly seq: number;
}

/**
 * A live value (`repo.watch(key)`, `repo.watch(where)`, `singleton.watch()`): the current value first, then
 * one update per commit that changes it (coalesced per commit: a batch is one update), after the commit is
 * durable and the store's reads see it, for writes of any process sharing the store. Values are frozen like
 * `get()`'s; an unchanged value (an equal record written again) is not delivered. Two forms, any number of each:
 * - `for await (const { value, seq } of watch)`: an async iterator holds one pending update, so a consumer
 *   slower than the commits gets the latest state, never a growing queue; `break` ends that iteration only.
 * - `subscribe(callback)`: called at once with the current value, then with each update (in a microtask after
 *   the commit's `change` events); returns the function that unsubscribes. A callback that throws is reported like a listener's error
 *   (`ListenerError`, `E_LISTENER`, on the `error` event) and stays subscribed.
 * `close()` ends every iteration of this watch (`done`) and drops its subscriptions; closing the store does
 * it for every watch.
 */
export interface Watch<T> extends AsyncIterable<WatchUpdate<T>> {
  subscribe(callback: (update: WatchUpdate<T>) => void): () => void;
  close(): void;
}

/** A collection's repository; its queries (`query`, `queryPage`, `count`, `explain`): `QueryMethods`, query-types.ts. */
export interface Collection<Desc extends DescMessage, K extends KeyValue, I extends string> extends QueryMethods<Desc, I> {
  /** The record stored under `key`, or `undefined`. Returned objects are frozen (and typed read-only). */
  get(key: K): Promise<StoredRecord<Desc> | undefined>;
  /**
   * The records under `keys`, in the order of `keys` (`undefined` for a key with no record), all located in
   * one synchronous pass over the index: no write lands between two of them.
   */
  getMany(keys: readonly K[]): Promise<(StoredRecord<Desc> | undefined)[]>;
  /** Validate and store `value` under its key field; resolves once durable with the stored message (frozen, as `get` returns it). */
  put(value: EntityInput<Desc>): Promise<StoredRecord<Desc>>;
  /**
   * Validate and store every value of `values` in one atomic write (all or none, one commit): the bulk load.
   * Values are validated and encoded one after another with turns of the event loop between, so a large call
   * never holds it; do not change them until it settles. A value that fails validation rejects the call with a
   * `ValidationError` whose `batchIndex` and `key` name it, and nothing is stored.
   */
  putMany(values: readonly EntityInput<Desc>[]): Promise<void>;
  /**
   * Atomic read-modify-write of the record under `key`: merge `patch`, or what `fn(current)` returns, over
   * the stored record (shallow: a nested message given is replaced whole), validate like `put` and store.
   * Writes to one key apply one after another: an update reads the record after every write to that key
   * issued before it (through this store) is committed, so concurrent updates never lose each other.
   * Throws `NotFoundError` (`E_NOT_FOUND`) if there is no record under `key`; the key field cannot change.
   */
  update(key: K, patch: EntityInput<Desc> | ((current: StoredRecord<Desc>) => EntityInput<Desc>)): Promise<StoredRecord<Desc>>;
  /** Remove the record; resolves `true` if it existed. */
  delete(key: K): Promise<boolean>;
  has(key: K): Promise<boolean>;
  /** Records in key order (string keys by code point, i.e. UTF-8 byte order; integer keys numerically). */
  list(options?: ListOptions): Promise<StoredRecord<Desc>[]>;
  /**
   * Records in key order, one at a time, without holding them all (`list()` builds one array): for reading
   * or exporting a large collection. Records are read a page at a time; a write between pages is seen if it
   * lands after the current key (it is not a snapshot), and the iteration never fails because of one.
   */
  iterate(options?: ListOptions): AsyncIterableIterator<StoredRecord<Desc>>;
  /**
   * Live value of the record under `key` (`undefined` while there is none): the current value first, then one
   * update per commit that changes it, from this process or any other sharing the store. See `Watch`.
   * Example: `const w = store.tasks.watch("t1"); w.subscribe(({ value }) => render(value))`.
   */
  watch(key: K): Watch<StoredRecord<Desc> | undefined>;
  /**
   * Live result of `query(where)` (records in key order): the current result first, then one update per
   * commit that changes it. See `Watch`. Example: `for await (const { value } of store.tasks.watch({ status })) …`.
   */
  watch(where: QueryWhere<Desc, I>): Watch<readonly StoredRecord<Desc>[]>;
  /** Keys in key order. */
  keys(options?: ListOptions): Promise<K[]>;
  /**
   * The record as protobuf JSON (`JSON.stringify` of a record throws on its `bigint` fields, e.g. a
   * Timestamp's `seconds`). Sensitive fields are included: the app holds the record already.
   */
  toJson(record: StoredRecord<Desc>): JsonValue;
  /** A record from protobuf JSON, validated like a `put` input (`E_VALIDATION`), frozen; nothing is stored. */
  fromJson(json: JsonValue): StoredRecord<Desc>;
  /**
   * Previous versions of the record, newest first, each with the time it was replaced; `value` is
   * `undefined` for the change that created the record. Entities annotated with `history` only: `E_USAGE`
   * otherwise.
   */
  history(key: K): Promise<HistoryEntry<StoredRecord<Desc> | undefined>[]>;
  /**
   * Write back the version of history entry `at` (its `id`), or the version the record had at time `at`,
   * as a new write (a `put`, or a delete when the record did not exist then; the current version goes into
   * the history in turn). Resolves with the record now stored. `E_NOT_FOUND` when there is no such entry
   * or the history does not reach back to that time.
   */
  revert(key: K, at: string | Date): Promise<StoredRecord<Desc> | undefined>;
  /**
   * Move the records whose `field` (default: the retention rule's `timestampField`) is older than
   * `olderThan` into a new archive file (a backup file: `restoreBackup`, `verifyBackup` and `listBackups`
   * read it) and delete them from the store, all or nothing: the file is written and verified before any
   * record is deleted, and the deletes are one atomic write. Records written while it runs stay. Resolves
   * with the count and the file. Example: `await store.tasks.archive({ olderThan: "90d" })`.
   */
  archive(options: ArchiveOptions<TimestampField<Desc>>): Promise<ArchiveResult>;
}

/** The names of a message's `google.protobuf.Timestamp` fields (what `archive`'s `field` takes). */
export type TimestampField<Desc extends DescMessage> = {
  [P in keyof MessageShape<Desc> & string]-?: NonNullable<MessageShape<Desc>[P]> extends Timestamp ? P : never;
}[keyof MessageShape<Desc> & string];

/**
 * The dotted paths of a message's fields, through singular message fields (`"ui"`, `"ui.fontSize"`), up to
 * five levels deep; lists, maps and oneofs are leaves.
 */
export type FieldPath<T, Depth extends unknown[] = []> = Depth["length"] extends 5
  ? never
  : {
      [P in keyof T & string]: P extends "$typeName" | "$unknown"
        ? never
        : NonNullable<T[P]> extends Message
          ? P | `${P}.${FieldPath<NonNullable<T[P]>, [...Depth, unknown]>}`
          : P;
    }[keyof T & string];

/** The type of the field at a dotted `path` of `T` (`undefined` included when a message on the way is unset). */
export type PathValue<T, Path extends string> = Path extends `${infer H}.${infer R}`
  ? H extends keyof T
    ? PathValue<NonNullable<T[H]>, R> | (undefined extends T[H] ? undefined : never)
    : never
  : Path extends keyof T
    ? T[Path]
    : never;

/** The type of the field at a dotted `path` of `T` itself (what `set` takes). */
export type PathField<T, Path extends string> = Path extends `${infer H}.${infer R}`
  ? H extends keyof T
    ? PathField<NonNullable<T[H]>, R>
    : never
  : Path extends keyof T
    ? T[Path]
    : never;

/** One entry of a record's history (`history()` of an entity annotated with `history`). */
export interface HistoryEntry<T> {
  /** Names the entry for `revert` (16 hex digits: the change's time, then a counter). */
  readonly id: string;
  /** When the change that replaced this version was made. */
  readonly changedAt: Date;
  /** The version the change replaced (a collection's is `undefined` when the change created the record). */
  readonly value: T;
}

export interface Singleton<Desc extends DescMessage> {
  /** The stored value, or the defaults when never set. Returned objects are frozen (and typed read-only). */
  get(): Promise<StoredRecord<Desc>>;
  /** The field at a dotted path (`"ui.fontSize"`), `undefined` when a message on the way is unset. */
  get<P extends FieldPath<MessageShape<Desc>>>(path: P): Promise<Frozen<PathValue<MessageShape<Desc>, P>>>;
  /**
   * Set the field at a dotted path (`set("ui.fontSize", 14)`), creating unset messages on the way, then
   * validate the whole value like `update` and store it; queued with the singleton's updates. An unknown
   * path is refused (`E_USAGE`).
   */
  set<P extends FieldPath<MessageShape<Desc>>>(path: P, value: InputField<PathField<MessageShape<Desc>, P>>): Promise<StoredRecord<Desc>>;
  /**
   * Merge `patch` over the current value, or merge what `fn(current)` returns over it (shallow: a nested
   * message given is replaced whole), then validate and store. Updates apply one after another.
   */
  update(patch: EntityInput<Desc> | ((current: StoredRecord<Desc>) => EntityInput<Desc>)): Promise<StoredRecord<Desc>>;
  /** Back to defaults (the stored value is deleted). */
  reset(): Promise<void>;
  /**
   * The value as the text of an export file (docs/FORMAT.md, "Export file (NDJSON)"), for moving settings to
   * another installation. Sensitive fields are left out unless `includeSensitive: true`.
   */
  export(options?: { includeSensitive?: boolean }): Promise<string>;
  /**
   * Set the value from the text `export()` returned (validated, and migrated from an older schema version,
   * like `store.import`); sensitive fields it leaves out keep their stored values. `E_IMPORT` when it does not
   * validate (nothing is changed), `E_SCHEMA_NEWER` when it comes from a newer schema.
   */
  import(data: string): Promise<void>;
  /** The value as protobuf JSON (see `Collection.toJson`). */
  toJson(record: StoredRecord<Desc>): JsonValue;
  /** A value from protobuf JSON, validated like an `update` input (`E_VALIDATION`), frozen; nothing is stored. */
  fromJson(json: JsonValue): StoredRecord<Desc>;
  /**
   * Previous values, newest first, each with the time it was replaced (the defaults for a change of a
   * never-set value). Entities annotated with `history` only: `E_USAGE` otherwise.
   */
  history(): Promise<HistoryEntry<StoredRecord<Desc>>[]>;
  /**
   * Store again the value of history entry `at` (its `id`), or the value the singleton had at time `at`,
   * queued like `update` (the current value goes into the history in turn); the entry of a never-set value
   * resets. `E_NOT_FOUND` when there is no such entry or the history does not reach back to that time.
   * Undo the last change: `const [last] = await settings.history(); if (last) await settings.revert(last.id)`.
   */
  revert(at: string | Date): Promise<StoredRecord<Desc>>;
  /**
   * Live value (the defaults while never set): the current value first, then one update per commit that
   * changes it, from this process or any other sharing the store. See `Watch`.
   */
  watch(): Watch<StoredRecord<Desc>>;
}

export interface CollectionTx<Desc extends DescMessage, K extends KeyValue> {
  put(value: EntityInput<Desc>): void;
  delete(key: K): void;
}
export interface SingletonTx<Desc extends DescMessage> {
  update(patch: EntityInput<Desc> | ((current: StoredRecord<Desc>) => EntityInput<Desc>)): void;
  reset(): void;
}

export type BatchTx<E extends Record<string, EntityDefinition>> = {
  [P in keyof E]: E[P] extends CollectionDefinition<infer D, infer K, any>
    ? CollectionTx<D, K>
    : E[P] extends SingletonDefinition<infer D>
      ? SingletonTx<D>
      : never;
};

export interface ChangeEvent {
  entity: string;
  op: "put" | "delete";
  /** The record's key (`undefined` for singletons). */
  key: KeyValue | undefined;
  /** The commit's sequence number: the changes of one commit (a batch) share it; later commits have higher ones. */
  seq: number;
}

export interface StoreEvents {
  /**
   * After a write is durable, once per record it changed (a delete of a missing key fires nothing), when
   * the store's state reflects the whole commit.
   */
  change: (e: ChangeEvent) => void;
  /** Damage found at open (also in `recoveryReport`) or later on read; never contains a stored value. */
  corruption: (e: CellarError | RecoveryReport) => void;
  /**
   * A background task (automatic compaction, relaxed sync, re-keying a backup) failed, or a listener of
   * another event threw (`ListenerError`, `E_LISTENER`, the thrown error as `cause`). Without an `error`
   * listener, a listener's error is emitted as a process warning instead; it never reaches the store.
   */
  error: (e: CellarError) => void;
}

export interface StoreHandle<E extends Record<string, EntityDefinition>> {
  readonly dir: string;
  /** What open found and repaired: a torn tail cut off, damaged records quarantined, leftovers removed. */
  readonly recoveryReport: RecoveryReport;
  /** The verified backup file this open took before migrating records, or null. */
  readonly migrationBackup: string | null;
  /** Commit writes to several entities atomically: after a crash, all or none. */
  batch(fn: (tx: BatchTx<E>) => void | Promise<void>): Promise<void>;
  /** Rewrite live records into a fresh segment and delete dead bytes. */
  compact(): Promise<void>;
  /**
   * Start using a new random data key for every write; records under older keys are re-encrypted by the
   * next compaction (`reencrypt()` runs it now), then the old keys are destroyed. Resolves with the new key id.
   */
  rotateKey(): Promise<number>;
  /** Re-encrypt every record under the active data key now and destroy older ones; resolves with their ids. */
  reencrypt(): Promise<number[]>;
  /**
   * Rewrap the data keys under a new master key (e.g. a new passphrase). Only the small KEYRING file is
   * rewritten, whatever the store's size; the old master key stops working at once.
   */
  changeMasterKey(next: KeyProvider): Promise<void>;
  /** Key ids in use and the kind of master key: never key material. */
  keyInfo(): ReturnType<Engine["keyInfo"]>;
  /**
   * Every stored record as protobuf JSON, for support and inspection tools: sensitive fields are never
   * opened, and every sensitive field a record holds reads `"[redacted]"`. Works in either key scope.
   */
  inspect(options?: { entities?: readonly string[] }): AsyncGenerator<InspectedRecord>;
  stats(): StoreStats;
  /**
   * Apply every entity's `retention` rule now: records older than `maxAgeMs` by their timestamp field, and
   * beyond `maxCount` the oldest, are deleted in one atomic write (normal deletes: a `change` event each);
   * resolves with the count per entity. Runs after a cleanup already running. Also runs at open and
   * periodically (`cleanup` option).
   */
  cleanup(): Promise<CleanupReport>;
  on<N extends keyof StoreEvents>(event: N, listener: StoreEvents[N]): () => void;
  close(): Promise<void>;
  /**
   * An online, consistent backup into one file: every write acknowledged before the call is in it, none
   * after; writes go on meanwhile. Without `password` the records stay sealed under the store's data keys
   * (restoring needs this store's master key); with it, the data keys are wrapped under Argon2id(password).
   */
  backup(options: BackupOptions): Promise<BackupInfo>;
  /**
   * Write records as NDJSON to `to` (temp file, fsync, rename), streamed a page at a time: a header line, then
   * one line per record in protobuf JSON with its entity and schema version (docs/FORMAT.md, "Export file
   * (NDJSON)"). Sensitive fields are left out (listed in the header) unless `includeSensitive: true`. Not a
   * point-in-time snapshot: a write during the export may or may not be in it.
   */
  export(options: ExportOptions): Promise<ExportResult>;
  /**
   * Import an export file, all or nothing: every line is validated against its entity at its version (older
   * versions migrated through the store's `migrations`); one bad line and nothing is written (`E_IMPORT`,
   * naming line, entity and field path). A newer schema version: `E_SCHEMA_NEWER`. `mode: "merge"` (default)
   * puts each record; `"replace"` leaves each entity of the file with exactly the file's records. Importing
   * the same file twice changes nothing the second time.
   */
  import(file: string, options?: ImportOptions): Promise<ImportResult>;
  /**
   * Bring back the records that damage found in this session (`recoveryReport`, the background check, a
   * compaction) made unreadable, from `file`, a backup of this store (or from each of a list, newest first,
   * until every lost record is found). Records the store holds or knows it deleted are never touched; the
   * records come back through a normal atomic write (validated, migrated from an older schema version,
   * with history and `change` events). Needs the store's key for a store-key backup (the one the store was
   * opened with, or `key`), `password` for a password backup. `E_BACKUP_FOREIGN` for another store's
   * backup; `E_BACKUP_CORRUPT`, `E_KEY` as `verifyBackup`. The report names what came back and what could
   * not (entity and record key, never a value).
   */
  recoverFrom(file: string | readonly string[], options?: RecoverOptions): Promise<RecoverReport>;
  /** `onCorruption: "restore"`: what the recovery at open brought back (null when open found no damage or another mode). */
  readonly recoveredAtOpen: RecoverReport | null;
  /**
   * The audit log: `verify()`, `list()`, `head()`, `flush()`, `withActor()`. Reading and verifying work in any
   * store that keeps a log (E_USAGE in one that does not); recording needs `openStore({ audit })`.
   */
  readonly audit: StoreAuditApi;
}

export type TypedStore<E extends Record<string, EntityDefinition>> = {
  readonly [P in keyof E]: E[P] extends CollectionDefinition<infer D, infer K, infer I>
    ? Collection<D, K, I>
    : E[P] extends SingletonDefinition<infer D>
      ? Singleton<D>
      : never;
} & StoreHandle<E>;

/** One record as `inspect()` shows it. */
export interface InspectedRecord {
  entity: string;
  /** The stored key (`""` for singletons). */
  key: string;
  version: number;
  json: JsonValue;
}
