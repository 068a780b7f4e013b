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

/** What the generated code is: TypeScript compiled with the app, or JavaScript with `.d.ts` beside it. */
export type InitTarget = "ts" | "js";

export function bufGenYaml(target: InitTarget = "ts"): string {
  const opt = target === "js" ? "target=js+dts" : "target=ts";
  const ext = target === "js" ? "js" : "ts";
  return `# Code generation for this app (written by \`cellar init\`); run it with \`npx cellar generate\`.
# Everything under \`out\` is generated: never edit it by hand.
version: v2
clean: true
plugins:
  # Message types (*_pb.${ext}).
  - local: protoc-gen-es
    out: src/generated
    # One process for every schema file (protoc-gen-es spends most of a run loading; one per folder costs seconds).
    strategy: all
    opt:
      - ${opt}
      - import_extension=js
  # Entities, repository types, zod validators, migrations.${ext} and index.${ext}. \`strategy: all\` lets
  # one run see every schema. \`lock\` names the schema lock (\`npx cellar lock\` writes it when a
  # release is cut): historical message types and typed migration steps come from it.
  # \`migrations_import\` (relative to \`out\`) is the migration registry \`cellar generate\` keeps in
  # src/migrations/registry.${ext}: the generated \`openStore\` passes its steps by default.
  - local: protoc-gen-cellar
    out: src/generated
    strategy: all
    opt:
      - ${opt}
      - import_extension=js
      - lock=schemas/cellar.lock
      - migrations_import=../migrations/registry.js
`;
}

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

/**
 * The first file (relative to root) whose module format `"type"` in package.json decides: `.js`,
 * `.jsx`, `.ts`, `.tsx` (`.mjs`/`.cjs`/`.mts`/`.cts` say their format themselves), outside
 * node_modules and dot-folders. None means switching the project to ESM changes the meaning of no file.
 */
export function typeDependentFile(root: string): string | undefined {
  const walk = (dir: string, depth: number): string | undefined => {
    if (depth > 8) return undefined;
    const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      if (e.isFile() && /\.(js|jsx|ts|tsx)$/.test(e.name) && !e.name.endsWith(".d.ts")) {
        return relative(root, join(dir, e.name)).split(sep).join("/");
      }
    }
    for (const e of entries) {
      if (e.name.startsWith(".") || e.name === "node_modules" || !e.isDirectory()) continue;
      const found = walk(join(dir, e.name), depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return walk(root, 0);
}

interface PackageJson {
  type?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/**
 * Cellar and the code it generates are ES modules. A project that is ESM needs nothing. A CommonJS
 * project (`"type": "commonjs"`, what `npm init -y` writes, or no `type`) is switched to ESM when no
 * file changes meaning by it; one with code keeps CommonJS when its code is TypeScript (the generated
 * TypeScript compiles to CommonJS with the app's, and `require("cellar")` loads the ES modules), and
 * is refused, with what to change, for the JavaScript target (its generated `.js` files would load as
 * CommonJS).
 */
function moduleFormat(root: string, pkg: PackageJson, target: InitTarget): { switch: boolean; error?: string; notes: string[] } {
  if (pkg.type === "module") return { switch: false, notes: [] };
  const was = pkg.type === undefined ? "no `type`" : `\`"type": "${pkg.type}"\``;
  const own = typeDependentFile(root);
  if (own === undefined) {
    return {
      switch: true,
      notes: [
        `cellar: set \`"type": "module"\` in package.json (it had ${was}): Cellar and the code it generates are ES modules, and no file of this project changes meaning by it (CommonJS files can be .cjs and \`require()\` them on Node >= 20.19 or >= 22.12)`,
      ],
    };
  }
  if (target === "js") {
    return {
      switch: false,
      error:
        `cellar: this project is CommonJS (${was} in package.json) and has code (\`${own}\`), so Node would load the generated .js files, which are ES modules, as CommonJS; nothing was written. ` +
        `Either set \`"type": "module"\` in package.json and rename your CommonJS .js files to .cjs (they can \`require()\` the generated code on Node >= 20.19 or >= 22.12), ` +
        "or write the app in TypeScript (`cellar init` without `--js`), whose generated code compiles to CommonJS with yours",
      notes: [],
    };
  }
  return {
    switch: false,
    notes: [
      `cellar: kept CommonJS (${was} in package.json; this project has code, e.g. \`${own}\`): the generated TypeScript compiles to CommonJS with yours, and \`require("cellar")\` loads Cellar's ES modules (Node >= 20.19 or >= 22.12)`,
      'cellar: for CommonJS, set `"module": "nodenext"` in tsconfig.json (TypeScript >= 5.8) and call `openStore` inside an async function: CommonJS has no top-level `await` (tsx refuses it)',
    ],
  };
}

export function init(options: { root: string; force?: boolean; target?: InitTarget }): InitResult {
  const root = resolve(options.root);
  const target = options.target ?? "ts";
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
  const pkgText = readFileSync(pkgFile, "utf8");
  const pkg = JSON.parse(pkgText) as PackageJson;
  const format = moduleFormat(root, pkg, target);
  if (format.error !== undefined) return { exitCode: 1, messages: [format.error] };
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
  write("buf.gen.yaml", bufGenYaml(target));
  if (!hasProto(join(root, "schemas"))) {
    write("schemas/app/v1/app_settings.proto", exampleSchema);
  }
  const scripts: Record<string, string> = { codegen: "cellar generate", "schema:check": "cellar check", "schema:lock": "cellar lock" };
  const missing = Object.entries(scripts).filter(([name]) => pkg.scripts?.[name] === undefined);
  if (missing.length > 0 || format.switch) {
    const indent = /^[ \t]+(?=")/m.exec(pkgText)?.[0] ?? "  ";
    if (format.switch) pkg.type = "module";
    if (missing.length > 0) pkg.scripts = { ...(pkg.scripts ?? {}), ...Object.fromEntries(missing) };
    writeFileSync(pkgFile, JSON.stringify(pkg, null, indent) + "\n");
    for (const [name, cmd] of missing) messages.push(`cellar: added script "${name}": "${cmd}" to package.json`);
  }
  messages.push(...format.notes);
  messages.push("cellar: next: add schemas under schemas/, run `npx cellar generate`, and import `openStore` from src/generated/index.js");
  const deps = { ...(pkg.dependencies ?? {}), ...(pkg.devDependencies ?? {}) };
  const absent = ["@bufbuild/protobuf", "zod"].filter((d) => deps[d] === undefined);
  if (absent.length > 0) {
    messages.push(
      `cellar: the generated code imports ${absent.map((d) => `\`${d}\``).join(" and ")}; add ${absent.length === 1 ? "it" : "them"} to your dependencies: \`npm install ${absent.join(" ")}\``,
    );
  }
  return { exitCode: 0, messages };
}
