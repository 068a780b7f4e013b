/**
 * `(cellar.v1.entity).indexes`, read the same way by codegen (model.ts checks each declaration and emits
 * `indexSpecs`) and by `cellar check` (which compares the declared indexes with the schema lock's).
 *
 * A declaration names one field (`"status"`) or several, comma-separated, in index order
 * (`"project_id,created_at"`; spaces around the commas are allowed). An index is identified by its
 * components' field numbers (`"11,5"`): renaming a field keeps its index, changing the fields makes a new
 * one (built at open, see `IndexSpec` in src/runtime/typed/entity.ts).
 */
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { entityOptionField } from "./annotations.js";
import { exactPositionOf, messageOptionPath, positionOf, type SourcePosition } from "./diagnostics.js";

/** The field names of a declaration, in index order, trimmed (an empty one stays empty: an error). */
export function indexComponents(declaration: string): string[] {
  return declaration.split(",").map((s) => s.trim());
}

/** A declaration as generated code and messages spell it: components joined by `,`, without spaces. */
export function normalizedIndexName(declaration: string): string {
  return indexComponents(declaration).join(",");
}

/** The stable id of an index: its fields' numbers joined by `,`. */
export function indexId(fields: readonly DescField[]): string {
  return fields.map((f) => f.number).join(",");
}

/** The protobuf integer scalars (32- and 64-bit, signed and unsigned, every wire encoding). */
export const intScalars: ReadonlySet<ScalarType> = new Set([
  ScalarType.INT32,
  ScalarType.SINT32,
  ScalarType.SFIXED32,
  ScalarType.UINT32,
  ScalarType.FIXED32,
  ScalarType.INT64,
  ScalarType.SINT64,
  ScalarType.SFIXED64,
  ScalarType.UINT64,
  ScalarType.FIXED64,
]);

const indexableScalars: ReadonlySet<ScalarType> = new Set([ScalarType.STRING, ScalarType.BOOL, ScalarType.DOUBLE, ScalarType.FLOAT, ...intScalars]);

/** The well-known messages an index may hold (singular fields only). */
const indexableMessages: ReadonlySet<string> = new Set(["google.protobuf.Timestamp", "google.protobuf.Duration"]);

/**
 * Whether a field's type can be an index component, oneofs aside: a singular or repeated string, bool,
 * enum, integer, `float` or `double`, or a singular `google.protobuf.Timestamp` or `Duration`.
 */
export function isIndexableType(field: DescField): boolean {
  switch (field.fieldKind) {
    case "scalar":
      return indexableScalars.has(field.scalar);
    case "enum":
      return true;
    case "message":
      return indexableMessages.has(field.message.typeName);
    case "list":
      return field.listKind === "enum" || (field.listKind === "scalar" && indexableScalars.has(field.scalar));
    default:
      return false;
  }
}

/** What an index component may be, for messages: `index string, bool, enum, … fields`. */
export const indexableKindsText =
  "index string, bool, enum, integer, float or double fields (singular or repeated) or google.protobuf.Timestamp and google.protobuf.Duration fields (singular)";

/** One declared index whose fields all exist. */
export interface DeclaredIndex {
  /** Field numbers joined by `,`. */
  readonly id: string;
  /** The declaration without spaces. */
  readonly name: string;
  /** Position of the declaration in `indexes`. */
  readonly at: number;
}

/**
 * The indexes a message declares, for comparisons (`cellar check`): every declaration whose fields all
 * exist, by id, first declaration of an id kept. Codegen reports the others; here they are skipped.
 */
export function declaredIndexes(desc: DescMessage, declarations: readonly string[]): DeclaredIndex[] {
  const out: DeclaredIndex[] = [];
  declarations.forEach((declaration, at) => {
    const fields = indexComponents(declaration).map((n) => desc.fields.find((f) => f.name === n));
    if (fields.length === 0 || fields.some((f) => f === undefined)) return;
    const id = indexId(fields as DescField[]);
    if (!out.some((x) => x.id === id)) out.push({ id, name: normalizedIndexName(declaration), at });
  });
  return out;
}

/**
 * Where declaration `i` of a message's `indexes` is written. Source info numbers the statements setting
 * `indexes`, not the values: `indexes: ["a", "b"]` is one span (path …, 0) for both values, `indexes: "a"`
 * statements of their own have one each. So a value is placed at its own statement when every statement
 * holds one value, else at the first statement (else at the entity option).
 */
export function indexPositions(desc: DescMessage, extensionNumber: number, count: number): (i: number) => SourcePosition {
  const statement = (i: number) => exactPositionOf(desc.file, messageOptionPath(desc, extensionNumber, entityOptionField.indexes, i));
  let statements = 0;
  while (statement(statements)) statements++;
  const first = positionOf(desc.file, messageOptionPath(desc, extensionNumber, entityOptionField.indexes, 0));
  return (i) => (statements === count ? statement(i) : undefined) ?? first;
}
