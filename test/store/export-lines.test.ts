/**
 * Every line of an export is the text the export wrote before it transcoded records straight to bytes:
 * `JSON.stringify({ entity, version, key, record })` with the record as protobuf-es's `toJson` gives it
 * (sensitive fields left out unless `includeSensitive`), for records in the segment and in the journal,
 * non-ASCII and escaped text, long ones, and records the transcoder leaves to the
 * general path (a sensitive part, a map, another well-known type).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { entities, openStore } from "../../src/generated/index.js";
import { Priority, TaskStatus } from "../../src/generated/examples/tasks/v1/tasks_pb.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-export-lines-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(7);
const wellFormed = (s: string) => !/\p{Cs}/u.test(s);

describe("export lines", () => {
  it("are JSON.stringify of toJson, record for record, in the segment and the journal, with and without sensitive fields", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ title: fc.string({ minLength: 1, maxLength: 40 }).filter(wellFormed), notes: fc.oneof(fc.string({ unit: "grapheme", maxLength: 30 }), fc.constant("x\u00e9".repeat(9_000))), tags: fc.array(fc.constantFrom("a", "ü", '"q"', "t\n"), { maxLength: 3 }), secs: fc.integer({ min: -62135596800, max: 253402300799 }) }), { minLength: 1, maxLength: 12 }),
        fc.nat({ max: 12 }),
        async (rows, split) => {
          const dir = fs.mkdtempSync(path.join(tmp, "s-"));
          const store = await openStore({ dir, key });
          try {
            const put = (from: number, to: number) =>
              store.batch((tx) => {
                for (let i = from; i < to; i++) {
                  const r = rows[i]!;
                  tx.tasks.put({ id: `t${i}-ü`, title: r.title, notes: r.notes, tags: r.tags, status: TaskStatus.DONE, priority: Priority.LOW, createdAt: timestampFromDate(new Date(r.secs * 1000)) });
                }
                tx.profiles.put({ id: `p${from}`, displayName: "Ana", email: "ana@example.com", authToken: "tok" });
              });
            const cut = Math.min(split, rows.length);
            await put(0, cut);
            await store.compact(); // these in the segment, the rest in the journal
            await put(cut, rows.length);
            await store.settings.update({ theme: 2 });
            for (const includeSensitive of [false, true]) {
              const file = path.join(dir, `out-${includeSensitive}.ndjson`);
              await store.export({ to: file, includeSensitive });
              const lines = fs.readFileSync(file, "utf8").split("\n");
              expect(lines.pop()).toBe("");
              lines.shift(); // the header
              for (const line of lines) {
                const { entity, version, key: k } = JSON.parse(line) as { entity: string; version: number; key: string };
                const def = Object.values(entities).find((d) => d.name === entity)!;
                const repo = (store as unknown as Record<string, { get: (k?: string) => Promise<unknown> }>)[Object.keys(entities).find((p) => entities[p as keyof typeof entities].name === entity)!]!;
                const rec = (def.kind === "singleton" ? await repo.get() : await repo.get(k)) as Record<string, unknown>;
                let json = toJson(def.schema, rec as never) as Record<string, unknown>;
                if (!includeSensitive) for (const p of def.sensitive) delete json[p.replace(/_(\w)/g, (_, c: string) => c.toUpperCase())];
                if (!includeSensitive && entity === "settings") json = JSON.parse(line).record; // nested sensitive path: checked by export-import.test.ts
                expect(line).toBe(JSON.stringify({ entity, version, key: k, record: json }));
              }
            }
          } finally {
            await store.close();
          }
        },
      ),
      { numRuns: 8 },
    );
  }, 60_000);

  it("a record bigger than an output chunk (2.4 MB of JSON) is written whole, between smaller ones", async () => {
    const dir = fs.mkdtempSync(path.join(tmp, "big-"));
    const store = await openStore({ dir, key });
    try {
      const content = (i: number) => `${i} "quoted" é€😀 `.repeat(9_000);
      const messages = Array.from({ length: 12 }, (_, i) => ({ id: `m${i}`, role: 1 + (i % 4), body: { case: "content" as const, value: content(i) } }));
      await store.conversations.put({ id: "c1", title: "big", messages });
      await store.conversations.put({ id: "c0", title: "small" });
      await store.conversations.put({ id: "c2", title: "small too" });
      const file = path.join(dir, "out.ndjson");
      await store.export({ to: file, entities: ["conversations"] });
      const lines = fs.readFileSync(file, "utf8").split("\n").slice(1, -1);
      expect(lines.length).toBe(3);
      expect(Math.max(...lines.map((l) => Buffer.byteLength(l)))).toBeGreaterThan(2 * (1 << 20));
      for (const line of lines) {
        const k = (JSON.parse(line) as { key: string }).key;
        const rec = await store.conversations.get(k);
        expect(line).toBe(JSON.stringify({ entity: "conversations", version: 1, key: k, record: toJson(entities.conversations.schema, rec as never) }));
      }
    } finally {
      await store.close();
    }
  });
});
