// Typed migrations from the schema lock: historical message types generated from the locked
// descriptors, one typed stub per step (written once, registered with ts-morph, never overwritten or
// reformatted), tsc checking a step's input and output shapes, and codegen refusing versions the
// lock cannot reach.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isCellarError } from "../../src/runtime/index.js";
import { generate } from "../../src/cli/generate.js";
import { lock } from "../../src/cli/lock.js";
import { removeDir, typeCheck } from "./helpers.js";
import { makeProject } from "./project.js";

const schemaPath = "notes/v1/notes.proto";
// v1: body is text. v2: body becomes a word count (int64) and tags appear. v3: adds a title.
function notes(version: number): string {
  const fields =
    version === 1
      ? "  string id = 1;\n  string body = 2;\n"
      : version === 2
        ? "  string id = 1;\n  int64 body = 2;\n  repeated string tags = 3;\n"
        : "  string id = 1;\n  int64 body = 2;\n  repeated string tags = 3;\n  string title = 4;\n";
  return `syntax = "proto3";
package notes.v1;
import "cellar/v1/options.proto";
import "google/protobuf/timestamp.proto";
import "notes/v1/common.proto";

// Note is a user's note.
message Note {
  option (cellar.v1.entity) = { version: ${version}, name: "notes", key: "id" };
${fields}  google.protobuf.Timestamp created_at = 10;
  Mood mood = 11;
  Link link = 12;
  Owner owner = 13;

  // Link points elsewhere.
  message Link {
    string url = 1;
  }
}

// Mood of a note.
enum Mood {
  MOOD_UNSPECIFIED = 0;
  MOOD_GOOD = 1;
}
`;
}

// A message of another file the entity reaches: its historical copy comes along.
const common = `syntax = "proto3";
package notes.v1;

// Owner of a note.
message Owner {
  string name = 1;
}
`;

const dir = makeProject("migrations", { [schemaPath]: notes(1), "notes/v1/common.proto": common }, { lock: true });
afterAll(() => removeDir(dir));

const storeDir = join(dir, "store");
const read = (p: string) => readFileSync(join(dir, p), "utf8");
/** Runs a script in the project in a child process (fresh modules: the generated code changes between runs). */
function runScript(name: string, source: string): string {
  writeFileSync(join(dir, name), source);
  const r = spawnSync(process.execPath, ["--import", "tsx", join(dir, name), storeDir], { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${name} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout.trim();
}
const write = (p: string, text: string) => writeFileSync(join(dir, p), text);
const setSchema = (text: string) => write(join("proto", schemaPath), text);
function run(check = false) {
  const r = generate({ root: dir, check });
  return { ...r, text: r.messages.join("\n") };
}

const implementedV2 = `// My migration: body becomes its word count.
import { defineMigration } from "../../generated/migrations.js";
export const migrateNotesV2 = defineMigration({ entity: "notes", from: 1, to: 2,
    migrate(record) { return { id: record.id, body: BigInt(record.body.split(" ").length), tags: [] }; } });
`;

describe.sequential("typed migrations from the schema lock", () => {
  it("without a locked version there is nothing to migrate: an empty registry and no stubs", () => {
    const r = run();
    expect(r.exitCode, r.text).toBe(0);
    expect(read("src/migrations/registry.ts")).toContain("export const migrations: readonly MigrationStep[] = [\n];");
    expect(read("src/generated/migrations.ts")).toContain("export const migrationSchemas = {} as const;");
    expect(existsSync(join(dir, "src/generated/history"))).toBe(false);
    const l = lock({ root: dir });
    expect(l.exitCode, l.messages.join("\n")).toBe(0);
    expect(l.written).toEqual(["notes/v1.binpb", "index.json"]);
    // Release 1 is in use: a store holds version 1 records.
    const out = runScript(
      "write-v1.mts",
      `import { openStore } from "./src/generated/index.js";
const store = await openStore({ dir: process.argv[2] ?? "", key: new Uint8Array(32).fill(7) });
await store.notes.put({ id: "n1", body: "three little words" });
await store.notes.put({ id: "n2", body: "one" });
console.log(await store.notes.count());
await store.close();
`,
    );
    expect(out).toBe("2");
  });

  it("raising the version past the lock writes one typed stub, registered, and the historical types it reads", () => {
    setSchema(notes(2));
    const r = run();
    expect(r.exitCode, r.text).toBe(0);
    expect(read("src/generated/history/notes/v1.ts")).toContain(
      'export type { Note as NoteV1, Note_Link as Note_LinkV1 } from "./v1/notes/v1/notes_pb.js";\n' +
        'export { NoteSchema as NoteV1Schema, Note_LinkSchema as Note_LinkV1Schema, Mood as MoodV1, MoodSchema as MoodV1Schema } from "./v1/notes/v1/notes_pb.js";',
    );
    expect(existsSync(join(dir, "src/generated/history/notes/v1/notes/v1/common_pb.ts"))).toBe(true);
    expect(existsSync(join(dir, "src/generated/history/notes/v1/cellar/v1/options_pb.ts"))).toBe(true);
    // The historical message is protoc-gen-es's own output for the locked descriptors: v1's string body.
    const v1 = read("src/generated/history/notes/v1/notes/v1/notes_pb.ts");
    expect(v1).toMatch(/^\/\/ Historical schema: `notes` records as stored at schema version 1/);
    expect(v1).toContain("body: string;");
    expect(read("src/generated/notes/v1/notes_pb.ts")).toContain("body: bigint;");
    expect(read("src/generated/migrations.ts")).toContain("    1: { to: 2, fromSchema: NoteV1Schema, toSchema: NoteSchema },");
    const stub = read("src/migrations/notes/v2.ts");
    expect(stub).toContain('import { defineMigration, MigrationNotImplementedError } from "../../generated/migrations.js";');
    expect(stub).toContain("export const migrateNotesV2 = defineMigration({");
    expect(stub).toContain("// `record` is a `NoteV1`: the record exactly as stored at version 1 (from the schema lock).");
    expect(stub).toContain('throw new MigrationNotImplementedError("notes", 1, 2);');
    const registry = read("src/migrations/registry.ts");
    expect(registry).toContain('import { migrateNotesV2 } from "./notes/v2.js";');
    expect(registry).toMatch(/\[\n {2}migrateNotesV2\n\]/);
  });

  it("a stub is a runtime MigrationStep with the exact schemas, and throws a typed error until written", async () => {
    const { migrateNotesV2 } = (await import(join(dir, "src/migrations/notes/v2.ts"))) as {
      migrateNotesV2: import("../../src/runtime/index.js").MigrationStep;
    };
    expect(migrateNotesV2).toMatchObject({ entity: "notes", from: 1, to: 2 });
    expect(migrateNotesV2.fromSchema.typeName).toBe("notes.v1.Note");
    expect(migrateNotesV2.fromSchema.fields.find((f) => f.name === "body")?.scalar).toBe(9); // string, as locked
    expect(migrateNotesV2.toSchema.fields.find((f) => f.name === "body")?.scalar).toBe(3); // int64, current
    let error: unknown;
    try {
      await migrateNotesV2.migrate({ id: "n1" }, { entity: "notes", key: "n1", from: 1, to: 2 });
    } catch (e) {
      error = e;
    }
    expect(isCellarError(error, "E_MIGRATION")).toBe(true);
    expect((error as Error).name).toBe("MigrationNotImplementedError");
    expect((error as Error).message).toBe(
      "migration of `notes` from schema version 1 to 2 is not implemented; write it in src/migrations/notes/v2.ts (.js in a JavaScript app)",
    );
  });

  it("tsc checks a step against the historical input and the current output", () => {
    write("src/migrations/notes/v2.ts", implementedV2);
    // Returning the v1 body (a string) where v2 wants a bigint is a type error, and so is reading a
    // field v1 never had: the same step written wrong, next to it (same imports), in the same tsc program
    // (one tsc run instead of two: every error must be in the wrong one, none in the project's own step).
    write(
      "src/migrations/notes/v2-wrong.ts",
      implementedV2.replace("body: BigInt(record.body.split(\" \").length)", "body: record.body").replace("tags: []", "tags: record.tags"),
    );
    const errors = typeCheck(dir);
    removeDir(join(dir, "src/migrations/notes/v2-wrong.ts"));
    expect(errors).toMatch(/src\/migrations\/notes\/v2-wrong\.ts\(4,[0-9]+\): error TS2322:[\s\S]*Types of property 'body' are incompatible\.\s+Type 'string' is not assignable to type 'bigint'/);
    expect(errors).toMatch(/src\/migrations\/notes\/v2-wrong\.ts\(4,[0-9]+\): error TS2339: Property 'tags' does not exist on type 'Note'/);
    const reported = errors.split("\n").filter((l) => /\berror TS\d+/.test(l));
    expect(reported.length).toBeGreaterThanOrEqual(2);
    expect(reported.filter((l) => !/(^|\/)src\/migrations\/notes\/v2-wrong\.ts\(\d+,\d+\): error TS/.test(l))).toEqual([]);
  });

  it("the runtime upgrades a version 1 store with the registered step: old bytes decoded with `NoteV1Schema`", () => {
    const out = runScript(
      "open-v2.mts",
      `import { openStore } from "./src/generated/index.js";
import { migrations } from "./src/migrations/registry.js";
const store = await openStore({ dir: process.argv[2] ?? "", key: new Uint8Array(32).fill(7), migrations });
const notes = await store.notes.list();
console.log(JSON.stringify(notes.map((n) => [n.id, String(n.body)])));
await store.close();
`,
    );
    expect(out).toBe('[["n1","3"],["n2","1"]]');
  });

  it("user edits to stubs and the registry survive a re-run byte for byte", () => {
    const registry = read("src/migrations/registry.ts").replace(
      "export const migrations",
      "// Kept in upgrade order.\nconst   unusual_spacing = 1 ;\nvoid unusual_spacing;\n\nexport const migrations",
    );
    write("src/migrations/registry.ts", registry);
    const r = run();
    expect(r.exitCode, r.text).toBe(0);
    expect(read("src/migrations/notes/v2.ts")).toBe(implementedV2);
    expect(read("src/migrations/registry.ts")).toBe(registry);
    expect(r.changes).toEqual([]);
  });

  it("after v2 is locked, raising to v3 appends only the new step; v1 → v2 now returns the locked v2 shape", () => {
    const l = lock({ root: dir });
    expect(l.exitCode, l.messages.join("\n")).toBe(0);
    expect(l.written).toEqual(["notes/v2.binpb", "index.json"]);
    const before = read("src/migrations/registry.ts");
    setSchema(notes(3));
    const r = run();
    expect(r.exitCode, r.text).toBe(0);
    expect(read("src/migrations/notes/v2.ts")).toBe(implementedV2);
    expect(read("src/migrations/registry.ts")).toBe(
      before
        .replace('import { migrateNotesV2 } from "./notes/v2.js";\n', 'import { migrateNotesV2 } from "./notes/v2.js";\nimport { migrateNotesV3 } from "./notes/v3.js";\n')
        .replace("  migrateNotesV2\n]", "  migrateNotesV2,\n  migrateNotesV3\n]"),
    );
    const migrations = read("src/generated/migrations.ts");
    expect(migrations).toContain("    1: { to: 2, fromSchema: NoteV1Schema, toSchema: NoteV2Schema },");
    expect(migrations).toContain("    2: { to: 3, fromSchema: NoteV2Schema, toSchema: NoteSchema },");
    expect(read("src/migrations/notes/v3.ts")).toContain("// `record` is a `NoteV2`");
    write(
      "src/migrations/notes/v3.ts",
      read("src/migrations/notes/v3.ts").replace(/void record;[\s\S]*?throw new MigrationNotImplementedError\("notes", 2, 3\);/, 'return { ...record, title: record.tags[0] ?? "" };'),
    );
    expect(typeCheck(dir, { exactOptionalPropertyTypes: true })).toBe("");
  });

  it("--check lists a missing stub and changes nothing", () => {
    removeDir(join(dir, "src/migrations/notes/v3.ts"));
    const r = run(true);
    expect(r.exitCode).toBe(1);
    expect(r.text).toContain("src/migrations/notes/v3.ts (missing migration stub (notes v2 → v3))");
    expect(existsSync(join(dir, "src/migrations/notes/v3.ts"))).toBe(false);
  });

  it("a version below the lock's latest, or more than one above it, fails codegen at the `version` option", () => {
    const before = read("src/generated/migrations.ts");
    setSchema(notes(1));
    let r = run();
    expect(r.exitCode).toBe(1);
    expect(r.text).toContain(
      "proto/notes/v1/notes.proto:9:33: entity `notes` is at schema version 1, below version 2 in the schema lock (proto/cellar.lock); versions never go down (stored records may already be at 2)",
    );
    setSchema(notes(3).replace("version: 3", "version: 5"));
    r = run();
    expect(r.exitCode).toBe(1);
    expect(r.text).toContain(
      "proto/notes/v1/notes.proto:9:33: entity `notes` is at schema version 5, but the schema lock (proto/cellar.lock) ends at version 2; raise the version one step per release: set `version: 3`",
    );
    expect(read("src/generated/migrations.ts")).toBe(before);
    setSchema(notes(3));
  });
});
