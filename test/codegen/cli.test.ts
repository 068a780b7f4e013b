// The `cellar` command: `generate --check` on this repository, stale-file listing, schema errors with
// paths on disk, `init` scaffolding in an app, and the CLI's argument handling.
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { check } from "../../src/cli/check.js";
import { generate } from "../../src/cli/generate.js";
import { init } from "../../src/cli/init.js";
import { lock } from "../../src/cli/lock.js";
import { bufBin, removeDir, repoRoot, scratchDir, typeCheck } from "./helpers.js";
import { makeProject, notesSchema } from "./project.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

function cellar(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli", "cellar.ts"), ...args], {
    cwd,
    encoding: "utf8",
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

it("this repository's src/generated is up to date (`npm run codegen -- --check`)", () => {
  const r = generate({ root: repoRoot, check: true });
  expect(r.messages.join("\n")).toBe("cellar: generated code is up to date");
  expect(r.exitCode).toBe(0);
});

describe("generate --check", () => {
  it("lists edited, missing and extra generated files and exits 1 without changing them", () => {
    const dir = makeProject("check", { "notes/v1/notes.proto": notesSchema(1) });
    dirs.push(dir);
    expect(generate({ root: dir }).exitCode).toBe(0);
    const zod = join(dir, "src/generated/notes/v1/notes_zod.ts");
    writeFileSync(zod, readFileSync(zod, "utf8") + "// hand edit\n");
    unlinkSync(join(dir, "src/generated/index.ts"));
    writeFileSync(join(dir, "src/generated/leftover_pb.ts"), "export {};\n");
    const r = cellar(dir, "generate", "--check");
    expect(r.status).toBe(1);
    expect(r.out).toContain("cellar: generated code is stale; run `cellar generate` and commit the result:");
    expect(r.out).toContain("  src/generated/notes/v1/notes_zod.ts (out of date)");
    expect(r.out).toContain("  src/generated/index.ts (missing)");
    expect(r.out).toContain("  src/generated/leftover_pb.ts (no longer generated)");
    expect(readFileSync(zod, "utf8")).toContain("// hand edit");
    // A real run repairs all three.
    expect(cellar(dir, "generate").status).toBe(0);
    expect(existsSync(join(dir, "src/generated/leftover_pb.ts"))).toBe(false);
    expect(cellar(dir, "generate", "--check")).toEqual({ status: 0, out: "cellar: generated code is up to date\n" });
  });
});

it("a bad schema fails with its path on disk, line and column, and changes nothing", () => {
  const bad = notesSchema(1).replace('key: "id"', 'key: "uuid"');
  const dir = makeProject("bad", { "notes/v1/notes.proto": bad });
  dirs.push(dir);
  const r = cellar(dir, "generate");
  expect(r.status).toBe(1);
  expect(r.out).toContain(
    "proto/notes/v1/notes.proto:7:60: key `uuid` of entity `Note` names no field of the message; its fields are `id`, `body`",
  );
  expect(r.out).toContain("cellar: code generation failed; nothing was changed");
  expect(existsSync(join(dir, "src/generated"))).toBe(false);
});

describe("init", () => {
  function app(): string {
    const dir = scratchDir("init");
    dirs.push(dir);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "my-app", type: "module", scripts: { start: "node ." } }, null, 2));
    // What installing the package gives an app: node_modules/cellar with schemas/cellar and the runtime.
    const pkg = join(dir, "node_modules", "cellar");
    mkdirSync(join(pkg, "schemas", "cellar", "v1"), { recursive: true });
    copyFileSync(join(repoRoot, "schemas", "cellar", "v1", "options.proto"), join(pkg, "schemas", "cellar", "v1", "options.proto"));
    writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "cellar", type: "module", exports: { ".": "./index.ts" } }));
    writeFileSync(join(pkg, "index.ts"), `export * from "${join(repoRoot, "src", "runtime", "index.js")}";\n`);
    mkdirSync(join(dir, "node_modules", ".bin"), { recursive: true });
    // What npm links for the installed package's `bin`: the plugin, here run from source.
    const shim = join(dir, "node_modules", ".bin", "protoc-gen-cellar");
    writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" --import tsx "${join(repoRoot, "codegen", "protoc-gen-cellar.ts")}"\n`);
    chmodSync(shim, 0o755);
    return dir;
  }

  it("scaffolds buf.yaml, buf.gen.yaml, an example schema and a codegen script; generate then works", () => {
    const dir = app();
    const r = init({ root: dir });
    expect(r.exitCode, r.messages.join("\n")).toBe(0);
    expect(readFileSync(join(dir, "buf.yaml"), "utf8")).toContain("  - path: node_modules/cellar/schemas\n");
    expect(readFileSync(join(dir, "buf.gen.yaml"), "utf8")).toContain("  - local: protoc-gen-cellar\n");
    expect(existsSync(join(dir, "schemas/app/v1/app_settings.proto"))).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).scripts).toEqual({
      start: "node .",
      codegen: "cellar generate",
      "schema:check": "cellar check",
      "schema:lock": "cellar lock",
    });
    expect(readFileSync(join(dir, "buf.gen.yaml"), "utf8")).toContain("      - lock=schemas/cellar.lock\n");
    expect(readFileSync(join(dir, "buf.gen.yaml"), "utf8")).toContain("      - migrations_import=../migrations/registry.js\n");
    const lint = spawnSync(process.execPath, [bufBin, "lint"], { cwd: dir, encoding: "utf8" });
    expect(lint.stdout + lint.stderr).toBe("");
    const g = generate({ root: dir });
    expect(g.exitCode, g.messages.join("\n")).toBe(0);
    const cellarTs = readFileSync(join(dir, "src/generated/app/v1/app_settings_cellar.ts"), "utf8");
    expect(cellarTs).toContain('import { defineSingleton } from "cellar";');
    expect(existsSync(join(dir, "src/generated/cellar/v1/options_pb.ts"))).toBe(true);
    // The generated openStore passes the migration registry generate keeps (written even with no steps yet).
    expect(readFileSync(join(dir, "src/generated/index.ts"), "utf8")).toContain('import { migrations } from "../migrations/registry.js";');
    expect(existsSync(join(dir, "src/migrations/registry.ts"))).toBe(true);
    expect(typeCheck(dir)).toBe("");
    // The schema lock lives where buf.gen.yaml's `lock=` says; the first release locks the example entity.
    expect(check({ root: dir }).messages.at(-1)).toBe("cellar: 1 entity compatible with the schema lock (schemas/cellar.lock, 0 locked); 1 note above");
    expect(lock({ root: dir })).toMatchObject({ exitCode: 0, written: ["app_settings/v1.binpb", "index.json"] });
    expect(existsSync(join(dir, "schemas/cellar.lock/app_settings/v1.binpb"))).toBe(true);
  });

  it("keeps existing files unless --force", () => {
    const dir = app();
    writeFileSync(join(dir, "buf.yaml"), "# mine\n");
    const r = init({ root: dir });
    expect(r.messages).toContain("cellar: kept existing buf.yaml (use --force to overwrite)");
    expect(readFileSync(join(dir, "buf.yaml"), "utf8")).toBe("# mine\n");
    init({ root: dir, force: true });
    expect(readFileSync(join(dir, "buf.yaml"), "utf8")).toContain("version: v2");
  });

  it("refuses a directory without package.json", () => {
    const dir = scratchDir("init-empty");
    dirs.push(dir);
    expect(init({ root: dir }).messages[0]).toMatch(/no package\.json/);
  });
});

it("rejects unknown commands and options", () => {
  expect(cellar(repoRoot, "generat").status).toBe(2);
  const r = cellar(repoRoot, "generate", "--chek");
  expect(r.status).toBe(2);
  expect(r.out).toContain("cellar: unknown option `--chek` for `generate`");
});
