/**
 * The studio's pure pieces against the real generated entities: values typed for the query engine from a
 * filter's text, keys from URLs, redaction and its undoing on an edit, the form turned into a validated
 * message, escaping, the browser opener per platform.
 */
import { describe, expect, it } from "vitest";
import { entities } from "../../src/generated/index.js";
import { queryValue, whereOf, keyCursor, paramPairs, tableParams } from "../../src/studio/query-form.js";
import { encodeStoredKey, parseKey } from "../../src/studio/keys.js";
import { fieldsOf, redact, unredact } from "../../src/studio/fields.js";
import { parseForm } from "../../src/studio/form.js";
import { esc } from "../../src/studio/html.js";
import { openerFor } from "../../src/studio/open-browser.js";
import type { CollectionDefinition } from "../../src/runtime/index.js";

const tasks = entities.tasks as unknown as CollectionDefinition;

describe("filters to the query engine's values", () => {
  it("types a value from the indexed field's descriptor", () => {
    expect(queryValue(tasks, "status", "TASK_STATUS_DONE")).toBe(3);
    expect(queryValue(tasks, "status", "2")).toBe(2);
    expect(queryValue(tasks, "tags", "work")).toBe("work");
    expect(queryValue(tasks, "createdAt", "2026-01-01T00:00:00Z")).toEqual(new Date("2026-01-01T00:00:00Z"));
    expect(() => queryValue(tasks, "status", "NOPE")).toThrow(/enum value name or number/);
    expect(() => queryValue(tasks, "createdAt", "yesterday")).toThrow(/RFC 3339/);
  });

  it("merges the operators of one field and splits `in`", () => {
    const where = whereOf(tasks, [
      { field: "createdAt", op: "gte", value: "2026-01-01T00:00:00Z" },
      { field: "createdAt", op: "lt", value: "2026-02-01T00:00:00Z" },
      { field: "status", op: "in", value: "1, TASK_STATUS_DONE" },
    ]);
    expect(where).toEqual({ createdAt: { gte: new Date("2026-01-01T00:00:00Z"), lt: new Date("2026-02-01T00:00:00Z") }, status: { in: [1, 3] } });
  });

  it("reads the GET parameters, dropping empty filter rows", () => {
    const p = tableParams(new URLSearchParams("f=status&op=eq&v=1&f=&op=eq&v=&o=createdAt&r=1"));
    expect(p).toMatchObject({ filters: [{ field: "status", op: "eq", value: "1" }], orderBy: "createdAt", reverse: true });
  });

  it("carries the filters and order into the next and previous pages' links", () => {
    const p = tableParams(new URLSearchParams("f=status&op=eq&v=1&o=status&r=1&before=B0"));
    expect(p).toMatchObject({ before: "B0", after: undefined });
    expect(new URLSearchParams(paramPairs(p, "N1")).toString()).toBe("f=status&op=eq&v=1&o=status&r=1&after=N1");
    expect(new URLSearchParams(paramPairs(p, undefined, "P1")).toString()).toBe("f=status&op=eq&v=1&o=status&r=1&before=P1");
  });

  it("places a key-order cursor at a key (QUERIES.md's cursor format)", () => {
    expect(JSON.parse(Buffer.from(keyCursor("t1"), "base64url").toString())).toEqual({ v: 1, m: "i", s: "", k: "t1" });
  });
});

describe("keys", () => {
  it("types a key by the entity's key kind", () => {
    const int64 = { ...tasks, keyKind: "int64" } as CollectionDefinition;
    const int32 = { ...tasks, keyKind: "uint32" } as CollectionDefinition;
    expect(parseKey(tasks, "a/b?c")).toBe("a/b?c");
    expect(parseKey(int64, "9007199254740993")).toBe(9007199254740993n);
    expect(parseKey(int32, "42")).toBe(42);
    expect(() => parseKey(int32, "x")).toThrow(/integer/);
    expect(encodeStoredKey(int64, 5n)).toBe("5");
  });
});

describe("sensitive fields", () => {
  const settings = entities.settings;
  const stored = { language: "en", aiProvider: { model: "m", apiKey: "sk-1" } };

  it("redacts nested sensitive paths unless revealed, and only set ones", () => {
    expect(redact(settings, stored)).toEqual({ language: "en", aiProvider: { model: "m", apiKey: "[redacted]" } });
    expect(redact(settings, stored, "aiProvider.apiKey")).toEqual(stored);
    expect(redact(settings, { language: "en" })).toEqual({ language: "en" });
    expect(stored.aiProvider.apiKey).toBe("sk-1");
  });

  it("puts the stored value back where an edit left [redacted]", () => {
    const edited = { language: "de", aiProvider: { model: "m2", apiKey: "[redacted]" } };
    unredact(settings, edited, stored);
    expect(edited).toEqual({ language: "de", aiProvider: { model: "m2", apiKey: "sk-1" } });
    const typed = { aiProvider: { apiKey: "sk-new" } };
    unredact(settings, typed, stored);
    expect(typed.aiProvider.apiKey).toBe("sk-new");
  });

  it("edits a field holding a sensitive path as JSON", () => {
    expect(fieldsOf(settings).find((f) => f.local === "aiProvider")).toMatchObject({ input: "json", sensitiveInside: ["apiKey"] });
    expect(fieldsOf(entities.profiles).find((f) => f.local === "email")).toMatchObject({ input: "string", sensitive: true, type: "string" });
  });
});

describe("the edit form", () => {
  it("gives each field its error: a control that does not parse, and the zod validator's issues", () => {
    const r = parseForm(tasks, new URLSearchParams({ "x.id": "t1", "x.title": "", "x.estimateMinutes": "12.5.1", "x.createdAt": "soon" }), undefined);
    expect(r.message).toBeUndefined();
    expect(Object.keys(r.errors).sort()).toEqual(["createdAt", "estimateMinutes", "title"]);
    expect(r.errors.title).toMatch(/required/);
  });

  it("makes a message of the entity from valid values", () => {
    const r = parseForm(tasks, new URLSearchParams({ "x.id": "t1", "x.title": "T", "x.status": "TASK_STATUS_DONE", "x.tags": '["a"]', "x.createdAt": "2026-01-01T00:00:00Z" }), undefined);
    expect(r.errors).toEqual({});
    expect(r.message).toMatchObject({ id: "t1", title: "T", status: 3, tags: ["a"], createdAt: { seconds: 1767225600n } });
  });
});

describe("html and the opener", () => {
  it("escapes text and attribute values", () => {
    expect(esc(`<script>"x" & 'y'</script>`)).toBe("&#60;script&#62;&#34;x&#34; &#38; &#39;y&#39;&#60;/script&#62;");
  });

  it("opens with the platform's own opener", () => {
    expect(openerFor("linux").cmd).toBe("xdg-open");
    expect(openerFor("darwin").cmd).toBe("open");
    const win = openerFor("win32");
    expect([win.cmd, ...win.args("http://127.0.0.1:1/auth?token=a&b")]).toEqual(["cmd", "/c", "start", "", "http://127.0.0.1:1/auth?token=a^&b"]);
  });
});

describe("the sort list", () => {
  it("offers the indexed fields that are not lists; one that leads no index says which equality it needs", async () => {
    const { orderFields } = await import("../../src/studio/page-table.js");
    const { openStore } = await import("../../src/generated/index.js");
    const { keys } = await import("../../src/runtime/index.js");
    const fs = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const offered = orderFields(entities.tasks as unknown as CollectionDefinition);
    // `tags` is a list; `createdAt` is only second in `status,created_at`.
    expect(offered).toEqual([["status", "status"], ["projectId", "projectId"], ["createdAt", "createdAt (with status =)"]]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-studio-sort-"));
    const store = await openStore({ dir: path.join(dir, "s"), key: keys.raw(new Uint8Array(32).fill(3)), cleanup: false });
    try {
      await store.tasks.put({ id: "a", title: "a", status: 1, projectId: "p" } as never);
      for (const [f] of offered.slice(0, 2)) await expect(store.tasks.query({}, { orderBy: f as never })).resolves.toHaveLength(1);
      await expect(store.tasks.query({}, { orderBy: "createdAt" as never })).rejects.toMatchObject({ code: expect.any(String) });
      await expect(store.tasks.query({ status: 1 } as never, { orderBy: "createdAt" as never })).resolves.toHaveLength(1);
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
