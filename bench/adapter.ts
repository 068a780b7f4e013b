/**
 * The one interface every system is measured through. Workloads (workloads.ts) are written once against
 * it; each adapter in adapters/ maps it onto one library, with durability matched: a `putOne` or
 * `putMany` resolves only once the library reports the write durable (fsync'd), unless the system's
 * `durability` says otherwise (better-sqlite3 `synchronous=NORMAL` is listed for comparison and is not).
 */
import type { DiskUsage } from "./fsutil.js";
import type { SettingsPatch, TaskRecord } from "./records.js";

export interface StoreAdapter {
  /** Open (creating if needed) the store in `dir`, an existing directory owned by this adapter. */
  open(dir: string): Promise<void>;
  /** One durable put; resolves once durable. Several may be in flight at once. */
  putOne(record: TaskRecord): Promise<void>;
  /** All records in one durable commit (one transaction / batch). */
  putMany(batch: readonly TaskRecord[]): Promise<void>;
  /** Merge `patch` into the one settings value, durably. */
  updateSettings(patch: SettingsPatch): Promise<void>;
  /** The decoded record stored under `key`, or undefined. */
  get(key: string): Promise<unknown>;
  /** Read and decode every task record; returns how many there were. */
  readAll(): Promise<number>;
  /**
   * Read and decode every task record into one array held at once (Cellar's `list()`), the system's own way
   * of getting all rows in one call; returns its length.
   */
  listAll(): Promise<number>;
  /** What the system offers to reclaim space / fold its log before measuring bytes on disk (may be a no-op). */
  compact(): Promise<void>;
  close(): Promise<void>;
  /** Bytes the store occupies on disk (call after `close`). */
  sizeOnDisk(): DiskUsage;
}

export interface SystemSpec {
  /** Stable id used on the command line (`--only`) and in child processes. */
  readonly id: string;
  /** Short name for tables and the chart. */
  readonly label: string;
  readonly kind: "cellar" | "peer";
  /** What "durable" means for this system, in one line for the report. */
  readonly durability: string;
  /** The package the system comes from (its version is read from node_modules for the report). */
  readonly packageName?: string;
  /** Load the library and make a new, unopened adapter; throws if the library cannot be loaded. */
  create(): Promise<StoreAdapter>;
}
