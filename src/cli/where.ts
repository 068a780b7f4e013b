/**
 * `cellar inspect --where`: `field=value`, `field>=value`, `field>value`, `field<=value`, `field<value`,
 * `field^=prefix` parsed into the store's query conditions (QUERIES.md), each value converted to the field's
 * type from the entity's message descriptor: numbers (64-bit ones as bigints), booleans, enums by name or
 * number, Timestamps from an ISO date or epoch milliseconds. Several on one field combine (AND).
 */
import { CliError, EXIT } from "./context.js";

/** The parts of a protobuf-es field descriptor this reads. */
interface FieldDesc {
  name: string;
  localName: string;
  fieldKind: string;
  scalar?: number;
  enum?: { values: readonly { name: string; localName: string; number: number }[] };
  message?: { typeName: string };
}

const OPS: readonly [string, string][] = [
  [">=", "gte"],
  ["<=", "lte"],
  ["^=", "prefix"],
  [">", "gt"],
  ["<", "lt"],
  ["=", "eq"],
];

const usage = (msg: string) => new CliError(msg, EXIT.USAGE, "E_USAGE");

/** The query `where` for `exprs` against a message type's fields. */
export function parseWhere(exprs: readonly string[], fields: readonly FieldDesc[]): Record<string, Record<string, unknown>> {
  const where: Record<string, Record<string, unknown>> = {};
  for (const expr of exprs) {
    const m = /^\s*([A-Za-z_][\w.]*)\s*(>=|<=|\^=|>|<|=)(.*)$/.exec(expr);
    if (!m) throw usage(`--where \`${expr}\`: expected field=value, field>=value, field>value, field<=value, field<value or field^=prefix`);
    const [, name, op, raw] = m as unknown as [string, string, string, string];
    const field = fields.find((f) => f.localName === name || f.name === name);
    if (!field) throw usage(`--where \`${expr}\`: no field \`${name}\` (fields: ${fields.map((f) => f.localName).join(", ")})`);
    const key = OPS.find(([o]) => o === op)![1];
    (where[field.localName] ??= {})[key] = key === "prefix" ? raw : convert(field, raw, expr);
  }
  return where;
}

function convert(f: FieldDesc, raw: string, expr: string): unknown {
  const bad = (what: string) => usage(`--where \`${expr}\`: \`${raw}\` is not ${what} (field \`${f.localName}\`)`);
  if (f.fieldKind === "enum" || (f.fieldKind === "list" && f.enum)) {
    const v = f.enum?.values.find((e) => e.name === raw || e.localName === raw || e.name.endsWith(`_${raw.toUpperCase()}`) || String(e.number) === raw);
    if (!v) throw bad(`a value of the enum (${f.enum?.values.map((e) => e.name).join(", ")})`);
    return v.number;
  }
  if (f.message) {
    if (f.message.typeName === "google.protobuf.Timestamp") {
      const d = /^\d+$/.test(raw) ? new Date(Number(raw)) : new Date(raw);
      if (Number.isNaN(d.getTime())) throw bad("a date (ISO 8601, or epoch milliseconds)");
      return d;
    }
    if (f.message.typeName === "google.protobuf.Duration") {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw bad("a number");
      return n;
    }
    return raw;
  }
  switch (f.scalar) {
    case 8: // bool
      if (raw !== "true" && raw !== "false") throw bad("true or false");
      return raw === "true";
    case 9: // string
      return raw;
    case 3: case 4: case 6: case 16: case 18: // 64-bit integers
      if (!/^-?\d+$/.test(raw)) throw bad("an integer");
      return BigInt(raw);
    case 1: case 2: case 5: case 7: case 13: case 15: case 17: { // doubles, floats, 32-bit integers
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n)) throw bad("a number");
      return n;
    }
    default:
      return raw;
  }
}
