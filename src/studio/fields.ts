/**
 * An entity's fields as the studio shows and edits them, read from its protobuf-es descriptor: the type
 * shown, the form control, and a value's cell text from the record's protobuf JSON. Sensitive fields are the
 * entity's `sensitive` paths (dotted local names).
 */
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import type { EntityDefinition } from "../runtime/index.js";

export const REDACTED = "[redacted]";

/** How a field is edited in the form. */
export type InputKind = "string" | "number" | "int64" | "bool" | "enum" | "timestamp" | "bytes" | "json";

export interface FieldInfo {
  /** The TypeScript property (`projectId`). */
  readonly local: string;
  /** The protobuf JSON name (`projectId`): the key in `toJson` output. */
  readonly json: string;
  /** The proto name (`project_id`), shown as the column header. */
  readonly proto: string;
  /** The type as the schema writes it (`string`, `repeated string`, `enum examples.tasks.v1.TaskStatus`). */
  readonly type: string;
  readonly input: InputKind;
  /** An enum's values (name, number). */
  readonly options: readonly { readonly name: string; readonly number: number }[];
  readonly sensitive: boolean;
  /** Sensitive paths inside this field (`["apiKey"]` for `aiProvider.apiKey`): the field is edited as JSON. */
  readonly sensitiveInside: readonly string[];
}

const INT64 = new Set([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64]);

function scalarName(s: ScalarType): string {
  return ScalarType[s].toLowerCase();
}

/** The schema's type of a field. */
export function typeName(f: DescField): string {
  switch (f.fieldKind) {
    case "scalar":
      return scalarName(f.scalar);
    case "enum":
      return `enum ${f.enum.typeName}`;
    case "message":
      return f.message.typeName;
    case "list":
      return `repeated ${f.listKind === "scalar" ? scalarName(f.scalar) : f.listKind === "enum" ? f.enum.typeName : f.message.typeName}`;
    case "map": {
      const v = f.mapKind === "scalar" ? scalarName(f.scalar) : f.mapKind === "enum" ? f.enum.typeName : f.message.typeName;
      return `map<${scalarName(f.mapKey)}, ${v}>`;
    }
  }
}

function inputKind(f: DescField): InputKind {
  if (f.fieldKind === "enum") return "enum";
  if (f.fieldKind === "message") return f.message.typeName === "google.protobuf.Timestamp" ? "timestamp" : "json";
  if (f.fieldKind !== "scalar") return "json";
  if (f.scalar === ScalarType.BOOL) return "bool";
  if (f.scalar === ScalarType.STRING) return "string";
  if (f.scalar === ScalarType.BYTES) return "bytes";
  return INT64.has(f.scalar) ? "int64" : "number";
}

/** The top-level fields of an entity, in the descriptor's order. */
export function fieldsOf(def: EntityDefinition): FieldInfo[] {
  const schema = def.schema as DescMessage;
  return schema.fields.map((f) => {
    const inside = def.sensitive.filter((p) => p.startsWith(`${f.localName}.`)).map((p) => p.slice(f.localName.length + 1));
    const base = inputKind(f);
    return {
      local: f.localName,
      json: f.jsonName,
      proto: f.name,
      type: typeName(f),
      input: inside.length ? "json" : base,
      options: f.fieldKind === "enum" ? f.enum.values.map((v) => ({ name: v.name, number: v.number })) : [],
      sensitive: def.sensitive.includes(f.localName),
      sensitiveInside: inside,
    };
  });
}

/** A nested path (`apiKey`, `a.b`) of JSON names resolved from local names, through message fields. */
function jsonPath(schema: DescMessage, localPath: string): string[] {
  const out: string[] = [];
  let msg: DescMessage | undefined = schema;
  for (const part of localPath.split(".")) {
    const f: DescField | undefined = msg?.fields.find((x) => x.localName === part);
    out.push(f?.jsonName ?? part);
    msg = f?.fieldKind === "message" ? f.message : undefined;
  }
  return out;
}

/**
 * The record's protobuf JSON with every sensitive field that holds a value replaced by `[redacted]`, except
 * the one path of `reveal`. Returns a new object; `json` is not changed.
 */
export function redact(def: EntityDefinition, json: Record<string, unknown>, reveal?: string): Record<string, unknown> {
  const out = structuredClone(json);
  for (const p of def.sensitive) {
    if (p === reveal) continue;
    const path = jsonPath(def.schema as DescMessage, p);
    let o: Record<string, unknown> | undefined = out;
    for (const k of path.slice(0, -1)) o = typeof o?.[k] === "object" && o[k] !== null ? (o[k] as Record<string, unknown>) : undefined;
    const last = path[path.length - 1]!;
    if (o && o[last] !== undefined) o[last] = REDACTED;
  }
  return out;
}

/** Put back stored values where an edited JSON still holds `[redacted]` (a sensitive value left unchanged). */
export function unredact(def: EntityDefinition, edited: Record<string, unknown>, stored: Record<string, unknown> | undefined): void {
  for (const p of def.sensitive) {
    const path = jsonPath(def.schema as DescMessage, p);
    let o: Record<string, unknown> | undefined = edited;
    let s: Record<string, unknown> | undefined = stored;
    for (const k of path.slice(0, -1)) {
      o = typeof o?.[k] === "object" && o[k] !== null ? (o[k] as Record<string, unknown>) : undefined;
      s = typeof s?.[k] === "object" && s[k] !== null ? (s[k] as Record<string, unknown>) : undefined;
    }
    const last = path[path.length - 1]!;
    if (o && o[last] === REDACTED) {
      if (s?.[last] !== undefined) o[last] = s[last];
      else delete o[last];
    }
  }
}

/** A cell's text: scalars as they are, lists and messages as short JSON (cut at `max` characters). */
export function cellText(v: unknown, max = 80): string {
  if (v === undefined || v === null) return "";
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
