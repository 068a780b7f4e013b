/**
 * The store's telemetry and logger (observe/) wired to the typed layer: `openObserved` runs `openStore`'s
 * work in the `cellar.open` span and logs the open and its recovery report; `observeStore` hands the open
 * store's events, repositories (timed calls, metrics on) and observable state to `StoreTelemetry`;
 * `observedUpgrade` runs a migration in the `cellar.migration` span. docs/OBSERVABILITY.md.
 */
import path from "node:path";
import { UsageError } from "../errors.js";
import type { RecoveryReport } from "../storage/engine.js";
import { isLogger } from "../observe/logger.js";
import { COLLECTION_OPERATIONS, SINGLETON_OPERATIONS, STORE_OPERATIONS, timeMethods } from "../observe/instrument.js";
import { errorType, StoreTelemetry } from "../observe/telemetry.js";
import { AUTOMATIC_LABEL, PRE_MIGRATION_LABEL } from "./auto-backup.js";
import { RESERVED_LABEL_PREFIX, resolveBackupDir } from "./backups.js";
import type { EntityDefinition } from "./entity.js";
import type { StoreOptions } from "./types.js";
import { StoreImpl } from "./store.js";
import { type UpgradeHost, type UpgradeOptions, upgrade } from "./upgrade.js";

/** The `cellar.backup.kind` of a backup's label. */
export function backupKind(label: string): string {
  if (label === AUTOMATIC_LABEL) return "automatic";
  return label.startsWith(PRE_MIGRATION_LABEL) ? "pre-migration" : label.startsWith(`${RESERVED_LABEL_PREFIX}archive `) ? "archive" : "manual";
}

/** Check `logger` and `telemetry`, and make the store's telemetry. */
export function makeTelemetry(options: StoreOptions): StoreTelemetry {
  if (options.logger !== undefined && !isLogger(options.logger)) throw new UsageError("`logger` must have `debug`, `info`, `warn` and `error` methods (pino, `console`)");
  const t = options.telemetry;
  if (t !== undefined && t !== false && (typeof t !== "object" || t === null)) throw new UsageError("`telemetry` must be `false` or an object");
  return new StoreTelemetry(options.dir, options.logger, t);
}

/** Run `open` (openStore's work) in the `cellar.open` span; log the open, or its failure. */
export async function openObserved(obs: StoreTelemetry, open: () => Promise<StoreImpl>): Promise<StoreImpl> {
  const t = performance.now();
  const span = obs.startSpan("cellar.open", {});
  let store: StoreImpl;
  try {
    store = await open();
  } catch (e) {
    obs.endSpan(span, e);
    obs.close(false);
    obs.log("error", { event: "open", code: errorType(e), ms: Math.round(performance.now() - t) });
    throw e;
  }
  const r = store.recoveryReport;
  span?.setAttributes({ "cellar.store.role": store.role, "cellar.store.created": r.created, "cellar.recovery.damaged": r.damaged.length });
  obs.endSpan(span);
  obs.log("info", { event: "open", role: store.role, created: r.created, entities: store.defs.size, ms: Math.round(performance.now() - t) });
  logRecovery(obs, r);
  return store;
}

/** The recovery report, when open repaired anything: counts and Cellar's own file names, never a key. */
function logRecovery(obs: StoreTelemetry, r: RecoveryReport): void {
  if (!r.truncatedTail && !r.damaged.length && !r.removedFiles.length) return;
  obs.log(r.damaged.length ? "error" : "warn", {
    event: "recovery",
    truncatedTail: r.truncatedTail ? { file: r.truncatedTail.file, offset: r.truncatedTail.offset, bytes: r.truncatedTail.bytes, reason: r.truncatedTail.reason } : null,
    damaged: r.damaged.map((d) => ({ file: d.file, offset: d.offset, bytes: d.bytes, reason: d.reason, lostRecords: d.records.length, quarantinedAs: d.quarantinedAs })),
    removedFiles: r.removedFiles.length,
  });
}

/** The open store to its telemetry: events, timed calls (metrics on), observable state; `close` ends it. */
export function observeStore(obs: StoreTelemetry, store: StoreImpl, entities: Record<string, EntityDefinition>, options: StoreOptions): void {
  StoreImpl.observe(store, (event, arg) => obs.event(event, arg));
  const engine = store.engine;
  let closed = false;
  const close = store.close;
  Object.defineProperty(store, "close", {
    value: () => close.call(store).finally(() => {
      if (!closed) obs.close();
      closed = true;
    }),
    configurable: true,
    writable: true,
  });
  if (!obs.instruments) return;
  const repos = store as unknown as Record<string, object>;
  for (const [prop, def] of Object.entries(entities)) {
    timeMethods(obs, repos[prop]!, def.kind === "collection" ? COLLECTION_OPERATIONS : SINGLETON_OPERATIONS, def.name);
  }
  timeMethods(obs, store, STORE_OPERATIONS, null);
  const auto = resolveBackupDir(options.backups, options.dir).auto;
  const maxBytes = options.quota?.maxBytes;
  obs.observe({
    entityUsage: () => engine.entityUsage(),
    cache: engine.cache,
    quota: maxBytes !== undefined ? { used: () => engine.stats().fileBytes, maxBytes } : null,
    autoBackups: auto ? { dir: auto.dir, storeId: Buffer.from(engine.storeId).toString("hex"), label: AUTOMATIC_LABEL, io: engine.io } : null,
    closed: () => closed,
  });
}

/** `upgrade` in the `cellar.migration` span, logged: the entities and versions, records, the backup's file name. */
export async function observedUpgrade(obs: StoreTelemetry, host: UpgradeHost, plans: Parameters<typeof upgrade>[1], options: UpgradeOptions): Promise<string | null> {
  const t = performance.now();
  const entities = [...plans.values()].map((p) => ({ entity: p.def.name, from: host.engine.storedVersions.get(p.def.name) ?? null, to: p.def.version, records: p.records }));
  const span = obs.startSpan("cellar.migration", {
    "cellar.migration.entities": entities.map((e) => e.entity),
    "cellar.migration.records": entities.reduce((n, e) => n + e.records, 0),
  });
  obs.log("info", { event: "migration", phase: "start", entities });
  try {
    const backup = await upgrade(host, plans, options);
    obs.endSpan(span);
    obs.log("info", { event: "migration", phase: "done", entities, ms: Math.round(performance.now() - t), backup: backup ? path.basename(backup) : null });
    return backup;
  } catch (e) {
    obs.endSpan(span, e);
    obs.log("error", { event: "migration", phase: "failed", entities, code: errorType(e), ms: Math.round(performance.now() - t) });
    throw e;
  }
}
