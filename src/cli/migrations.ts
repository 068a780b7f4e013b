/**
 * The migration-stub step of `cellar generate`, after buf has run, and the static scan `cellar check`
 * runs over the migrations folder.
 *
 * The steps an entity needs come from the generated `migrations.ts` (or `migrations.js` for a
 * JavaScript target; `migrationSchemas`: one entry per step from the entity's oldest version in the
 * schema lock up to its current version). For each step, a stub is written to
 * `src/migrations/<entity>/v<N>.ts` (`.js` in a JavaScript app; only if that file does not exist)
 * and registered in `src/migrations/registry.ts` (`registry.js`) with ts-morph, which inserts an
 * import and an array element and leaves every other byte of the file as the user wrote it. Stubs
 * throw `MigrationNotImplementedError` until someone writes them; `cellar check` finds that `throw`.
 *
 * ts-morph is loaded only when a file has to be parsed or edited (it takes a second to load).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import type { ArrayLiteralExpression, Node as MorphNode, SourceFile } from "ts-morph";
import { pascalCase } from "../../codegen/names.js";
import { templatePluginOption } from "./buf.js";

type TsMorph = typeof import("ts-morph");
let loaded: TsMorph | undefined;
/** ts-morph, loaded on first use. */
function tsMorph(): TsMorph {
  loaded ??= createRequire(import.meta.url)("ts-morph") as TsMorph;
  return loaded;
}

/** The language of the app's migration files: TypeScript, or plain JavaScript (typed by the generated `.d.ts`). */
export type MigrationLanguage = "ts" | "js";

/** `registry.ts` or `registry.js`. */
export function registryFileOf(language: MigrationLanguage): string {
  return `registry.${language}`;
}

/**
 * The language of the migrations folder: an existing registry decides (`registry.ts` or
 * `registry.js`); without one, `generated` (the extension of the `migrations` file codegen wrote)
 * when known, else protoc-gen-cellar's `target` option in the template: TypeScript when it includes
 * `ts`, JavaScript otherwise (protobuf-es plugins default to `js+dts`). `cellar check` and
 * `cellar generate` both ask this, so check's advice names the file generate writes.
 */
export function migrationLanguage(migrationsDir: string, template: string, generated?: MigrationLanguage): MigrationLanguage {
  if (existsSync(join(migrationsDir, registryFileOf("ts")))) return "ts";
  if (existsSync(join(migrationsDir, registryFileOf("js")))) return "js";
  if (generated) return generated;
  const target = templatePluginOption(template, "protoc-gen-cellar", "target") ?? "js+dts";
  return target.split("+").includes("ts") ? "ts" : "js";
}

/** One step from a generated `migrations.ts`, with the schema names it reads and returns. */
export interface GeneratedStep {
  readonly entity: string;
  readonly from: number;
  readonly to: number;
  /** e.g. `TaskV1Schema`. */
  readonly fromSchema: string;
  /** e.g. `TaskSchema`. */
  readonly toSchema: string;
}

function unwrap(node: MorphNode | undefined): MorphNode | undefined {
  const { Node } = tsMorph();
  let n = node;
  while (n && (Node.isAsExpression(n) || Node.isSatisfiesExpression(n) || Node.isParenthesizedExpression(n))) n = n.getExpression();
  return n;
}

/**
 * The steps of a generated `migrations.ts`/`migrations.js`
 * (`export const migrationSchemas = { tasks: { 1: { to: 2, fromSchema: TaskV1Schema, toSchema: TaskSchema }, … } }`).
 * Read line by line: the file is protoc-gen-cellar's own output (generate-migrations.ts prints one
 * entity or one step per line), and this avoids loading a TypeScript parser on every run.
 */
export function readGeneratedSteps(migrationsText: string): GeneratedStep[] {
  const lines = migrationsText.split("\n");
  let start = lines.findIndex((l) => /^export const migrationSchemas\b/.test(l));
  if (start < 0) {
    throw new Error("generated migrations file has no `migrationSchemas` object; is protoc-gen-cellar in buf.gen.yaml?");
  }
  const out: GeneratedStep[] = [];
  if (/=\s*\{\s*\}/.test(lines[start] ?? "")) return out;
  // TypeScript spells the type out first (`export const migrationSchemas: { … } = {`); the value follows it.
  if (/^export const migrationSchemas:/.test(lines[start] ?? "")) start = lines.findIndex((l, i) => i > start && /^\} = \{/.test(l));
  let entity: string | undefined;
  for (const line of lines.slice(start + 1)) {
    if (/^\}/.test(line)) break;
    const e = /^\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z_$][\w$]*))\s*:\s*\{\s*$/.exec(line);
    if (e) {
      entity = e[1] ?? e[2] ?? e[3];
      continue;
    }
    const s = /^\s*(\d+)\s*:\s*\{\s*to:\s*(\d+),\s*fromSchema:\s*([\w$]+),\s*toSchema:\s*([\w$]+),?\s*\}/.exec(line);
    if (s && entity !== undefined) {
      out.push({ entity, from: Number(s[1]), to: Number(s[2]), fromSchema: s[3] ?? "", toSchema: s[4] ?? "" });
    }
  }
  return out;
}
/** One stub to write: `src/migrations/<entity>/v<to>.ts`. */
export interface StubPlan extends GeneratedStep {
  /** Absolute path of the stub. */
  readonly path: string;
  /** Exported name, e.g. `migrateTasksV2`. */
  readonly exportName: string;
  /** Whether the file is missing and will be written (an existing file is never touched). */
  readonly write: boolean;
}

export interface MigrationPlan {
  readonly language: MigrationLanguage;
  readonly stubs: readonly StubPlan[];
  /** Absolute path of registry.ts / registry.js. */
  readonly registryPath: string;
  /** Whether the registry does not exist yet. */
  readonly createRegistry: boolean;
}

export function stubExportName(entity: string, to: number): string {
  return `migrate${pascalCase(entity)}V${to}`;
}

/** Where the stub of a step lives: `<migrationsDir>/<entity>/v<to>.<ts|js>`. */
export function stubPath(migrationsDir: string, entity: string, to: number, language: MigrationLanguage): string {
  return join(migrationsDir, entity, `v${to}.${language}`);
}

/** Works out what the step would do, without touching anything (used by `--check` too). */
export function planMigrations(migrationsDir: string, steps: readonly GeneratedStep[], language: MigrationLanguage): MigrationPlan {
  const stubs = steps.map((step) => {
    const path = stubPath(migrationsDir, step.entity, step.to, language);
    return { ...step, path, exportName: stubExportName(step.entity, step.to), write: !existsSync(path) };
  });
  const registryPath = join(migrationsDir, registryFileOf(language));
  return { language, stubs, registryPath, createRegistry: !existsSync(registryPath) };
}

function importSpecifier(fromDir: string, toFile: string): string {
  let rel = relative(fromDir, toFile).split(sep).join("/");
  if (!rel.startsWith(".")) rel = "./" + rel;
  return rel.replace(/\.ts$/, ".js");
}

const typeOf = (schemaName: string) => schemaName.replace(/Schema$/, "");

/** A stub: TypeScript, or JavaScript checked by editors (`// @ts-check`) against the generated `.d.ts`. */
export function stubSource(plan: StubPlan, generatedMigrations: string, language: MigrationLanguage = "ts"): string {
  const spec = importSpecifier(dirname(plan.path), generatedMigrations);
  const registry = registryFileOf(language);
  return `${language === "js" ? "// @ts-check\n" : ""}// Migration of \`${plan.entity}\` records from schema version ${plan.from} to ${plan.to}.
// Written once by \`cellar generate\`; this file is yours from now on and is never overwritten or
// reformatted. Registered in ../${registry}. \`cellar check\` fails while it still throws
// \`MigrationNotImplementedError\`.
import { defineMigration, MigrationNotImplementedError } from "${spec}";

export const ${plan.exportName} = defineMigration({
  entity: "${plan.entity}",
  from: ${plan.from},
  to: ${plan.to},
  migrate(record, ctx) {
    // \`record\` is a \`${typeOf(plan.fromSchema)}\`: the record exactly as stored at version ${plan.from} (from the schema lock).
    // Return the version ${plan.to} shape (an init of \`${plan.toSchema}\`), e.g. \`return { ...record, newField: "default" };\`
    void record;
    void ctx;
    throw new MigrationNotImplementedError("${plan.entity}", ${plan.from}, ${plan.to});
  },
});
`;
}

export function registrySource(migrationsDir: string, generatedMigrations: string, language: MigrationLanguage = "ts"): string {
  const spec = importSpecifier(migrationsDir, generatedMigrations);
  const head = `// Migration registry: every step of every entity, in any order.
// \`cellar generate\` adds an import and an entry for each stub it writes; the rest of this file is
// yours and is never rewritten.
`;
  if (language === "js") {
    return `// @ts-check
${head}
/** @type {readonly import("${spec}").MigrationStep[]} */
export const migrations = [
];
`;
  }
  return `${head}import type { MigrationStep } from "${spec}";

export const migrations: readonly MigrationStep[] = [
];
`;
}

export interface AppliedMigrations {
  readonly written: readonly string[];
  readonly registered: readonly string[];
}

/** Writes missing stubs and registers them. Existing user files are only added to. */
export function applyMigrations(migrationsDir: string, generatedMigrations: string, plan: MigrationPlan): AppliedMigrations {
  const written: string[] = [];
  const registered: string[] = [];
  for (const stub of plan.stubs) {
    if (!stub.write) continue;
    mkdirSync(dirname(stub.path), { recursive: true });
    writeFileSync(stub.path, stubSource(stub, generatedMigrations, plan.language), { flag: "wx" });
    written.push(stub.path);
  }
  const registryPath = plan.registryPath;
  const hasRegistry = existsSync(registryPath);
  const fresh = registrySource(migrationsDir, generatedMigrations, plan.language);
  if (!hasRegistry && written.length === 0) {
    mkdirSync(migrationsDir, { recursive: true });
    writeFileSync(registryPath, fresh);
  } else if (written.length > 0) {
    mkdirSync(migrationsDir, { recursive: true });
    const original = hasRegistry ? readFileSync(registryPath, "utf8") : fresh;
    const { IndentationText, Project, QuoteKind } = tsMorph();
    const project = new Project({
      useInMemoryFileSystem: true,
      manipulationSettings: { indentationText: IndentationText.TwoSpaces, quoteKind: QuoteKind.Double },
      compilerOptions: { allowJs: true },
    });
    const sf = project.createSourceFile(`/${registryFileOf(plan.language)}`, original);
    const pending = plan.stubs.filter((s) => s.write); // an existing file is the user's to register
    // Imports first: with none in the file yet (a JavaScript registry), the first goes below the
    // leading `//` comments, so `// @ts-check` stays the first line.
    for (const stub of pending) {
      const spec = importSpecifier(migrationsDir, stub.path);
      if (sf.getImportDeclarations().some((d) => d.getModuleSpecifierValue() === spec)) continue;
      if (sf.getImportDeclarations().length > 0) {
        sf.addImportDeclaration({ namedImports: [stub.exportName], moduleSpecifier: spec });
      } else {
        sf.insertText(leadingCommentsEnd(sf.getFullText()), `import { ${stub.exportName} } from "${spec}";\n\n`);
      }
    }
    const array = registryArray(sf.getVariableDeclaration("migrations")?.getInitializer());
    for (const stub of pending) {
      if (array?.getElements().some((e) => e.getText() === stub.exportName)) continue;
      if (!array) {
        throw new Error(
          `${registryPath}: \`migrations\` is not an array literal, so \`${stub.exportName}\` (from "${importSpecifier(migrationsDir, stub.path)}") cannot be added; add it by hand`,
        );
      }
      array.addElement(stub.exportName);
      registered.push(stub.exportName);
    }
    const text = sf.getFullText();
    if (!hasRegistry || text !== original) writeFileSync(registryPath, text);
  }
  return { written, registered };
}

/** Offset just past the `//` comment lines (and the blank lines after them) at the top of a file. */
function leadingCommentsEnd(text: string): number {
  const m = /^(?:[ \t]*\/\/[^\n]*\n)*(?:[ \t]*\n)*/.exec(text);
  return m ? m[0].length : 0;
}

function registryArray(init: MorphNode | undefined): ArrayLiteralExpression | undefined {
  return unwrap(init)?.asKind(tsMorph().SyntaxKind.ArrayLiteralExpression);
}

/** A `defineMigration({ entity, from, to, migrate })` call found in a file of the migrations folder. */
export interface ScannedStep {
  /** Absolute path. */
  readonly file: string;
  /** 1-based line of the call. */
  readonly line: number;
  readonly entity: string;
  readonly from: number;
  readonly to: number;
  /** The exported const holding it, if any. */
  readonly exportName: string | undefined;
  /** False while the file still creates a `MigrationNotImplementedError`. */
  readonly implemented: boolean;
  /** Line of that `new MigrationNotImplementedError(…)`. */
  readonly stubLine: number | undefined;
}

export interface MigrationScan {
  readonly steps: readonly ScannedStep[];
  /** Files the registry imports (absolute, as found on disk); undefined when there is no registry. */
  readonly registry: { readonly file: string; readonly files: ReadonlySet<string> } | undefined;
}

/** Source files of the migrations folder: `.ts`/`.mts`/`.js`/`.mjs`, declaration files excluded. */
function listSources(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listSources(p));
    else if (/\.(m?ts|m?js)$/.test(e.name) && !/\.d\.m?ts$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

function literal(node: MorphNode | undefined): string | number | undefined {
  const { Node } = tsMorph();
  const n = unwrap(node);
  if (!n) return undefined;
  if (Node.isStringLiteral(n) || Node.isNoSubstitutionTemplateLiteral(n)) return n.getLiteralValue();
  if (Node.isNumericLiteral(n)) return Number(n.getLiteralValue());
  return undefined;
}

/** The file an import specifier of a migrations file names (`./notes/v2.js` → `notes/v2.ts` when that is what exists). */
function resolveImport(fromDir: string, spec: string): string {
  const target = resolve(fromDir, spec);
  if (existsSync(target)) return target;
  for (const [from, to] of [[/\.js$/, ".ts"], [/\.mjs$/, ".mts"]] as const) {
    const alt = target.replace(from, to);
    if (alt !== target && existsSync(alt)) return alt;
  }
  return target;
}

/**
 * Reads the migrations folder without running or type-checking anything: every
 * `defineMigration({ entity: "…", from: N, to: M, … })` call, whether its file still throws
 * `MigrationNotImplementedError` (the generated stub), and what the registry imports.
 */
export function scanMigrations(migrationsDir: string): MigrationScan {
  const { Node, Project, SyntaxKind } = tsMorph();
  const project = new Project({ useInMemoryFileSystem: true, compilerOptions: { allowJs: true } });
  const steps: ScannedStep[] = [];
  const registryPaths = [join(migrationsDir, registryFileOf("ts")), join(migrationsDir, registryFileOf("js"))];
  for (const file of listSources(migrationsDir)) {
    if (registryPaths.includes(file)) continue;
    const sf: SourceFile = project.createSourceFile(file, readFileSync(file, "utf8"), { overwrite: true });
    const stub = sf
      .getDescendantsOfKind(SyntaxKind.NewExpression)
      .find((n) => n.getExpression().getText() === "MigrationNotImplementedError");
    for (const call of sf.getDescendantsOfKind(SyntaxKind.CallExpression)) {
      if (call.getExpression().getText() !== "defineMigration") continue;
      const arg = unwrap(call.getArguments()[0]);
      if (!arg || !Node.isObjectLiteralExpression(arg)) continue;
      const value = (name: string) => {
        const p = arg.getProperty(name);
        return p && Node.isPropertyAssignment(p) ? literal(p.getInitializer()) : undefined;
      };
      const entity = value("entity");
      const from = value("from");
      const to = value("to");
      if (typeof entity !== "string" || typeof from !== "number" || typeof to !== "number") continue;
      const decl = call.getFirstAncestorByKind(SyntaxKind.VariableDeclaration);
      steps.push({
        file,
        line: call.getStartLineNumber(),
        entity,
        from,
        to,
        exportName: decl?.getName(),
        implemented: stub === undefined,
        stubLine: stub?.getStartLineNumber(),
      });
    }
    if (stub && !steps.some((s) => s.file === file)) {
      steps.push({ file, line: 1, entity: "?", from: 0, to: 0, exportName: undefined, implemented: false, stubLine: stub.getStartLineNumber() });
    }
  }
  let registry: MigrationScan["registry"];
  const registryPath = registryPaths.find((p) => existsSync(p));
  if (registryPath) {
    const sf = project.createSourceFile(registryPath, readFileSync(registryPath, "utf8"), { overwrite: true });
    const files = new Set<string>();
    for (const d of sf.getImportDeclarations()) {
      const spec = d.getModuleSpecifierValue();
      if (spec.startsWith(".")) files.add(resolveImport(migrationsDir, spec));
    }
    registry = { file: registryPath, files };
  }
  return { steps, registry };
}
