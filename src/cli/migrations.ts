/**
 * The migration-stub step of `cellar generate`, after buf has run, and the static scan `cellar check`
 * runs over the migrations folder.
 *
 * The steps an entity needs come from the generated `migrations.ts` (`migrationSchemas`: one entry
 * per step from the entity's oldest version in the schema lock up to its current version). For each
 * step, a stub is written to `src/migrations/<entity>/v<N>.ts` (only if that file does not exist)
 * and registered in `src/migrations/registry.ts` with ts-morph, which inserts an import and an
 * array element and leaves every other byte of the file as the user wrote it. Stubs throw
 * `MigrationNotImplementedError` until someone writes them; `cellar check` finds that `throw`.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { IndentationText, Node, Project, QuoteKind, SyntaxKind, type ArrayLiteralExpression, type SourceFile } from "ts-morph";
import { pascalCase } from "../../codegen/names.js";

export const registryFileName = "registry.ts";

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

function unwrap(node: Node | undefined): Node | undefined {
  let n = node;
  while (n && (Node.isAsExpression(n) || Node.isSatisfiesExpression(n) || Node.isParenthesizedExpression(n))) n = n.getExpression();
  return n;
}

/** The steps of a generated `migrations.ts` (`export const migrationSchemas = { tasks: { 1: { to: 2, … } } }`). */
export function readGeneratedSteps(migrationsTsText: string): GeneratedStep[] {
  const project = new Project({ useInMemoryFileSystem: true });
  const sf = project.createSourceFile("/migrations.ts", migrationsTsText);
  const init = unwrap(sf.getVariableDeclaration("migrationSchemas")?.getInitializer());
  if (!init || !Node.isObjectLiteralExpression(init)) {
    throw new Error("generated migrations.ts has no `migrationSchemas` object; is protoc-gen-cellar in buf.gen.yaml?");
  }
  const out: GeneratedStep[] = [];
  for (const entityProp of init.getProperties()) {
    if (!Node.isPropertyAssignment(entityProp)) continue;
    const steps = unwrap(entityProp.getInitializer());
    if (!steps || !Node.isObjectLiteralExpression(steps)) continue;
    for (const stepProp of steps.getProperties()) {
      if (!Node.isPropertyAssignment(stepProp)) continue;
      const value = unwrap(stepProp.getInitializer());
      if (!value || !Node.isObjectLiteralExpression(value)) continue;
      const prop = (name: string) => {
        const p = value.getProperty(name);
        return p && Node.isPropertyAssignment(p) ? p.getInitializer()?.getText() ?? "" : "";
      };
      out.push({
        entity: entityProp.getName().replace(/^["']|["']$/g, ""),
        from: Number(stepProp.getName()),
        to: Number(prop("to")),
        fromSchema: prop("fromSchema"),
        toSchema: prop("toSchema"),
      });
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
  readonly stubs: readonly StubPlan[];
  /** Whether registry.ts does not exist yet. */
  readonly createRegistry: boolean;
}

export function stubExportName(entity: string, to: number): string {
  return `migrate${pascalCase(entity)}V${to}`;
}

/** Works out what the step would do, without touching anything (used by `--check` too). */
export function planMigrations(migrationsDir: string, steps: readonly GeneratedStep[]): MigrationPlan {
  const stubs = steps.map((step) => {
    const path = join(migrationsDir, step.entity, `v${step.to}.ts`);
    return { ...step, path, exportName: stubExportName(step.entity, step.to), write: !existsSync(path) };
  });
  return { stubs, createRegistry: !existsSync(join(migrationsDir, registryFileName)) };
}

function importSpecifier(fromDir: string, toFile: string): string {
  let rel = relative(fromDir, toFile).split(sep).join("/");
  if (!rel.startsWith(".")) rel = "./" + rel;
  return rel.replace(/\.ts$/, ".js");
}

const typeOf = (schemaName: string) => schemaName.replace(/Schema$/, "");

export function stubSource(plan: StubPlan, generatedMigrationsTs: string): string {
  const spec = importSpecifier(dirname(plan.path), generatedMigrationsTs);
  return `// Migration of \`${plan.entity}\` records from schema version ${plan.from} to ${plan.to}.
// Written once by \`cellar generate\`; this file is yours from now on and is never overwritten or
// reformatted. Registered in ../${registryFileName}. \`cellar check\` fails while it still throws
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

export function registrySource(migrationsDir: string, generatedMigrationsTs: string): string {
  const spec = importSpecifier(migrationsDir, generatedMigrationsTs);
  return `// Migration registry: every step of every entity, in any order.
// \`cellar generate\` adds an import and an entry for each stub it writes; the rest of this file is
// yours and is never rewritten.
import type { MigrationStep } from "${spec}";

export const migrations: readonly MigrationStep[] = [
];
`;
}

export interface AppliedMigrations {
  readonly written: readonly string[];
  readonly registered: readonly string[];
}

/** Writes missing stubs and registers them. Existing user files are only added to. */
export function applyMigrations(migrationsDir: string, generatedMigrationsTs: string, plan: MigrationPlan): AppliedMigrations {
  const written: string[] = [];
  const registered: string[] = [];
  for (const stub of plan.stubs) {
    if (!stub.write) continue;
    mkdirSync(dirname(stub.path), { recursive: true });
    writeFileSync(stub.path, stubSource(stub, generatedMigrationsTs), { flag: "wx" });
    written.push(stub.path);
  }
  const registryPath = join(migrationsDir, registryFileName);
  const hasRegistry = existsSync(registryPath);
  if (!hasRegistry || written.length > 0) {
    mkdirSync(migrationsDir, { recursive: true });
    const original = hasRegistry ? readFileSync(registryPath, "utf8") : registrySource(migrationsDir, generatedMigrationsTs);
    const project = new Project({
      useInMemoryFileSystem: true,
      manipulationSettings: { indentationText: IndentationText.TwoSpaces, quoteKind: QuoteKind.Double },
    });
    const sf = project.createSourceFile("/registry.ts", original);
    const array = registryArray(sf.getVariableDeclaration("migrations")?.getInitializer());
    for (const stub of plan.stubs) {
      if (!stub.write) continue; // registered when written; an existing file is the user's to register
      const spec = importSpecifier(migrationsDir, stub.path);
      const imported = sf.getImportDeclarations().some((d) => d.getModuleSpecifierValue() === spec);
      const listed = array?.getElements().some((e) => e.getText() === stub.exportName) ?? false;
      if (imported && listed) continue;
      if (!array) {
        throw new Error(
          `${registryPath}: \`migrations\` is not an array literal, so \`${stub.exportName}\` (from "${spec}") cannot be added; add it by hand`,
        );
      }
      if (!imported) sf.addImportDeclaration({ namedImports: [stub.exportName], moduleSpecifier: spec });
      if (!listed) array.addElement(stub.exportName);
      registered.push(stub.exportName);
    }
    const text = sf.getFullText();
    if (!hasRegistry || text !== original) writeFileSync(registryPath, text);
  }
  return { written, registered };
}

function registryArray(init: Node | undefined): ArrayLiteralExpression | undefined {
  return unwrap(init)?.asKind(SyntaxKind.ArrayLiteralExpression);
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
  /** Files registry.ts imports (absolute, `.ts`); undefined when there is no registry. */
  readonly registry: { readonly files: ReadonlySet<string> } | undefined;
}

function listTs(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listTs(p));
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) out.push(p);
  }
  return out.sort();
}

function literal(node: Node | undefined): string | number | undefined {
  const n = unwrap(node);
  if (!n) return undefined;
  if (Node.isStringLiteral(n) || Node.isNoSubstitutionTemplateLiteral(n)) return n.getLiteralValue();
  if (Node.isNumericLiteral(n)) return Number(n.getLiteralValue());
  return undefined;
}

/**
 * Reads the migrations folder without running or type-checking anything: every
 * `defineMigration({ entity: "…", from: N, to: M, … })` call, whether its file still throws
 * `MigrationNotImplementedError` (the generated stub), and what registry.ts imports.
 */
export function scanMigrations(migrationsDir: string): MigrationScan {
  const project = new Project({ useInMemoryFileSystem: true });
  const steps: ScannedStep[] = [];
  const registryPath = join(migrationsDir, registryFileName);
  for (const file of listTs(migrationsDir)) {
    if (file === registryPath) continue;
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
  if (existsSync(registryPath)) {
    const sf = project.createSourceFile(registryPath, readFileSync(registryPath, "utf8"), { overwrite: true });
    const files = new Set<string>();
    for (const d of sf.getImportDeclarations()) {
      const spec = d.getModuleSpecifierValue();
      if (spec.startsWith(".")) files.add(resolve(migrationsDir, spec).replace(/\.js$/, ".ts"));
    }
    registry = { files };
  }
  return { steps, registry };
}
