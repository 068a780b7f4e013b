/**
 * The migration-stub step of `cellar generate`, after buf has run.
 *
 * `src/migrations/.cellar-versions.json` records the schema version of every entity as of the last
 * run. When an entity's `(cellar.v1.entity).version` is above it, one stub per missing step is
 * written to `src/migrations/<entity>/v<N>.ts` (only if that file does not exist) and registered
 * in `src/migrations/registry.ts` with ts-morph, which inserts an import and an array element and
 * leaves every other byte of the file as the user wrote it. Stubs throw
 * `MigrationNotImplementedError` until someone writes them.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { IndentationText, Node, Project, QuoteKind, SyntaxKind, type ArrayLiteralExpression } from "ts-morph";
import { pascalCase } from "../../codegen/names.js";

export const stateFileName = ".cellar-versions.json";
export const registryFileName = "registry.ts";

/** Entity versions from a generated `migrations.ts` (`export const entityVersions = { tasks: 1 }`). */
export function readEntityVersions(migrationsTsText: string): Record<string, number> {
  const project = new Project({ useInMemoryFileSystem: true });
  const sf = project.createSourceFile("/migrations.ts", migrationsTsText);
  const decl = sf.getVariableDeclaration("entityVersions");
  let init = decl?.getInitializer();
  while (init && (Node.isAsExpression(init) || Node.isSatisfiesExpression(init) || Node.isParenthesizedExpression(init))) {
    init = init.getExpression();
  }
  if (!init || !Node.isObjectLiteralExpression(init)) {
    throw new Error("generated migrations.ts has no `entityVersions` object; is protoc-gen-cellar in buf.gen.yaml?");
  }
  const out: Record<string, number> = {};
  for (const prop of init.getProperties()) {
    if (!Node.isPropertyAssignment(prop)) continue;
    const value = prop.getInitializer();
    if (value && Node.isNumericLiteral(value)) out[prop.getName()] = Number(value.getLiteralValue());
  }
  return out;
}

export interface VersionState {
  readonly versions: Record<string, number>;
}

export function readState(migrationsDir: string): VersionState {
  const file = join(migrationsDir, stateFileName);
  if (!existsSync(file)) return { versions: {} };
  const parsed = JSON.parse(readFileSync(file, "utf8")) as { versions?: Record<string, number> };
  return { versions: { ...(parsed.versions ?? {}) } };
}

export function formatState(versions: Record<string, number>): string {
  const sorted = Object.fromEntries(Object.entries(versions).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return (
    JSON.stringify(
      {
        $comment:
          "Schema version of each entity as of the last `cellar generate`. Raising (cellar.v1.entity).version above it writes migration stubs. Commit this file.",
        versions: sorted,
      },
      null,
      2,
    ) + "\n"
  );
}

/** One stub to write: `src/migrations/<entity>/v<to>.ts`. */
export interface StubPlan {
  readonly entity: string;
  readonly from: number;
  readonly to: number;
  /** Absolute path of the stub. */
  readonly path: string;
  /** Exported name, e.g. `migrateTasksV2`. */
  readonly exportName: string;
  /** Whether the file is missing and will be written (an existing file is never touched). */
  readonly write: boolean;
}

export interface MigrationPlan {
  readonly stubs: readonly StubPlan[];
  /** New content of the state file, or undefined when it is up to date. */
  readonly state: string | undefined;
  /** Whether registry.ts does not exist yet. */
  readonly createRegistry: boolean;
  /** Problems that stop the step (a version went down). */
  readonly errors: readonly string[];
}

export function stubExportName(entity: string, to: number): string {
  return `migrate${pascalCase(entity)}V${to}`;
}

/** Works out what the step would do, without touching anything (used by `--check` too). */
export function planMigrations(migrationsDir: string, current: Record<string, number>): MigrationPlan {
  const state = readState(migrationsDir);
  const next = { ...state.versions };
  const stubs: StubPlan[] = [];
  const errors: string[] = [];
  for (const [entity, version] of Object.entries(current)) {
    const recorded = state.versions[entity];
    if (recorded === undefined) {
      next[entity] = version; // a new entity: no stored data to migrate
      continue;
    }
    if (version < recorded) {
      errors.push(
        `entity \`${entity}\` is at schema version ${version}, below the version ${recorded} recorded in ${stateFileName}; versions never go down (stored records may already be at ${recorded})`,
      );
      continue;
    }
    for (let to = recorded + 1; to <= version; to++) {
      const path = join(migrationsDir, entity, `v${to}.ts`);
      stubs.push({ entity, from: to - 1, to, path, exportName: stubExportName(entity, to), write: !existsSync(path) });
    }
    next[entity] = version;
  }
  const stateText = formatState(next);
  const stateFile = join(migrationsDir, stateFileName);
  const upToDate = existsSync(stateFile) && readFileSync(stateFile, "utf8") === stateText;
  return {
    stubs,
    state: upToDate ? undefined : stateText,
    createRegistry: !existsSync(join(migrationsDir, registryFileName)),
    errors,
  };
}

function importSpecifier(fromDir: string, toFile: string): string {
  let rel = relative(fromDir, toFile).split(sep).join("/");
  if (!rel.startsWith(".")) rel = "./" + rel;
  return rel.replace(/\.ts$/, ".js");
}

export function stubSource(plan: StubPlan, generatedMigrationsTs: string): string {
  const spec = importSpecifier(dirname(plan.path), generatedMigrationsTs);
  return `// Migration of \`${plan.entity}\` records from schema version ${plan.from} to ${plan.to}.
// Written once by \`cellar generate\` when the version was raised; this file is yours from now on and
// is never overwritten or reformatted. Registered in ../${registryFileName}.
import { defineMigration, MigrationNotImplementedError } from "${spec}";

export const ${plan.exportName} = defineMigration({
  entity: "${plan.entity}",
  from: ${plan.from},
  to: ${plan.to},
  migrate(record) {
    // \`record\` is a \`${plan.entity}\` record at version ${plan.from} in protobuf JSON form.
    // Return it as version ${plan.to} expects it, e.g. \`return { ...record, newField: "default" };\`
    void record;
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

/** Writes missing stubs, registers them, and records the versions. Existing user files are only added to. */
export function applyMigrations(migrationsDir: string, generatedMigrationsTs: string, plan: MigrationPlan): AppliedMigrations {
  if (plan.errors.length > 0) throw new Error(plan.errors.join("\n"));
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
  if (!hasRegistry || plan.stubs.length > 0) {
    mkdirSync(migrationsDir, { recursive: true });
    const original = hasRegistry ? readFileSync(registryPath, "utf8") : registrySource(migrationsDir, generatedMigrationsTs);
    const project = new Project({
      useInMemoryFileSystem: true,
      manipulationSettings: { indentationText: IndentationText.TwoSpaces, quoteKind: QuoteKind.Double },
    });
    const sf = project.createSourceFile("/registry.ts", original);
    const array = registryArray(sf.getVariableDeclaration("migrations")?.getInitializer());
    for (const stub of plan.stubs) {
      if (!existsSync(stub.path)) continue;
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
  if (plan.state !== undefined) {
    mkdirSync(migrationsDir, { recursive: true });
    writeFileSync(join(migrationsDir, stateFileName), plan.state);
  }
  return { written, registered };
}

function registryArray(init: Node | undefined): ArrayLiteralExpression | undefined {
  let node = init;
  while (node && (Node.isAsExpression(node) || Node.isSatisfiesExpression(node) || Node.isParenthesizedExpression(node))) {
    node = node.getExpression();
  }
  return node?.asKind(SyntaxKind.ArrayLiteralExpression);
}
