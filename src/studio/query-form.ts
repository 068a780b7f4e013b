/**
 * The table's filter, sort and paging parameters (a GET form, so a page is a link) turned into the query
 * engine's `where` and options (docs/QUERIES.md): values typed from the indexed field's descriptor.
 */
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import type { CollectionDefinition } from "../runtime/index.js";

export const OPS = ["eq", "gt", "gte", "lt", "lte", "prefix", "in"] as const;
export type Op = (typeof OPS)[number];

export interface Filter {
  readonly field: string;
  readonly op: Op;
  readonly value: string;
}

/** What the table page was asked for. */
export interface TableParams {
  readonly filters: readonly Filter[];
  readonly orderBy: string | undefined;
  readonly reverse: boolean;
  readonly after: string | undefined;
  /** The previous page: the page whose last record is at this cursor (the `after` of the page it was asked from). */
  readonly before: string | undefined;
  /** Key search: the record under this key, then the keys after it. */
  readonly key: string | undefined;
}

export function tableParams(q: URLSearchParams): TableParams {
  const fields = q.getAll("f");
  const ops = q.getAll("op");
  const values = q.getAll("v");
  const filters: Filter[] = [];
  fields.forEach((field, i) => {
    const op = (ops[i] ?? "eq") as Op;
    const value = values[i] ?? "";
    if (field && value !== "" && OPS.includes(op)) filters.push({ field, op, value });
  });
  const pick = (k: string) => (q.get(k) ? q.get(k)! : undefined);
  return { filters, orderBy: pick("o"), reverse: q.get("r") === "1", after: pick("after"), before: pick("before"), key: pick("k") };
}

/** The params as a query string's pairs (for links to the next or previous page, keeping the filters and order). */
export function paramPairs(p: TableParams, after?: string, before?: string): [string, string][] {
  const out: [string, string][] = [];
  for (const f of p.filters) out.push(["f", f.field], ["op", f.op], ["v", f.value]);
  if (p.orderBy) out.push(["o", p.orderBy]);
  if (p.reverse) out.push(["r", "1"]);
  if (after) out.push(["after", after]);
  if (before) out.push(["before", before]);
  return out;
}

/** The element descriptor of an indexed field (a list's element kind). */
function fieldOf(def: CollectionDefinition, name: string): DescField {
  const f = (def.schema as DescMessage).fields.find((x) => x.localName === name);
  if (!f) throw new Error(`\`${name}\` is not a field of \`${def.name}\``);
  return f;
}

/** A filter's text as the value the query engine takes for the field; throws with a message for the page. */
export function queryValue(def: CollectionDefinition, name: string, text: string): unknown {
  const f = fieldOf(def, name);
  const kind = f.fieldKind === "list" ? f.listKind : f.fieldKind;
  if (kind === "enum") {
    const values = f.fieldKind === "enum" || (f.fieldKind === "list" && f.listKind === "enum") ? f.enum.values : [];
    const byName = values.find((v) => v.name === text || v.localName === text);
    const n = byName ? byName.number : Number(text);
    if (!Number.isInteger(n)) throw new Error(`\`${name}\` takes an enum value name or number`);
    return n;
  }
  if (kind === "message") {
    const t = f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message") ? f.message.typeName : "";
    if (t === "google.protobuf.Timestamp") {
      const d = new Date(text);
      if (Number.isNaN(d.getTime())) throw new Error(`\`${name}\` takes a date and time (RFC 3339, e.g. 2026-12-07T10:00:00Z)`);
      return d;
    }
    if (t === "google.protobuf.Duration") return number(name, text);
    throw new Error(`\`${name}\` cannot be filtered on`);
  }
  const s = f.fieldKind === "scalar" || (f.fieldKind === "list" && f.listKind === "scalar") ? f.scalar : ScalarType.STRING;
  if (s === ScalarType.STRING) return text;
  if (s === ScalarType.BOOL) {
    if (text !== "true" && text !== "false") throw new Error(`\`${name}\` takes true or false`);
    return text === "true";
  }
  if ([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64].includes(s)) {
    if (!/^-?\d+$/.test(text)) throw new Error(`\`${name}\` takes an integer`);
    return BigInt(text);
  }
  return number(name, text);
}

function number(name: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || Number.isNaN(n)) throw new Error(`\`${name}\` takes a number`);
  return n;
}

/** The filters as a query engine `where`: operators on one field merged. */
export function whereOf(def: CollectionDefinition, filters: readonly Filter[]): Record<string, unknown> {
  const where: Record<string, Record<string, unknown>> = {};
  for (const f of filters) {
    const cond = (where[f.field] ??= {});
    cond[f.op] = f.op === "in" ? f.value.split(",").map((v) => queryValue(def, f.field, v.trim())) : f.op === "prefix" ? f.value : queryValue(def, f.field, f.value);
  }
  return where;
}

/**
 * A cursor for key order positioned at `storedKey`, so the page starts after it: the format QUERIES.md
 * documents ("Cursors": base64url of `{"v":1,"m":…,"s":…,"k":…}`; key order without an index is mode `i`,
 * sort key empty).
 */
export function keyCursor(storedKey: string): string {
  return Buffer.from(JSON.stringify({ v: 1, m: "i", s: "", k: storedKey }), "utf8").toString("base64url");
}
