/**
 * Historical message types: the exact shape of an entity at every locked version older than the
 * current one, generated from the schema lock.
 *
 * protoc-gen-es itself runs (in-process) over the locked `FileDescriptorSet` of that version, with the
 * descriptors exactly as locked (nothing renamed: a decoded old record keeps its `$typeName`, so
 * spreading it into the current shape type-checks field by field). Its output goes under
 * `history/<entity>/v<N>/`, where its relative imports keep working; two versions of one file never
 * meet in one module. `history/<entity>/v<N>.ts` then re-exports the types of the entity's file with
 * the version appended (`Task` → `TaskV1`, `TaskSchema` → `TaskV1Schema`, `TaskStatus` →
 * `TaskStatusV1`), which is what migrations import.
 */
import { createRequire } from "node:module";
import { create } from "@bufbuild/protobuf";
import { CodeGeneratorRequestSchema, type CodeGeneratorResponse } from "@bufbuild/protobuf/wkt";
import type { Plugin } from "@bufbuild/protoplugin";
import { readLockedSet, type LockedVersion, type SchemaLock } from "./lock.js";

const require = createRequire(import.meta.url);

let protocGenEs: Plugin | undefined;

/** protoc-gen-es's plugin object, the one its own `bin/protoc-gen-es` runs. */
function loadProtocGenEs(): Plugin {
  if (!protocGenEs) {
    const mod = require("@bufbuild/protoc-gen-es/dist/cjs/src/protoc-gen-es-plugin.js") as { protocGenEs?: Plugin };
    if (!mod.protocGenEs) throw new Error("unsupported @bufbuild/protoc-gen-es version: no `protocGenEs` export");
    protocGenEs = mod.protocGenEs;
  }
  return protocGenEs;
}

/** Options of protoc-gen-cellar that protoc-gen-es does not know. */
const ownOptions = new Set(["runtime_import", "lock", "migrations_import", "target"]);

/** protoc-gen-es's parameter: TypeScript output, with the standard options the plugin was given. */
export function protocGenEsParameter(parameter: string): string {
  const kept = parameter
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "" && !ownOptions.has(p.split("=")[0] ?? ""));
  return ["target=ts", ...kept].join(",");
}

export interface HistoricalVersion {
  readonly entity: string;
  readonly version: number;
  readonly locked: LockedVersion;
  /** Folder of the generated files, relative to the output root: `history/tasks/v1`. */
  readonly dir: string;
  /** Module with the suffixed re-exports, relative to the output root: `history/tasks/v1.ts`. */
  readonly module: string;
  /** Files protoc-gen-es wrote, relative to `dir`. */
  readonly files: readonly { readonly name: string; readonly content: string }[];
  /** Suffixed names re-exported by `module`: `[original, suffixed, typeOnly]`. */
  readonly exports: readonly (readonly [string, string, boolean])[];
  /** Name of the entity message's schema in `module`, e.g. `TaskV1Schema`. */
  readonly schemaName: string;
  /** Name of the entity message's type in `module`, e.g. `TaskV1`. */
  readonly typeName: string;
}

/** `Task` → `TaskV1`; `TaskSchema` → `TaskV1Schema`. */
export function versionedName(name: string, version: number): string {
  return name.endsWith("Schema") && name !== "Schema" ? `${name.slice(0, -6)}V${version}Schema` : `${name}V${version}`;
}

/** Runs protoc-gen-es over one locked version. */
export function generateHistoricalVersion(lock: SchemaLock, entity: string, locked: LockedVersion, parameter: string): HistoricalVersion {
  const set = readLockedSet(lock, locked);
  const request = create(CodeGeneratorRequestSchema, {
    parameter: protocGenEsParameter(parameter),
    fileToGenerate: set.file.map((f) => f.name).filter((n) => !n.startsWith("google/protobuf/")),
    protoFile: set.file,
  });
  const response: CodeGeneratorResponse = loadProtocGenEs().run(request);
  if (response.error !== undefined && response.error !== "") {
    throw new Error(`protoc-gen-es failed on locked \`${entity}\` version ${locked.version}: ${response.error}`);
  }
  const files = response.file.map((f) => ({ name: f.name ?? "", content: f.content ?? "" }));
  const own = locked.file.replace(/\.proto$/, "_pb.ts");
  const ownFile = files.find((f) => f.name === own);
  if (!ownFile) throw new Error(`protoc-gen-es wrote no \`${own}\` for locked \`${entity}\` version ${locked.version}`);
  const exports: [string, string, boolean][] = [];
  for (const m of ownFile.content.matchAll(/^export (type|const|enum) (\w+)/gm)) {
    const [, kind, name] = m as unknown as [string, string, string];
    if (kind === "const" && name.startsWith("file_")) continue;
    exports.push([name, versionedName(name, locked.version), kind === "type"]);
  }
  const pkg = set.file.find((f) => f.name === locked.file)?.package ?? "";
  const local = pkg !== "" && locked.message.startsWith(pkg + ".") ? locked.message.slice(pkg.length + 1) : locked.message;
  const shape = local.replace(/\./g, "_");
  return {
    entity,
    version: locked.version,
    locked,
    dir: `history/${entity}/v${locked.version}`,
    module: `history/${entity}/v${locked.version}.ts`,
    files,
    exports,
    schemaName: versionedName(`${shape}Schema`, locked.version),
    typeName: versionedName(shape, locked.version),
  };
}

/** A header line for the copied protoc-gen-es files, naming where they come from. */
export function historyBanner(h: HistoricalVersion, lockOption: string): string {
  return `// Historical schema: \`${h.entity}\` records as stored at schema version ${h.version}, generated by protoc-gen-es from the schema lock (${lockOption}/${h.locked.descriptors}). DO NOT EDIT.`;
}

