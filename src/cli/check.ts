/**
 * `cellar check`: the CI gate for schema evolution. Compares the current schemas with the schema
 * lock (what is on users' disks) and reports, for each problem, `file:line:column`, what is wrong and
 * what to do:
 *
 * - `buf breaking` with the WIRE_JSON rules (stored bytes and JSON exports stay readable), run on
 *   the current build against the lock's latest descriptors of every entity;
 * - Cellar's persistence rules, from a canonical comparison of each entity's descriptors (diff.ts):
 *   a shape old records cannot be read as needs a raised `version` and a migration for every step
 *   from the oldest locked version; a stub still unimplemented fails; `sensitive` is never lost;
 *   removed numbers and names stay reserved; versions only go up, one per release; a locked entity
 *   only disappears once it is retired.
 *
 * Additive changes (a new field, a new enum value) need neither a new version nor a migration; they
 * are listed as `info:` lines, and so are indexes added or removed (built or dropped at open). Exit 0 when nothing is wrong, 1 with findings, 2 when the check
 * cannot run (usage, buf, an unreadable lock).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { create, toBinary, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { entityOptionField } from "../../codegen/annotations.js";
import { messageOptionPath, messagePath, positionOf, type SourcePosition } from "../../codegen/diagnostics.js";
import {
  entityExtension,
  findEntities,
  LockError,
  lockIndexFileName,
  lockIndexLine,
  readLock,
  readLockedSet,
  registryOf,
  type FoundEntity,
  type LockedEntity,
  type SchemaLock,
} from "../../codegen/lock.js";
import { runBuf } from "./buf.js";
import { indexFindings } from "./check-indexes.js";
import { closure, diffEntity, type Difference } from "./diff.js";
import { migrationLanguage, registryFileOf, scanMigrations, stubPath, type MigrationScan } from "./migrations.js";
import { appPath, buildCurrent, lockDirOf, SchemaToolError, templateLock, typeAtLine, typeSpans, type CurrentSchemas, type Position } from "./schema.js";

export interface CheckOptions {
  /** App root: holds buf.yaml. */
  readonly root: string;
  /** Lock folder relative to root (default: `lock=` in buf.gen.yaml, else `schemas/cellar.lock`). */
  readonly lock?: string;
  /** User-owned migrations folder relative to root (default `src/migrations`). */
  readonly migrationsDir?: string;
  /** buf.gen.yaml, to find `lock=` (default `buf.gen.yaml`). */
  readonly template?: string;
}

/** One problem (or, with `level: "info"`, a note). */
export interface Finding {
  readonly level: "error" | "info";
  /** Stable code: a Cellar rule (`VERSION_NOT_RAISED`, `MIGRATION_MISSING`, …) or buf's rule id. */
  readonly rule: string;
  readonly entity: string | undefined;
  readonly position: Position;
  /** What is wrong (or what changed). */
  readonly message: string;
  /** What to do. */
  readonly fix?: string;
}

export interface CheckResult {
  /** 0 clean, 1 findings, 2 the check could not run. */
  readonly exitCode: 0 | 1 | 2;
  readonly findings: readonly Finding[];
  /** What to print, in order. */
  readonly messages: readonly string[];
}

/** buf's WIRE_JSON rules Cellar's own comparison replaces (it checks reserved numbers and names itself, by entity). */
const replacedBufRules = new Set([
  "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED",
  "FIELD_NO_DELETE_UNLESS_NAME_RESERVED",
  "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED",
  "ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED",
  "RESERVED_MESSAGE_NO_DELETE",
  "RESERVED_ENUM_NO_DELETE",
]);

const bufConfig = JSON.stringify({ version: "v2", breaking: { use: ["WIRE_JSON"] } });

interface BufFinding {
  readonly path: string;
  readonly line: number;
  readonly column: number;
  readonly type: string;
  readonly message: string;
}

export function formatFinding(f: Finding): string {
  const at = `${f.position.file}:${f.position.line}:${f.position.column}`;
  if (f.level === "info") return `${at}: info: ${f.message}`;
  return `${at}: ${f.message} [${f.rule}]${f.fix ? `\n  fix: ${f.fix}` : ""}`;
}

export function check(options: CheckOptions): CheckResult {
  try {
    return runCheck(options).result;
  } catch (e) {
    // SchemaToolError (E_CONFIG, E_BUF), LockError (E_LOCK_FORMAT, E_LOCK_MISSING), or a descriptor set
    // protobuf-es cannot make a registry of: the check could not run.
    const known = e instanceof SchemaToolError || e instanceof LockError;
    return { exitCode: 2, findings: [], messages: [`cellar: ${known ? "" : "unexpected error: "}${(e as Error).message}`, "cellar: the check could not run"] };
  }
}

/** Rules about the migration files (which `cellar generate` writes, and users then implement). */
const migrationRules = new Set(["MIGRATION_MISSING", "MIGRATION_NOT_IMPLEMENTED", "MIGRATION_NOT_REGISTERED"]);

/**
 * The lock's rules as `cellar generate` runs them before writing anything: every finding of the
 * check except those about migration files (generate writes the stubs; implementing them comes
 * after). Exit 0 when no schema lock exists yet (nothing is on users' disks to protect) or nothing is
 * wrong, 1 with findings (printed as `cellar check` prints them), 2 when the lock cannot be read.
 */
export function schemaRuleFindings(options: { root: string; template?: string }): { exitCode: 0 | 1 | 2; messages: string[]; lockDir: string | undefined } {
  const root = resolve(options.root);
  let lockDir: string | undefined;
  try {
    lockDir = lockDirOf(root, options.template);
    if (!existsSync(join(resolve(root, lockDir), lockIndexFileName))) return { exitCode: 0, messages: [], lockDir };
    const { result } = runCheck({ root, ...(options.template !== undefined ? { template: options.template } : {}) }, { migrations: false });
    const errors = result.findings.filter((f) => f.level === "error" && !migrationRules.has(f.rule));
    if (errors.length === 0) return { exitCode: 0, messages: [], lockDir };
    return { exitCode: 1, messages: [...errors.map(formatFinding), summary(errors, lockDir)], lockDir };
  } catch (e) {
    const known = e instanceof SchemaToolError || e instanceof LockError;
    return { exitCode: 2, messages: [`cellar: ${known ? "" : "unexpected error: "}${(e as Error).message}`], lockDir };
  }
}

function summary(errors: readonly Finding[], lockDir: string): string {
  const entities = new Set(errors.map((f) => f.entity ?? ""));
  return `cellar: ${errors.length} finding${errors.length === 1 ? "" : "s"} in ${entities.size} entit${entities.size === 1 ? "y" : "ies"} against the schema lock (${lockDir})`;
}

/**
 * The check, plus what `cellar lock` needs to record afterwards. With `migrations: false`, the
 * migrations folder is not read (no migration findings).
 */
export function runCheck(
  options: CheckOptions,
  { migrations = true }: { migrations?: boolean } = {},
): { result: CheckResult; current: CurrentSchemas; lock: SchemaLock; lockDir: string } {
  const root = resolve(options.root);
  const lockDir = options.lock ?? lockDirOf(root, options.template);
  const migrationsDir = join(root, options.migrationsDir ?? join("src", "migrations"));
  const lock = readLock(resolve(root, lockDir));
  const current = buildCurrent(root);
  const findings: Finding[] = [];
  const pos = (p: SourcePosition): Position => ({ file: appPath(root, p.file), line: p.line, column: p.column });
  const ext = entityExtension(current.registry);
  const versionAt = (e: FoundEntity) => pos(positionOf(e.desc.file, messageOptionPath(e.desc, ext?.number ?? 0, entityOptionField.version)));
  const messageAt = (e: FoundEntity) => pos(positionOf(e.desc.file, messagePath(e.desc)));
  const sourceOf = (file: string) => (existsSync(join(root, file)) ? readFileSync(join(root, file), "utf8") : undefined);
  const indexText = existsSync(join(resolve(root, lockDir), lockIndexFileName)) ? readFileSync(join(resolve(root, lockDir), lockIndexFileName), "utf8") : "";
  const lockAt = (entity: string): Position => ({
    file: relative(root, join(resolve(root, lockDir), lockIndexFileName)).split(sep).join("/"),
    line: lockIndexLine(indexText, entity),
    column: 5,
  });

  // Codegen must read the same lock, or the migrations it types and the steps this check demands differ.
  const template = options.template ?? "buf.gen.yaml";
  const configured = templateLock(root, template);
  if (configured.pluginLine !== undefined && configured.lock !== lockDir && lock.entities.size > 0) {
    findings.push({
      level: "error",
      rule: "LOCK_NOT_CONFIGURED",
      entity: undefined,
      position: { file: template, line: configured.pluginLine, column: 1 },
      message:
        configured.lock === undefined
          ? `protoc-gen-cellar has no \`lock\` option, so codegen cannot generate the historical types and typed steps of the schema lock (${lockDir})`
          : `protoc-gen-cellar reads the schema lock \`${configured.lock}\`, but this check compares with \`${lockDir}\``,
      fix: `add \`lock=${lockDir}\` to the plugin's \`opt\` list (and drop \`--lock\`, so codegen and the check read one lock)`,
    });
  }

  const currentByName = new Map<string, FoundEntity>();
  for (const e of current.entities) {
    if (!currentByName.has(e.name)) currentByName.set(e.name, e);
  }

  // Locked entities that are gone.
  for (const [name, locked] of lock.entities) {
    if (locked.retired || currentByName.has(name)) continue;
    findings.push({
      level: "error",
      rule: "ENTITY_REMOVED",
      entity: name,
      position: lockAt(name),
      message: `entity \`${name}\` (\`${locked.versions.at(-1)?.message ?? "?"}\`) is in the schema lock but no longer in the schemas; users' stores still hold its records`,
      fix: `put the message back with \`retired: true\` in its (cellar.v1.entity) option and run \`cellar lock\`; after that release it may be deleted`,
    });
  }

  // Per entity: versions and the canonical comparison with the latest locked version.
  const compared: { entity: FoundEntity; locked: LockedEntity; diffs: Difference[] }[] = [];
  const lockedRegistries = new Map<string, { registry: FileRegistry; files: FileDescriptorProto[]; found: FoundEntity }>();
  for (const e of current.entities) {
    const locked = lock.entities.get(e.name);
    if (e.retired) {
      if (locked && !locked.retired) {
        findings.push({ level: "info", rule: "ENTITY_RETIRED", entity: e.name, position: messageAt(e), message: `entity \`${e.name}\` is retired; \`cellar lock\` records it, after which the message may be deleted` });
      }
      continue;
    }
    if (!locked) {
      findings.push({
        level: "info",
        rule: "ENTITY_NEW",
        entity: e.name,
        position: messageAt(e),
        message: `entity \`${e.name}\` is new (version ${e.version}); \`cellar lock\` records it when the release is cut`,
      });
      continue;
    }
    if (locked.retired) {
      findings.push({
        level: "error",
        rule: "RETIRED_NAME_REUSED",
        entity: e.name,
        position: messageAt(e),
        message: `storage name \`${e.name}\` of \`${e.desc.typeName}\` belongs to an entity retired in the schema lock; stores may still hold its old records`,
        fix: "give the entity another `name` in its (cellar.v1.entity) option",
      });
      continue;
    }
    const latest = locked.versions.at(-1);
    if (!latest) continue;
    if (e.version < latest.version) {
      findings.push({
        level: "error",
        rule: "VERSION_LOWERED",
        entity: e.name,
        position: versionAt(e),
        message: `entity \`${e.name}\` is at schema version ${e.version}, below version ${latest.version} in the schema lock; versions only go up`,
        fix: `set \`version: ${latest.version}\` (or ${latest.version + 1} with a migration): stored records may already be at ${latest.version}`,
      });
      continue;
    }
    if (e.version > latest.version + 1) {
      findings.push({
        level: "error",
        rule: "VERSION_SKIPPED",
        entity: e.name,
        position: versionAt(e),
        message: `entity \`${e.name}\` is at schema version ${e.version}, but the schema lock ends at version ${latest.version}; no store holds the versions in between`,
        fix: `set \`version: ${latest.version + 1}\`: one version step per release`,
      });
      continue;
    }
    const set = readLockedSet(lock, latest);
    const registry = registryOf(set);
    const found = findEntities(registry).find((x) => x.desc.typeName === latest.message);
    if (!found) {
      throw new LockError("E_LOCK_FORMAT", `schema lock: \`${latest.descriptors}\` does not declare entity message \`${latest.message}\``);
    }
    lockedRegistries.set(e.name, { registry, files: set.file, found });
    compared.push({ entity: e, locked, diffs: diffEntity(found, registry, e, current.registry) });
  }

  // buf breaking (WIRE_JSON) against the latest locked descriptors of the compared entities.
  const bufFindings = compared.length > 0 ? runBufBreaking(root, current, [...lockedRegistries.values()].map((x) => x.files)) : [];
  const spans = new Map([...current.registry.files].map((f) => [f.proto.name, typeSpans(f)]));
  const bufByEntity = new Map<string, BufFinding[]>();
  for (const b of bufFindings) {
    if (replacedBufRules.has(b.type)) continue;
    const typeName = typeAtLine(spans.get(b.path) ?? [], b.line);
    for (const { entity } of compared) {
      const reached = closure(entity.desc);
      const hit = typeName !== undefined ? reached.has(typeName) : [...reached.values()].some((t) => t.file.proto.name === b.path);
      if (hit) bufByEntity.set(entity.name, [...(bufByEntity.get(entity.name) ?? []), b]);
    }
  }

  const scan: MigrationScan = migrations ? scanMigrations(migrationsDir) : { steps: [], registry: undefined };
  const language = migrationLanguage(migrationsDir, join(root, template));
  const reportedStubs = new Set<string>();
  for (const { entity: e, locked, diffs } of compared) {
    const lockedFound = lockedRegistries.get(e.name)?.found;
    if (lockedFound && ext) findings.push(...indexFindings(e, lockedFound, ext.number, pos, sourceOf));
    const latest = locked.versions.at(-1)!.version;
    const raised = e.version === latest + 1;
    const bump = `raise \`version\` of entity \`${e.name}\` to ${latest + 1} and run \`cellar generate\` to write the migration from ${latest}`;
    const bufs = bufByEntity.get(e.name) ?? [];
    const covered = `covered by the migration of \`${e.name}\` from ${latest} to ${e.version}`;
    const cannotRead = `records of \`${e.name}\` stored at version ${latest} cannot be read as this shape: ${bump}`;
    // Shape changes on one line (buf's WIRE_JSON findings and Cellar's own wire differences) have one
    // cause, so they make one finding.
    const lines = new Map<string, { bufs: BufFinding[]; diffs: Difference[] }>();
    const lineGroup = (file: string, line: number) => {
      const key = `${file}:${line}`;
      let g = lines.get(key);
      if (!g) lines.set(key, (g = { bufs: [], diffs: [] }));
      return g;
    };
    for (const b of bufs) lineGroup(b.path, b.line).bufs.push(b);
    for (const d of diffs) {
      const position = pos(d.position);
      if (d.always) {
        findings.push({ level: "error", rule: d.rule, entity: e.name, position, message: d.text, ...(d.fix ? { fix: d.fix } : {}) });
      } else if (d.compatible) {
        findings.push({
          level: "info",
          rule: d.rule,
          entity: e.name,
          position,
          message: raised
            ? `${d.text}`
            : `${d.text}: protobuf reads records stored at version ${latest} without help; no version bump or migration needed`,
        });
      } else if (d.wire) {
        lineGroup(d.position.file, d.position.line).diffs.push(d);
      } else if (raised) {
        findings.push({ level: "info", rule: d.rule, entity: e.name, position, message: `${d.text} (${covered})` });
      } else {
        findings.push({ level: "error", rule: shapeRule(d.rule), entity: e.name, position, message: d.text, fix: cannotRead });
      }
    }
    for (const { bufs: at, diffs: ds } of lines.values()) {
      const first = at[0];
      const reuse = ds.find((d) => d.rule === "FIELD_NUMBER_REUSED");
      // buf's sentence when it is the only one on the line; Cellar's when it names the cause better
      // (a reused number) or buf gave several sentences for one change.
      const own = reuse !== undefined || (ds.length > 0 && at.length !== 1) || !first;
      const position = first ? { file: appPath(root, first.path), line: first.line, column: first.column } : pos(ds[0]!.position);
      const also = (own ? at : at.slice(1)).map((b) => b.type);
      const said = own ? (reuse ? reuse.text : ds.map((d) => d.text).join("; ")) : lowerFirst(first.message);
      const text = said + (also.length > 0 ? ` (buf: ${also.join(", ")})` : "");
      const rule = own ? (reuse ? reuse.rule : shapeRule(ds[0]!.rule)) : first.type;
      if (raised) {
        findings.push({ level: "info", rule, entity: e.name, position, message: `${text} (${covered})` });
      } else {
        findings.push({ level: "error", rule, entity: e.name, position, message: own ? text : `${text} (entity \`${e.name}\`, version ${e.version})`, fix: cannotRead });
      }
    }
    // Every step from the oldest locked version to the current one.
    const first = locked.versions[0]!.version;
    for (let to = first + 1; migrations && to <= e.version; to++) {
      checkStep(e, to - 1, to, scan);
    }
  }

  // Stubs anywhere in the migrations folder.
  for (const s of scan.steps) {
    if (s.implemented || reportedStubs.has(s.file)) continue;
    findings.push(stubFinding(s.entity, s.from, s.to, s.file, s.stubLine ?? s.line));
  }

  function stubFinding(entity: string, from: number, to: number, file: string, line: number): Finding {
    reportedStubs.add(file);
    return {
      level: "error",
      rule: "MIGRATION_NOT_IMPLEMENTED",
      entity: entity === "?" ? undefined : entity,
      position: { file: relative(root, file).split(sep).join("/"), line, column: 5 },
      message:
        entity === "?"
          ? "this file still throws `MigrationNotImplementedError` (an unwritten migration stub)"
          : `the migration of \`${entity}\` from version ${from} to ${to} is still the generated stub (it throws \`MigrationNotImplementedError\`)`,
      fix: "write `migrate` (old record in, new shape out) and remove the `throw`",
    };
  }

  function checkStep(e: FoundEntity, from: number, to: number, s: MigrationScan): void {
    const step = s.steps.find((x) => x.entity === e.name && x.from === from && x.to === to);
    const expected = relative(root, stubPath(migrationsDir, e.name, to, language)).split(sep).join("/");
    if (!step) {
      findings.push({
        level: "error",
        rule: "MIGRATION_MISSING",
        entity: e.name,
        position: versionAt(e),
        message: `entity \`${e.name}\` is at version ${e.version}, but no migration of \`${e.name}\` from version ${from} to ${to} exists under ${relative(root, migrationsDir).split(sep).join("/")}/`,
        fix: `run \`cellar generate\` to write ${expected}, then implement it`,
      });
      return;
    }
    if (!step.implemented) findings.push(stubFinding(e.name, from, to, step.file, step.stubLine ?? step.line));
    const registryPath = s.registry?.file ?? join(migrationsDir, registryFileOf(language));
    const registryName = relative(migrationsDir, registryPath).split(sep).join("/");
    if (!s.registry || !s.registry.files.has(step.file)) {
      findings.push({
        level: "error",
        rule: "MIGRATION_NOT_REGISTERED",
        entity: e.name,
        position: { file: relative(root, step.file).split(sep).join("/"), line: step.line, column: 1 },
        message: s.registry
          ? `the migration of \`${e.name}\` from version ${from} to ${to} is not imported by ${registryName}, so the runtime never runs it`
          : `the migration of \`${e.name}\` from version ${from} to ${to} is not registered: there is no ${registryName}, so the runtime never runs it`,
        fix: `import \`${step.exportName ?? "it"}\` in ${relative(root, registryPath).split(sep).join("/")} and add it to \`migrations\``,
      });
    }
  }

  findings.sort((a, b) => (a.level === b.level ? 0 : a.level === "error" ? 1 : -1) || cmp(a.position.file, b.position.file) || a.position.line - b.position.line || a.position.column - b.position.column);
  const errors = findings.filter((f) => f.level === "error");
  const infos = findings.length - errors.length;
  const entityCount = new Set(current.entities.map((e) => e.name)).size;
  const messages = findings.map(formatFinding);
  if (errors.length > 0) {
    messages.push(summary(errors, lockDir));
  } else {
    messages.push(
      `cellar: ${entityCount} entit${entityCount === 1 ? "y" : "ies"} compatible with the schema lock (${lockDir}, ${lock.entities.size} locked)${infos > 0 ? `; ${infos} note${infos === 1 ? "" : "s"} above` : ""}`,
    );
  }
  return { result: { exitCode: errors.length > 0 ? 1 : 0, findings, messages }, current, lock, lockDir };
}

/** The rule of a shape change without a raised version: its own for key and singleton changes, else VERSION_NOT_RAISED. */
function shapeRule(rule: string): string {
  return rule === "KEY_CHANGED" || rule === "SINGLETON_CHANGED" ? rule : "VERSION_NOT_RAISED";
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** buf's sentence in our style: lower-case start, identifiers in backticks, no trailing links. */
function lowerFirst(s: string): string {
  const cut = s.indexOf(" See https://");
  const t = (cut >= 0 ? s.slice(0, cut) : s).replace(/\.$/, "").replace(/"([^"]*)"/g, "`$1`");
  return t.charAt(0).toLowerCase() + t.slice(1);
}

/** Runs `buf breaking` (WIRE_JSON) of the current build against the given locked files. */
function runBufBreaking(root: string, current: CurrentSchemas, lockedSets: readonly FileDescriptorProto[][]): BufFinding[] {
  const files = new Map<string, FileDescriptorProto>();
  for (const set of lockedSets) for (const f of set) if (!files.has(f.name)) files.set(f.name, f);
  const tmp = mkdtempSync(join(tmpdir(), "cellar-check-"));
  try {
    const against = join(tmp, "against.binpb");
    const input = join(tmp, "current.binpb");
    writeFileSync(against, toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [...files.values()] })));
    writeFileSync(input, current.image);
    const r = runBuf(root, ["breaking", input, "--against", against, "--config", bufConfig, "--error-format", "json"]);
    if (r.status !== 0 && r.status !== 100) {
      throw new SchemaToolError("E_BUF", `\`buf breaking\` failed (exit ${r.status}):\n${(r.stderr + r.stdout).trim()}`);
    }
    const out: BufFinding[] = [];
    for (const line of r.stdout.split("\n")) {
      if (line.trim() === "") continue;
      const j = JSON.parse(line) as { path?: string; start_line?: number; start_column?: number; type?: string; message?: string };
      out.push({ path: j.path ?? "", line: j.start_line ?? 1, column: j.start_column ?? 1, type: j.type ?? "BUF", message: j.message ?? "" });
    }
    return out;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
