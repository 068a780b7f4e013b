/**
 * `openStore(entities, options)`: checks the entities and the options, opens the engine, migrates at open
 * (upgrade.ts), builds the indexes the records' terms do not hold yet (index-build.ts), and starts what runs
 * while the store is open (history sweep, recovery at open, retention cleanups, automatic backups). The store it returns is `StoreImpl` (store.ts), which re-exports this.
 */
import { checkSkew, onPromotion, openShared } from "./share-open.js";
import { KeyError, UsageError } from "../errors.js";
import type { EntityDefinition } from "./entity.js";
import { planUpgrade } from "./upgrade.js";
import { nodeFileIO } from "../platform/io.js";
import type { StoreTelemetry } from "../observe/telemetry.js";
import { backupKind, makeTelemetry, observedUpgrade, observeStore, openObserved } from "./observe-store.js";
import { parseEvery } from "./retention.js";
import { resolveBackupDir } from "./backups.js";
import { checkHistoryRule, INTERNAL_PREFIX } from "./history.js";
import { removeStaging } from "./import.js";
import { buildIndexes } from "./index-build.js";
import type { StoreOptions, TypedStore } from "./types.js";
import { RESERVED, StoreImpl } from "./store.js";
import { checkAuditOptions, StoreAudit } from "./audit.js";
import { turn } from "../platform/turn.js";

/** Open (or create) a store holding `entities`. */
export async function openStore<E extends Record<string, EntityDefinition>>(
  entities: E,
  options: StoreOptions,
): Promise<TypedStore<E>> {
  const obs = makeTelemetry(options);
  const store = await openObserved(obs, () => open(entities, options, obs));
  return store as unknown as TypedStore<E>;
}

async function open(entities: Record<string, EntityDefinition>, options: StoreOptions, obs: StoreTelemetry): Promise<StoreImpl> {
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
  const auditSettings = checkAuditOptions(options.audit, defs, options.encryption !== "none" && options.key !== undefined);
  const { audit: _audit, redactSensitive, migrations, backupBeforeMigration, onMigrationProgress, onIndexProgress, cleanup, backups, onCorruption, sharing: share, writeTimeoutMs, logger, telemetry, ...engineOptions } = options;
  const cleanupEvery = cleanup === false ? null : parseEvery(cleanup?.every);
  const backupDir = resolveBackupDir(backups, options.dir);
  if (onCorruption !== undefined && onCorruption !== "quarantine" && onCorruption !== "refuse" && onCorruption !== "restore") {
    throw new UsageError("`onCorruption` must be \"quarantine\", \"refuse\" or \"restore\"");
  }
  if (onCorruption === "restore" && redactSensitive) throw new UsageError("`onCorruption: \"restore\"` writes the records it brings back: a `redactSensitive` store cannot");
  const { engine, sharing } = await openShared({
    ...engineOptions,
    // "restore" opens like "quarantine", then brings the lost records back from the backups (recover.ts).
    ...(onCorruption !== undefined ? { onCorruption: onCorruption === "restore" ? "quarantine" : onCorruption } : {}),
    recordCacheBytes: options.cacheBytes ?? 64 * 1024 * 1024,
    keyScope: redactSensitive ? "records" : "all",
    readOnly: redactSensitive === true,
    hooks: obs.hooks(backupKind),
    ...(obs.instruments ? { io: obs.timedIO(options.io ?? nodeFileIO()) } : {}),
  }, share !== false, writeTimeoutMs);
  let store: StoreImpl;
  try {
    store = new StoreImpl(engine, entities, defs, redactSensitive === true, backupDir, options.key);
    store.setMigrations(migrations ?? []);
    observeStore(obs, store, entities, options);
    // issue 15: the loop turns between the open's steps (storage/open.ts turns within the engine's), once the
    // engine reports to the store (the background check may run in a turn). Not in a follower: its promotion
    // handler is set below, and nothing may run before it is.
    if (sharing?.role !== "follower") await turn();
    // What only the writer runs after open (and a follower when it is promoted).
    const writerWork = async () => {
      await StoreImpl.startAudit(store); // the log's first entry, or its pruning by `keep`
      if (!redactSensitive) engine.setEntityVersions(new Map([...defs.values()].map((d) => [d.name, d.version])));
      // Indexes the schema declares and the records' terms do not hold yet (index-build.ts), before the store serves.
      // A build the quota refuses stops; the `error` event says so once the app can listen.
      if (!redactSensitive) await buildIndexes(engine, defs.values(), onIndexProgress, (e) => setImmediate(() => engine.onProblem?.(e)));
      // Record history past its `maxAgeMs` (entries of records not written since): deleted at open.
      if (!redactSensitive) await StoreImpl.sweepHistory(store);
      if (onCorruption === "restore") await StoreImpl.recoverAtOpen(store);
      if (!redactSensitive && cleanup !== false) StoreImpl.startCleanup(store, cleanup?.atOpen ?? true, cleanupEvery);
      // Automatic backups and the move of legacy pre-migration copies (backups.ts), in the background.
      if (!redactSensitive) StoreImpl.startBackups(store);
    };
    if (sharing) StoreImpl.share(store, sharing);
    // A redactSensitive store is read-only: it reads and verifies the log, it records nothing.
    // A store that keeps a log goes on recording when opened without `audit` (a tool, `cellar`): `audit: false` stops it.
    const inherited = options.audit === undefined && engine.keyring?.hasAuditRoot ? checkAuditOptions(true, defs, true) : null;
    StoreImpl.audit(store, StoreAudit.open(engine, redactSensitive ? null : (auditSettings ?? inherited)));
    if (sharing?.role === "follower") {
      checkSkew(engine, defs, sharing);
      onPromotion(store, sharing, writerWork);
      return store;
    }
    if (!redactSensitive) removeStaging(engine.dir); // an import that did not finish (import.ts)
    const host = store.upgradeHost(options);
    const plans = planUpgrade(host, migrations ?? []);
    if (plans.size) {
      store.migrationBackup = await observedUpgrade(obs, host, plans, {
        migrations: migrations ?? [],
        backup: backupBeforeMigration ?? true,
        onProgress: onMigrationProgress,
      });
      store.records.clear();
    }
    await turn(); // before the channel listens: no follower's write comes in this turn
    await sharing?.start(); // followers' writes from now on, at this app's schema versions
    await writerWork();
  } catch (e) {
    await sharing?.close();
    await engine.close();
    throw e;
  }
  return store;
}
