/**
 * `store.stats()` per entity: the engine's bytes per engine entity (storage/usage.ts) attributed to the
 * app's entities, and the bytes of the store's backups (counted by backups.ts `StoreBackups.usage`). Internal engine entities start with `~` (shared
 * decision of issue 12): `~history:E` holds the previous versions of E's records and counts as E's
 * `historyBytes`; any other `~` entity counts in the store's `internalBytes` only.
 */
import type { EntityUsage } from "../storage/engine.js";
import { HISTORY_ENTITY_PREFIX, INTERNAL_ENTITY_PREFIX } from "../format/format.js";

export interface EntityStats {
  /** Live records. */
  records: number;
  /** Bytes of the data files holding its live records (journal bytes are an estimate). */
  liveBytes: number;
  /** Bytes of its overwritten and deleted records still in the files (a compaction frees them). */
  deadBytes: number;
  /** Bytes (live and dead) of its record history (`~history:<entity>`). */
  historyBytes: number;
  /** Bytes of its records in the backups, when the backups say (else 0: see `StoreStats.backups`). */
  backupBytes: number;
  /**
   * The schema version the store records for it (the manifest's): its records are stored at it. A writer's
   * open migrates to the app's version first; a read-only or follower open may find an older one. Absent
   * when none is recorded (a store that never held the entity).
   */
  storedVersion?: number;
}

export interface BackupUsage {
  /** The directory counted. */
  dir: string;
  files: number;
  bytes: number;
  /** Bytes per entity, when the backup files tell (null: not attributed; `bytes` is the whole). */
  byEntity: ReadonlyMap<string, number> | null;
}


/** Per entity: every entity of `names` (the app's), and any other non-internal entity the store holds; `stored`: the versions the store records. */
export function entityStats(
  usage: ReadonlyMap<string, EntityUsage>,
  names: Iterable<string>,
  backups: BackupUsage,
  stored?: ReadonlyMap<string, number>,
): { entities: Record<string, EntityStats>; internalBytes: number } {
  const entities: Record<string, EntityStats> = {};
  const row = (name: string) => (entities[name] ??= { records: 0, liveBytes: 0, deadBytes: 0, historyBytes: 0, backupBytes: 0 });
  for (const n of names) row(n);
  let internalBytes = 0;
  for (const [name, u] of usage) {
    if (name.startsWith(HISTORY_ENTITY_PREFIX)) row(name.slice(HISTORY_ENTITY_PREFIX.length)).historyBytes += u.liveBytes + u.deadBytes;
    else if (name.startsWith(INTERNAL_ENTITY_PREFIX)) internalBytes += u.liveBytes + u.deadBytes;
    else {
      const r = row(name);
      r.records = u.records;
      r.liveBytes = u.liveBytes;
      r.deadBytes = u.deadBytes;
    }
  }
  if (backups.byEntity) for (const [name, n] of backups.byEntity) if (!name.startsWith(INTERNAL_ENTITY_PREFIX)) row(name).backupBytes += n;
  if (stored) for (const [name, v] of stored) if (entities[name]) entities[name].storedVersion = v;
  return { entities, internalBytes };
}
