/**
 * Emits `index.ts` at the root of the output: every entity under its store property, and a typed
 * `openStore(options)` whose result has one repository per entity (`store.tasks`, `store.settings`).
 * With `migrations_import`, that `openStore` passes the app's migration steps (`migrations` of the
 * named module, the registry `cellar generate` keeps) unless `options.migrations` is given.
 */
import type { DescFile } from "@bufbuild/protobuf";
import { importRuntime, outputImportPath, type EmitContext } from "./context.js";
import { entityConstName } from "./generate-repository.js";
import { setHeader } from "./header.js";

export function generateIndex(ctx: EmitContext): void {
  const { schema, model } = ctx;
  const f = schema.generateFile("index.ts");
  const sources: DescFile[] = [];
  for (const e of model.entities) if (!sources.includes(e.desc.file)) sources.push(e.desc.file);
  setHeader(f, sources, ctx.parameter);
  const openCellarStore = f.import("openStore", ctx.schema.options.runtimeImport);
  const StoreOptions = importRuntime(f, ctx, "StoreOptions", true);
  const TypedStore = importRuntime(f, ctx, "TypedStore", true);

  f.print(f.jsDoc("Every entity of this app's schemas, by store property. Pass it to the runtime's `openStore` or use the typed `openStore` below."));
  if (model.entities.length === 0) {
    f.print(f.export("const", "entities"), " = {} as const;");
  } else {
    // The type is spelled out so the `.d.ts` of a JavaScript target keeps it (protoplugin emits
    // declarations without resolving imports; an inferred `typeof` of an import would be `any`).
    const symbols = model.entities.map((e) => f.import(entityConstName(f, e), outputImportPath(e.desc.file, "cellar")));
    f.print(f.export("const", "entities"), ": {");
    model.entities.forEach((e, i) => f.print("  readonly ", e.property, ": typeof ", symbols[i]!, ";"));
    f.print("} = {");
    model.entities.forEach((e, i) => {
      f.print(f.jsDoc(`Storage name \`${e.name}\`.\n\n@generated from message ${e.desc.typeName}`, "  "));
      f.print("  ", e.property, ": ", symbols[i]!, ",");
    });
    f.print("};");
  }
  f.print();
  f.print(f.jsDoc("Store property of an entity (`\"tasks\"`, `\"settings\"`, …)."));
  f.print(f.export("type", "EntityName"), " = keyof typeof entities;");
  f.print();
  f.print(f.jsDoc("A store opened with this app's entities: one typed repository per entity, plus the store's own methods."));
  f.print(f.export("type", "CellarStore"), " = ", TypedStore, "<typeof entities>;");
  f.print();
  const migrationsImport = ctx.schema.options.migrationsImport;
  const registry = migrationsImport === undefined ? undefined : f.import("migrations", migrationsImport);
  f.print(
    f.jsDoc(
      "Opens (or creates) the store in `options.dir` with every entity of this app.\n\n" +
        "@example\n" +
        "const store = await openStore({ dir: app.getPath(\"userData\") + \"/cellar\", key });\n" +
        (model.entities[0] ? `await store.${model.entities[0].property}.get(${model.entities[0].kind === "collection" ? "id" : ""});\n` : "") +
        "await store.close();" +
        (migrationsImport === undefined
          ? ""
          : `\n\nRecords older than an entity's version are migrated at open by the app's steps (\`migrations\` from \`${migrationsImport}\`, the migration registry); \`options.migrations\` replaces them.`),
    ),
  );
  f.print(f.export("function", "openStore"), "(options: ", StoreOptions, "): Promise<CellarStore> {");
  if (registry) {
    f.print("  return ", openCellarStore, "(entities, { ...options, migrations: options.migrations ?? ", registry, " });");
  } else {
    f.print("  return ", openCellarStore, "(entities, options);");
  }
  f.print("}");
}
