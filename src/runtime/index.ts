/**
 * Cellar runtime: the small public API generated code and apps use.
 * See README.md for the workflow and docs/FORMAT.md for the bytes on disk.
 */
export {
  defineCollection,
  defineSingleton,
  type CollectionDefinition,
  type EntityDefinition,
  type EntityShape,
  type KeyKind,
  type KeyValue,
  type HistoryRule,
  type RetentionRule,
  type SingletonDefinition,
} from "./typed/entity.js";
export {
  CellarError,
  type CellarErrorCode,
  CorruptionError,
  AuditTamperedError,
  IoError,
  isCellarError,
  KeyError,
  LimitError,
  type LockHolder,
  LockUnavailableError,
  ListenerError,
  MigrationError,
  NoSpaceError,
  NotFoundError,
  QuotaError,
  HistoryEntryNotFoundError,
  type BatchPosition,
  SchemaMismatchError,
  SchemaNewerError,
  StoreClosedError,
  StoreLockedError,
  UsageError,
  ValidationError,
  type ValidationIssue,
  BackupCorruptError,
  BackupForeignError,
  BackupFormatError,
  ImportError,
  BackupSkippedError,
  ChannelAuthError,
  ChannelDirError,
  ConflictError,
  FollowerError,
  SchemaVersionSkewError,
  WriterUnavailableError,
  ForbiddenError,
} from "./errors.js";
export {
  openStore,
  type BatchTx,
  type ChangeEvent,
  type Collection,
  type CollectionTx,
  type EntityInput,
  type FieldPath,
  type Frozen,
  type HistoryEntry,
  type Input,
  type PathField,
  type PathValue,
  type StoredRecord,
  type IndexValue,
  type ListOptions,
  type Singleton,
  type SingletonTx,
  type InspectedRecord,
  type StoreEvents,
  type StoreHandle,
  type StoreOptions,
  type TypedStore,
  type QueryWhere,
  type Watch,
  type WatchUpdate,
  type CleanupReport,
  type MissingRecord,
  type RecoverOptions,
  type RecoverReport,
  type EntityStats,
  type StoreStats,
  type ArchiveOptions,
  type ArchiveResult,
  type DurationString,
} from "./typed/store.js";
export type { TimestampField } from "./typed/types.js";
export {
  trend,
  type AggregateBucket,
  type AggregateOptions,
  type AggregateResult,
  type BucketSpec,
  type MinMaxField,
  type NumField,
  type TimeField,
  type TrendPoint,
} from "./typed/aggregate.js";
export type { Condition, OrderField, QueryExplain, QueryMethods, QueryOptions, QueryPage, QueryValue, Range, SecondsNanos } from "./typed/query-types.js";
export type { DamageReport, RecoveryReport } from "./storage/engine.js";
export type { MigrationProgress } from "./typed/upgrade.js";
export type { ExportHeader, ExportOptions, ExportResult } from "./typed/export.js";
export type { ImportOptions, ImportProgress, ImportResult } from "./typed/import.js";
export type { AuditEntry, AuditOptions, AuditProblem, AuditVerifyReport, StoreAuditApi } from "./typed/audit.js";
export type { AuditAction } from "./format/audit.js";
export { keys, DEFAULT_PASSPHRASE_COST, type KeyProvider, type KeyRequest, type PassphraseCost } from "./crypto/keys.js";
export { MigrationNotImplementedError, type MigrationContext, type MigrationStep } from "./typed/migration.js";
export { type FileIO, type Failpoint, nodeFileIO } from "./platform/io.js";
export {
  decodeWith,
  encodeWith,
  type EntityCodec,
  isPlainObject,
  MAX_DEPTH,
  bytesLength,
  noUnknownFields,
  ProtoReader,
  ProtoWriter,
} from "./format/protowire.js";
export { listBackups, type BackupInfo, type BackupOptions, type BackupProgress, type ListedBackup } from "./storage/backup.js";
export { restoreBackup, verifyBackup, type RestoreBackupOptions, type VerifyBackupOptions } from "./storage/restore.js";
export { defaultBackupDir, type AutoBackupOptions } from "./typed/auto-backup.js";
export { verifyStore, type VerifyFinding, type VerifyReport, type VerifyStoreOptions } from "./typed/verify-store.js";
export { lastVerification, type LastVerification } from "./typed/verified.js";
export type { BackupKeep } from "./typed/backup-retention.js";
export { paths, PORTABLE_MARKER, type AppPaths, type PathsOptions, type Profile } from "./platform/app-paths.js";
export type { Logger, LogMethod } from "./observe/logger.js";
export type { ObserveOptions, TelemetryOptions } from "./observe/telemetry.js";
