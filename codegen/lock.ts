/**
 * The schema lock: the memory of what is on users' disks.
 *
 * A folder (by default `schemas/cellar.lock/`, set by protoc-gen-cellar's `lock=` option) with
 *
 * - `index.json`: for every entity (by storage name) every released schema version, the message's
 *   full name and file, and whether the entity is retired;
 * - `<entity>/v<N>.binpb`: the exact descriptors of that version, a `google.protobuf.FileDescriptorSet`
 *   holding the entity's file and every file it imports, in dependency order, as `buf build` compiled
 *   them (without source info, so comments and formatting do not count as changes).
 *
 * One descriptor set per entity version, not one per release: two versions of one message share a
 * full name (`examples.tasks.v1.Task`), so they cannot live in one registry, and each historical
 * version is generated on its own (see history.ts). A release adds one small file per changed entity.
 *
 * Shared by the plugin (historical message types, version checks) and the CLI (`cellar lock`,
 * `cellar check`).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  clone,
  create,
  createFileRegistry,
  fromBinary,
  getOption,
  hasOption,
  toBinary,
  type DescExtension,
  type DescMessage,
  type FileRegistry,
} from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type FileDescriptorProto,
  type FileDescriptorSet,
} from "@bufbuild/protobuf/wkt";
import type { EntityOptions } from "./annotations.js";
import { snakeCase } from "./names.js";

export const lockIndexFileName = "index.json";
export const lockFormatVersion = 1;
/** Where the lock lives when nothing says otherwise, relative to the app root. */
export const defaultLockDir = "schemas/cellar.lock";

/** Codes of {@link LockError}. */
export type LockErrorCode = "E_LOCK_FORMAT" | "E_LOCK_MISSING";

/** Thrown when the lock cannot be read: `index.json` is malformed, or names a descriptor file that is missing. */
export class LockError extends Error {
  readonly code: LockErrorCode;
  constructor(code: LockErrorCode, message: string) {
    super(message);
    this.name = "LockError";
    this.code = code;
  }
}

export interface LockedVersion {
  readonly version: number;
  /** Full name of the entity's message at this version, e.g. `examples.tasks.v1.Task`. */
  readonly message: string;
  /** The `.proto` file (module-relative) declaring it. */
  readonly file: string;
  /** The descriptor set, relative to the lock folder: `tasks/v1.binpb`. */
  readonly descriptors: string;
}

export interface LockedEntity {
  /** Storage name. */
  readonly name: string;
  readonly retired: boolean;
  /** Ascending by version. */
  readonly versions: readonly LockedVersion[];
}

export interface SchemaLock {
  /** Absolute path of the lock folder. */
  readonly dir: string;
  /** By storage name, sorted. */
  readonly entities: ReadonlyMap<string, LockedEntity>;
}

export function descriptorsPath(entity: string, version: number): string {
  return `${entity}/v${version}.binpb`;
}

/** Reads a lock folder; a missing folder or index is an empty lock. */
export function readLock(dir: string): SchemaLock {
  const indexFile = join(dir, lockIndexFileName);
  const entities = new Map<string, LockedEntity>();
  if (!existsSync(indexFile)) return { dir, entities };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(indexFile, "utf8"));
  } catch (e) {
    throw new LockError("E_LOCK_FORMAT", `schema lock \`${indexFile}\` is not valid JSON: ${(e as Error).message}`);
  }
  const bad = (what: string) => new LockError("E_LOCK_FORMAT", `schema lock \`${indexFile}\`: ${what}`);
  if (typeof raw !== "object" || raw === null) throw bad("expected an object");
  const index = raw as { format?: unknown; entities?: unknown };
  if (index.format !== lockFormatVersion) throw bad(`expected \`format: ${lockFormatVersion}\`, found \`${String(index.format)}\``);
  if (typeof index.entities !== "object" || index.entities === null) throw bad("expected an `entities` object");
  for (const [name, value] of Object.entries(index.entities as Record<string, unknown>)) {
    const e = value as { retired?: unknown; versions?: unknown };
    if (typeof e !== "object" || e === null || typeof e.versions !== "object" || e.versions === null) {
      throw bad(`entity \`${name}\` has no \`versions\` object`);
    }
    const versions: LockedVersion[] = [];
    for (const [v, entry] of Object.entries(e.versions as Record<string, unknown>)) {
      const version = Number(v);
      const x = entry as { message?: unknown; file?: unknown; descriptors?: unknown };
      if (!Number.isSafeInteger(version) || version < 1 || typeof x?.message !== "string" || typeof x.file !== "string" || typeof x.descriptors !== "string") {
        throw bad(`version \`${v}\` of entity \`${name}\` needs \`message\`, \`file\` and \`descriptors\``);
      }
      if (!existsSync(join(dir, x.descriptors))) {
        throw new LockError("E_LOCK_MISSING", `schema lock \`${indexFile}\` names \`${x.descriptors}\` (entity \`${name}\` version ${version}), which does not exist`);
      }
      versions.push({ version, message: x.message, file: x.file, descriptors: x.descriptors });
    }
    versions.sort((a, b) => a.version - b.version);
    entities.set(name, { name, retired: e.retired === true, versions });
  }
  return { dir, entities: new Map([...entities].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
}

/** The descriptor set of one locked version. */
export function readLockedSet(lock: SchemaLock, v: LockedVersion): FileDescriptorSet {
  try {
    return fromBinary(FileDescriptorSetSchema, readFileSync(join(lock.dir, v.descriptors)));
  } catch (e) {
    throw new LockError("E_LOCK_FORMAT", `schema lock file \`${join(lock.dir, v.descriptors)}\` is not a FileDescriptorSet: ${(e as Error).message}`);
  }
}

/** `index.json`, one line per version so findings can point at an entity's line. */
export function formatLockIndex(entities: readonly LockedEntity[]): string {
  const sorted = [...entities].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const lines = [
    "{",
    `  "$comment": "Cellar schema lock: every released schema version of every entity. Written by \`cellar lock\`; checked by \`cellar check\`. Commit it; never edit it by hand.",`,
    `  "format": ${lockFormatVersion},`,
    `  "entities": {`,
  ];
  sorted.forEach((e, i) => {
    lines.push(`    ${JSON.stringify(e.name)}: {`);
    if (e.retired) lines.push(`      "retired": true,`);
    lines.push(`      "versions": {`);
    e.versions.forEach((v, j) => {
      const entry = `{ "message": ${JSON.stringify(v.message)}, "file": ${JSON.stringify(v.file)}, "descriptors": ${JSON.stringify(v.descriptors)} }`;
      lines.push(`        "${v.version}": ${entry}${j < e.versions.length - 1 ? "," : ""}`);
    });
    lines.push(`      }`);
    lines.push(`    }${i < sorted.length - 1 ? "," : ""}`);
  });
  lines.push("  }", "}", "");
  return lines.join("\n");
}

/** 1-based line of an entity in a formatted `index.json` (1 when not found). */
export function lockIndexLine(indexText: string, entity: string): number {
  const i = indexText.split("\n").findIndex((l) => l.startsWith(`    ${JSON.stringify(entity)}: {`));
  return i < 0 ? 1 : i + 1;
}

/** An entity found in a set of descriptors (the current build, or a locked version). */
export interface FoundEntity {
  readonly desc: DescMessage;
  /** Storage name. */
  readonly name: string;
  readonly version: number;
  readonly key: string;
  readonly singleton: boolean;
  readonly retired: boolean;
  /** `(cellar.v1.entity).indexes` as written (indexes.ts reads them). */
  readonly indexes: readonly string[];
}

/** The `(cellar.v1.entity)` extension of a registry, if some file declares it. */
export function entityExtension(registry: FileRegistry): DescExtension | undefined {
  return registry.getExtension("cellar.v1.entity");
}

export function readEntity(ext: DescExtension, desc: DescMessage): FoundEntity | undefined {
  if (!hasOption(desc, ext)) return undefined;
  const o = getOption(desc, ext) as EntityOptions;
  return {
    desc,
    name: o.name !== "" ? o.name : snakeCase(desc.name),
    version: o.version,
    key: o.key,
    singleton: o.singleton,
    retired: o.retired,
    indexes: o.indexes ?? [],
  };
}

/** Every message carrying `(cellar.v1.entity)`, in file and descriptor order. */
export function findEntities(registry: FileRegistry): FoundEntity[] {
  const ext = entityExtension(registry);
  if (!ext) return [];
  const out: FoundEntity[] = [];
  const visit = (m: DescMessage) => {
    const e = readEntity(ext, m);
    if (e) out.push(e);
    m.nestedMessages.forEach(visit);
  };
  for (const file of registry.files) file.messages.forEach(visit);
  return out;
}

export function registryOf(set: FileDescriptorSet): FileRegistry {
  return createFileRegistry(set);
}

/**
 * The descriptor set to lock for an entity: its file and every file it imports (transitively), in
 * dependency order, without source info. Serialized with protobuf-es's `toBinary`, which writes
 * fields in number order, so equal descriptors give equal bytes.
 */
export function entityDescriptorSet(set: FileDescriptorSet, fileName: string): Uint8Array {
  const byName = new Map(set.file.map((f) => [f.name, f]));
  const ordered: FileDescriptorProto[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const f = byName.get(name);
    if (!f) throw new LockError("E_LOCK_MISSING", `\`${fileName}\` imports \`${name}\`, which the build does not contain`);
    for (const dep of f.dependency) visit(dep);
    const copy = clone(FileDescriptorProtoSchema, f);
    copy.sourceCodeInfo = undefined;
    ordered.push(copy);
  };
  visit(fileName);
  return toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: ordered }));
}
