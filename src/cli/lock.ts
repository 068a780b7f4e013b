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
 *   value, a field removed with its number and name reserved, comments excluded), the version's
 *   descriptors are replaced by the new ones, which read every record written under either shape.
 *   Anything else is a version bump, which the check demands.
 * - A retired entity is marked retired.
 *
 * Running it again with nothing changed writes nothing.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fromBinary, toBinary, type DescEnum, type DescMessage } from "@bufbuild/protobuf";
import { DescriptorProtoSchema, EnumDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import {
  descriptorsPath,
  entityDescriptorSet,
  findEntities,
  registryOf,
  formatLockIndex,
  LockError,
  lockIndexFileName,
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
    // but only an entity whose own message (and what it reaches) changed is reported.
    if (moved || !onDisk || !sameShape(onDisk, same.message, e.desc)) {
      notes.push(`cellar: updated \`${e.name}\` version ${e.version}: its descriptors changed in ways old records read through`);
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

/**
 * Whether the locked descriptors (`locked`, a FileDescriptorSet) declare `message` exactly as
 * `current`: the same messages and enums reached from it, each with the same descriptor bytes.
 */
function sameShape(locked: Uint8Array, message: string, current: DescMessage): boolean {
  let old: DescMessage | undefined;
  try {
    old = findEntities(registryOf(fromBinary(FileDescriptorSetSchema, locked))).find((x) => x.desc.typeName === message)?.desc;
  } catch {
    return false;
  }
  if (!old) return false;
  const a = closure(old);
  const b = closure(current);
  if (a.size !== b.size) return false;
  const bytes = (t: DescMessage | DescEnum) =>
    Buffer.from(t.kind === "message" ? toBinary(DescriptorProtoSchema, t.proto) : toBinary(EnumDescriptorProtoSchema, t.proto));
  for (const [name, t] of a) {
    const u = b.get(name);
    if (!u || u.kind !== t.kind || !bytes(t).equals(bytes(u))) return false;
  }
  return true;
}
