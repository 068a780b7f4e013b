/**
 * What every emitter gets: the schema, the checked model and the plugin options.
 */
import type { DescFile, DescMessage } from "@bufbuild/protobuf";
import type { GeneratedFile, ImportSymbol, Schema } from "@bufbuild/protoplugin";
import type { CodegenModel } from "./model.js";
import type { CellarPluginOptions } from "./plugin-options.js";

export interface EmitContext {
  readonly schema: Schema<CellarPluginOptions>;
  readonly model: CodegenModel;
  /** The raw plugin parameter, for the header. */
  readonly parameter: string;
}

/** Import a runtime symbol (`defineCollection`, `openStore`, …) as `runtime_import` says. */
export function importRuntime(f: GeneratedFile, ctx: EmitContext, name: string, typeOnly = false): ImportSymbol {
  return f.import(name, ctx.schema.options.runtimeImport, typeOnly);
}

/** Output file of our plugin next to protoc-gen-es's `<name>_pb.ts`. */
export function outputName(file: DescFile, suffix: "cellar" | "zod" | "codec"): string {
  return `${file.name}_${suffix}.ts`;
}

/** Import path (relative to the output root) of one of our per-file outputs. */
export function outputImportPath(file: DescFile, suffix: "cellar" | "zod" | "codec"): string {
  return `./${file.name}_${suffix}.js`;
}

/** The generated shape name protoc-gen-es uses for a message (`Task`, `Outer_Inner`). */
export function shapeName(f: GeneratedFile, desc: DescMessage): string {
  return f.importShape(desc).name;
}
