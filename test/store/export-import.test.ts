/**
 * store.export / store.import on real files: the NDJSON round trip (fast-check), redaction of sensitive
 * fields, all-or-nothing on a bad line anywhere (the error names line, entity and field, never the value),
 * E_SCHEMA_NEWER, older versions migrated through the store's steps, idempotent double import, replace vs
 * merge, and a singleton's own export/import (seed 000's SettingsRepository).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { AiProviderKind, Theme } from "../../src/generated/examples/settings/v1/settings_pb.js";
import { Priority, TaskStatus } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import type { ImportError } from "../../src/runtime/index.js";
import { openStore as openRaw } from "../../src/runtime/typed/store.js";
import { notesAt, step1to2, step2to3 } from "./helpers/notes-versions.js";
import { storeSnapshot } from "../helpers/files.js";
import { errorOf } from "../helpers/errors.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-export-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(7);
let n = 0;
/** No lone UTF-16 surrogate (stores refuse them). */
const wellFormed = (s: string) => !/\p{Cs}/u.test(s);
const fresh = (name: string) => path.join(tmp, `${name}-${n++}`);

type Store = Awaited<ReturnType<typeof openStore>>;

/** Every record of every entity, as inspect shows it minus sensitive fields: plus the settings value whole. */
async function contents(store: Store): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const e of ["tasks", "profiles"] as const) {
    const repo = store[e];
    out[e] = (await repo.list()).map((r) => repo.toJson(r as never));
  }
  out.settings = store.settings.toJson(await store.settings.get());
  return out;
}

const task = (i: number, extra: Record<string, unknown> = {}) => ({
  id: `t${i}`,
  title: `title ${i}`,
  status: TaskStatus.TODO,
  priority: Priority.HIGH,
  tags: ["work"],
  estimateMinutes: i,
  createdAt: timestampFromDate(new Date(Date.UTC(2026, 0, 1 + (i % 28)))),
  ...extra,
});

async function seeded(dir: string): Promise<Store> {
  const store = await openStore({ dir, key });
  await store.batch((tx) => {
    for (let i = 0; i < 20; i++) tx.tasks.put(task(i));
    tx.profiles.put({ id: "p1", displayName: "Ana", email: "ana@example.com", authToken: "tok-SECRET-1" });
  });
  await store.settings.update({ theme: Theme.DARK, aiProvider: { kind: AiProviderKind.ANTHROPIC, model: "m", apiKey: "sk-SECRET-1" } });
  return store;
}

describe("export then import", () => {
  it("round-trips any records into a fresh store (fast-check)", async () => {
    const word = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s.trim() === s && s.length > 0 && wellFormed(s));
    const arbTask = fc.record({
      id: fc.stringMatching(/^[a-zA-Z0-9_é✓-]{1,20}$/),
      title: word,
      status: fc.constantFrom(TaskStatus.TODO, TaskStatus.DONE),
      tags: fc.array(word, { maxLength: 4 }),
      notes: fc.string({ maxLength: 40 }).filter((s) => wellFormed(s)),
      estimateMinutes: fc.integer({ min: 0, max: 100000 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(arbTask, { selector: (t) => t.id, maxLength: 30 }), fc.string({ maxLength: 20 }).filter((s) => wellFormed(s)), async (tasks, apiKey) => {
        const a = await openStore({ dir: fresh("rt-a"), key });
        const b = await openStore({ dir: fresh("rt-b"), key });
        try {
          await a.batch((tx) => tasks.forEach((t) => tx.tasks.put(t)));
          await a.settings.update({ language: "fr", aiProvider: { apiKey } });
          const file = path.join(tmp, `rt-${n++}.ndjson`);
          const res = await a.export({ to: file, includeSensitive: true });
          expect(res.records.tasks).toBe(tasks.length);
          await b.import(file);
          expect(await contents(b)).toEqual(await contents(a));
          expect((await b.settings.get()).aiProvider?.apiKey).toBe(apiKey);
        } finally {
          await a.close();
          await b.close();
        }
      }),
      { numRuns: 8 },
    );
  });

  it("writes a header, one line per record, no temp file, and mode 0600", async () => {
    const store = await seeded(fresh("header"));
    const file = path.join(tmp, "header.ndjson");
    const progress: number[] = [];
    await store.export({ to: file, entities: ["tasks", "settings"], onProgress: (p) => progress.push(p.done) });
    await store.close();
    const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({
      format: "cellar-export",
      version: 1,
      includeSensitive: false,
      entities: [
        { entity: "tasks", kind: "collection", version: 1, records: 20, redacted: [] },
        { entity: "settings", kind: "singleton", version: 1, records: 1, redacted: ["aiProvider.apiKey"] },
      ],
    });
    expect(lines[0].storeId).toMatch(/^[0-9a-f]{32}$/);
    expect(lines.length).toBe(22);
    expect(lines[1]).toMatchObject({ entity: "tasks", version: 1, key: "t0", record: { id: "t0", title: "title 0", tags: ["work"] } });
    expect(lines[21]).toMatchObject({ entity: "settings", version: 1, key: "" });
    expect(progress.length).toBeGreaterThan(0);
    expect(fs.existsSync(`${file}.tmp`)).toBe(false);
    if (process.platform !== "win32") expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });
});

describe("export reads the segment and the journal", () => {
  it("writes every live record once with its current value, with a compaction running meanwhile", async () => {
    const store = await openStore({ dir: fresh("mixed"), key });
    await store.batch((tx) => {
      for (let i = 0; i < 600; i++) tx.tasks.put(task(i));
    });
    await store.compact(); // 600 in the segment
    await store.batch((tx) => {
      for (let i = 0; i < 100; i++) tx.tasks.put(task(i * 2, { title: `rewritten ${i * 2}` })); // journal, over segment keys
      for (let i = 600; i < 700; i++) tx.tasks.put(task(i)); // journal only
      for (let i = 1; i < 100; i += 2) tx.tasks.delete(`t${i}`); // tombstones
    });
    const file = path.join(tmp, "mixed.ndjson");
    const [res] = await Promise.all([store.export({ to: file, entities: ["tasks"] }), store.compact()]);
    const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(1).map((l) => JSON.parse(l));
    const keys = lines.map((l) => l.key as string);
    expect(new Set(keys).size).toBe(keys.length);
    expect(res.records.tasks).toBe(650);
    expect(new Set(keys)).toEqual(new Set((await store.tasks.keys()).map(String)));
    const byKey = new Map(lines.map((l) => [l.key, l.record.title]));
    expect(byKey.get("t4")).toBe("rewritten 4");
    expect(byKey.get("t198")).toBe("rewritten 198");
    expect(byKey.get("t300")).toBe("title 300");
    expect(byKey.get("t650")).toBe("title 650");
    expect(byKey.has("t5")).toBe(false);
    await store.close();
  });
});

describe("files", () => {
  it("a missing directory or file is E_IO naming the file, an empty file E_IMPORT, and nothing is written", async () => {
    const dir = fresh("io");
    const store = await seeded(dir);
    const before = storeSnapshot(dir);
    const e1 = await errorOf(store.export({ to: path.join(tmp, "no-such-dir", "x.ndjson") }));
    expect(e1).toMatchObject({ code: "E_IO", path: "x.ndjson", errno: "ENOENT" });
    const e2 = await errorOf(store.import(path.join(tmp, "no-such-file.ndjson")));
    expect(e2).toMatchObject({ code: "E_IO", path: "no-such-file.ndjson", errno: "ENOENT" });
    fs.writeFileSync(path.join(tmp, "empty.ndjson"), "");
    expect(await errorOf(store.import(path.join(tmp, "empty.ndjson")))).toMatchObject({ code: "E_IMPORT", line: 1 });
    expect(storeSnapshot(dir)).toEqual(before);
    await store.close();
  });
});

describe("sensitive fields", () => {
  it("are left out unless includeSensitive; merge keeps the stored ones, replace refuses unless allowRedacted", async () => {
    const dir = fresh("redact");
    const store = await seeded(dir);
    const file = path.join(tmp, "redacted.ndjson");
    await store.export({ to: file });
    const text = fs.readFileSync(file, "utf8");
    expect(text).not.toContain("SECRET");
    expect(text).toContain("ana@example.com".length ? "Ana" : "");
    const header = JSON.parse(text.split("\n")[0]!);
    expect(header.entities.find((e: { entity: string }) => e.entity === "profiles").redacted).toEqual(["email", "authToken"]);

    // merge into the same store: stored secrets stay
    await store.import(file);
    expect((await store.settings.get()).aiProvider?.apiKey).toBe("sk-SECRET-1");
    expect((await store.profiles.get("p1"))?.authToken).toBe("tok-SECRET-1");
    // replace: refused without allowRedacted, nothing changed
    const before = storeSnapshot(dir);
    const e = (await errorOf(store.import(file, { mode: "replace" }))) as ImportError;
    expect(e.code).toBe("E_IMPORT");
    expect(e.line).toBe(1);
    expect(storeSnapshot(dir)).toEqual(before);
    await store.import(file, { mode: "replace", allowRedacted: true });
    expect((await store.profiles.get("p1"))?.authToken).toBe("tok-SECRET-1");
    // a fresh store gets them unset
    const other = await openStore({ dir: fresh("redact-b"), key });
    await other.import(file);
    expect((await other.profiles.get("p1"))?.authToken).toBe("");
    expect((await other.profiles.get("p1"))?.displayName).toBe("Ana");
    await other.close();
    // includeSensitive: in the file
    await store.export({ to: file, includeSensitive: true });
    expect(fs.readFileSync(file, "utf8")).toContain("tok-SECRET-1");
    await store.close();
  });
});

describe("a bad line anywhere", () => {
  const cases: { name: string; at: "first" | "middle" | "last"; line: (good: string) => string; entity: string | undefined; path: (string | number)[] }[] = [
    { name: "wrong JSON type", at: "first", line: (g) => g.replace('"record":{', '"record":{"estimateMinutes":"VALUE-xyz",'), entity: "tasks", path: ["estimateMinutes"] },
    { name: "fails validation", at: "middle", line: (g) => g.replace(/"estimateMinutes":\d+/, '"estimateMinutes":987654321'), entity: "tasks", path: ["estimateMinutes"] },
    { name: "unknown field", at: "last", line: (g) => g.replace('"record":{', '"record":{"bogusVALUE":1,'), entity: "tasks", path: ["bogusVALUE"] },
    { name: "bad list element", at: "middle", line: (g) => g.replace('"tags":["work"]', '"tags":["work",42]'), entity: "tasks", path: ["tags", 1] },
    { name: "bad nested field", at: "last", line: (g) => g.replace(/"createdAt":"[^"]+"/, '"createdAt":"VALUE-not-a-time"'), entity: "tasks", path: ["createdAt"] },
    { name: "not JSON", at: "middle", line: () => "{VALUE", entity: undefined, path: [] },
    { name: "key differs from the record's", at: "first", line: (g) => g.replace('"key":"t', '"key":"VALUE'), entity: "tasks", path: ["key"] },
    { name: "unknown entity", at: "last", line: (g) => g.replace('"entity":"tasks"', '"entity":"VALUE"'), entity: undefined, path: ["entity"] },
  ];
  for (const c of cases) {
    it(`(${c.name}, ${c.at}): nothing is written and the error names line, entity and path, not the value`, async () => {
      const src = await seeded(fresh("bad-src"));
      const file = path.join(tmp, `bad-${n++}.ndjson`);
      await src.export({ to: file, entities: ["tasks"] });
      await src.close();
      const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n");
      const at = c.at === "first" ? 1 : c.at === "middle" ? 10 : lines.length - 1;
      lines[at] = c.line(lines[at]!);
      fs.writeFileSync(file, lines.join("\n") + "\n");
      const dir = fresh("bad-dst");
      const dst = await openStore({ dir, key });
      await dst.tasks.put(task(100));
      const before = storeSnapshot(dir);
      for (const mode of ["merge", "replace"] as const) {
        const e = (await errorOf(dst.import(file, { mode }))) as ImportError;
        expect(e.code).toBe("E_IMPORT");
        expect(e.line).toBe(at + 1);
        expect(e.entity).toBe(c.entity);
        expect(e.path).toEqual(c.path);
        expect(e.message).toContain(`line ${at + 1}`);
        expect(e.message).not.toMatch(/VALUE-|987654321|\{VALUE|"VALUE"/);
        expect(storeSnapshot(dir)).toEqual(before);
      }
      expect(await dst.tasks.count()).toBe(1);
      await dst.close();
    });
  }
});

describe("versions", () => {
  const notesFile = (version: number, record: Record<string, unknown>) =>
    [
      JSON.stringify({ format: "cellar-export", version: 1, storeId: "00", createdAt: "", includeSensitive: true, entities: [{ entity: "notes", kind: "collection", version, records: 1, redacted: [] }] }),
      JSON.stringify({ entity: "notes", version, key: record.id, record }),
    ].join("\n");

  it("a file from a newer schema is refused with E_SCHEMA_NEWER, nothing written", async () => {
    const dir = fresh("newer");
    const store = await openRaw({ notes: notesAt(2) }, { dir, key, migrations: [step1to2] });
    const file = path.join(tmp, "newer.ndjson");
    fs.writeFileSync(file, notesFile(3, { id: "n1", body: "b", priority: 1 }));
    const e = await errorOf(store.import(file));
    expect(e.code).toBe("E_SCHEMA_NEWER");
    expect(await store.notes.count()).toBe(0);
    await store.close();
  });

  it("records exported at version 1 are migrated to version 3 through the store's steps", async () => {
    const v1dir = fresh("v1");
    const old = await openRaw({ notes: notesAt(1) }, { dir: v1dir, key });
    await old.notes.put({ id: "n1", text: "hello", tagsCsv: "work,urgent", secret: "pin" });
    await old.notes.put({ id: "n2", text: "bye", tagsCsv: "", secret: "" });
    const file = path.join(tmp, "v1.ndjson");
    await old.export({ to: file, includeSensitive: true });
    await old.close();
    const store = await openRaw({ notes: notesAt(3) }, { dir: fresh("v3"), key, migrations: [step1to2, step2to3] });
    const res = await store.import(file);
    expect(res.records).toEqual({ notes: 2 });
    expect(await store.notes.get("n1")).toMatchObject({ body: "hello", tags: ["work", "urgent"], priority: 2, secret: "pin" });
    expect(await store.notes.query({ tags: "urgent" })).toHaveLength(1);
    await store.close();
    // without the steps: refused, naming the missing one
    const bare = await openRaw({ notes: notesAt(3) }, { dir: fresh("v3-bare"), key });
    const e = (await errorOf(bare.import(file))) as ImportError;
    expect(e).toMatchObject({ code: "E_IMPORT", line: 2, entity: "notes", path: ["version"] });
    expect(await bare.notes.count()).toBe(0);
    await bare.close();
  });

  it("a migrated record that fails validation is refused at its line", async () => {
    const file = path.join(tmp, "v2-bad.ndjson");
    fs.writeFileSync(file, notesFile(2, { id: "n1", body: "b", tags: ["x"] }));
    const store = await openRaw(
      { notes: notesAt(3) },
      { dir: fresh("v3-bad"), key, migrations: [{ ...step2to3, migrate: (o: Record<string, unknown>) => ({ ...step2to3.migrate(o, {} as never), priority: -5 }) }] },
    );
    const e = (await errorOf(store.import(file))) as ImportError;
    expect(e).toMatchObject({ code: "E_IMPORT", line: 2, entity: "notes", path: ["priority"] });
    expect(await store.notes.count()).toBe(0);
    await store.close();
  });
});

describe("merge, replace, twice", () => {
  it("importing the same file twice changes nothing the second time (not a byte), in both modes", async () => {
    const src = await seeded(fresh("twice-src"));
    const file = path.join(tmp, "twice.ndjson");
    await src.export({ to: file, includeSensitive: true });
    await src.close();
    for (const mode of ["merge", "replace"] as const) {
      const dir = fresh(`twice-${mode}`);
      const store = await openStore({ dir, key });
      await store.tasks.put(task(500));
      const first = await store.import(file, { mode });
      expect(first.written).toBe(22);
      const after = await contents(store);
      const files = storeSnapshot(dir);
      const second = await store.import(file, { mode });
      expect(second).toMatchObject({ written: 0, deleted: 0, staged: false });
      expect(storeSnapshot(dir)).toEqual(files);
      expect(await contents(store)).toEqual(after);
      await store.close();
    }
  });

  it("merge keeps records the file does not have; replace leaves exactly the file's records of its entities", async () => {
    const src = await seeded(fresh("mode-src"));
    const file = path.join(tmp, "modes.ndjson");
    await src.export({ to: file, entities: ["tasks"], includeSensitive: true });
    await src.close();
    const dir = fresh("modes");
    const store = await openStore({ dir, key });
    await store.tasks.put(task(1, { title: "stored version" }));
    await store.tasks.put(task(900));
    await store.profiles.put({ id: "keep-me" });
    await store.import(file, { mode: "merge" });
    expect(await store.tasks.count()).toBe(21);
    expect((await store.tasks.get("t1"))?.title).toBe("title 1");
    const res = await store.import(file, { mode: "replace" });
    expect(res.deleted).toBe(1);
    expect(await store.tasks.has("t900")).toBe(false);
    expect(await store.tasks.count()).toBe(20);
    expect(await store.profiles.count()).toBe(1); // not in the file's header: untouched
    expect(await store.tasks.query({ status: TaskStatus.TODO })).toHaveLength(20);
    await store.close();
  });
});

describe("import and update", () => {
  it("an update of a key the import writes, issued once the import's write is issued, reads the imported record", async () => {
    const src = await openStore({ dir: fresh("upd-src"), key });
    await src.tasks.put(task(1, { title: "imported", estimateMinutes: 5 }));
    const file = path.join(tmp, "upd.ndjson");
    await src.export({ to: file, entities: ["tasks"] });
    await src.close();
    const store = await openStore({ dir: fresh("upd"), key });
    await store.tasks.put(task(1, { title: "old", estimateMinutes: 1 }));
    let updated: Promise<unknown> | undefined;
    await store.import(file, {
      onProgress: (p) => {
        // Runs right after this synchronous step, in which the import issues its write.
        if (p.phase === "switch") queueMicrotask(() => (updated = store.tasks.update("t1", { estimateMinutes: 9 })));
      },
    });
    await updated;
    expect(await store.tasks.get("t1")).toMatchObject({ title: "imported", estimateMinutes: 9 });
    await store.close();
  });
});

describe("singleton export/import (SettingsRepository)", () => {
  it("exports the value as text and imports it elsewhere, keeping the stored sensitive field when redacted", async () => {
    const a = await seeded(fresh("single-a"));
    const text = await a.settings.export();
    expect(text).not.toContain("sk-SECRET-1");
    const full = await a.settings.export({ includeSensitive: true });
    expect(full).toContain("sk-SECRET-1");
    await a.close();
    const b = await openStore({ dir: fresh("single-b"), key });
    await b.settings.update({ language: "de", aiProvider: { apiKey: "sk-B" } });
    await b.settings.import(text);
    const s = await b.settings.get();
    expect(s.theme).toBe(Theme.DARK);
    expect(s.language).toBe("en"); // a's value, not b's "de"
    expect(s.aiProvider?.apiKey).toBe("sk-B");
    await b.settings.import(full);
    expect((await b.settings.get()).aiProvider?.apiKey).toBe("sk-SECRET-1");
    // another entity's file is refused; a bad value names its field
    const e = (await errorOf(b.settings.import(text.replace('"settings"', '"tasks"')))) as ImportError;
    expect(e.code).toBe("E_IMPORT");
    const bad = (await errorOf(b.settings.import(text.replace('"theme":', '"theme":"VALUE-x","x":')))) as ImportError;
    expect(bad).toMatchObject({ code: "E_IMPORT", line: 2, entity: "settings", path: ["theme"] });
    expect((await b.settings.get()).aiProvider?.apiKey).toBe("sk-SECRET-1");
    await b.close();
  });
});
