// Migration stubs: written once per missing step, registered with ts-morph, never overwritten or
// reformatted; `--check` reports missing ones; a lowered version is refused.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isCellarError } from "../../src/runtime/index.js";
import { generate } from "../../src/cli/generate.js";
import { removeDir, typeCheck } from "./helpers.js";
import { makeProject, notesSchema } from "./project.js";

const schemaPath = "notes/v1/notes.proto";
const dir = makeProject("migrations", { [schemaPath]: notesSchema(1) });
afterAll(() => removeDir(dir));

const read = (p: string) => readFileSync(join(dir, p), "utf8");
const setVersion = (v: number) => writeFileSync(join(dir, "proto", schemaPath), notesSchema(v));
function run(check = false) {
  const r = generate({ root: dir, check });
  return { ...r, text: r.messages.join("\n") };
}

describe.sequential("migration stubs", () => {
  it("first run records versions and creates an empty registry, with no stubs", () => {
    const r = run();
    expect(r.exitCode, r.text).toBe(0);
    expect(JSON.parse(read("src/migrations/.cellar-versions.json")).versions).toEqual({ notes: 1 });
    expect(read("src/migrations/registry.ts")).toContain("export const migrations: readonly MigrationStep[] = [\n];");
    expect(r.changes.some((c) => c.path.startsWith("src/migrations/notes/"))).toBe(false);
  });

  it("raising the version writes one typed stub per missing step and registers each", () => {
    setVersion(3);
    const r = run();
    expect(r.exitCode, r.text).toBe(0);
    const v2 = read("src/migrations/notes/v2.ts");
    expect(v2).toContain('import { defineMigration, MigrationNotImplementedError } from "../../generated/migrations.js";');
    expect(v2).toContain("export const migrateNotesV2 = defineMigration({");
    expect(v2).toContain('throw new MigrationNotImplementedError("notes", 1, 2);');
    expect(read("src/migrations/notes/v3.ts")).toContain('throw new MigrationNotImplementedError("notes", 2, 3);');
    const registry = read("src/migrations/registry.ts");
    expect(registry).toContain('import { migrateNotesV2 } from "./notes/v2.js";');
    expect(registry).toContain('import { migrateNotesV3 } from "./notes/v3.js";');
    expect(registry).toMatch(/\[\n {2}migrateNotesV2,\n {2}migrateNotesV3\n\]/);
    expect(JSON.parse(read("src/migrations/.cellar-versions.json")).versions).toEqual({ notes: 3 });
    expect(read("src/generated/migrations.ts")).toContain("  notes: 3,");
  });

  it("a stub throws a typed `migration not implemented` error when run", async () => {
    const { migrateNotesV2 } = (await import(join(dir, "src/migrations/notes/v2.ts"))) as {
      migrateNotesV2: { entity: string; from: number; to: number; migrate(r: object): unknown };
    };
    expect(migrateNotesV2).toMatchObject({ entity: "notes", from: 1, to: 2 });
    let error: unknown;
    try {
      await migrateNotesV2.migrate({ id: "n1" });
    } catch (e) {
      error = e;
    }
    expect(isCellarError(error, "E_MIGRATION")).toBe(true);
    expect((error as Error).name).toBe("MigrationNotImplementedError");
    expect((error as Error).message).toBe(
      "migration of `notes` from schema version 1 to 2 is not implemented; write it in src/migrations/notes/v2.ts",
    );
  });

  it("user edits to stubs and the registry survive a re-run byte for byte", () => {
    const implemented = `// My migration: add a body.
import { defineMigration } from "../../generated/migrations.js";
export const migrateNotesV2 = defineMigration({ entity: "notes", from: 1, to: 2,
    migrate(record) { return { ...record, body: String(record["text"] ?? "") }; } });
`;
    writeFileSync(join(dir, "src/migrations/notes/v2.ts"), implemented);
    const registry = read("src/migrations/registry.ts").replace(
      "export const migrations",
      "// Kept in upgrade order.\nconst   unusual_spacing = 1 ;\nvoid unusual_spacing;\n\nexport const migrations",
    );
    writeFileSync(join(dir, "src/migrations/registry.ts"), registry);
    const r = run();
    expect(r.exitCode, r.text).toBe(0);
    expect(read("src/migrations/notes/v2.ts")).toBe(implemented);
    expect(read("src/migrations/registry.ts")).toBe(registry);
    expect(r.changes).toEqual([]);
  });

  it("another raise appends only the new step and keeps everything the user wrote", () => {
    const v2 = read("src/migrations/notes/v2.ts");
    const before = read("src/migrations/registry.ts");
    setVersion(4);
    const r = run();
    expect(r.exitCode, r.text).toBe(0);
    expect(read("src/migrations/notes/v2.ts")).toBe(v2);
    const after = read("src/migrations/registry.ts");
    expect(after).toBe(
      before
        .replace('import { migrateNotesV3 } from "./notes/v3.js";\n', 'import { migrateNotesV3 } from "./notes/v3.js";\nimport { migrateNotesV4 } from "./notes/v4.js";\n')
        .replace("  migrateNotesV3\n]", "  migrateNotesV3,\n  migrateNotesV4\n]"),
    );
  });

  it("the project with its stubs and registry type-checks", () => {
    expect(typeCheck(dir)).toBe("");
  });

  it("--check lists a missing stub and changes nothing", () => {
    setVersion(5);
    const r = run(true);
    expect(r.exitCode).toBe(1);
    expect(r.text).toContain("src/generated/migrations.ts (out of date)");
    expect(r.text).toContain("src/migrations/notes/v5.ts (missing migration stub (notes v4 → v5))");
    expect(r.text).toContain("src/migrations/.cellar-versions.json (entity versions not recorded)");
    expect(() => read("src/migrations/notes/v5.ts")).toThrow();
  });

  it("a lowered version is refused and nothing changes", () => {
    setVersion(2);
    const before = read("src/generated/migrations.ts");
    const r = run();
    expect(r.exitCode).toBe(1);
    expect(r.text).toContain(
      "entity `notes` is at schema version 2, below the version 4 recorded in .cellar-versions.json; versions never go down",
    );
    expect(read("src/generated/migrations.ts")).toBe(before);
    setVersion(4);
  });
});
