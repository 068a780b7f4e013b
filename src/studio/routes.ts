/**
 * The studio's routes: a path and method to a page handler. Every handler gets a request that already
 * passed the guard (address, session, CSRF for POSTs).
 */
import { bytes, CSS, esc, notice, num, page, seg, table } from "./html.js";
import { isCollection, type Req, type Res, type Studio } from "./context.js";
import { tablePage } from "./page-table.js";
import { recordPage, revealField } from "./page-record.js";
import { deletePage, deleteRecord, editPage, saveRecord } from "./page-edit.js";
import { healthPage, takeBackup, verifyOne } from "./page-health.js";

export type Static = { readonly css: string };
export const STATIC: Static = { css: CSS };

async function overview(s: Studio): Promise<Res> {
  s.refreshStats();
  const nav = await s.nav();
  const rows = nav.map((e) => [`<a href="/e/${seg(e.prop)}">${esc(e.prop)}</a>`, esc(e.name), e.kind, String(e.version), e.kind === "singleton" ? "—" : num(e.records), bytes(e.bytes)]);
  const body = `<p>Store <code>${esc(s.o.store.dir)}</code>${s.readOnly && s.o.readOnlyReason ? ` — read-only: ${esc(s.o.readOnlyReason)}` : ""}.</p>` +
    table("Entities", ["Entity", "Storage name", "Kind", "Schema version", "Records", "Bytes"], rows, true);
  return { html: page({ title: "Overview", nav, readOnly: s.readOnly, body }) };
}

async function notFound(s: Studio): Promise<Res> {
  return { status: 404, html: page({ title: "Not found", nav: await s.nav(), readOnly: s.readOnly, body: notice("error", "There is no such page.") }) };
}

/** `/e/<prop>[/r/<key>][/<action>]` split into its parts. */
function entityRoute(path: string): { prop: string; key?: string; action?: string } | null {
  const m = /^\/e\/([^/]+)(?:\/r\/([^/]+))?(?:\/(edit|delete|reveal|new))?$/.exec(path);
  if (!m) return null;
  const dec = (x: string) => decodeURIComponent(x);
  return { prop: dec(m[1]!), ...(m[2] !== undefined && { key: dec(m[2]) }), ...(m[3] !== undefined && { action: m[3] }) };
}

async function entity(s: Studio, req: Req, r: { prop: string; key?: string; action?: string }): Promise<Res> {
  const def = s.def(r.prop);
  if (!def) return notFound(s);
  const post = req.method === "POST";
  const saved = req.query.get("saved") ? "Saved." : undefined;
  if (!isCollection(def)) {
    if (r.key !== undefined || r.action === "delete" || r.action === "new") return notFound(s);
    if (r.action === "edit") return post ? saveRecord(s, req, r.prop, def, undefined) : editPage(s, req, r.prop, def, undefined);
    if (r.action === "reveal" && post) return revealField(s, req, r.prop, def, undefined);
    return recordPage(s, req, r.prop, def, undefined, undefined, saved);
  }
  if (r.action === "new") return post ? saveRecord(s, req, r.prop, def, undefined, true) : editPage(s, req, r.prop, def, undefined, true);
  if (r.key === undefined) return tablePage(s, req, r.prop, def);
  if (r.action === "edit") return post ? saveRecord(s, req, r.prop, def, r.key) : editPage(s, req, r.prop, def, r.key);
  if (r.action === "delete") return post ? deleteRecord(s, req, r.prop, def, r.key) : deletePage(s, req, r.prop, def, r.key);
  if (r.action === "reveal" && post) return revealField(s, req, r.prop, def, r.key);
  return recordPage(s, req, r.prop, def, r.key, undefined, saved);
}

/** The answer to an authenticated request. */
export async function route(s: Studio, req: Req): Promise<Res> {
  if (req.path === "/" && req.method === "GET") return overview(s);
  if (req.path === "/health") return healthPage(s, req);
  if (req.path === "/health/backups/take" && req.method === "POST") return takeBackup(s, req);
  if (req.path === "/health/backups/verify" && req.method === "POST") return verifyOne(s, req);
  const r = entityRoute(req.path);
  return r ? entity(s, req, r) : notFound(s);
}
