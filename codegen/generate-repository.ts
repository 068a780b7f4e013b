/**
 * Emits `<file>_cellar.ts`: for every entity declared in the file, its definition
 * (`defineCollection` / `defineSingleton` from the runtime) and its repository types.
 *
 * ```ts
 * export const TaskEntity = defineCollection<typeof TaskSchema, TaskKey, TaskIndex>({ name: "tasks", … });
 * export type TaskRepository = Collection<typeof TaskSchema, TaskKey, TaskIndex>;
 * ```
 */
import type { DescField, DescFile } from "@bufbuild/protobuf";
import { getDeclarationString, type GeneratedFile, type Printable } from "@bufbuild/protoplugin";
import { importRuntime, outputImportPath, outputName, shapeName, type EmitContext } from "./context.js";
import { setHeader } from "./header.js";
import { propertyName, inputSchemaName } from "./generate-zod.js";
import { codecName, hasCodec } from "./generate-codec.js";
import type { CollectionModel, DefaultsTree, DefaultValue, EntityModel, SingletonModel } from "./model.js";

/** Name of the exported entity definition of a message, e.g. `TaskEntity`. */
export function entityConstName(f: GeneratedFile, entity: EntityModel): string {
  return `${shapeName(f, entity.desc)}Entity`;
}

export function generateRepositories(ctx: EmitContext): void {
  const { schema, model } = ctx;
  for (const file of schema.files) {
    const entities = model.entities.filter((e) => e.desc.file === file);
    if (entities.length === 0) continue;
    const f = schema.generateFile(outputName(file, "cellar"));
    setHeader(f, [file], ctx.parameter);
    for (const entity of entities) {
      if (entity.kind === "collection") emitCollection(f, ctx, file, entity);
      else emitSingleton(f, ctx, file, entity);
    }
  }
}

function fieldDoc(field: DescField): string {
  return `@generated from field: ${getDeclarationString(field)};`;
}

/** `codec: TaskCodec,` when the entity has one (generate-codec.ts). */
function codecField(f: GeneratedFile, file: DescFile, e: EntityModel): Printable[] {
  if (!hasCodec(e)) return [];
  return [["  codec: ", f.import(codecName(f, e.desc), outputImportPath(file, "codec")), ",\n"]];
}

function stringArray(values: readonly string[]): string {
  return `[${values.map((v) => JSON.stringify(v)).join(", ")}]`;
}

function emitCollection(f: GeneratedFile, ctx: EmitContext, file: DescFile, e: CollectionModel): void {
  const base = shapeName(f, e.desc);
  const desc = f.importSchema(e.desc, true);
  const validator = f.import(inputSchemaName(f, e.desc), outputImportPath(file, "zod"));
  const defineCollection = importRuntime(f, ctx, "defineCollection");
  const CollectionDefinition = importRuntime(f, ctx, "CollectionDefinition", true);
  const Collection = importRuntime(f, ctx, "Collection", true);
  const EntityInput = importRuntime(f, ctx, "EntityInput", true);
  const keyName = `${base}Key`;
  const indexName = `${base}Index`;
  const indexUnion = e.indexes.length > 0 ? e.indexes.map((i) => JSON.stringify(i.localName)).join(" | ") : "never";

  f.print(f.jsDoc(`Key of \`${e.name}\` records: field \`${e.key.localName}\` (${e.keyKind}).\n\n${fieldDoc(e.key)}`));
  f.print(f.export("type", keyName), " = ", e.keyType, ";");
  f.print();
  f.print(
    f.jsDoc(
      (e.indexSpecs.length > 0
        ? `Fields \`${e.name}\` can be queried by: every field of its indexes (\`(cellar.v1.entity).indexes\`: ${e.indexSpecs.map((s) => `\`${s.name}\``).join(", ")}).`
        : `Fields \`${e.name}\` can be queried by: none (it declares no \`(cellar.v1.entity).indexes\`).`) +
        e.indexes.map((i) => `\n\n${fieldDoc(i)}`).join(""),
    ),
  );
  f.print(f.export("type", indexName), " = ", indexUnion, ";");
  f.print();
  f.print(f.jsDoc(`What \`store.${e.property}.put()\` accepts: a \`${e.desc.typeName}\` init object, message, or spread of one.`));
  f.print(f.export("type", `${base}Input`), " = ", EntityInput, "<typeof ", desc, ">;");
  f.print();
  f.print(f.jsDoc(`The typed repository of \`${e.name}\`: \`store.${e.property}\`.`));
  f.print(f.export("type", `${base}Repository`), " = ", Collection, "<typeof ", desc, ", ", keyName, ", ", indexName, ">;");
  f.print();
  f.print(
    f.jsDoc(
      `Entity \`${e.name}\` (schema version ${e.version}): a collection of \`${e.desc.typeName}\` keyed by \`${e.key.localName}\`.\n\n@generated from message ${e.desc.typeName}`,
    ),
  );
  const fields: Printable[] = [
    `  name: ${JSON.stringify(e.name)},\n`,
    `  version: ${e.version},\n`,
    ["  schema: ", f.importSchema(e.desc), ",\n"],
    ["  validator: ", validator, ",\n"],
    ...codecField(f, file, e),
    `  key: ${JSON.stringify(e.key.localName)},\n`,
    `  keyKind: ${JSON.stringify(e.keyKind)},\n`,
    `  indexes: ${stringArray(e.indexes.map((i) => i.localName))},\n`,
    indexSpecsField(e),
    `  sensitive: ${stringArray(e.sensitive)},\n`,
  ];
  if (e.retention) {
    const r = e.retention;
    const parts: string[] = [];
    if (r.maxAgeMs !== undefined) parts.push(`maxAgeMs: ${r.maxAgeMs}`);
    if (r.timestampField) parts.push(`timestampField: ${JSON.stringify(r.timestampField.localName)}`);
    if (r.maxCount !== undefined) parts.push(`maxCount: ${r.maxCount}`);
    fields.push(`  retention: { ${parts.join(", ")} },\n`);
  }
  fields.push(...historyField(e));
  // The declared type is spelled out (not inferred) so the `.d.ts` of a JavaScript target keeps it:
  // protoplugin emits declarations without resolving imports, so an inferred type would be `any`.
  const typeArgs = ["<typeof ", desc, ", ", keyName, ", ", indexName, ">"];
  f.print(f.export("const", entityConstName(f, e)), ": ", CollectionDefinition, ...typeArgs, " = ", defineCollection, ...typeArgs, "({\n", fields, "});");
  f.print();
}

function emitSingleton(f: GeneratedFile, ctx: EmitContext, file: DescFile, e: SingletonModel): void {
  const base = shapeName(f, e.desc);
  const desc = f.importSchema(e.desc, true);
  const validator = f.import(inputSchemaName(f, e.desc), outputImportPath(file, "zod"));
  const defineSingleton = importRuntime(f, ctx, "defineSingleton");
  const SingletonDefinition = importRuntime(f, ctx, "SingletonDefinition", true);
  const Singleton = importRuntime(f, ctx, "Singleton", true);
  const EntityInput = importRuntime(f, ctx, "EntityInput", true);

  f.print(f.jsDoc(`What \`store.${e.property}.update()\` accepts (a patch of it, or what an updater returns): a \`${e.desc.typeName}\` init object, message, or spread of one.`));
  f.print(f.export("type", `${base}Input`), " = ", EntityInput, "<typeof ", desc, ">;");
  f.print();
  f.print(f.jsDoc(`The typed repository of \`${e.name}\`: \`store.${e.property}\`.`));
  f.print(f.export("type", `${base}Repository`), " = ", Singleton, "<typeof ", desc, ">;");
  f.print();
  f.print(
    f.jsDoc(
      `Entity \`${e.name}\` (schema version ${e.version}): a singleton \`${e.desc.typeName}\`.\n\n@generated from message ${e.desc.typeName}`,
    ),
  );
  const fields: Printable[] = [
    `  name: ${JSON.stringify(e.name)},\n`,
    `  version: ${e.version},\n`,
    ["  schema: ", f.importSchema(e.desc), ",\n"],
    ["  validator: ", validator, ",\n"],
    ...codecField(f, file, e),
    `  sensitive: ${stringArray(e.sensitive)},\n`,
  ];
  if (e.defaults.entries.length > 0) {
    fields.push("  defaults: ", defaultsLiteral(f, e.defaults, "  "), ",\n");
  }
  fields.push(...historyField(e));
  f.print(f.export("const", `${base}Entity`), ": ", SingletonDefinition, "<typeof ", desc, "> = ", defineSingleton, "<typeof ", desc, ">({\n", fields, "});");
  f.print();
}

/**
 * `indexSpecs: [...]`, one line per index: `{ id: "3,5", fields: ["status", "createdAt"], name: "status,created_at" }`
 * (`IndexSpec` in the runtime's entity.ts).
 */
function indexSpecsField(e: CollectionModel): string {
  if (e.indexSpecs.length === 0) return "  indexSpecs: [],\n";
  const lines = e.indexSpecs.map(
    (s) => `    { id: ${JSON.stringify(s.id)}, fields: ${stringArray(s.fields.map((f) => f.localName))}, name: ${JSON.stringify(s.name)} },\n`,
  );
  return `  indexSpecs: [\n${lines.join("")}  ],\n`;
}

/** `history: { keep: 20, maxAgeMs: 2592000000 },` when the entity keeps record history. */
function historyField(e: EntityModel): string[] {
  if (!e.history) return [];
  const parts: string[] = [];
  if (e.history.keep !== undefined) parts.push(`keep: ${e.history.keep}`);
  if (e.history.maxAgeMs !== undefined) parts.push(`maxAgeMs: ${e.history.maxAgeMs}`);
  return [`  history: { ${parts.join(", ")} },\n`];
}

function defaultsLiteral(f: GeneratedFile, tree: DefaultsTree, indent: string): Printable[] {
  const inner = indent + "  ";
  const p: Printable[] = ["{\n"];
  for (const { field, value } of tree.entries) {
    p.push(f.jsDoc(fieldDoc(field), inner), "\n");
    p.push(inner, propertyName(field.localName), ": ");
    p.push("entries" in value ? defaultsLiteral(f, value, inner) : defaultValue(f, value));
    p.push(",\n");
  }
  p.push(indent, "}");
  return p;
}

function defaultValue(f: GeneratedFile, v: DefaultValue): Printable {
  switch (v.kind) {
    case "string":
      return JSON.stringify(v.value);
    case "bool":
      return v.value ? "true" : "false";
    case "number":
      return Object.is(v.value, -0) ? "-0" : String(v.value);
    case "bigint":
      return `${v.value}n`;
    case "enum": {
      const shape = f.importShape(v.desc);
      return [f.import(shape.name, shape.from), ".", v.localName];
    }
  }
}
