/**
 * Upgrade on open: when a store holds records older than the app's schema, `openStore` takes a full
 * backup file (in the backup directory), verifies it, migrates every old record through each step (v1 → v2 → v3 …), validates each result
 * with the entity's zod schema, and switches to the migrated records with one atomic manifest rename
 * (`Engine.rewrite`). Any failure — a missing step, a step that throws, a result that fails validation,
 * a backup that does not verify, the process killed midway — leaves the original store as it was.
 *
 * Crash windows: docs/FORMAT.md, "Migration".
 */
import path from "node:path";
import { create, type DescMessage, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import type { EntityDefinition } from "./entity.js";
import { Engine, type Rewrite } from "../storage/engine.js";
import { CellarError, isCellarError, MigrationError, SchemaNewerError, UsageError } from "../errors.js";
import { MAX_LABEL_BYTES } from "../format/backup-file.js";
import type { FileIO } from "../platform/io.js";
import { verifyBackup } from "../storage/restore.js";
import { backupFileName, PRE_MIGRATION_LABEL } from "./auto-backup.js";
import type { KeyProvider } from "../crypto/keys.js";
import type { MigrationStep } from "./migration.js";
import { moveValue, type SensitiveKeys, ValueCodec } from "../crypto/value.js";
import { historyEntityName, recordKeyOfEntry } from "./history.js";

export interface MigrationProgress {
  phase: "backup" | "verify" | "migrate" | "done";
  /** The entity being migrated (phase "migrate"). */
  entity?: string;
  /** Records migrated so far, and records to migrate, over all entities. */
  done: number;
  total: number;
  /** The verified backup file (from phase "verify" on). */
  backup?: string;
}

export interface UpgradeOptions {
  migrations: readonly MigrationStep[];
  /** Take and verify a full backup before migrating (default true). */
  backup: boolean;
  onProgress: ((p: MigrationProgress) => void) | undefined;
}

/** What the upgrade needs from the typed store. */
export interface UpgradeHost {
  engine: Engine;
  defs: ReadonlyMap<string, EntityDefinition>;
  keys: SensitiveKeys | null;
  redacted: boolean;
  /** Validate an init shape of `def` and encode it: the same path as a put. */
  encode(def: EntityDefinition, value: unknown): { key: string; version: number; value: Uint8Array; terms: readonly string[] };
  /** Where the pre-migration backup goes (`backups.dir`, default `<store dir>.backups`). */
  backupDir: string;
  /** How to open a copy of this store (for the backup check). */
  openOptions: { key?: Uint8Array | KeyProvider; encryption?: "xchacha20poly1305" | "none"; io?: FileIO };
}

interface Plan {
  def: EntityDefinition;
  /** steps[v] turns a record at version v into one at v + 1. */
  steps: Map<number, MigrationStep>;
  records: number;
}

/** Check versions and find what needs migrating; throws before anything is written. */
export function planUpgrade(host: UpgradeHost, migrations: readonly MigrationStep[]): Map<string, Plan> {
  const { engine, defs } = host;
  const byEntity = new Map<string, Map<number, MigrationStep>>();
  for (const s of migrations) {
    if (!Number.isInteger(s.from) || s.to !== s.from + 1 || s.from < 1) {
      throw new UsageError(`migration step of \`${s.entity}\` from ${s.from} to ${s.to}: a step goes from version N to N + 1`);
    }
    let m = byEntity.get(s.entity);
    if (!m) byEntity.set(s.entity, (m = new Map()));
    if (m.has(s.from)) throw new UsageError(`two migration steps of \`${s.entity}\` start at version ${s.from}`);
    m.set(s.from, s);
  }
  const plans = new Map<string, Plan>();
  for (const def of defs.values()) {
    const stored = engine.storedVersions.get(def.name);
    if (stored !== undefined && stored > def.version) throw new SchemaNewerError(def.name, stored, def.version);
    if (stored === undefined || stored === def.version) continue;
    // The manifest says some records are older: find the versions the records really carry.
    const versions = new Set<number>();
    let records = 0;
    for (const [, loc] of engine.scan(def.name)) {
      if (loc.version > def.version) throw new SchemaNewerError(def.name, loc.version, def.version);
      if (loc.version < def.version) {
        versions.add(loc.version);
        records++;
      }
    }
    const steps = byEntity.get(def.name) ?? new Map<number, MigrationStep>();
    const oldest = Math.min(stored, ...versions);
    for (let v = oldest; v < def.version; v++) {
      if (!steps.has(v)) {
        throw new MigrationError(
          `entity \`${def.name}\` is stored at version ${oldest} but this app is at version ${def.version}, and no migration step from version ${v} to ${v + 1} is registered`,
          { entity: def.name, from: v, to: v + 1 },
        );
      }
    }
    plans.set(def.name, { def, steps, records });
  }
  return plans;
}

/** The pre-migration backup's label: `cellar:pre-migration tasks v1→v2, …` (cut to the label limit). */
function migrationLabel(host: UpgradeHost, plans: Map<string, Plan>): string {
  let label = PRE_MIGRATION_LABEL;
  let sep = " ";
  for (const p of plans.values()) {
    const part = `${sep}${p.def.name} v${host.engine.storedVersions.get(p.def.name)}→v${p.def.version}`;
    if (Buffer.byteLength(label + part) > MAX_LABEL_BYTES - 4) return `${label}, …`;
    label += part;
    sep = ", ";
  }
  return label;
}

/**
 * Take a backup file of the whole store into the backup directory (storage/backup.ts, sealed under the
 * store's master key, labelled {@link PRE_MIGRATION_LABEL}), then verify it (storage/restore.ts
 * `verifyBackup`: every checksum, tag and record): a backup that does not verify is no backup, and is removed.
 */
async function backupAndVerify(host: UpgradeHost, plans: Map<string, Plan>): Promise<string> {
  const { engine } = host;
  const file = path.join(host.backupDir, backupFileName(engine.dir, "pre-migration", new Date()));
  try {
    await engine.backup({ to: file, label: migrationLabel(host, plans) });
    await verifyBackup(file, { ...(host.openOptions.key !== undefined ? { key: host.openOptions.key } : {}), ...(host.openOptions.io ? { io: host.openOptions.io } : {}) });
  } catch (e) {
    engine.io.unlink(file);
    throw new MigrationError(`the backup \`${path.basename(file)}\` did not verify, so nothing was migrated`, {}, { cause: e });
  }
  return file;
}

/** Run the upgrade described by `plans` (from {@link planUpgrade}). */
export async function upgrade(host: UpgradeHost, plans: Map<string, Plan>, options: UpgradeOptions): Promise<string | null> {
  if (host.redacted) {
    throw new MigrationError(`the store needs a migration (${[...plans.keys()].map((n) => `\`${n}\``).join(", ")}), which a \`redactSensitive\` store cannot write`);
  }
  const total = [...plans.values()].reduce((n, p) => n + p.records, 0);
  const progress = options.onProgress ?? (() => {});
  let backup: string | undefined;
  if (options.backup) {
    progress({ phase: "backup", done: 0, total });
    backup = await backupAndVerify(host, plans);
    progress({ phase: "verify", done: 0, total, backup });
  }
  let done = 0;
  const decoders = new Map<string, ValueCodec>();
  const decoderFor = (entity: string, schema: DescMessage) => {
    const k = `${entity}\u0000${schema.typeName}`;
    let c = decoders.get(k);
    if (!c) decoders.set(k, (c = new ValueCodec(entity, schema, [])));
    return c;
  };
  // Record history (history.ts): an entity's `~history:E` entries go through its steps too, in the same rewrite.
  const historyOf = new Map([...plans.values()].filter((p) => p.def.history).map((p) => [historyEntityName(p.def.name), p]));
  const rewrite: Rewrite = {
    versions: new Map([...[...plans.values()].map((p) => [p.def.name, p.def.version] as const), ...[...historyOf].map(([h, p]) => [h, p.def.version] as const)]),
    async transform(entity, key, version, value) {
      const entry = historyOf.get(entity);
      if (entry) return migrateEntry(entry.def, entity, key, version, value);
      const out = await migrateRecord(entity, key, version, value);
      done++;
      if (done % 256 === 0 || done === total) progress({ phase: "migrate", entity, done, total, ...(backup ? { backup } : {}) });
      return out;
    },
  };
  /** One record of `entity` through its steps, validated and encoded as the current version. */
  const migrateRecord = async (entity: string, key: string, version: number, value: Uint8Array) => {
    const plan = plans.get(entity)!;
    const def = plan.def;
    const recordKey = def.kind === "collection" ? key : undefined;
    let v = version;
    let step = plan.steps.get(v)!;
    let msg: Message;
    try {
      msg = decoderFor(entity, step.fromSchema).decode(value, key, version, host.keys).msg;
    } catch (e) {
      throw new MigrationError(
        `a record of \`${entity}\` (version ${v}) does not decode as \`${step.fromSchema.typeName}\` (its key is the error's \`key\`)`,
        { entity, key, from: v, to: v + 1 },
        { cause: e },
      );
    }
    let init: unknown = msg;
    while (v < def.version) {
      step = plan.steps.get(v)!;
      try {
        init = await step.migrate(msg, { entity, key: recordKey, from: v, to: v + 1 });
        if (typeof init !== "object" || init === null) throw new TypeError(`the step returned ${init === null ? "null" : typeof init}`);
        if (v + 1 < def.version) msg = create(step.toSchema, init as MessageInitShape<DescMessage>) as Message;
      } catch (e) {
        throw new MigrationError(
          `migration of a record of \`${entity}\` from version ${v} to ${v + 1} failed: ${e instanceof Error ? e.constructor.name : typeof e} (see \`cause\`; its key is the error's \`key\`)`,
          { entity, key, from: v, to: v + 1 },
          { cause: e },
        );
      }
      v++;
    }
    let out;
    try {
      out = host.encode(def, init);
    } catch (e) {
      const what = isCellarError(e, "E_VALIDATION") ? "fails validation" : `cannot be stored (${isCellarError(e) ? e.code : "error"})`;
      throw new MigrationError(
        `a record of \`${entity}\` migrated to version ${def.version} ${what}: ${e instanceof CellarError ? e.message : ""} (its key is the error's \`key\`)`,
        { entity, key, from: v - 1, to: v },
        { cause: e },
      );
    }
    if (out.key !== key) {
      throw new MigrationError(`a migration of \`${entity}\` changed the key of a record (the error's \`key\`); keys cannot change`, { entity, key, from: v - 1, to: v });
    }
    return { version: out.version, value: out.value, terms: out.terms };
  };
  /**
   * A history entry of `def` through the same steps: an empty value (the record did not exist) stays empty;
   * otherwise the entry is migrated as its record would be (same context: the record's entity and key) and
   * its value moved back from the record's key to the entry's (a sealed part's AD names the entry key).
   */
  const migrateEntry = async (def: EntityDefinition, entity: string, key: string, version: number, value: Uint8Array) => {
    if (value.length === 0) return { version: def.version, value, terms: [] };
    const recordKey = recordKeyOfEntry(key);
    const moved = moveValue(value, { entity, key }, { entity: def.name, key: recordKey }, version, host.keys);
    const out = await migrateRecord(def.name, recordKey, version, moved);
    return { version: out.version, value: moveValue(out.value, { entity: def.name, key: recordKey }, { entity, key }, out.version, host.keys), terms: [] };
  };
  await host.engine.rewrite(rewrite);
  progress({ phase: "done", done, total, ...(backup ? { backup } : {}) });
  return backup ?? null;
}
