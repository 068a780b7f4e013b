/**
 * `cellar lock`: record the current version of every entity in the schema lock, when a release is
 * cut. It runs `cellar check` first and changes nothing unless the check passes, so a recorded shape
 * is always one stored records can reach (directly, or through the migrations).
 *
 * - An entity not in the lock is added at its current version.
 * - An entity one version above its latest locked version gets that new version added; older
 *   versions are never touched again.
 * - An entity at its latest locked version: when its descriptors differ only in ways protobuf reads
 *   old records through (the check passed, so that is all they can differ in: a new field, a new enum
 *   value, a field removed with its number and name reserved, comments excluded), or in its
 *   `indexes` (built or dropped at open), the version's descriptors are replaced by the new ones, which
 *   read every record written under either shape.
 *   Anything else is a version bump, which the check demands.
 * - A retired entity is marked retired.
 *
 * Running it again with nothing changed writes nothing.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import {
  clone,
  fromBinary,
  getExtension,
  hasExtension,
  setExtension,
  toBinary,
  type DescEnum,
  type DescExtension,
  type DescMessage,
} from "@bufbuild/protobuf";
import { DescriptorProtoSchema, EnumDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type { EntityOptions } from "../../codegen/annotations.js";
import { declaredIndexes } from "../../codegen/indexes.js";
import {
  descriptorsPath,
  entityDescriptorSet,
  entityExtension,
  findEntities,
  registryOf,
  formatLockIndex,
  LockError,
  lockIndexFileName,
  type FoundEntity,
  type LockedEntity,
  type LockedVersion,
} from "../../codegen/lock.js";
import { runCheck, type CheckOptions } from "./check.js";
import { closure } from "./diff.js";
import { SchemaToolError } from "./schema.js";

export interface LockResult {
  readonly exitCode: 0 | 1 | 2;
  /** Paths (relative to the lock folder) written or updated. */
  readonly written: readonly string[];
  readonly messages: readonly string[];
}

export function lock(options: CheckOptions): LockResult {
  let run: ReturnType<typeof runCheck>;
  try {
    run = runCheck(options);
  } catch (e) {
    const known = e instanceof SchemaToolError || e instanceof LockError;
    return { exitCode: 2, written: [], messages: [`cellar: ${known ? "" : "unexpected error: "}${(e as Error).message}`, "cellar: nothing was locked"] };
  }
  const { result, current, lock: existing, lockDir } = run;
  if (result.exitCode !== 0) {
    return {
      exitCode: result.exitCode,
      written: [],
      messages: [
        ...result.messages.filter((m) => !m.includes(": info: ")),
        "cellar: the schemas do not pass `cellar check` against the lock; nothing was locked",
      ],
    };
  }
  const root = resolve(options.root);
  const dir = resolve(root, lockDir);
  const entities = new Map<string, LockedEntity>(existing.entities);
  const writes = new Map<string, Uint8Array>();
  const notes: string[] = [];
  for (const e of current.entities) {
    const locked = entities.get(e.name);
    if (e.retired) {
      if (locked && !locked.retired) {
        entities.set(e.name, { ...locked, retired: true });
        notes.push(`cellar: \`${e.name}\` is retired`);
      }
      continue;
    }
    const bytes = entityDescriptorSet(current.set, e.desc.file.proto.name);
    const entry: LockedVersion = {
      version: e.version,
      message: e.desc.typeName,
      file: e.desc.file.proto.name,
      descriptors: descriptorsPath(e.name, e.version),
    };
    const versions = locked?.versions ?? [];
    const same = versions.find((v) => v.version === e.version);
    if (!same) {
      entities.set(e.name, { name: e.name, retired: false, versions: [...versions, entry] });
      writes.set(entry.descriptors, bytes);
      notes.push(`cellar: locked \`${e.name}\` version ${e.version} (\`${e.desc.typeName}\`)`);
      continue;
    }
    const onDisk = existsSync(join(dir, same.descriptors)) ? readFileSync(join(dir, same.descriptors)) : undefined;
    const moved = same.message !== entry.message || same.file !== entry.file || same.descriptors !== entry.descriptors;
    if (onDisk && Buffer.from(bytes).equals(onDisk) && !moved) continue;
    entities.set(e.name, { name: e.name, retired: false, versions: versions.map((v) => (v.version === e.version ? entry : v)) });
    writes.set(entry.descriptors, bytes);
    // The set holds the entity's whole file: another entity of that file changing rewrites it too,
    // but only an entity whose own message (and what it reaches) changed is reported, and a change of
    // indexes alone as such.
    const before = onDisk && !moved ? lockedEntity(onDisk, same.message) : undefined;
    const indexes = before ? indexChanges(before, e) : [];
    if (!before || !sameShape(before, e)) {
      const shape = !before || !sameShape(before, e, entityExtension(current.registry));
      const what = [...(shape ? ["its descriptors changed in ways old records read through"] : []), ...indexes];
      notes.push(`cellar: updated \`${e.name}\` version ${e.version}: ${what.join("; ")}`);
    }
  }
  const indexText = formatLockIndex([...entities.values()]);
  const indexFile = join(dir, lockIndexFileName);
  const indexChanged = !existsSync(indexFile) || readFileSync(indexFile, "utf8") !== indexText;
  if (writes.size === 0 && !indexChanged) {
    return { exitCode: 0, written: [], messages: [`cellar: the schema lock (${lockDir}) is up to date`] };
  }
  // Descriptor files first, the index last: an interrupted run leaves the old index, which still
  // names only files that exist.
  const written: string[] = [];
  for (const [path, bytes] of writes) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), bytes);
    written.push(path);
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(indexFile, indexText);
  written.push(lockIndexFileName);
  return { exitCode: 0, written, messages: [...notes, `cellar: wrote the schema lock (${lockDir}); commit it with the release`] };
}

/** The entity `message` of locked descriptors (a FileDescriptorSet), with its registry's option extension. */
function lockedEntity(locked: Uint8Array, message: string): { found: FoundEntity; ext: DescExtension | undefined } | undefined {
  try {
    const registry = registryOf(fromBinary(FileDescriptorSetSchema, locked));
    const found = findEntities(registry).find((x) => x.desc.typeName === message);
    return found ? { found, ext: entityExtension(registry) } : undefined;
  } catch {
    return undefined;
  }
}

/** `index \`x\` is new (built at open)`, `index \`y\` was removed (dropped at open)`, by index id. */
function indexChanges(before: { found: FoundEntity }, current: FoundEntity): string[] {
  const was = declaredIndexes(before.found.desc, before.found.indexes);
  const now = declaredIndexes(current.desc, current.indexes);
  return [
    ...now.filter((x) => !was.some((w) => w.id === x.id)).map((x) => `index \`${x.name}\` is new (built at open)`),
    ...was.filter((w) => !now.some((x) => x.id === w.id)).map((w) => `index \`${w.name}\` was removed (dropped at open)`),
  ];
}

/**
 * Whether the locked entity declares its message exactly as `current`: the same messages and enums reached
 * from it, each with the same descriptor bytes; given the current build's `(cellar.v1.entity)` extension,
 * the entity option's `indexes` aside.
 */
function sameShape(locked: { found: FoundEntity; ext: DescExtension | undefined }, current: FoundEntity, ignoreIndexesOf?: DescExtension): boolean {
  const a = closure(locked.found.desc);
  const b = closure(current.desc);
  if (a.size !== b.size) return false;
  const ignoreIndexes = ignoreIndexesOf !== undefined;
  const bytes = (t: DescMessage | DescEnum, ext: DescExtension | undefined) => {
    if (t.kind === "enum") return Buffer.from(toBinary(EnumDescriptorProtoSchema, t.proto));
    let proto = t.proto;
    if (ignoreIndexes && ext && proto.options && hasExtension(proto.options, ext)) {
      proto = clone(DescriptorProtoSchema, proto);
      const options = getExtension(proto.options!, ext) as EntityOptions;
      setExtension(proto.options!, ext, { ...options, indexes: [] } as typeof options);
    }
    return Buffer.from(toBinary(DescriptorProtoSchema, proto));
  };
  for (const [name, t] of a) {
    const u = b.get(name);
    if (!u || u.kind !== t.kind || !bytes(t, locked.ext).equals(bytes(u, ignoreIndexesOf))) return false;
  }
  return true;
}
