/**
 * An import reads a line of the current version through the fast path (typed/import-json.ts) and falls back
 * to `fromJson` for what it does not take; a line of an older version always goes through `fromJson` and
 * the migration steps. Records exported then imported equal the originals through either path (fast-check):
 * the same file, and the same file rewritten so that no line is taken by the fast path (timestamps with a
 * `+00:00` offset, an empty map), with sensitive fields included; and notes exported at version 1 and imported
 * into a version-3 store equal the store's own migration of the same records at open.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { DescMessage } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { entities, openStore } from "../../src/generated/index.js";
import { GridDensity, Theme } from "../../src/generated/examples/settings/v1/settings_pb.js";
import { Priority, TaskStatus } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import { inputReader } from "../../src/runtime/typed/import-json.js";
import { openStore as openRaw } from "../../src/runtime/typed/store.js";
import { notesAt, step1to2, step2to3 } from "./helpers/notes-versions.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-import-paths-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(9);
let n = 0;
const fresh = (name: string) => path.join(tmp, `${name}-${n++}`);
const wellFormed = (s: string) => !/\p{Cs}/u.test(s);
const text = (max: number) => fc.string({ maxLength: max }).filter(wellFormed);
const ident = fc.stringMatching(/^[a-zA-Z0-9_é✓-]{1,16}$/);
const when = fc.date({ min: new Date("1970-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }).map((d) => timestampFromDate(d));

type Store = Awaited<ReturnType<typeof openStore>>;

/** Every record of the store, sensitive fields included (the store is not redacted). */
async function contents(store: Store): Promise<unknown> {
  return {
    tasks: (await store.tasks.list()).map((r) => store.tasks.toJson(r)),
    profiles: (await store.profiles.list()).map((r) => store.profiles.toJson(r)),
    settings: store.settings.toJson(await store.settings.get()),
  };
}

const schemaOf: Record<string, DescMessage> = Object.fromEntries(Object.values(entities).map((d) => [d.name, d.schema as DescMessage]));

/** The file's lines rewritten so that the fast path takes none of them, meaning the same to `fromJson`. */
function generalOnly(file: string): string {
  const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n");
  const out = [lines[0]!];
  for (const l of lines.slice(1)) {
    const line = JSON.parse(l) as { entity: string; record: Record<string, unknown> };
    if (line.entity === "settings") line.record.keyBindings = {}; // a map (empty: no entries)
    else line.record.createdAt = String(line.record.createdAt).replace(/Z$/, "+00:00"); // an offset
    expect(inputReader(schemaOf[line.entity]!)(line.record)).toBeUndefined();
    out.push(JSON.stringify(line));
  }
  return out.join("\n") + "\n";
}

describe("import through the fast path and the general path", () => {
  it("records exported then imported equal the originals either way, sensitive fields included (fast-check)", async () => {
    const task = fc.record({
      id: ident,
      title: text(30).filter((s) => s.length > 0),
      status: fc.constantFrom(TaskStatus.TODO, TaskStatus.DONE, TaskStatus.UNSPECIFIED),
      priority: fc.constantFrom(Priority.LOW, Priority.URGENT, Priority.UNSPECIFIED),
      createdAt: when,
      dueAt: fc.option(when, { nil: undefined }),
      tags: fc.array(text(10).filter((s) => s.length > 0), { maxLength: 4 }),
      notes: text(60),
      estimateMinutes: fc.integer({ min: 0, max: 100000 }),
    });
    const profile = fc.record({
      id: ident,
      displayName: text(20),
      authToken: text(20),
      createdAt: when,
      avatar: fc.uint8Array({ maxLength: 12 }),
    });
    const settings = fc.record({
      theme: fc.constantFrom(Theme.DARK, Theme.LIGHT, Theme.AUTO),
      language: fc.constantFrom("en", "fr", "pt-BR"),
      ui: fc.record({ gridDensity: fc.constantFrom(GridDensity.COMPACT, GridDensity.SPACIOUS), fontSize: fc.integer({ min: 8, max: 32 }), sidebarCollapsed: fc.boolean() }),
      aiProvider: fc.record({ model: text(10), apiKey: text(30) }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(task, { selector: (t) => t.id, maxLength: 25 }),
        fc.uniqueArray(profile, { selector: (p) => p.id, maxLength: 6 }),
        settings,
        async (tasks, profiles, value) => {
          const a = await openStore({ dir: fresh("a"), key });
          const stores: Store[] = [a];
          try {
            await a.batch((tx) => {
              for (const t of tasks) tx.tasks.put(t);
              for (const p of profiles) tx.profiles.put(p);
            });
            await a.settings.update(value);
            const file = path.join(tmp, `paths-${n++}.ndjson`);
            await a.export({ to: file, includeSensitive: true });
            // Every line of the export itself is taken by the fast path.
            for (const l of fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(1)) {
              const line = JSON.parse(l) as { entity: string; record: unknown };
              expect(inputReader(schemaOf[line.entity]!)(line.record)).toBeDefined();
            }
            const slow = path.join(tmp, `paths-${n++}.ndjson`);
            fs.writeFileSync(slow, generalOnly(file));
            const want = await contents(a);
            for (const f of [file, slow]) {
              const b = await openStore({ dir: fresh("b"), key });
              stores.push(b);
              await b.import(f);
              expect(await contents(b)).toEqual(want);
              for (const p of profiles) expect((await b.profiles.get(p.id))?.authToken).toBe(p.authToken);
              expect((await b.settings.get()).aiProvider?.apiKey).toBe(value.aiProvider.apiKey);
            }
          } finally {
            for (const s of stores) await s.close();
          }
        },
      ),
      { numRuns: 8 },
    );
  });

  it("notes exported at version 1 and imported at version 3 equal the store's own migration of them (fast-check)", async () => {
    const note = fc.record({ id: ident, text: text(20), tagsCsv: fc.array(fc.constantFrom("work", "urgent", "home"), { maxLength: 3 }).map((t) => t.join(",")), secret: text(12) });
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(note, { selector: (x) => x.id, maxLength: 20 }), async (notes) => {
        const dir = fresh("v1");
        const old = await openRaw({ notes: notesAt(1) }, { dir, key });
        for (const x of notes) await old.notes.put(x);
        const file = path.join(tmp, `notes-${n++}.ndjson`);
        await old.export({ to: file, includeSensitive: true });
        await old.close();
        const migrations = [step1to2, step2to3];
        const imported = await openRaw({ notes: notesAt(3) }, { dir: fresh("v3"), key, migrations });
        const migrated = await openRaw({ notes: notesAt(3) }, { dir, key, migrations }); // migrates at open
        try {
          const res = await imported.import(file);
          expect(res.records).toEqual({ notes: notes.length });
          const all = async (s: typeof imported) => (await s.notes.list()).map((r) => s.notes.toJson(r));
          expect(await all(imported)).toEqual(await all(migrated));
          for (const x of notes) expect((await imported.notes.get(x.id))?.secret).toBe(x.secret);
          // exported again at version 3 and imported: the fast path, the same records
          const again = path.join(tmp, `notes-${n++}.ndjson`);
          await imported.export({ to: again, includeSensitive: true });
          const third = await openRaw({ notes: notesAt(3) }, { dir: fresh("v3b"), key, migrations });
          await third.import(again);
          expect(await all(third)).toEqual(await all(migrated));
          await third.close();
        } finally {
          await imported.close();
          await migrated.close();
        }
      }),
      { numRuns: 6 },
    );
  });
});
