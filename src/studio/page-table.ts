/**
 * An entity's record table: the schema's columns, one page of records read with `queryPage` (key order,
 * or by an indexed field), filters on indexed fields, a key search, links to the next page (the query's
 * cursor), the previous page (the same query reversed from the page's `after`: see `readPage`) and to each record.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import type { CollectionDefinition, QueryExplain } from "../runtime/index.js";
import { cellText, fieldsOf, type FieldInfo, redact, REDACTED } from "./fields.js";
import { esc, notice, num, page, seg } from "./html.js";
import { keyCursor, OPS, paramPairs, type TableParams, tableParams, whereOf } from "./query-form.js";
import type { AnyCollection, Req, Res, Studio } from "./context.js";
import { encodeStoredKey, parseKey } from "./keys.js";

/**
 * The fields `orderBy` takes (indexed, not lists), as `[field, label]`: a field that leads no index (e.g.
 * `createdAt`, second in `status,created_at`) sorts only with an equality filter on the fields before it,
 * and its label says so (alone, the query engine refuses it and the page shows why).
 */
export function orderFields(def: CollectionDefinition): [string, string][] {
  const schema = def.schema as DescMessage;
  const specs = def.indexSpecs ?? def.indexes.map((f) => ({ fields: [f] }));
  return def.indexes
    .filter((n) => schema.fields.find((f) => f.localName === n)?.fieldKind !== "list")
    .map((n) => {
      if (specs.some((s) => s.fields[0] === n)) return [n, n];
      const fields = specs.find((s) => s.fields.includes(n))?.fields ?? [];
      return [n, `${n} (with ${fields.slice(0, fields.indexOf(n)).map((b) => `${b} =`).join(", ")})`];
    });
}

function select(name: string, label: string, id: string, options: readonly [string, string][], value: string | undefined): string {
  const opts = options.map(([v, t]) => `<option value="${esc(v)}"${v === (value ?? "") ? " selected" : ""}>${esc(t)}</option>`).join("");
  return `<div><label for="${id}">${esc(label)}</label><select id="${id}" name="${name}">${opts}</select></div>`;
}

function filterRows(def: CollectionDefinition, p: TableParams): string {
  const rows = [...p.filters, { field: "", op: "eq", value: "" }];
  const fields: [string, string][] = [["", "(none)"], ...def.indexes.map((f): [string, string] => [f, f])];
  const ops: [string, string][] = OPS.map((o) => [o, o]);
  return rows
    .map((f, i) =>
      `<fieldset><legend>Filter ${i + 1}</legend>${select("f", "Field", `f${i}`, fields, f.field)}${select("op", "Operator", `op${i}`, ops, f.op)}` +
      `<div><label for="v${i}">Value</label><input id="v${i}" name="v" type="text" value="${esc(f.value)}"></div></fieldset>`,
    )
    .join("");
}

function toolbar(prop: string, def: CollectionDefinition, p: TableParams): string {
  const sort: [string, string][] = [["", "key"], ...orderFields(def)];
  const rev = `<div><label><input type="checkbox" name="r" value="1"${p.reverse ? " checked" : ""}> Descending</label></div>`;
  const query = `<form method="get" action="/e/${seg(prop)}" class="toolbar" aria-label="Filter and sort">${filterRows(def, p)}` +
    `<fieldset><legend>Sort</legend>${select("o", "Order by", "o", sort, p.orderBy)}${rev}</fieldset><button type="submit">Apply</button>` +
    `<a href="/e/${seg(prop)}">Clear</a></form>`;
  const key = `<form method="get" action="/e/${seg(prop)}" class="toolbar" role="search" aria-label="Key search">` +
    `<div><label for="k">Key (${esc(def.key)})</label><input id="k" name="k" type="search" value="${esc(p.key ?? "")}"></div><button type="submit">Find key</button></form>`;
  return `<div class="toolbar-row">${query}${key}</div>`;
}

function cell(def: CollectionDefinition, f: FieldInfo, json: Record<string, unknown>): string {
  const v = json[f.json];
  if (v === REDACTED) return `<td class="redacted">${REDACTED}</td>`;
  const text = cellText(v);
  const cls = typeof v === "object" && v !== null ? ' class="json"' : "";
  return `<td${cls} title="${esc(typeof v === "string" ? v : cellText(v, 2000))}">${esc(text)}</td>`;
}

function rowsHtml(prop: string, def: CollectionDefinition, repo: AnyCollection, records: readonly unknown[], fields: FieldInfo[]): string {
  return records
    .map((r) => {
      const json = redact(def, repo.toJson(r) as Record<string, unknown>);
      const key = String((r as Record<string, unknown>)[def.key]);
      const cells = fields.map((f) => (f.local === def.key ? `<th scope="row"><a href="/e/${seg(prop)}/r/${seg(key)}">${esc(key)}</a></th>` : cell(def, f, json)));
      return `<tr>${cells.join("")}</tr>`;
    })
    .join("");
}

/**
 * The page's records: key search, or a page of the query; `after` is the cursor the page was read after
 * (undefined: the first page), which its "Previous page" link carries as `before`.
 *
 * The previous page (`before` = X, the cursor at the last record of the page wanted): the query reversed from
 * X, `size` records, returns as its cursor the record `size` places before X, Y (none when at most `size`
 * records precede X: the first page); the page is then the query read forward after Y, ending at X itself.
 * Two page reads, no record loaded beyond them, the same at any depth: no stack of cursors in the URL.
 */
async function readPage(def: CollectionDefinition, repo: AnyCollection, p: TableParams, size: number) {
  const where = whereOf(def, p.filters);
  const options: Record<string, unknown> = { limit: size, ...(p.orderBy && { orderBy: p.orderBy }), ...(p.reverse && { reverse: true }) };
  if (p.key !== undefined) {
    const key = parseKey(def, p.key);
    const hit = await repo.get(key);
    const rest = await repo.queryPage({}, { limit: hit ? size - 1 : size, after: keyCursor(encodeStoredKey(def, key)) });
    return { records: hit ? [hit, ...rest.records] : rest.records, cursor: rest.cursor, after: undefined, found: hit !== undefined, where, plan: repo.explain({}, { limit: size }) };
  }
  let after = p.after;
  if (p.before) after = (await repo.queryPage(where, { ...options, reverse: !p.reverse, after: p.before })).cursor;
  const pg = await repo.queryPage(where, { ...options, ...(after && { after }) });
  return { ...pg, after, found: undefined, where, plan: repo.explain(where, options) };
}

export async function tablePage(s: Studio, req: Req, prop: string, def: CollectionDefinition): Promise<Res> {
  const p = tableParams(req.query);
  const repo = s.collection(prop);
  const fields = fieldsOf(def);
  const deleted = req.query.get("deleted");
  let body = (deleted !== null ? notice("ok", `Deleted the record ${deleted}.`) : "") + toolbar(prop, def, p);
  try {
    const pg = await readPage(def, repo, p, s.pageSize);
    const total = await repo.count();
    const matching = p.filters.length ? await repo.count(pg.where) : total;
    if (pg.found === false) body += notice("info", `No record has the key ${p.key}; the records after it follow.`);
    const counts = p.filters.length ? `${num(matching)} of ${num(total)} records match` : `${num(total)} records`;
    const head = `<thead><tr>${fields.map((f) => `<th scope="col" title="${esc(f.type)}">${esc(f.proto)}</th>`).join("")}</tr></thead>`;
    body += `<p role="status" id="count">${counts}${pg.records.length ? `; showing ${num(pg.records.length)}` : ""}.</p>`;
    body += `<div class="scroll"><table><caption>${esc(def.name)} records</caption>${head}<tbody>${rowsHtml(prop, def, repo, pg.records, fields)}</tbody></table></div>`;
    body += pager(prop, p, pg.cursor, pg.after) + planText(pg.plan);
  } catch (e) {
    body += notice("error", `The query was refused: ${(e as Error).message}`);
  }
  if (!s.readOnly) body += `<p><a href="/e/${seg(prop)}/new">New record</a></p>`;
  return { html: page({ title: prop, nav: await s.nav(), current: prop, readOnly: s.readOnly, body }) };
}

/** How the page was read (`explain`, docs/QUERIES.md). */
function planText(e: QueryExplain): string {
  const read = e.index === undefined ? "every key in key order" : `the index <code>${esc(e.index)}</code> (${e.ranges} range${e.ranges === 1 ? "" : "s"}${e.uses.length ? ` on ${esc(e.uses.join(", "))}` : ""})`;
  const residual = e.residual.length ? `; checked per entry: ${esc(e.residual.join(", "))}` : "";
  const order = e.order === "index" ? "in the index's order (the page stops early)" : "gathered and sorted (the cost grows with the matches)";
  return `<p class="hint" id="plan">Query plan: reads ${read}${residual}, ${order}.</p>`;
}

function pager(prop: string, p: TableParams, cursor: string | undefined, after: string | undefined): string {
  const base = `/e/${seg(prop)}`;
  const link = (pairs: [string, string][]) => {
    const q = new URLSearchParams(pairs).toString();
    return esc(q ? `${base}?${q}` : base);
  };
  const first = after || p.key ? `<a href="${link(paramPairs(p))}">First page</a>` : "";
  const prev = after ? `<a href="${link(paramPairs(p, undefined, after))}" rel="prev">Previous page</a>` : "";
  const next = cursor ? `<a href="${link(paramPairs(p, cursor))}" rel="next">Next page</a>` : "<span>Last page</span>";
  return `<nav class="pager" aria-label="Pages">${first}${prev}${next}</nav>`;
}
