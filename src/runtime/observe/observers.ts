/**
 * The observable instruments of one store (metrics.ts): read when the app's metric reader collects, never
 * per operation. Bytes per entity (storage/usage.ts), the cache's hits and misses (storage/cache.ts), the
 * quota's use and limit (only with a quota), the age of the newest automatic backup (only with automatic
 * backups: found once from the backup files' headers, then kept by the backups' hook).
 */
import fs from "node:fs";
import path from "node:path";
import type { FileIO } from "../platform/io.js";
import { readBackupHeader } from "../storage/backup.js";
import type { EntityUsage } from "../storage/usage.js";
import { ATTR, type Instruments } from "./metrics.js";
import type { Attributes, ObservableResult } from "./otel.js";

/** What the observers read of an open store (the typed layer hands it over). */
export interface ObservedStore {
  entityUsage(): Map<string, EntityUsage>;
  cache: { hits: number; misses: number };
  /** Bytes of the data files, for the quota (null: no quota). */
  quota: { used(): number; maxBytes: number } | null;
  /** Automatic backups: where, of which store (hex id), under which label (null: none configured). */
  autoBackups: { dir: string; storeId: string; label: string; io: FileIO } | null;
  /** Whether the store is closed (observers then report nothing). */
  closed(): boolean;
}

export class Observers {
  private readonly removers: (() => void)[] = [];
  /** Newest automatic backup (ms since epoch): undefined until first looked for, null when none. */
  private newestBackup: number | null | undefined;

  constructor(
    inst: Instruments,
    private readonly base: Attributes,
    private readonly store: ObservedStore,
  ) {
    this.add(inst.entitySize, (r) => this.entities(r));
    const cache = store.cache;
    const hit = { ...base, [ATTR.cacheResult]: "hit" };
    const miss = { ...base, [ATTR.cacheResult]: "miss" };
    this.add(inst.cacheLookups, (r) => {
      r.observe(cache.hits, hit);
      r.observe(cache.misses, miss);
    });
    const quota = store.quota;
    if (quota) {
      this.add(inst.quotaUsage, (r) => r.observe(quota.used(), base));
      this.add(inst.quotaLimit, (r) => r.observe(quota.maxBytes, base));
    }
    if (store.autoBackups) this.add(inst.backupAge, (r) => this.backupAge(r));
  }

  private add(o: { addCallback(cb: (r: ObservableResult) => void): void; removeCallback(cb: (r: ObservableResult) => void): void }, f: (r: ObservableResult) => void): void {
    const cb = (r: ObservableResult) => {
      if (!this.store.closed()) f(r);
    };
    o.addCallback(cb);
    this.removers.push(() => o.removeCallback(cb));
  }

  /** The app's entities' live and dead bytes (Cellar's own `~` entities are not reported). */
  private entities(r: ObservableResult): void {
    for (const [name, u] of this.store.entityUsage()) {
      if (name.startsWith("~")) continue;
      r.observe(u.liveBytes, { ...this.base, [ATTR.collection]: name, [ATTR.bytesState]: "live" });
      r.observe(u.deadBytes, { ...this.base, [ATTR.collection]: name, [ATTR.bytesState]: "dead" });
    }
  }

  private backupAge(r: ObservableResult): void {
    if (this.newestBackup === undefined) this.newestBackup = newestBackupAt(this.store.autoBackups!);
    if (this.newestBackup !== null) r.observe(Math.max(0, (Date.now() - this.newestBackup) / 1000), this.base);
  }

  /** An automatic backup was just taken (the backups' hook). */
  backupTaken(at: number): void {
    if (this.newestBackup === undefined || this.newestBackup === null || at > this.newestBackup) this.newestBackup = at;
  }

  close(): void {
    for (const r of this.removers) r();
    this.removers.length = 0;
  }
}

/** The creation time of the newest backup file in `dir` of this store with `label` (headers only), or null. */
export function newestBackupAt(b: { dir: string; storeId: string; label: string; io: FileIO }): number | null {
  let names: string[];
  try {
    names = fs.readdirSync(b.dir);
  } catch {
    return null;
  }
  let newest: number | null = null;
  for (const n of names) {
    if (n.endsWith(".tmp")) continue;
    try {
      const { header } = readBackupHeader(b.io, path.join(b.dir, n));
      if (header.label !== b.label || Buffer.from(header.storeId).toString("hex") !== b.storeId) continue;
      if (newest === null || header.createdAt > newest) newest = header.createdAt;
    } catch {
      // not a backup, or damaged: not counted
    }
  }
  return newest;
}
