/**
 * A record whose bytes are intact but do not decode as its entity's current message type (a breaking schema
 * change without raising `version`) is a schema mismatch: E_SCHEMA_MISMATCH naming entity and versions,
 * never E_CORRUPT, no `corruption` event, nothing quarantined, and the app that wrote it still reads it.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { create, createFileRegistry, type DescMessage } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { defineCollection, isCellarError, openStore, SchemaMismatchError } from "../../src/runtime/index.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-mismatch-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(9);

/** `mm.Note { string id = 1; <body> body = 2; }` with `body` of protobuf type `bodyType` (12 bytes, 9 string, 11 message). */
function noteSchema(bodyType: number, typeName?: string): DescMessage {
  const file = create(FileDescriptorProtoSchema, {
    name: "mm.proto",
    package: "mm",
    syntax: "proto3",
    messageType: [
      {
        name: "Note",
        field: [
          { name: "id", number: 1, type: 9, label: 1, jsonName: "id" },
          { name: "body", number: 2, type: bodyType, label: 1, jsonName: "body", ...(typeName ? { typeName } : {}) },
        ],
      },
      { name: "Inner", field: [{ name: "x", number: 1, type: 5, label: 1, jsonName: "x" }] },
    ],
  });
  return createFileRegistry(file, () => undefined).getMessage("mm.Note")!;
}

type AnyNote = { $typeName: string; [field: string]: any };
const notes = (schema: DescMessage) =>
  defineCollection<GenMessage<AnyNote>, string, never>({
    name: "notes",
    version: 1,
    schema: schema as GenMessage<AnyNote>,
    validator: z.object({ $typeName: z.string().optional(), id: z.string().min(1), body: z.any().optional() }).strict(),
    sensitive: [],
    key: "id",
    keyKind: "string",
    indexes: [],
  });

const A = noteSchema(12); // bytes body = 2
const cases: [string, DescMessage][] = [
  ["bytes to string (invalid UTF-8)", noteSchema(9)],
  ["bytes to a message", noteSchema(11, ".mm.Inner")],
];

describe("a breaking schema change at the same version", () => {
  for (const [name, B] of cases) {
    it(`${name}: E_SCHEMA_MISMATCH on read, no corruption event, no quarantine; schema A still reads it`, async () => {
      const dir = path.join(tmp, name.replace(/\W+/g, "-"));
      const body = Uint8Array.of(0xff, 0xfe, 0x00);
      let store = await openStore({ notes: notes(A) }, { dir, key });
      await store.notes.put({ id: "n1", body });
      await store.close();

      const s = await openStore({ notes: notes(B) }, { dir, key });
      const events: unknown[] = [];
      s.on("corruption", (e) => events.push(e));
      s.on("error", (e) => events.push(e));
      const errors: unknown[] = [];
      const inspectAll = async () => {
        for await (const r of s.inspect()) void r;
      };
      for (const read of [() => s.notes.get("n1"), () => s.notes.list(), () => s.notes.getMany(["n1"]), inspectAll]) {
        errors.push(await read().then(() => null, (e: unknown) => e));
      }
      for (const e of errors) {
        expect(isCellarError(e, "E_SCHEMA_MISMATCH"), String(e)).toBe(true);
        const m = e as SchemaMismatchError;
        expect(m).toBeInstanceOf(SchemaMismatchError);
        expect(m.entity).toBe("notes");
        expect(m.stored).toBe(1);
        expect(m.expected).toBe(1);
        expect(m.key).toBe("n1");
        expect(m.message).toContain("`notes`");
        expect(m.message).toMatch(/version 1/);
        expect(m.message).not.toContain("n1");
      }
      await new Promise<void>((r) => setImmediate(r));
      expect(events).toEqual([]);
      expect(s.recoveryReport.damaged).toEqual([]);
      await s.close();
      expect(fs.existsSync(path.join(dir, "quarantine"))).toBe(false);

      // The app that wrote it (schema A) still reads the record, unchanged.
      store = await openStore({ notes: notes(A) }, { dir, key });
      expect(Array.from((await store.notes.get("n1"))?.body as Uint8Array)).toEqual(Array.from(body));
      expect(store.recoveryReport.damaged).toEqual([]);
      await store.close();
    });
  }
});
