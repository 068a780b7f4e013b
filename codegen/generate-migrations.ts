/**
 * Emits `migrations.ts` at the root of the output, and the historical message types it needs:
 *
 * - `entityVersions`: the schema version of every entity, and `retiredEntities`;
 * - `history/<entity>/v<N>.ts` (+ protoc-gen-es's output under `history/<entity>/v<N>/`): the exact
 *   message types of every locked version older than the current one (history.ts);
 * - `migrationSchemas`: for every step an entity needs (from its oldest locked version up to the
 *   current one), the message schema it reads and the one it returns;
 * - `defineMigration`: declares a step, typed from `migrationSchemas`, so
 *   `migrate(record: TaskV1, ctx) => MessageInitShape<typeof TaskSchema>` is checked by tsc; it returns
 *   the runtime's `MigrationStep` (src/runtime/typed/migration.ts).
 *
 * The steps themselves live in user-owned files (`src/migrations/<entity>/v<N>.ts`), written once by
 * the `cellar generate` driver, never by this plugin: plugins can only emit generated files.
 */
import type { DescFile } from "@bufbuild/protobuf";
import type { GeneratedFile } from "@bufbuild/protoplugin";
import { entityOptionField, findCellarExtensions } from "./annotations.js";
import { importRuntime, type EmitContext } from "./context.js";
import { Diagnostics, messageOptionPath, positionOf } from "./diagnostics.js";
import { pluginName, pluginVersion, setHeader } from "./header.js";
import { generateHistoricalVersion, historyBanner, type HistoricalVersion } from "./history.js";
import { readLock, type SchemaLock } from "./lock.js";
import type { EntityModel } from "./model.js";

/** One step an entity needs: from a locked version to the next version. */
interface PlannedStep {
  readonly entity: EntityModel;
  readonly from: number;
  readonly to: number;
  readonly fromHistory: HistoricalVersion;
  /** Undefined when `to` is the current version. */
  readonly toHistory: HistoricalVersion | undefined;
}

/**
 * Checks each entity's version against the lock and works out its historical versions and steps.
 * Throws SchemaErrors (with the position of the `version` option) when a version went down or skips one.
 */
function planSteps(ctx: EmitContext, lock: SchemaLock): { history: HistoricalVersion[]; steps: PlannedStep[] } {
  const { schema, model } = ctx;
  const extNumber = findCellarExtensions(schema.allFiles).entity?.number ?? 0;
  const diagnostics = new Diagnostics();
  const history: HistoricalVersion[] = [];
  const steps: PlannedStep[] = [];
  const lockName = ctx.schema.options.lock ?? "";
  for (const entity of model.entities) {
    const locked = lock.entities.get(entity.name);
    if (!locked || locked.retired || locked.versions.length === 0) continue;
    const first = locked.versions[0]!.version;
    const latest = locked.versions[locked.versions.length - 1]!.version;
    const at = positionOf(entity.desc.file, messageOptionPath(entity.desc, extNumber, entityOptionField.version));
    if (entity.version < latest) {
      diagnostics.add(
        at,
        `entity \`${entity.name}\` is at schema version ${entity.version}, below version ${latest} in the schema lock (${lockName}); versions never go down (stored records may already be at ${latest})`,
      );
      continue;
    }
    if (entity.version > latest + 1) {
      diagnostics.add(
        at,
        `entity \`${entity.name}\` is at schema version ${entity.version}, but the schema lock (${lockName}) ends at version ${latest}; raise the version one step per release: set \`version: ${latest + 1}\``,
      );
      continue;
    }
    const byVersion = new Map<number, HistoricalVersion>();
    for (const v of locked.versions) {
      if (v.version >= entity.version) continue;
      const h = generateHistoricalVersion(lock, entity.name, v, ctx.parameter);
      byVersion.set(v.version, h);
      history.push(h);
    }
    for (let to = first + 1; to <= entity.version; to++) {
      const fromHistory = byVersion.get(to - 1);
      if (!fromHistory) continue;
      steps.push({ entity, from: to - 1, to, fromHistory, toHistory: to === entity.version ? undefined : byVersion.get(to) });
    }
  }
  diagnostics.throwIfAny();
  return { history, steps };
}

function printHeaderLines(f: GeneratedFile, lines: readonly string[]): void {
  const controller = f as GeneratedFile & { getFileInfo?: () => { name: string; content: string; preamble?: string } };
  const original = controller.getFileInfo;
  if (typeof original !== "function") {
    throw new Error(`${pluginName}: unsupported @bufbuild/protoplugin version (generated files have no getFileInfo())`);
  }
  controller.getFileInfo = () => ({ ...original.call(controller), preamble: [...lines, ""].join("\n") });
}

function emitHistory(ctx: EmitContext, h: HistoricalVersion): void {
  const lockName = ctx.schema.options.lock ?? "";
  const banner = historyBanner(h, lockName);
  for (const file of h.files) {
    const f = ctx.schema.generateFile(`${h.dir}/${file.name}`);
    f.print(banner);
    f.print(file.content.replace(/\n$/, ""));
  }
  const f = ctx.schema.generateFile(h.module);
  printHeaderLines(f, [
    `// Code generated by ${pluginName} ${pluginVersion}. DO NOT EDIT.`,
    `// \`${h.entity}\` records as stored at schema version ${h.version}: the types of ${h.locked.file} from the`,
    `// schema lock (${lockName}/${h.locked.descriptors}), with the version appended to every name.`,
    "/* eslint-disable */",
  ]);
  const from = `./v${h.version}/${h.locked.file.replace(/\.proto$/, "_pb.js")}`;
  const types = h.exports.filter(([, , typeOnly]) => typeOnly);
  const values = h.exports.filter(([, , typeOnly]) => !typeOnly);
  if (types.length > 0) f.print(`export type { ${types.map(([a, b]) => `${a} as ${b}`).join(", ")} } from "${from}";`);
  if (values.length > 0) f.print(`export { ${values.map(([a, b]) => `${a} as ${b}`).join(", ")} } from "${from}";`);
}

export function generateMigrations(ctx: EmitContext): void {
  const { schema, model } = ctx;
  const lock = schema.options.lock !== undefined ? readLock(schema.options.lock) : undefined;
  const { history, steps } = lock ? planSteps(ctx, lock) : { history: [], steps: [] };
  for (const h of history) emitHistory(ctx, h);

  const f = schema.generateFile("migrations.ts");
  const sources: DescFile[] = [];
  for (const e of [...model.entities, ...model.retired]) if (!sources.includes(e.desc.file)) sources.push(e.desc.file);
  setHeader(f, sources, ctx.parameter);
  const MigrationNotImplementedError = importRuntime(f, ctx, "MigrationNotImplementedError");
  const MigrationContext = importRuntime(f, ctx, "MigrationContext", true);
  const MigrationStep = importRuntime(f, ctx, "MigrationStep", true);
  const UsageError = importRuntime(f, ctx, "UsageError");
  const DescMessage = f.import("DescMessage", "@bufbuild/protobuf", true);
  const MessageShape = f.import("MessageShape", "@bufbuild/protobuf", true);
  const MessageInitShape = f.import("MessageInitShape", "@bufbuild/protobuf", true);

  f.print("export { ", MigrationNotImplementedError, " };");
  f.print("export type { ", MigrationContext, ", ", MigrationStep, " };");
  f.print();
  f.print(
    f.jsDoc(
      "Current schema version of every entity, by storage name, from `(cellar.v1.entity).version`.\n" +
        "An entity whose version is above its latest version in the schema lock needs a migration step for it.",
    ),
  );
  if (model.entities.length === 0) {
    f.print(f.export("const", "entityVersions"), " = {} as const;");
  } else {
    f.print(f.export("const", "entityVersions"), " = {");
    for (const e of model.entities) {
      f.print(f.jsDoc(`@generated from message ${e.desc.typeName}`, "  "));
      f.print("  ", e.name, ": ", e.version, ",");
    }
    f.print("} as const;");
  }
  f.print();
  f.print(f.jsDoc("Storage name of an entity (`\"tasks\"`, `\"settings\"`, …)."));
  f.print(f.export("type", "StorageName"), " = keyof typeof entityVersions;");
  f.print();
  f.print(
    f.jsDoc(
      "Storage names of retired entities (`(cellar.v1.entity).retired`): no repository, and the names stay taken.\n" +
        "Records stored under them are no longer read.",
    ),
  );
  f.print(
    f.export("const", "retiredEntities"),
    ": readonly string[] = [",
    model.retired.map((r) => JSON.stringify(r.name)).join(", "),
    "];",
  );
  f.print();
  f.print(
    f.jsDoc(
      "The schemas of every migration step, by entity and by the version it migrates from: the exact message\n" +
        "as stored at `from` (generated from the schema lock) and the message at `to` (= `from` + 1).\n" +
        "Steps run from the oldest locked version of an entity up to its current version.",
    ),
  );
  const byEntity = new Map<string, PlannedStep[]>();
  for (const s of steps) byEntity.set(s.entity.name, [...(byEntity.get(s.entity.name) ?? []), s]);
  if (byEntity.size === 0) {
    f.print(f.export("const", "migrationSchemas"), " = {} as const;");
  } else {
    // `cellar generate` writes TypeScript stubs for a TypeScript target, JavaScript ones otherwise.
    const stubExtension = schema.targets.includes("ts") ? "ts" : "js";
    // The type is spelled out so the `.d.ts` of a JavaScript target keeps it (protoplugin emits
    // declarations without resolving imports; the inferred schema types would be `any`).
    const schemasOf = (s: PlannedStep) => ({
      from: f.import(s.fromHistory.schemaName, `./${s.fromHistory.module.replace(/\.ts$/, ".js")}`),
      to: s.toHistory ? f.import(s.toHistory.schemaName, `./${s.toHistory.module.replace(/\.ts$/, ".js")}`) : f.importSchema(s.entity.desc),
    });
    f.print(f.export("const", "migrationSchemas"), ": {");
    for (const [name, list] of byEntity) {
      f.print("  readonly ", name, ": {");
      for (const s of list) {
        const { from, to } = schemasOf(s);
        f.print("    readonly ", s.from, ": { readonly to: ", s.to, "; readonly fromSchema: typeof ", from, "; readonly toSchema: typeof ", to, " };");
      }
      f.print("  };");
    }
    f.print("} = {");
    for (const [name, list] of byEntity) {
      f.print("  ", name, ": {");
      for (const s of list) {
        const { from: fromSchema, to: toSchema } = schemasOf(s);
        f.print(f.jsDoc(`\`${name}\` version ${s.from} → ${s.to}; written in src/migrations/${name}/v${s.to}.${stubExtension}`, "    "));
        f.print("    ", s.from, ": { to: ", s.to, ", fromSchema: ", fromSchema, ", toSchema: ", toSchema, " },");
      }
      f.print("  },");
    }
    f.print("};");
  }
  f.print();
  f.print("type Steps = typeof migrationSchemas;");
  f.print();
  f.print(f.jsDoc("Storage name of an entity that has migration steps."));
  f.print(f.export("type", "MigratableEntity"), " = keyof Steps;");
  f.print();
  f.print(f.jsDoc("Versions an entity's steps migrate from."));
  f.print(f.export("type", "MigrationFromVersion"), "<E extends MigratableEntity> = keyof Steps[E] & number;");
  f.print();
  f.print("type StepOf<E extends MigratableEntity, F extends MigrationFromVersion<E>> = Steps[E][F];");
  f.print("type FromSchemaOf<S> = S extends { readonly fromSchema: infer D extends ", DescMessage, " } ? D : never;");
  f.print("type ToSchemaOf<S> = S extends { readonly toSchema: infer D extends ", DescMessage, " } ? D : never;");
  f.print();
  f.print(
    f.jsDoc(
      "What a migration file declares: the entity, the versions, and `migrate`, which receives the record exactly as\n" +
        "stored at `from` (e.g. `TaskV1`) and returns the init shape of the message at `to` (e.g. `MessageInitShape<typeof TaskSchema>`).",
    ),
  );
  f.print(f.export("interface", "MigrationDefinition"), "<E extends MigratableEntity, F extends MigrationFromVersion<E>> {");
  f.print("  readonly entity: E;");
  f.print("  readonly from: F;");
  f.print("  readonly to: StepOf<E, F> extends { readonly to: infer T } ? T : never;");
  f.print("  migrate(");
  f.print("    record: ", MessageShape, "<FromSchemaOf<StepOf<E, F>>>,");
  f.print("    ctx: ", MigrationContext, ",");
  f.print("  ): ", MessageInitShape, "<ToSchemaOf<StepOf<E, F>>> | Promise<", MessageInitShape, "<ToSchemaOf<StepOf<E, F>>>>;");
  f.print("}");
  f.print();
  f.print(
    f.jsDoc(
      "Declares a migration step for the runtime (a `MigrationStep` with the step's schemas). Used by the files\n" +
        "`cellar generate` writes under src/migrations/.",
    ),
  );
  f.print(
    f.export("function", "defineMigration"),
    "<E extends MigratableEntity, F extends MigrationFromVersion<E>>(step: MigrationDefinition<E, F>): ",
    MigrationStep,
    " {",
  );
  f.print(
    "  const schemas = (migrationSchemas as Record<string, Record<number, { readonly to: number; readonly fromSchema: ",
    DescMessage,
    "; readonly toSchema: ",
    DescMessage,
    " } | undefined> | undefined>)[step.entity]?.[step.from];",
  );
  f.print("  if (!schemas || schemas.to !== step.to) {");
  f.print(
    "    throw new ",
    UsageError,
    "(`no migration step of \\`${String(step.entity)}\\` from version ${step.from} to ${String(step.to)} in the schema lock; run \\`cellar generate\\``);",
  );
  f.print("  }");
  f.print("  return Object.freeze({");
  f.print("    entity: step.entity,");
  f.print("    from: step.from,");
  f.print("    to: schemas.to,");
  f.print("    fromSchema: schemas.fromSchema,");
  f.print("    toSchema: schemas.toSchema,");
  f.print("    migrate: (record: never, ctx: ", MigrationContext, ") => step.migrate(record, ctx),");
  f.print("  });");
  f.print("}");
}
