/**
 * Codegen errors that point at the schema: `file:line:column: plain sentence`.
 *
 * Positions come from the descriptor's source code info (buf keeps it in the code generator request).
 * A path names an element the way `descriptor.proto` numbers it, e.g. `[4, 0, 2, 3]` is the fourth
 * field of the first message; when an exact element has no span (an option set inside an aggregate
 * `{…}` value has none of its own), the nearest enclosing element that has one is used.
 */
import type { DescField, DescFile, DescMessage } from "@bufbuild/protobuf";

/** A 1-based position in a `.proto` file, as reported to the user. */
export interface SourcePosition {
  /** The file's path inside its module, e.g. `examples/tasks/v1/tasks.proto`. */
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** One problem with a schema. `message` is `file:line:column: reason`. */
export class SchemaError extends Error {
  readonly position: SourcePosition;
  readonly reason: string;
  constructor(position: SourcePosition, reason: string) {
    super(`${position.file}:${position.line}:${position.column}: ${reason}`);
    this.name = "SchemaError";
    this.position = position;
    this.reason = reason;
  }
}

/** Every problem found in one codegen run, one per line, in schema order. */
export class SchemaErrors extends Error {
  readonly errors: readonly SchemaError[];
  constructor(errors: readonly SchemaError[]) {
    super(errors.map((e) => e.message).join("\n"));
    this.name = "SchemaErrors";
    this.errors = errors;
  }
}

/** Collects errors so one run reports all of them. */
export class Diagnostics {
  private readonly list: SchemaError[] = [];
  add(position: SourcePosition, reason: string): void {
    this.list.push(new SchemaError(position, reason));
  }
  get count(): number {
    return this.list.length;
  }
  /** Throws a {@link SchemaErrors} when anything was reported. */
  throwIfAny(): void {
    if (this.list.length > 0) throw new SchemaErrors(this.list);
  }
}

// Field numbers from google/protobuf/descriptor.proto.
const FILE_MESSAGE_TYPE = 4;
const MESSAGE_FIELD = 2;
const MESSAGE_NESTED_TYPE = 3;
const MESSAGE_OPTIONS = 7;
const FIELD_OPTIONS = 8;

/** The source path of a message. */
export function messagePath(desc: DescMessage): number[] {
  if (desc.parent) {
    return [...messagePath(desc.parent), MESSAGE_NESTED_TYPE, desc.parent.proto.nestedType.indexOf(desc.proto)];
  }
  return [FILE_MESSAGE_TYPE, desc.file.proto.messageType.indexOf(desc.proto)];
}

/** The source path of a field. */
export function fieldPath(field: DescField): number[] {
  return [...messagePath(field.parent), MESSAGE_FIELD, field.parent.proto.field.indexOf(field.proto)];
}

/** The source path of a message option (`extensionNumber`) or one of its sub-fields. */
export function messageOptionPath(desc: DescMessage, extensionNumber: number, ...sub: number[]): number[] {
  return [...messagePath(desc), MESSAGE_OPTIONS, extensionNumber, ...sub];
}

/** The source path of a field option (`extensionNumber`) or one of its sub-fields. */
export function fieldOptionPath(field: DescField, extensionNumber: number, ...sub: number[]): number[] {
  return [...fieldPath(field), FIELD_OPTIONS, extensionNumber, ...sub];
}

/** The position of exactly the element at `path`, when the source code info has a span for it. */
export function exactPositionOf(file: DescFile, path: readonly number[]): SourcePosition | undefined {
  const location = (file.proto.sourceCodeInfo?.location ?? []).find(
    (l) => l.path.length === path.length && l.path.every((p, i) => p === path[i]),
  );
  if (!location || location.span.length < 3) return undefined;
  return { file: file.proto.name, line: (location.span[0] ?? 0) + 1, column: (location.span[1] ?? 0) + 1 };
}

/**
 * The position of the element at `path`, or of its nearest enclosing element with a span.
 * Falls back to `1:1` when the request carries no source code info.
 */
export function positionOf(file: DescFile, path: readonly number[]): SourcePosition {
  const locations = file.proto.sourceCodeInfo?.location ?? [];
  for (let length = path.length; length > 0; length--) {
    const location = locations.find(
      (l) => l.path.length === length && l.path.every((p, i) => p === path[i]),
    );
    if (location && location.span.length >= 3) {
      return { file: file.proto.name, line: (location.span[0] ?? 0) + 1, column: (location.span[1] ?? 0) + 1 };
    }
  }
  return { file: file.proto.name, line: 1, column: 1 };
}
