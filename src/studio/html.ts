/**
 * The studio's HTML: escaping, the page shell (sidebar, main, skip link), small shared pieces (tables,
 * messages, forms with the CSRF field). Server-rendered strings only; no script runs in the page.
 */
import { formatBytes } from "../cli/output.js";

/** Text made safe for HTML element content and quoted attribute values. */
export function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A URL path segment (a record key may hold `/`, `?`, `#`). */
export function seg(v: string): string {
  return encodeURIComponent(v);
}

/** A query string from the defined values of `params`. */
export function qs(params: Record<string, string | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}

/** One entity of the sidebar. */
export interface NavEntity {
  readonly prop: string;
  readonly name: string;
  readonly kind: "collection" | "singleton";
  readonly version: number;
  readonly records: number;
  readonly bytes: number;
}

export interface Shell {
  readonly title: string;
  readonly nav: readonly NavEntity[];
  /** The sidebar entry shown as current (`prop`), or `"~health"`. */
  readonly current?: string;
  readonly readOnly: boolean;
  readonly body: string;
}

/** Bytes as text (`1.2 MiB`): the CLI's formatting. */
export const bytes = formatBytes;

export function num(n: number): string {
  return n.toLocaleString("en-US");
}

function sidebar(nav: readonly NavEntity[], current: string | undefined): string {
  const items = nav.map((e) => {
    const cur = e.prop === current ? ' aria-current="page"' : "";
    return `<li><a href="/e/${seg(e.prop)}"${cur}><span class="name">${esc(e.prop)}</span>` +
      `<span class="meta">v${e.version} · ${e.kind === "singleton" ? "singleton" : `${num(e.records)} records`} · ${bytes(e.bytes)}</span></a></li>`;
  });
  const health = `<li><a href="/health"${current === "~health" ? ' aria-current="page"' : ""}><span class="name">Store health</span></a></li>`;
  return `<nav class="side" aria-label="Entities"><h2>Entities</h2><ul>${items.join("")}</ul><ul class="tools">${health}</ul></nav>`;
}

/** A whole page. */
export function page(s: Shell): string {
  const mode = s.readOnly ? '<span class="badge" role="status">read-only</span>' : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(s.title)} · Cellar Studio</title><link rel="stylesheet" href="/static/studio.css"></head>
<body><a class="skip" href="#main">Skip to content</a>
<header><a class="brand" href="/">Cellar Studio</a> ${mode}</header>
<div class="layout">${sidebar(s.nav, s.current)}<main id="main" tabindex="-1"><h1>${esc(s.title)}</h1>${s.body}</main></div>
</body></html>`;
}

/** A message box: `error` is announced to screen readers at once. */
export function notice(kind: "error" | "info" | "ok", text: string): string {
  const role = kind === "error" ? "alert" : "status";
  return `<p class="notice ${kind}" role="${role}">${esc(text)}</p>`;
}

/** A POST form with the session's CSRF field. */
export function postForm(action: string, csrf: string, inner: string, attrs = ""): string {
  return `<form method="post" action="${esc(action)}"${attrs}><input type="hidden" name="csrf" value="${esc(csrf)}">${inner}</form>`;
}

/** A table with a caption, column headers and rows of cells (already HTML). */
export function table(caption: string, headers: readonly string[], rows: readonly (readonly string[])[], rowHeader = false): string {
  const head = `<thead><tr>${headers.map((h) => `<th scope="col">${esc(h)}</th>`).join("")}</tr></thead>`;
  const body = rows
    .map((r) => `<tr>${r.map((c, i) => (rowHeader && i === 0 ? `<th scope="row">${c}</th>` : `<td>${c}</td>`)).join("")}</tr>`)
    .join("");
  return `<table><caption>${esc(caption)}</caption>${head}<tbody>${body}</tbody></table>`;
}

/** The stylesheet (served at /static/studio.css: the CSP allows no inline style). */
export const CSS = `
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;background:#f6f7f9}
a{color:#0b57d0}a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible{outline:3px solid #f0a500;outline-offset:1px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px 8px;z-index:9}
header{background:#1d2430;color:#fff;padding:10px 16px;display:flex;gap:12px;align-items:center}header .brand{color:#fff;font-weight:600;text-decoration:none}
.badge{background:#f0a500;color:#1d2430;border-radius:3px;padding:1px 6px;font-size:12px;font-weight:600}
.layout{display:flex;min-height:calc(100vh - 42px)}
.side{width:250px;flex:none;background:#fff;border-right:1px solid #dde1e6;padding:12px}.side h2{font-size:12px;text-transform:uppercase;color:#5c6673;margin:4px 8px}
.side ul{list-style:none;margin:0 0 12px;padding:0}.side a{display:block;padding:6px 8px;border-radius:4px;text-decoration:none;color:#1d2430}
.side a[aria-current]{background:#e6eefc;font-weight:600}.side a:hover{background:#f0f3f7}.side .name{display:block}.side .meta{display:block;font-size:12px;color:#5c6673}
.side .tools{border-top:1px solid #dde1e6;padding-top:8px}
main{flex:1;padding:16px 24px;min-width:0}h1{font-size:20px;margin:0 0 12px}h2{font-size:16px}
table{border-collapse:collapse;background:#fff;width:100%;margin:8px 0 16px}caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:left;vertical-align:top;max-width:320px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
thead th{background:#eef1f5}td.json{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.redacted{color:#8a5a00;font-style:italic}
table.fields td{white-space:normal;max-width:none;overflow:visible}table.fields code{word-break:break-all}
.toolbar{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-end;background:#fff;border:1px solid #dde1e6;padding:8px 12px;border-radius:4px}
.toolbar fieldset{border:none;margin:0;padding:0;display:flex;gap:6px;align-items:flex-end}.toolbar legend{font-weight:600;padding:0;margin-bottom:2px}
label{display:block;font-size:12px;color:#3b4450}input,select,textarea{font:inherit;padding:3px 6px;border:1px solid #a9b2bd;border-radius:3px}
button{font:inherit;padding:4px 12px;border:1px solid #0b57d0;background:#0b57d0;color:#fff;border-radius:3px;cursor:pointer}
button.secondary{background:#fff;color:#0b57d0}button.danger{background:#b3261e;border-color:#b3261e}
.pager{display:flex;gap:16px;align-items:center;margin:8px 0}.scroll{overflow-x:auto;max-width:100%}
.toolbar-row{display:flex;flex-wrap:wrap;gap:8px}
pre{background:#fff;border:1px solid #dde1e6;padding:12px;overflow:auto;font-size:12px}
.notice{padding:8px 12px;border-radius:4px;border:1px solid}.notice.error{background:#fdecea;border-color:#b3261e}.notice.ok{background:#e7f5ea;border-color:#1e7b34}.notice.info{background:#eef1f5;border-color:#a9b2bd}
.form-grid{display:grid;grid-template-columns:minmax(140px,220px) 1fr;gap:8px 16px;background:#fff;border:1px solid #dde1e6;padding:12px;max-width:900px}
.form-grid .hint{font-size:12px;color:#5c6673}.field-error{color:#b3261e;font-size:12px}.bad{color:#b3261e}
.form-grid textarea{width:100%;min-height:70px;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}.form-grid input[type=text],.form-grid input[type=number]{width:100%}
.hint{font-size:12px;color:#5c6673}
.actions{display:flex;gap:8px;margin:12px 0}.inline{display:inline}
`;
