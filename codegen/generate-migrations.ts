/**
 * Emits `migrations.ts` at the root of the output: the schema version of every entity
 * (`entityVersions`, which `cellar generate` reads to write migration stubs), the type of a
 * migration step and the error an unwritten step throws.
 *
 * The stubs themselves live in user-owned files (`src/migrations/<entity>/v<N>.ts`), written once by
 * the `cellar generate` driver, never by this plugin: plugins can only emit generated files.
 */
import type { DescFile } from "@bufbuild/protobuf";
import { importRuntime, type EmitContext } from "./context.js";
import { setHeader } from "./header.js";

export function generateMigrations(ctx: EmitContext): void {
  const { schema, model } = ctx;
  const f = schema.generateFile("migrations.ts");
  const sources: DescFile[] = [];
  for (const e of model.entities) if (!sources.includes(e.desc.file)) sources.push(e.desc.file);
  setHeader(f, sources, ctx.parameter);
  const CellarError = importRuntime(f, ctx, "CellarError");
  const JsonObject = f.import("JsonObject", "@bufbuild/protobuf", true);

  f.print(
    f.jsDoc(
      "Current schema version of every entity, by storage name, from `(cellar.v1.entity).version`.\n" +
        "`cellar generate` compares it with `src/migrations/.cellar-versions.json` and writes a stub for each new step.",
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
      "One migration step: turns a record of entity `entity` stored at schema version `from` into one at `to` (= `from` + 1).\n" +
        "Records are given and returned in protobuf JSON form (field JSON names), so a step can read fields the current\n" +
        "message no longer has.",
    ),
  );
  f.print(f.export("interface", "MigrationStep"), "<N extends StorageName = StorageName> {");
  f.print("  readonly entity: N;");
  f.print("  readonly from: number;");
  f.print("  readonly to: number;");
  f.print("  migrate(record: ", JsonObject, "): ", JsonObject, " | Promise<", JsonObject, ">;");
  f.print("}");
  f.print();
  f.print(f.jsDoc("Declares a migration step; used by the stubs `cellar generate` writes."));
  f.print(f.export("function", "defineMigration"), "<N extends StorageName>(step: MigrationStep<N>): MigrationStep<N> {");
  f.print("  return Object.freeze(step);");
  f.print("}");
  f.print();
  f.print(
    f.jsDoc(
      "Thrown by a migration stub that nobody has written yet (code `E_MIGRATION`). Check it with\n" +
        "`isCellarError(e, \"E_MIGRATION\")`.",
    ),
  );
  f.print(f.export("class", "MigrationNotImplementedError"), " extends ", CellarError, " {");
  f.print("  readonly entity: string;");
  f.print("  readonly from: number;");
  f.print("  readonly to: number;");
  f.print("  constructor(entity: string, from: number, to: number) {");
  f.print("    super(");
  f.print(`      "E_MIGRATION",`);
  f.print("      `migration of \\`${entity}\\` from schema version ${from} to ${to} is not implemented; write it in src/migrations/${entity}/v${to}.ts`,");
  f.print("    );");
  f.print("    this.entity = entity;");
  f.print("    this.from = from;");
  f.print("    this.to = to;");
  f.print("  }");
  f.print("}");
}
