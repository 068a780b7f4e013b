/**
 * Test helpers for codegen: compile inline .proto strings with the real buf CLI, then run
 * protoc-gen-cellar in-process on the resulting descriptors (fast, and errors surface as
 * exceptions), or run the whole `buf generate` pipeline on disk.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { create, fromBinary } from "@bufbuild/protobuf";
import { CodeGeneratorRequestSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { protocGenCellar } from "../../codegen/plugin.js";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const bufBin = join(repoRoot, "node_modules", "@bufbuild", "buf", "bin", "buf");
/**
 * `node --require` this in the plugins and tsc runs the tests spawn: a V8 code cache for TypeScript's big
 * CommonJS files, which each of those processes compiles at start (the v8-compile-cache package: Node 20
 * has no `module.enableCompileCache`).
 */
export const v8Cache = createRequire(import.meta.url).resolve("v8-compile-cache");
/**
 * Scratch space inside the repo (git-ignored, outside every tsconfig include), so generated code
 * resolves zod, @bufbuild/protobuf and src/runtime, and leftovers never reach `npm run typecheck`.
 */
export const scratchRoot = join(repoRoot, ".codegen-scratch");

export function scratchDir(prefix: string): string {
  mkdirSync(scratchRoot, { recursive: true });
  return mkdtempSync(join(scratchRoot, `${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Lays out a buf workspace: `protos` (path → source) in module `proto/`, and Cellar's own
 * options.proto (copied from schemas/) in module `cellar/`.
 */
export function writeWorkspace(dir: string, protos: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "buf.yaml"),
    "version: v2\nmodules:\n  - path: proto\n  - path: cellar\n",
  );
  for (const [path, source] of Object.entries(protos)) {
    mkdirSync(dirname(join(dir, "proto", path)), { recursive: true });
    writeFileSync(join(dir, "proto", path), source);
  }
  mkdirSync(join(dir, "cellar", "cellar", "v1"), { recursive: true });
  cpSync(join(repoRoot, "schemas", "cellar", "v1", "options.proto"), join(dir, "cellar", "cellar", "v1", "options.proto"));
}

/** `buf build` a workspace into a FileDescriptorSet (imports and source info included). */
export function bufBuild(dir: string): Uint8Array {
  const out = join(dir, "image.binpb");
  const r = spawnSync(process.execPath, [bufBin, "build", "-o", out], { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`buf build failed:\n${r.stderr}`);
  return readFileSync(out);
}

export interface PluginRun {
  /** Generated files by name. */
  readonly files: Map<string, string>;
}

/**
 * Compiles `protos` with buf and runs protoc-gen-cellar in-process on them. Throws what the plugin
 * throws (SchemaErrors for bad schemas).
 */
export function runPlugin(protos: Record<string, string>, parameter = "target=ts,import_extension=js"): PluginRun {
  const dir = scratchDir("plugin");
  try {
    writeWorkspace(dir, protos);
    const set = fromBinary(FileDescriptorSetSchema, bufBuild(dir));
    const request = create(CodeGeneratorRequestSchema, {
      parameter,
      fileToGenerate: Object.keys(protos),
      protoFile: set.file,
    });
    const response = protocGenCellar.run(request);
    if (response.error !== undefined && response.error !== "") throw new Error(response.error);
    return { files: new Map(response.file.map((f) => [f.name ?? "", f.content ?? ""])) };
  } finally {
    removeDir(dir);
  }
}

/** The error message runPlugin throws for `protos` (fails the test when nothing is thrown). */
export function pluginError(protos: Record<string, string>): string {
  try {
    runPlugin(protos);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected protoc-gen-cellar to fail, but it succeeded");
}

/** Runs `buf generate` in `dir` with a template; returns exit status and output. */
export function bufGenerate(dir: string, template: string): { status: number; output: string } {
  const r = spawnSync(process.execPath, [bufBin, "generate", "--template", template], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, PATH: `${join(repoRoot, "node_modules", ".bin")}:${process.env.PATH ?? ""}` },
  });
  return { status: r.status ?? 1, output: r.stderr + r.stdout };
}

/**
 * A buf.gen.yaml running protoc-gen-es and protoc-gen-cellar (from source; both with {@link v8Cache}) into `out`; with `lock`,
 * protoc-gen-cellar reads the schema lock in that folder.
 */
export function genTemplate(out: string, runtimeImport: string, lock?: string): string {
  const plugin = join(repoRoot, "codegen", "protoc-gen-cellar.ts");
  return `version: v2
clean: true
plugins:
  - local: ["node", "--require", "${v8Cache}", "${join(repoRoot, "node_modules", "@bufbuild", "protoc-gen-es", "bin", "protoc-gen-es")}"]
    out: ${out}
    opt: [target=ts, import_extension=js]
  - local: ["node", "--require", "${v8Cache}", "--import", "tsx", "${plugin}"]
    out: ${out}
    strategy: all
    opt: [target=ts, import_extension=js, runtime_import=${runtimeImport}${lock !== undefined ? `, lock=${lock}` : ""}]
`;
}

/** runtime_import value pointing from `outDir` at this repo's src/runtime/index.ts. */
export function runtimeImportFrom(outDir: string): string {
  const rel = relative(outDir, join(repoRoot, "src", "runtime", "index.js"));
  return rel.startsWith(".") ? rel : `./${rel}`;
}

/**
 * Writes `tsconfig.<name>.json` in `dir` for the strict NodeNext check of generated code (every .ts below
 * `dir`, plus `extra` compiler options and `exclude`); returns its path.
 */
export function writeCheckTsconfig(dir: string, name: string, extra: Record<string, unknown> = {}, exclude: readonly string[] = []): string {
  const tsconfig = join(dir, `tsconfig.${name}.json`);
  writeFileSync(
    tsconfig,
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        lib: ["ES2023"],
        types: ["node"],
        strict: true,
        noUncheckedIndexedAccess: true,
        noImplicitOverride: true,
        isolatedModules: true,
        verbatimModuleSyntax: true,
        skipLibCheck: true,
        noEmit: true,
        ...extra,
      },
      // The runtime brings ambient declarations (src/types) the generated code does not need itself.
      include: ["**/*.ts", join(repoRoot, "src", "types", "*.d.ts")],
      exclude,
    }),
  );
  return tsconfig;
}

/** Runs tsc (strict, NodeNext) on a directory; returns its diagnostics ("" when clean). */
export function typeCheck(dir: string, extra: Record<string, unknown> = {}, exclude: readonly string[] = []): string {
  const tsconfig = writeCheckTsconfig(dir, "check", extra, exclude);
  const r = spawnSync(process.execPath, ["--require", v8Cache, join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", tsconfig], {
    encoding: "utf8",
  });
  return r.status === 0 ? "" : r.stdout + r.stderr;
}

export { execFileSync };
