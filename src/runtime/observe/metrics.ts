/**
 * The names, units and buckets of Cellar's metrics (docs/OBSERVABILITY.md), and `Instruments`: each made
 * once per store on the meter it is given. `db.client.operation.duration` and its attributes follow the
 * OpenTelemetry database-client conventions; Cellar's own metrics start with `cellar.`.
 */
import type { Histogram, Meter } from "./otel.js";

export const DB_SYSTEM = "cellar";

/** Attribute names (the conventions' `db.*` and `error.type`; Cellar's own start with `cellar.`). */
export const ATTR = {
  system: "db.system.name",
  namespace: "db.namespace",
  operation: "db.operation.name",
  collection: "db.collection.name",
  errorType: "error.type",
  compactionKind: "cellar.compaction.kind",
  backupKind: "cellar.backup.kind",
  bytesState: "cellar.bytes.state",
  cacheResult: "cellar.cache.result",
  corruptionPhase: "cellar.corruption.phase",
} as const;

/** The conventions' buckets for `db.client.operation.duration`, in seconds. */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];
/** fsync: most take 0.1 to 10 ms on an SSD; seconds on a busy disk. */
export const FSYNC_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5];
/** Writes grouped in one commit. */
export const GROUP_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export const NAMES = {
  operationDuration: "db.client.operation.duration",
  commitGroupSize: "cellar.commit.group.size",
  fsyncDuration: "cellar.fsync.duration",
  compactions: "cellar.compactions",
  compactionDuration: "cellar.compaction.duration",
  backupDuration: "cellar.backup.duration",
  corruptions: "cellar.corruptions",
  entitySize: "cellar.entity.size",
  cacheLookups: "cellar.cache.lookups",
  quotaUsage: "cellar.quota.usage",
  quotaLimit: "cellar.quota.limit",
  backupAge: "cellar.backup.age",
} as const;

export class Instruments {
  readonly operationDuration: Histogram;
  readonly commitGroupSize: Histogram;
  readonly fsyncDuration: Histogram;
  readonly compactions;
  readonly compactionDuration: Histogram;
  readonly backupDuration: Histogram;
  readonly corruptions;
  readonly entitySize;
  readonly cacheLookups;
  readonly quotaUsage;
  readonly quotaLimit;
  readonly backupAge;

  constructor(meter: Meter) {
    const seconds = (name: string, description: string, buckets: number[]) =>
      meter.createHistogram(name, { unit: "s", description, advice: { explicitBucketBoundaries: buckets } });
    this.operationDuration = seconds(NAMES.operationDuration, "Duration of a store operation (a repository call or a batch).", DURATION_BUCKETS);
    this.commitGroupSize = meter.createHistogram(NAMES.commitGroupSize, {
      unit: "{write}",
      description: "Writes (puts, deletes, batches) committed together by one group commit.",
      advice: { explicitBucketBoundaries: GROUP_BUCKETS },
    });
    this.fsyncDuration = seconds(NAMES.fsyncDuration, "Duration of an fsync or fdatasync of a store file.", FSYNC_BUCKETS);
    this.compactions = meter.createCounter(NAMES.compactions, { unit: "{compaction}", description: "Compactions run (finished or failed)." });
    this.compactionDuration = seconds(NAMES.compactionDuration, "Duration of a compaction.", DURATION_BUCKETS);
    this.backupDuration = seconds(NAMES.backupDuration, "Duration of a backup.", DURATION_BUCKETS);
    this.corruptions = meter.createCounter(NAMES.corruptions, { unit: "{problem}", description: "Damage found in the store's files." });
    this.entitySize = meter.createObservableGauge(NAMES.entitySize, { unit: "By", description: "Bytes on disk of an entity's records, live or dead." });
    this.cacheLookups = meter.createObservableCounter(NAMES.cacheLookups, { unit: "{lookup}", description: "Lookups in the store's cache of blocks and records, by result." });
    this.quotaUsage = meter.createObservableGauge(NAMES.quotaUsage, { unit: "By", description: "Bytes the store's data files count against its quota." });
    this.quotaLimit = meter.createObservableGauge(NAMES.quotaLimit, { unit: "By", description: "The store's quota (`quota.maxBytes`)." });
    this.backupAge = meter.createObservableGauge(NAMES.backupAge, { unit: "s", description: "Age of the newest automatic backup." });
  }
}
