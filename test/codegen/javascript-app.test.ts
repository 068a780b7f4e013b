// A plain JavaScript app (`target=js+dts`, no TypeScript anywhere at run time): generate writes the
// migration registry and stubs as `.js`, check's advice names the files generate writes, and the
// app runs under plain `node` (no tsx): write, lock, raise a version, stub, fill it, migrate, reopen.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildSync } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { check } from "../../src/cli/check.js";
import { generate } from "../../src/cli/generate.js";
import { lock } from "../../src/cli/lock.js";
import { removeDir, repoRoot, scratchDir, v8Cache, writeWorkspace } from "./helpers.js";

const schemaPath = "notes/v1/notes.proto";
function notes(version: number): string {
  return `syntax = "proto3";
package notes.v1;
import "cellar/v1/options.proto";

// Note is a user's note.
message Note {
  option (cellar.v1.entity) = { version: ${version}, name: "notes", key: "id" };
  string id = 1;
  ${version === 1 ? "string" : "int64"} body = 2;
}
`;
}

/** buf.gen.yaml of a JavaScript app: both plugins write `.js` + `.d.ts`. */
function jsTemplate(): string {
  return `version: v2
clean: true
plugins:
  - local: ["node", "--require", "${v8Cache}", "${join(repoRoot, "node_modules", "@bufbuild", "protoc-gen-es", "bin", "protoc-gen-es")}"]
    out: src/generated
    strategy: all
    opt: [target=js+dts, import_extension=js]
  - local: ["node", "--require", "${v8Cache}", "--import", "tsx", "${join(repoRoot, "codegen", "protoc-gen-cellar.ts")}"]
    out: src/generated
    strategy: all
    opt: [target=js+dts, import_extension=js, lock=proto/cellar.lock, migrations_import=../migrations/registry.js]
`;
}

let dir = "";
beforeAll(() => {
  dir = scratchDir("js-app");
  writeWorkspace(dir, { [schemaPath]: notes(1) });
  writeFileSync(join(dir, "buf.gen.yaml"), jsTemplate());
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "js-app", type: "module", private: true }));
  // What installing the package gives the app: `cellar` as JavaScript (the runtime bundled from source;
  // its own dependencies resolve from this repository's node_modules, above the scratch folder).
  const pkg = join(dir, "node_modules", "cellar");
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "cellar", type: "module", exports: { ".": "./index.js" } }));
  buildSync({
    entryPoints: [join(repoRoot, "src", "runtime", "index.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    outfile: join(pkg, "index.js"),
    logLevel: "error",
  });
});
afterAll(() => removeDir(dir));

const read = (p: string) => readFileSync(join(dir, p), "utf8");
const write = (p: string, text: string) => writeFileSync(join(dir, p), text);
/** Runs an app script with plain node: no loader, no TypeScript. */
function node(name: string, source: string): string {
  write(name, source);
  const r = spawnSync(process.execPath, [name], { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`node ${name} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout.trim();
}
/** tsc over the app's JavaScript migrations (allowJs + checkJs, strict); "" when clean. */
function checkJs(): string {
  write(
    "tsconfig.json",
    JSON.stringify({
      compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", allowJs: true, checkJs: true, noEmit: true, strict: true, skipLibCheck: true, types: ["node"] },
      include: ["src/migrations/**/*.js"],
    }),
  );
  const r = spawnSync(process.execPath, ["--require", v8Cache, join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], { cwd: dir, encoding: "utf8" });
  return r.status === 0 ? "" : r.stdout + r.stderr;
}
function filesUnder(p: string): string[] {
  return existsSync(join(dir, p)) ? readdirSync(join(dir, p), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort() : [];
}

const readApp = `import { openStore } from "./src/generated/index.js";
const store = await openStore({ dir: "store", key: new Uint8Array(32).fill(7) });
const notes = await store.notes.list();
console.log(JSON.stringify(notes.map((n) => [n.id, String(n.body)])));
await store.close();
`;

describe.sequential("a plain JavaScript app", () => {
  it("generate writes a JavaScript registry the generated index.js imports; the app runs under plain node", () => {
    const r = generate({ root: dir });
    expect(r.exitCode, r.messages.join("\n")).toBe(0);
    expect(existsSync(join(dir, "src/generated/index.js"))).toBe(true);
    expect(read("src/generated/index.js")).toContain('import { migrations } from "../migrations/registry.js";');
    expect(filesUnder("src/migrations")).toEqual(["registry.js"]);
    const registry = read("src/migrations/registry.js");
    expect(registry.split("\n")[0]).toBe("// @ts-check");
    expect(registry).toContain('/** @type {readonly import("../generated/migrations.js").MigrationStep[]} */\nexport const migrations = [\n];');
    const out = node(
      "write.js",
      `import { openStore } from "./src/generated/index.js";
const store = await openStore({ dir: "store", key: new Uint8Array(32).fill(7) });
await store.notes.put({ id: "n1", body: "three little words" });
await store.notes.put({ id: "n2", body: "one" });
console.log(await store.notes.count());
await store.close();
`,
    );
    expect(out).toBe("2");
    expect(lock({ root: dir }).exitCode).toBe(0);
  });

  it("after raising a version, check's advice names the .js stub generate then writes and registers", () => {
    write(join("proto", schemaPath), notes(2));
    let c = check({ root: dir });
    expect(c.exitCode).toBe(1);
    expect(c.messages.join("\n")).toContain("fix: run `cellar generate` to write src/migrations/notes/v2.js, then implement it");
    const r = generate({ root: dir });
    expect(r.exitCode, r.messages.join("\n")).toBe(0);
    expect(r.messages).toContain("cellar: wrote migration stub src/migrations/notes/v2.js; implement it before shipping");
    expect(filesUnder("src/migrations")).toEqual(["registry.js", "v2.js"]);
    expect(read("src/generated/migrations.js")).toContain("written in src/migrations/notes/v2.js");
    const stub = read("src/migrations/notes/v2.js");
    expect(stub.split("\n")[0]).toBe("// @ts-check");
    expect(stub).toContain('import { defineMigration, MigrationNotImplementedError } from "../../generated/migrations.js";');
    const registry = read("src/migrations/registry.js");
    expect(registry.split("\n")[0]).toBe("// @ts-check");
    expect(registry).toContain('import { migrateNotesV2 } from "./notes/v2.js";');
    expect(registry).toMatch(/export const migrations = \[\n {2}migrateNotesV2\n\];/);
    // The loop is closed: check now points at the stub itself.
    c = check({ root: dir });
    expect(c.exitCode).toBe(1);
    expect(c.findings.filter((f) => f.level === "error").map((f) => `${f.rule} ${f.position.file}`)).toEqual([
      "MIGRATION_NOT_IMPLEMENTED src/migrations/notes/v2.js",
    ]);
  });

  it("the filled-in stub migrates the stored records under plain node, and the store reopens", () => {
    write(
      "src/migrations/notes/v2.js",
      read("src/migrations/notes/v2.js").replace(
        /void record;\n\s*void ctx;\n\s*throw new MigrationNotImplementedError\("notes", 1, 2\);/,
        "void ctx;\n" +
          "    // @ts-expect-error: as stored at version 1, `body` is a string (the generated .d.ts types `record`)\n" +
          "    const wrong = /** @type {number} */ (record.body);\n" +
          "    void wrong;\n" +
          '    return { id: record.id, body: BigInt(record.body.split(" ").length) };',
      ),
    );
    const c = check({ root: dir });
    expect(c.exitCode, c.messages.join("\n")).toBe(0);
    // `// @ts-check` works: tsc checks the JavaScript migrations against the generated declarations.
    expect(checkJs()).toBe("");
    expect(node("read.js", readApp)).toBe('[["n1","3"],["n2","1"]]');
    expect(node("read.js", readApp)).toBe('[["n1","3"],["n2","1"]]');
  });
});
