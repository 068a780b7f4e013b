/**
 * `protoc-gen-cellar`: from schemas annotated with `(cellar.v1.entity)` / `(cellar.v1.field)`, emit
 *
 * - `<file>_cellar.ts`: entity definitions and repository types (generate-repository.ts),
 * - `<file>_zod.ts`: zod validators of each entity's write input (generate-zod.ts),
 * - `<file>_codec.ts`: fast encoders (with the validators' checks) and decoders per entity (generate-codec.ts),
 * - `migrations.ts`: entity versions and migration step types (generate-migrations.ts),
 * - `index.ts`: all entities and a typed `openStore` (generate-index.ts),
 *
 * next to protoc-gen-es's `<file>_pb.ts`. Run it with `strategy: all` so one invocation sees every
 * schema. Bad schemas fail with `file:line:column: sentence`, one line per problem.
 */
import { createEcmaScriptPlugin, type Schema } from "@bufbuild/protoplugin";
import type { EmitContext } from "./context.js";
import { generateCodecs } from "./generate-codec.js";
import { generateIndex } from "./generate-index.js";
import { generateMigrations } from "./generate-migrations.js";
import { generateRepositories } from "./generate-repository.js";
import { generateZod } from "./generate-zod.js";
import { pluginName, pluginVersion } from "./header.js";
import { buildModel } from "./model.js";
import { parseCellarOptions, type CellarPluginOptions } from "./plugin-options.js";

function generateTs(schema: Schema<CellarPluginOptions>): void {
  const model = buildModel(schema.files, schema.allFiles, (file) => schema.typesInFile(file));
  const ctx: EmitContext = { schema, model, parameter: schema.proto.parameter ?? "" };
  generateRepositories(ctx);
  generateZod(ctx);
  generateCodecs(ctx);
  generateMigrations(ctx);
  generateIndex(ctx);
}

export const protocGenCellar = createEcmaScriptPlugin<CellarPluginOptions>({
  name: pluginName,
  version: pluginVersion,
  parseOptions: parseCellarOptions,
  generateTs,
});
