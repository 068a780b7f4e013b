/**
 * What one line of an import file becomes (import.ts): its protobuf JSON parsed as a message (on failure, the
 * path of the field at fault, found without naming a value), stored sensitive values kept for a file that
 * left them out, and the write input a `put` would take.
 */
import { create, type DescField, type DescMessage, fromJson, isFieldSet, type JsonValue, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import { ImportError } from "../errors.js";
import type { EntityDefinition } from "./entity.js";

/** The protobuf JSON `record` of a line as a message of `schema`; on failure, the path of the field at fault. */
export function parse(n: number, def: EntityDefinition, schema: DescMessage, record: unknown): Message {
  try {
    return fromJson(schema, record as JsonValue);
  } catch (e) {
    const { path: at, why } = faultOf(schema, record);
    throw new ImportError(n, def.name, at, why, { cause: e });
  }
}

/** Which field of `json` does not parse as `schema`'s protobuf JSON (tried one field at a time; no value is named). */
function faultOf(schema: DescMessage, json: unknown): { path: (string | number)[]; why: string } {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return { path: [], why: `expected the protobuf JSON object of \`${schema.typeName}\`` };
  for (const [k, v] of Object.entries(json)) {
    const field = schema.fields.find((f) => f.jsonName === k || f.name === k);
    if (!field) return { path: [k], why: `no such field in \`${schema.typeName}\`` };
    try {
      fromJson(schema, { [k]: v } as JsonValue);
      continue;
    } catch {
      // this field is at fault
    }
    const sub = field.fieldKind === "message" && !field.message.typeName.startsWith("google.protobuf.") ? field.message : undefined;
    if (sub && v && typeof v === "object" && !Array.isArray(v)) {
      const inner = faultOf(sub, v);
      return { path: [field.localName, ...inner.path], why: inner.why };
    }
    if (field.fieldKind === "list" && Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        try {
          fromJson(schema, { [k]: [v[i]] } as JsonValue);
        } catch {
          const m = field.listKind === "message" && !field.message.typeName.startsWith("google.protobuf.") ? faultOf(field.message, v[i]) : null;
          return { path: [field.localName, i, ...(m?.path ?? [])], why: m?.why ?? `not a valid element of a list of ${kindOf(field)}` };
        }
      }
    }
    return { path: [field.localName], why: `not a valid value for a field of type ${kindOf(field)}` };
  }
  return { path: [], why: `does not parse as the protobuf JSON of \`${schema.typeName}\`` };
}

function kindOf(f: DescField): string {
  if (f.fieldKind === "scalar" || (f.fieldKind === "list" && f.listKind === "scalar")) return `\`${String(f.scalar)}\` (scalar type number)`;
  if (f.fieldKind === "enum" || (f.fieldKind === "list" && f.listKind === "enum")) return `\`${f.enum!.typeName}\``;
  if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) return `\`${f.message!.typeName}\``;
  return f.fieldKind;
}

/**
 * A record from a file that left sensitive fields out: each sensitive field the record leaves unset takes the
 * stored record's value (the file says nothing about it).
 */
export function keepSensitive(def: EntityDefinition, value: unknown, stored: Message): unknown {
  const msg = (isMessageOf(value, def.schema) ? value : create(def.schema, value as MessageInitShape<DescMessage>)) as unknown as Record<string, unknown>;
  for (const p of def.sensitive) {
    const parts = p.split(".");
    let into: Record<string, unknown> = msg;
    let from: Record<string, unknown> | undefined = stored as unknown as Record<string, unknown>;
    let desc: DescMessage = def.schema;
    for (let i = 0; i < parts.length && from; i++) {
      const f = desc.fields.find((x) => x.localName === parts[i]);
      if (!f) break;
      if (i === parts.length - 1) {
        if (isZero(into[f.localName]) && !isZero(from[f.localName])) into[f.localName] = from[f.localName];
        break;
      }
      if (f.fieldKind !== "message") break;
      from = from[f.localName] as Record<string, unknown> | undefined;
      if (!from) break;
      if (into[f.localName] === undefined) into[f.localName] = create(f.message);
      into = into[f.localName] as Record<string, unknown>;
      desc = f.message;
    }
  }
  return msg;
}

/**
 * The write input of a parsed message: the fields it has set (implicit-presence fields at their zero value
 * left out, as a `put` input leaves them out; validators check what is given), nested messages likewise.
 */
export function toInput(schema: DescMessage, msg: Message): Record<string, unknown> {
  const obj = msg as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const plain = (d: DescMessage | undefined) => d !== undefined && !d.typeName.startsWith("google.protobuf.");
  for (const m of schema.members) {
    if (m.kind === "oneof") {
      const v = obj[m.localName] as { case: string | undefined; value?: unknown };
      if (v?.case === undefined) continue;
      const f = m.fields.find((x) => x.localName === v.case);
      out[m.localName] = f?.fieldKind === "message" && plain(f.message) ? { case: v.case, value: toInput(f.message, v.value as Message) } : v;
      continue;
    }
    if (!isFieldSet(msg, m)) continue;
    const v = obj[m.localName];
    if (m.fieldKind === "message" && plain(m.message)) out[m.localName] = toInput(m.message, v as Message);
    else if (m.fieldKind === "list" && m.listKind === "message" && plain(m.message)) out[m.localName] = (v as Message[]).map((x) => toInput(m.message!, x));
    else out[m.localName] = v;
  }
  return out;
}

export function isMessageOf(v: unknown, schema: DescMessage): boolean {
  return typeof v === "object" && v !== null && (v as { $typeName?: unknown }).$typeName === schema.typeName;
}

function isZero(v: unknown): boolean {
  if (v === undefined || v === null || v === "" || v === 0 || v === false || v === 0n) return true;
  if (Array.isArray(v) || v instanceof Uint8Array) return v.length === 0;
  if (typeof v === "object" && !("$typeName" in (v as object))) return Object.keys(v as object).length === 0;
  return false;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
