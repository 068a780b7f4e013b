/**
 * What `cellar lock` and `cellar check` share: the current schemas built by buf, the lock folder
 * named in buf.gen.yaml, and positions mapped to paths an editor opens.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { fromBinary, type DescFile, type DescMessage, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorSet } from "@bufbuild/protobuf/wkt";
import { defaultLockDir, findEntities, registryOf, type FoundEntity } from "../../codegen/lock.js";
import { moduleDirs, rewritePositions, runBuf, templateLock } from "./buf.js";

export { templateLock };

/** Codes of {@link SchemaToolError}: exit code 2 of `cellar check` and `cellar lock`. */
export type SchemaToolErrorCode = "E_CONFIG" | "E_BUF";

/** Thrown when a command cannot run at all (no buf.yaml, buf fails, an unreadable lock). */
export class SchemaToolError extends Error {
  readonly code: SchemaToolErrorCode;
  constructor(code: SchemaToolErrorCode, message: string) {
    super(message);
    this.name = "SchemaToolError";
    this.code = code;
  }
}

export interface CurrentSchemas {
  /** Compiled with source info (positions) and every import. */
  readonly set: FileDescriptorSet;
  readonly registry: FileRegistry;
  readonly entities: readonly FoundEntity[];
  /** The raw bytes buf wrote, to hand back to `buf breaking`. */
  readonly image: Uint8Array;
}

/** `buf build` of the app's schemas (with source info and imports) into memory. */
export function buildCurrent(root: string): CurrentSchemas {
  if (!existsSync(join(root, "buf.yaml"))) {
    throw new SchemaToolError("E_CONFIG", `buf.yaml not found in ${root}; run \`cellar init\` first`);
  }
  const tmp = mkdtempSync(join(tmpdir(), "cellar-build-"));
  try {
    const out = join(tmp, "current.binpb");
    const r = runBuf(root, ["build", "--as-file-descriptor-set", "-o", out]);
    if (r.status !== 0) {
      throw new SchemaToolError("E_BUF", `\`buf build\` failed:\n${rewritePositions(root, (r.stderr + r.stdout).trim())}`);
    }
    const image = readFileSync(out);
    const set = fromBinary(FileDescriptorSetSchema, image);
    const registry = registryOf(set);
    return { set, registry, entities: findEntities(registry), image };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The lock folder, relative to the root: the `lock=` option of protoc-gen-cellar in the template when
 * set (so codegen and the commands read the same lock), else `schemas/cellar.lock`.
 */
export function lockDirOf(root: string, template = "buf.gen.yaml"): string {
  return templateLock(root, template).lock ?? defaultLockDir;
}

/** A module-relative `.proto` path as a path relative to the app root (`tasks/v1/a.proto` → `schemas/tasks/v1/a.proto`). */
export function appPath(root: string, file: string): string {
  for (const dir of moduleDirs(root)) {
    if (existsSync(join(root, dir, file))) return relative(root, join(root, dir, file)).split(sep).join("/");
  }
  return file;
}

export interface Position {
  /** Relative to the app root. */
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

// Field numbers from google/protobuf/descriptor.proto.
const FILE_MESSAGE_TYPE = 4;
const FILE_ENUM_TYPE = 5;
const MESSAGE_NESTED_TYPE = 3;
const MESSAGE_ENUM_TYPE = 4;

interface Span {
  readonly typeName: string;
  readonly start: number;
  readonly end: number;
}

/** Line spans (0-based, inclusive) of every message and enum of a file, to attribute buf's findings. */
export function typeSpans(file: DescFile): Span[] {
  const spans: Span[] = [];
  const locations = file.proto.sourceCodeInfo?.location ?? [];
  const spanOf = (path: readonly number[]) => {
    const l = locations.find((x) => x.path.length === path.length && x.path.every((p, i) => p === path[i]));
    if (!l || l.span.length < 3) return undefined;
    const start = l.span[0] ?? 0;
    return { start, end: l.span.length === 4 ? (l.span[2] ?? start) : start };
  };
  const visitEnum = (typeName: string, path: number[]) => {
    const s = spanOf(path);
    if (s) spans.push({ typeName, ...s });
  };
  const visitMessage = (m: DescMessage, path: number[]) => {
    const s = spanOf(path);
    if (s) spans.push({ typeName: m.typeName, ...s });
    m.nestedMessages.forEach((n) => visitMessage(n, [...path, MESSAGE_NESTED_TYPE, m.proto.nestedType.indexOf(n.proto)]));
    m.nestedEnums.forEach((e) => visitEnum(e.typeName, [...path, MESSAGE_ENUM_TYPE, m.proto.enumType.indexOf(e.proto)]));
  };
  file.messages.forEach((m, i) => visitMessage(m, [FILE_MESSAGE_TYPE, i]));
  file.enums.forEach((e, i) => visitEnum(e.typeName, [FILE_ENUM_TYPE, i]));
  return spans;
}

/** The innermost message or enum of `file` whose span holds the 1-based `line`. */
export function typeAtLine(spans: readonly Span[], line: number): string | undefined {
  let best: Span | undefined;
  for (const s of spans) {
    if (line - 1 < s.start || line - 1 > s.end) continue;
    if (!best || s.end - s.start < best.end - best.start) best = s;
  }
  return best?.typeName;
}
