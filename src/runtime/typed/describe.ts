/**
 * A store read without opening it for the app: what `cellar info` and `cellar migrate --dry-run` show.
 * `openForReading` opens the engine read-only (no file changed: no upgrade, compaction, torn-tail cut or
 * quarantine copy), or, when another process holds the store, as a follower engine (reads the files that
 * process writes, no lock, no channel, no file changed). `describeStore` says what the store holds per
 * entity (versions, counts, bytes), its keys (never key material) and what its open found;
 * `planUpgradeDryRun` says what `openStore` would do to upgrade it to the app's schema, writing nothing.
 */
import { FILE_HEADER_SIZE, FileKind, FORMAT_VERSION, MAGIC } from "../format/format.js";
import { MANIFEST_COPY_FILE, MANIFEST_FILE } from "../format/filenames.js";
import { isCellarError, StoreLockedError } from "../errors.js";
import type { KeyProvider } from "../crypto/keys.js";
import type { FileIO } from "../platform/io.js";
import { Engine, type RecoveryReport } from "../storage/engine.js";
import type { EntityDefinition } from "./entity.js";
import type { MigrationStep } from "./migration.js";
import { entityStats } from "./stats.js";

export interface ReadOpenOptions {
  dir: string;
  key?: Uint8Array | KeyProvider;
  encryption?: "xchacha20poly1305" | "none";
  io?: FileIO;
  /** Check every segment block's crc before open returns (`verifyOnOpen: true`); read-only opens only. */
  verifyBlocks?: boolean;
  /** `"records"`: the keys of sensitive fields are never derived. Default `"all"`. */
  keyScope?: "all" | "records";
}

export interface ReadOpened {
  engine: Engine;
  /** `"read-only"`: this process holds the lock, reading only; `"follower"`: another process (`holderPid`) holds the store. */
  opened: "read-only" | "follower";
  holderPid: number | null;
}

/** The store at `options.dir` opened without changing a file (read-only, or a follower engine when it is held). */
export async function openForReading(options: ReadOpenOptions): Promise<ReadOpened> {
  const { verifyBlocks, keyScope, ...rest } = options;
  const base = { ...rest, keyScope: keyScope ?? "all", compaction: { auto: false }, blockCacheBytes: 8 * 1024 * 1024 } as const;
  try {
    return { engine: await Engine.open({ ...base, readOnly: true, verifyOnOpen: verifyBlocks === true }), opened: "read-only", holderPid: null };
  } catch (e) {
    if (!(e instanceof StoreLockedError) && !(isCellarError(e) && e.code === "E_LOCKED")) throw e;
    const holderPid = e instanceof StoreLockedError ? (e.holder?.pid ?? null) : null;
    return { engine: await Engine.openFollower({ ...base, verifyOnOpen: false }), opened: "follower", holderPid };
  }
}

export interface EntityDescription {
  /** The storage name. */
  name: string;
  /** The store property of the app's schema (undefined: an entity the store holds and the schema does not name). */
  property?: string;
  kind?: "collection" | "singleton";
  /** The app's schema version (undefined: not in the schema). */
  schemaVersion?: number;
  /** The version the store records for it (undefined: never written). */
  storedVersion?: number;
  records: number;
  /** Live records per schema version they are stored at. */
  versions: Record<string, number>;
  liveBytes: number;
  deadBytes: number;
  historyBytes: number;
}

export interface StoreDescription {
  dir: string;
  /** The format version of the store's MANIFEST file, and the one this runtime writes. */
  formatVersion: number;
  runtimeFormatVersion: number;
  opened: ReadOpened["opened"];
  holderPid: number | null;
  key: ReturnType<Engine["keyInfo"]>;
  fileBytes: number;
  deadBytes: number;
  journalBytes: number;
  /** Live records of the app's entities and any other the store holds (internal ones not counted). */
  records: number;
  /** Bytes of Cellar's internal entities other than history. */
  internalBytes: number;
  entities: EntityDescription[];
  recovery: RecoveryReport;
}

/** Live records of `entity` per stored schema version (one synchronous pass over its keyspace). */
function versionCounts(engine: Engine, entity: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [, loc] of engine.scan(entity)) counts[loc.version] = (counts[loc.version] ?? 0) + 1;
  return counts;
}

/**
 * The format version in the header of the store's manifest: `MANIFEST`, or `MANIFEST.copy` when `MANIFEST`
 * is missing or its header is not a Cellar manifest's (the open then chose the copy: manifest-choice.ts).
 */
function manifestFormatVersion(io: FileIO, dir: string): number {
  for (const name of [MANIFEST_FILE, MANIFEST_COPY_FILE]) {
    const file = `${dir}/${name}`;
    if (!io.exists(file)) continue;
    const header = new Uint8Array(FILE_HEADER_SIZE);
    const fd = io.open(file, "r");
    try {
      if (io.read(fd, header, 0) < FILE_HEADER_SIZE) continue;
    } finally {
      io.close(fd);
    }
    if (MAGIC.every((b, i) => header[i] === b) && header[6] === FileKind.manifest) return header[7]!;
  }
  return FORMAT_VERSION;
}

/** What the store holds, per entity of `entities` (and any other it holds), read through `engine`. */
export function describeEngine(r: ReadOpened, entities: Record<string, EntityDefinition>): StoreDescription {
  const { engine } = r;
  const byName = new Map(Object.entries(entities).map(([prop, def]) => [def.name, { prop, def }]));
  const usage = engine.entityUsage();
  const { entities: stats, internalBytes } = entityStats(usage, byName.keys(), { dir: "", files: 0, bytes: 0, byEntity: null });
  const stored = engine.storedVersions;
  const list: EntityDescription[] = Object.entries(stats).map(([name, s]) => {
    const app = byName.get(name);
    return {
      name,
      ...(app ? { property: app.prop, kind: app.def.kind, schemaVersion: app.def.version } : {}),
      ...(stored.has(name) ? { storedVersion: stored.get(name)! } : {}),
      records: s.records,
      versions: versionCounts(engine, name),
      liveBytes: s.liveBytes,
      deadBytes: s.deadBytes,
      historyBytes: s.historyBytes,
    };
  });
  const totals = engine.stats();
  return {
    dir: engine.dir,
    formatVersion: manifestFormatVersion(engine.io, engine.dir),
    runtimeFormatVersion: FORMAT_VERSION,
    opened: r.opened,
    holderPid: r.holderPid,
    key: engine.keyInfo(),
    fileBytes: totals.fileBytes,
    deadBytes: totals.deadBytes,
    journalBytes: totals.journalBytes,
    records: list.reduce((n, e) => n + e.records, 0),
    internalBytes,
    entities: list,
    recovery: engine.recovery,
  };
}

/** `describeEngine` of the store at `options.dir`, opened for reading and closed. */
export async function describeStore(entities: Record<string, EntityDefinition>, options: ReadOpenOptions): Promise<StoreDescription> {
  const r = await openForReading({ ...options, keyScope: "records" });
  try {
    return describeEngine(r, entities);
  } finally {
    await r.engine.close();
  }
}

export interface EntityUpgradePlan {
  name: string;
  property: string;
  schemaVersion: number;
  storedVersion?: number;
  records: number;
  /** Live records per stored version. */
  versions: Record<string, number>;
  /** `"current"`, `"migrate"` (records older than the schema), `"newer"` (the store is ahead: open refuses, E_SCHEMA_NEWER), `"new"` (never written). */
  action: "current" | "migrate" | "newer" | "new";
  /** Records a migration would rewrite. */
  toMigrate: number;
  /** The steps that would run, oldest first (`from` → `to`), and whether each is registered. */
  steps: { from: number; to: number; registered: boolean }[];
}

export interface UpgradePlan {
  entities: EntityUpgradePlan[];
  /** True when open would migrate (and could: every step registered, nothing newer). */
  wouldMigrate: boolean;
  /** Why open would refuse instead (missing steps, a newer store), else null. */
  blocked: string | null;
  /** Whether a verified pre-migration backup file would be taken first (`backupBeforeMigration`, default true). */
  backup: boolean;
}

/** What `openStore` would do to upgrade the described store to `entities` with `migrations`: nothing is written. */
export function planUpgradeDryRun(
  d: StoreDescription,
  entities: Record<string, EntityDefinition>,
  migrations: readonly MigrationStep[],
  backupBeforeMigration = true,
): UpgradePlan {
  const plans: EntityUpgradePlan[] = [];
  const problems: string[] = [];
  for (const [property, def] of Object.entries(entities)) {
    const e = d.entities.find((x) => x.name === def.name);
    const versions = e?.versions ?? {};
    const stored = e?.storedVersion;
    const old = Object.keys(versions).map(Number).filter((v) => v < def.version);
    const newest = Math.max(stored ?? 0, ...Object.keys(versions).map(Number));
    const action = newest > def.version ? "newer" : stored === undefined && !e?.records ? "new" : old.length || (stored !== undefined && stored < def.version) ? "migrate" : "current";
    const steps: EntityUpgradePlan["steps"] = [];
    if (action === "migrate") {
      for (let v = Math.min(stored ?? def.version, ...old); v < def.version; v++) {
        const registered = migrations.some((s) => s.entity === def.name && s.from === v && s.to === v + 1);
        if (!registered) problems.push(`no migration step of \`${def.name}\` from version ${v} to ${v + 1} is registered`);
        steps.push({ from: v, to: v + 1, registered });
      }
    }
    if (action === "newer") problems.push(`\`${def.name}\` is stored at version ${newest}, newer than the app's ${def.version} (E_SCHEMA_NEWER)`);
    const toMigrate = old.reduce((n, v) => n + (versions[v] ?? 0), 0);
    plans.push({ name: def.name, property, schemaVersion: def.version, ...(stored !== undefined ? { storedVersion: stored } : {}), records: e?.records ?? 0, versions, action, toMigrate, steps });
  }
  const migrating = plans.some((p) => p.action === "migrate");
  return { entities: plans, wouldMigrate: migrating && problems.length === 0, blocked: problems.length ? problems.join("; ") : null, backup: migrating && backupBeforeMigration };
}
