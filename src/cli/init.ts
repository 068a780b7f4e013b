/**
 * `cellar init`: scaffold buf.yaml, buf.gen.yaml and schemas/ in an existing app, wired so the
 * app's schemas import `cellar/v1/options.proto` straight from the installed package (a second
 * buf module pointing into node_modules: no network, no schema registry).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { packageRoot } from "./paths.js";

export interface InitResult {
  readonly exitCode: number;
  readonly messages: readonly string[];
}

/** The module path (relative to the app) of the installed package's schemas. */
export function cellarSchemasPath(root: string): string {
  const installed = join(root, "node_modules", "cellar", "schemas");
  if (existsSync(join(installed, "cellar", "v1", "options.proto"))) return "node_modules/cellar/schemas";
  const own = relative(root, join(packageRoot(), "schemas")).split(sep).join("/");
  if (own === "" || own.startsWith("..")) {
    throw new Error(
      "cannot find cellar/v1/options.proto inside this app (expected node_modules/cellar/schemas); install cellar as a dependency first",
    );
  }
  return own;
}

export function bufYaml(cellarSchemas: string): string {
  return `# Buf workspace of this app's schemas (written by \`cellar init\`).
version: v2
modules:
  # Your schemas. Package \`foo.v1\` lives in schemas/foo/v1/.
  - path: schemas
  # Cellar's annotations (cellar/v1/options.proto), read from the installed package.
  - path: ${cellarSchemas}
lint:
  use:
    - STANDARD
breaking:
  use:
    - FILE
`;
}

export const bufGenYaml = `# Code generation for this app (written by \`cellar init\`); run it with \`npx cellar generate\`.
# Everything under \`out\` is generated: never edit it by hand.
version: v2
clean: true
plugins:
  # Message types (*_pb.ts).
  - local: protoc-gen-es
    out: src/generated
    opt:
      - target=ts
      - import_extension=js
  # Entities, repository types, zod validators, migrations.ts and index.ts. \`strategy: all\` lets
  # one run see every schema. \`lock\` names the schema lock (\`npx cellar lock\` writes it when a
  # release is cut): historical message types and typed migration steps come from it.
  # \`migrations_import\` (relative to \`out\`) is the migration registry \`cellar generate\` keeps in
  # src/migrations/registry.ts: the generated \`openStore\` passes its steps by default.
  - local: protoc-gen-cellar
    out: src/generated
    strategy: all
    opt:
      - target=ts
      - import_extension=js
      - lock=schemas/cellar.lock
      - migrations_import=../migrations/registry.js
`;

export const exampleSchema = `// An example entity written by \`cellar init\`: edit or delete it. See Cellar's docs/SCHEMAS.md.
syntax = "proto3";

package app.v1;

import "cellar/v1/options.proto";

// AppSettings are this app's preferences: one value, with defaults.
message AppSettings {
  option (cellar.v1.entity) = {
    version: 1
    name: "app_settings"
    singleton: true
  };

  // UI language as a BCP 47 tag.
  string language = 1 [(cellar.v1.field) = {
    default: "en"
    max_length: 35
  }];
  bool telemetry_enabled = 2 [(cellar.v1.field).default = "false"];
}
`;

function hasProto(dir: string): boolean {
  if (!existsSync(dir)) return false;
  return readdirSync(dir, { withFileTypes: true }).some((e) =>
    e.isDirectory() ? hasProto(join(dir, e.name)) : e.name.endsWith(".proto"),
  );
}

export function init(options: { root: string; force?: boolean }): InitResult {
  const root = resolve(options.root);
  const messages: string[] = [];
  const pkgFile = join(root, "package.json");
  if (!existsSync(pkgFile)) {
    return { exitCode: 1, messages: [`cellar: no package.json in ${root}; run \`cellar init\` in your app's root`] };
  }
  let cellarSchemas: string;
  try {
    cellarSchemas = cellarSchemasPath(root);
  } catch (e) {
    return { exitCode: 1, messages: [`cellar: ${(e as Error).message}`] };
  }
  const write = (name: string, content: string) => {
    const file = join(root, name);
    if (existsSync(file) && !options.force) {
      messages.push(`cellar: kept existing ${name} (use --force to overwrite)`);
      return;
    }
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, content);
    messages.push(`cellar: wrote ${name}`);
  };
  write("buf.yaml", bufYaml(cellarSchemas));
  write("buf.gen.yaml", bufGenYaml);
  if (!hasProto(join(root, "schemas"))) {
    write("schemas/app/v1/app_settings.proto", exampleSchema);
  }
  const pkg = JSON.parse(readFileSync(pkgFile, "utf8")) as { scripts?: Record<string, string> };
  const scripts: Record<string, string> = { codegen: "cellar generate", "schema:check": "cellar check", "schema:lock": "cellar lock" };
  const missing = Object.entries(scripts).filter(([name]) => pkg.scripts?.[name] === undefined);
  if (missing.length > 0) {
    const text = readFileSync(pkgFile, "utf8");
    const indent = /^[ \t]+(?=")/m.exec(text)?.[0] ?? "  ";
    pkg.scripts = { ...(pkg.scripts ?? {}), ...Object.fromEntries(missing) };
    writeFileSync(pkgFile, JSON.stringify(pkg, null, indent) + "\n");
    for (const [name, cmd] of missing) messages.push(`cellar: added script "${name}": "${cmd}" to package.json`);
  }
  messages.push(
    "cellar: next: add schemas under schemas/, run `npx cellar generate`, and import `openStore` from src/generated/index.js",
    "cellar: generated code imports `@bufbuild/protobuf` and `zod`; add them to your dependencies if your package manager does not hoist them",
  );
  return { exitCode: 0, messages };
}
