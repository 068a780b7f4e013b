/**
 * Editing: the schema's form for a record (or a new one, or a singleton's value), its POST validated by
 * the entity's zod validator and written with the store's normal `put` (a singleton: `update`); a delete
 * asked for on a confirmation page, done by a POST. Refused in read-only mode.
 */
import { isCellarError, type EntityDefinition, type ValidationError } from "../runtime/index.js";
import { redact } from "./fields.js";
import { type FieldErrors, formFields, issueErrors, parseForm } from "./form.js";
import { esc, notice, page, postForm, seg } from "./html.js";
import { isCollection, type Req, type Res, type Studio } from "./context.js";
import { loadRecord, recordPath } from "./page-record.js";
import { parseKey } from "./keys.js";

async function readOnlyPage(s: Studio, prop: string): Promise<Res> {
  const why = s.o.readOnlyReason ? ` (${s.o.readOnlyReason})` : "";
  return { status: 403, html: page({ title: prop, nav: await s.nav(), current: prop, readOnly: true, body: notice("error", `The studio is read-only${why}: nothing can be changed.`) }) };
}

async function formPage(s: Studio, req: Req, prop: string, def: EntityDefinition, key: string | undefined, isNew: boolean, json: Record<string, unknown>, errors: FieldErrors): Promise<Res> {
  const action = isNew ? `/e/${seg(prop)}/new` : `${recordPath(prop, key)}/edit`;
  const title = isNew ? `${prop} / new record` : key === undefined ? `${prop} / edit` : `${prop} / ${key} / edit`;
  const count = Object.keys(errors).length;
  let body = count ? notice("error", `The record was not saved: ${count} field${count > 1 ? "s have" : " has"} errors.`) : "";
  if (errors["(record)"]) body += notice("error", errors["(record)"]);
  const keyField = !isNew && isCollection(def) ? def.key : undefined;
  const inner = `<div class="form-grid">${formFields(def, json, errors, keyField)}</div><p class="actions"><button type="submit">Save</button> <a href="${isNew ? `/e/${seg(prop)}` : recordPath(prop, key)}">Cancel</a></p>`;
  body += postForm(action, req.session.csrf, inner, ' aria-label="Edit record" novalidate');
  return { status: count ? 422 : 200, html: page({ title, nav: await s.nav(), current: prop, readOnly: s.readOnly, body }) };
}

/** GET the edit form (`key` undefined and `isNew`: a new record). */
export async function editPage(s: Studio, req: Req, prop: string, def: EntityDefinition, key: string | undefined, isNew = false): Promise<Res> {
  if (s.readOnly) return readOnlyPage(s, prop);
  if (isNew) return formPage(s, req, prop, def, undefined, true, {}, {});
  const found = await loadRecord(s, prop, def, key);
  if (!found) return { status: 404, html: page({ title: prop, nav: await s.nav(), current: prop, readOnly: s.readOnly, body: notice("error", "No record has this key.") }) };
  return formPage(s, req, prop, def, key, false, redact(def, found.json), {});
}

/** The key of a message of a collection, as the record path shows it. */
function keyOf(def: EntityDefinition, message: unknown): string | undefined {
  return isCollection(def) ? String((message as Record<string, unknown>)[def.key]) : undefined;
}

/** POST the edit form: validate, then `put` (or a singleton's `update`), then back to the record. */
export async function saveRecord(s: Studio, req: Req, prop: string, def: EntityDefinition, key: string | undefined, isNew = false): Promise<Res> {
  if (s.readOnly) return readOnlyPage(s, prop);
  const stored = isNew ? undefined : await loadRecord(s, prop, def, key);
  const r = parseForm(def, req.form, stored?.json);
  if (!r.message) return formPage(s, req, prop, def, key, isNew, r.json, r.errors);
  const newKey = keyOf(def, r.message);
  if (!isNew && isCollection(def) && newKey !== key) return formPage(s, req, prop, def, key, false, r.json, { [def.key]: "the key cannot change" });
  try {
    if (isCollection(def)) await s.collection(prop).put(r.message);
    else await s.singleton(prop).update(r.message);
  } catch (e) {
    if (!isCellarError(e, "E_VALIDATION")) throw e;
    return formPage(s, req, prop, def, key, isNew, r.json, issueErrors((e as ValidationError).issues));
  }
  return { redirect: `${recordPath(prop, newKey)}?saved=1` };
}

/** GET the delete confirmation. */
export async function deletePage(s: Studio, req: Req, prop: string, def: EntityDefinition, key: string): Promise<Res> {
  if (s.readOnly) return readOnlyPage(s, prop);
  const path = recordPath(prop, key);
  const inner = `<p>Delete the record <strong>${esc(key)}</strong> of ${esc(def.name)}? This cannot be undone (except from a backup${def.history ? " or the record's history" : ""}).</p>` +
    `<p class="actions"><button type="submit" class="danger">Delete</button> <a href="${path}">Cancel</a></p>`;
  const body = postForm(`${path}/delete`, req.session.csrf, inner, ' aria-label="Confirm delete"');
  return { html: page({ title: `${prop} / ${key} / delete`, nav: await s.nav(), current: prop, readOnly: s.readOnly, body }) };
}

/** POST the delete. */
export async function deleteRecord(s: Studio, _req: Req, prop: string, def: EntityDefinition, key: string): Promise<Res> {
  if (s.readOnly || !isCollection(def)) return readOnlyPage(s, prop);
  await s.collection(prop).delete(parseKey(def, key));
  return { redirect: `/e/${seg(prop)}?deleted=${encodeURIComponent(key)}` };
}
