/**
 * The edit form generated from an entity's schema (scalars as inputs, enums as selects, bools as
 * checkboxes, timestamps as RFC 3339 text, nested messages, lists and maps as JSON), and the posted form
 * turned back into protobuf JSON, parsed and validated by the entity's zod validator before any write.
 * Field errors are keyed by the field's local name.
 */
import { type DescMessage, fromJson, type JsonValue } from "@bufbuild/protobuf";
import type { EntityDefinition } from "../runtime/index.js";
import { type FieldInfo, fieldsOf, REDACTED, unredact } from "./fields.js";
import { esc } from "./html.js";

export type FieldErrors = Record<string, string>;

const HINTS: Partial<Record<FieldInfo["input"], string>> = {
  timestamp: "RFC 3339, e.g. 2026-12-07T10:00:00Z; empty: unset",
  int64: "an integer",
  number: "a number",
  bytes: "base64",
  json: "protobuf JSON",
};

/** The text a field's control shows for a JSON value. */
function shown(f: FieldInfo, v: unknown): string {
  if (v === undefined || v === null) return "";
  if (f.input === "json") return JSON.stringify(v, null, 2);
  return String(v);
}

function control(f: FieldInfo, v: unknown, id: string, lockKey: boolean, describedBy: string): string {
  const name = `x.${f.json}`;
  const common = `id="${id}" name="${esc(name)}" aria-describedby="${describedBy}"`;
  switch (f.input) {
    case "bool":
      return `<input type="checkbox" ${common} value="true"${v === true ? " checked" : ""}>`;
    case "enum": {
      const cur = typeof v === "string" ? v : (f.options[0]?.name ?? "");
      return `<select ${common}>${f.options.map((o) => `<option value="${esc(o.name)}"${o.name === cur ? " selected" : ""}>${esc(o.name)} (${o.number})</option>`).join("")}</select>`;
    }
    case "json":
      return `<textarea ${common} rows="4">${esc(shown(f, v))}</textarea>`;
    default:
      return `<input type="text" ${common} value="${esc(shown(f, v))}"${lockKey ? " readonly" : ""}>`;
  }
}

/** The form's rows for every field, with the values of `json` (a redacted record, or what was posted) and errors. */
export function formFields(def: EntityDefinition, json: Record<string, unknown>, errors: FieldErrors, keyField?: string): string {
  return fieldsOf(def)
    .map((f, i) => {
      const id = `fld${i}`;
      const hintId = `${id}-hint`;
      const err = errors[f.local];
      const errHtml = err ? `<div class="field-error" id="${id}-err" role="alert">${esc(err)}</div>` : "";
      const described = err ? `${hintId} ${id}-err` : hintId;
      const sens = f.sensitive || f.sensitiveInside.length ? ` Sensitive: leave ${REDACTED} to keep the stored value.` : "";
      const hint = `<div class="hint" id="${hintId}">${esc(f.type)}${HINTS[f.input] ? ` — ${esc(HINTS[f.input]!)}` : ""}${esc(sens)}</div>`;
      return `<label for="${id}">${esc(f.proto)}</label><div>${control(f, json[f.json], id, keyField === f.local, described)}${hint}${errHtml}</div>`;
    })
    .join("");
}

/** One control's posted text as its protobuf JSON value (`undefined`: unset), or a message for the field. */
function jsonValue(f: FieldInfo, form: URLSearchParams): { value?: unknown; error?: string } {
  const raw = form.get(`x.${f.json}`);
  if (f.input === "bool") return { value: raw === "true" };
  const text = raw ?? "";
  if (f.input === "string") return { value: text };
  if (f.input === "enum") return text === "" ? {} : { value: text };
  if (text.trim() === "") return {};
  if (f.sensitive && text === REDACTED) return { value: REDACTED };
  switch (f.input) {
    case "number":
      return Number.isNaN(Number(text)) ? { error: "must be a number" } : { value: Number(text) };
    case "int64":
      return /^-?\d+$/.test(text.trim()) ? { value: text.trim() } : { error: "must be an integer" };
    case "json":
      try {
        return { value: JSON.parse(text) };
      } catch {
        return { error: "is not valid JSON" };
      }
    default:
      return { value: text };
  }
}

/** The posted values as protobuf JSON (before parsing), the errors of controls that do not parse, and the raw values to show again. */
export function readForm(def: EntityDefinition, form: URLSearchParams): { json: Record<string, unknown>; errors: FieldErrors } {
  const json: Record<string, unknown> = {};
  const errors: FieldErrors = {};
  const schema = def.schema as DescMessage;
  for (const f of fieldsOf(def)) {
    const r = jsonValue(f, form);
    if (r.error) errors[f.local] = r.error;
    else if (r.value !== undefined) {
      json[f.json] = r.value;
      if (r.value === REDACTED) continue;
      try {
        fromJson(schema, { [f.json]: r.value } as JsonValue);
      } catch {
        errors[f.local] = `is not a valid ${f.type}`;
      }
    }
  }
  return { json, errors };
}

/** The zod issues of a validator (or of a store's ValidationError) as field errors. */
export function issueErrors(issues: readonly { path: readonly PropertyKey[]; message: string }[]): FieldErrors {
  const errors: FieldErrors = {};
  for (const i of issues) {
    const field = i.path.length ? String(i.path[0]) : "(record)";
    const where = i.path.length > 1 ? `${i.path.slice(1).map(String).join(".")}: ` : "";
    errors[field] = errors[field] ? `${errors[field]}; ${where}${i.message}` : `${where}${i.message}`;
  }
  return errors;
}

/**
 * The posted form as a message of the entity, validated by its zod validator: `{ message }`, or the field
 * errors and the posted values to show again. `stored` (the record's JSON) fills sensitive values left `[redacted]`.
 */
export function parseForm(def: EntityDefinition, form: URLSearchParams, stored: Record<string, unknown> | undefined): { message?: unknown; errors: FieldErrors; json: Record<string, unknown> } {
  const { json, errors } = readForm(def, form);
  // Fields that did not parse are left out, so the validator still reports on the others.
  const full = structuredClone(json);
  for (const f of fieldsOf(def)) if (errors[f.local]) delete full[f.json];
  unredact(def, full, stored);
  let message: unknown;
  try {
    message = fromJson(def.schema as DescMessage, full as JsonValue);
  } catch {
    return { errors: { "(record)": "does not parse as the entity's protobuf JSON" }, json };
  }
  const parsed = def.validator.safeParse(message);
  const all = { ...(parsed.success ? {} : issueErrors(parsed.error.issues)), ...errors };
  return Object.keys(all).length ? { errors: all, json } : { message, errors: {}, json };
}
