/**
 * One record: its fields with their types and values (sensitive ones `[redacted]`, each with a reveal
 * button when allowed), and the whole record as formatted protobuf JSON. A singleton's value is shown the
 * same way. Revealing is a POST (CSRF-checked, never a link), answered with the page itself so the value
 * never lands in a URL or the history; the `onReveal` hook (the audit log) runs first.
 */
import type { EntityDefinition } from "../runtime/index.js";
import { cellText, fieldsOf, redact, REDACTED } from "./fields.js";
import { esc, notice, page, postForm, seg } from "./html.js";
import { isCollection, type Req, type Res, type Studio } from "./context.js";
import { parseKey } from "./keys.js";

/** The record's path: `/e/<prop>/r/<key>`, or `/e/<prop>` for a singleton. */
export function recordPath(prop: string, key: string | undefined): string {
  return key === undefined ? `/e/${seg(prop)}` : `/e/${seg(prop)}/r/${seg(key)}`;
}

/** The stored record (or singleton value) and its protobuf JSON, or `undefined` when there is none. */
export async function loadRecord(s: Studio, prop: string, def: EntityDefinition, key: string | undefined) {
  if (key === undefined || !isCollection(def)) {
    const one = s.singleton(prop);
    const rec = await one.get();
    return { rec, json: one.toJson(rec) as Record<string, unknown> };
  }
  const repo = s.collection(prop);
  const rec = await repo.get(parseKey(def, key));
  return rec === undefined ? undefined : { rec, json: repo.toJson(rec) as Record<string, unknown> };
}

function valueCell(v: unknown): string {
  if (v === REDACTED) return `<span class="redacted">${REDACTED}</span>`;
  if (v === undefined) return '<span class="hint">(unset)</span>';
  return typeof v === "object" ? `<code>${esc(cellText(v, 400))}</code>` : esc(String(v));
}

function fieldRows(s: Studio, req: Req, path: string, def: EntityDefinition, shownJson: Record<string, unknown>): string {
  const canReveal = s.o.canReveal;
  return fieldsOf(def)
    .map((f) => {
      const v = shownJson[f.json];
      const paths = f.sensitive ? [f.local] : f.sensitiveInside.map((p) => `${f.local}.${p}`);
      const buttons = canReveal
        ? paths
            .map((p) => postForm(`${path}/reveal`, req.session.csrf, `<input type="hidden" name="field" value="${esc(p)}"><button type="submit" class="secondary">Reveal ${esc(p)}</button>`, ' class="inline"'))
            .join(" ")
        : paths.length ? '<span class="hint">opened without the keys of sensitive fields</span>' : "";
      return `<tr><th scope="row">${esc(f.proto)}</th><td>${esc(f.type)}${f.sensitive || paths.length ? " (sensitive)" : ""}</td><td>${valueCell(v)} ${buttons}</td></tr>`;
    })
    .join("");
}

/** The record page; `reveal` names the one sensitive path shown. */
export async function recordPage(s: Studio, req: Req, prop: string, def: EntityDefinition, key: string | undefined, reveal?: string, message?: string): Promise<Res> {
  const path = recordPath(prop, key);
  const found = await loadRecord(s, prop, def, key);
  const title = key === undefined ? prop : `${prop} / ${key}`;
  if (!found) {
    const body = notice("error", `No record has this key.`) + `<p><a href="/e/${seg(prop)}">Back to ${esc(prop)}</a></p>`;
    return { status: 404, html: page({ title, nav: await s.nav(), current: prop, readOnly: s.readOnly, body }) };
  }
  const shownJson = redact(def, found.json, reveal);
  let body = message ? notice("ok", message) : "";
  if (reveal) body += notice("info", `Showing the sensitive field ${reveal} of this record.`);
  if (!s.readOnly) {
    body += `<p class="actions"><a href="${path}/edit">Edit</a>${key !== undefined ? ` <a href="${path}/delete">Delete…</a>` : ""}</p>`;
  }
  body += `<table class="fields"><caption>Fields</caption><thead><tr><th scope="col">Field</th><th scope="col">Type</th><th scope="col">Value</th></tr></thead><tbody>${fieldRows(s, req, path, def, shownJson)}</tbody></table>`;
  body += `<h2 id="json-h">Protobuf JSON</h2><pre aria-labelledby="json-h">${esc(JSON.stringify(shownJson, null, 2))}</pre>`;
  if (key !== undefined) body += `<p><a href="/e/${seg(prop)}">Back to ${esc(prop)}</a></p>`;
  return { html: page({ title, nav: await s.nav(), current: prop, readOnly: s.readOnly, body }) };
}

/** POST `…/reveal`: one sensitive field shown, after the hook (the audit log) accepted it. */
export async function revealField(s: Studio, req: Req, prop: string, def: EntityDefinition, key: string | undefined): Promise<Res> {
  const field = req.form.get("field") ?? "";
  if (!s.o.canReveal) return { status: 403, html: page({ title: prop, nav: await s.nav(), current: prop, readOnly: s.readOnly, body: notice("error", "This store was opened without the keys of sensitive fields: nothing can be revealed.") }) };
  if (!def.sensitive.includes(field)) return { status: 400, html: page({ title: prop, nav: await s.nav(), current: prop, readOnly: s.readOnly, body: notice("error", "That is not a sensitive field of this entity.") }) };
  await s.o.onReveal?.({ entity: def.name, ...(key !== undefined && { key }), field });
  return recordPage(s, req, prop, def, key, field);
}
