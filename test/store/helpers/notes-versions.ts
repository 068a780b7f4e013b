/**
 * Three versions of one entity, `notes`, for migration tests: the message descriptors come from a real
 * `buf build` of inline protos, and the entity definitions are what codegen would emit for each version.
 *
 *   v1: id, text, tags_csv ("a,b"), secret (sensitive)
 *   v2: id, body (was text, field 2), tags (repeated, field 5; field 3 reserved), secret
 *   v3: v2 + priority (field 6), derived from the tags; priority must be ≥ 0
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createFileRegistry, type DescMessage, fromBinary, type Message } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { z } from "zod";
import { defineCollection } from "../../../src/runtime/typed/entity.js";
import type { MigrationStep } from "../../../src/runtime/typed/migration.js";
import { bufBuild, writeWorkspace } from "../../codegen/helpers.js";

const protos: Record<string, string> = {
  "notes/v1/note.proto": `syntax = "proto3";
package notes.v1;
message Note {
  string id = 1;
  string text = 2;
  string tags_csv = 3;
  string secret = 4;
}
`,
  "notes/v2/note.proto": `syntax = "proto3";
package notes.v2;
message Note {
  reserved 3;
  reserved "tags_csv";
  string id = 1;
  string body = 2;
  string secret = 4;
  repeated string tags = 5;
}
`,
  "notes/v3/note.proto": `syntax = "proto3";
package notes.v3;
message Note {
  reserved 3;
  reserved "tags_csv";
  string id = 1;
  string body = 2;
  string secret = 4;
  repeated string tags = 5;
  int32 priority = 6;
}
`,
};

function build(): Record<1 | 2 | 3, DescMessage> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-notes-"));
  try {
    writeWorkspace(dir, protos);
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, bufBuild(dir)));
    const get = (n: string) => {
      const m = registry.getMessage(n);
      if (!m) throw new Error(`no message ${n}`);
      return m;
    };
    return { 1: get("notes.v1.Note"), 2: get("notes.v2.Note"), 3: get("notes.v3.Note") };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const NoteV = build();

const base = { id: z.string().min(1), secret: z.string().optional(), $typeName: z.string().optional() };
const validators = {
  1: z.object({ ...base, text: z.string().optional(), tagsCsv: z.string().optional() }).strict(),
  2: z.object({ ...base, body: z.string().optional(), tags: z.array(z.string()).optional() }).strict(),
  3: z.object({ ...base, body: z.string().optional(), tags: z.array(z.string()).optional(), priority: z.number().int().min(0).optional() }).strict(),
};

/** The message of any version, loosely typed: the tests read fields of several versions. */
export type AnyNote = Message & { [field: string]: any };

export function notesAt(version: 1 | 2 | 3) {
  return defineCollection<GenMessage<AnyNote>, string, string>({
    name: "notes",
    version,
    schema: NoteV[version] as GenMessage<AnyNote>,
    validator: validators[version],
    sensitive: ["secret"],
    key: "id",
    keyKind: "string",
    indexes: version === 1 ? [] : ["tags"],
  });
}

type Rec = Record<string, unknown>;

export const step1to2: MigrationStep = {
  entity: "notes",
  from: 1,
  to: 2,
  fromSchema: NoteV[1],
  toSchema: NoteV[2],
  migrate(old: Rec) {
    const csv = String(old.tagsCsv ?? "");
    return { id: old.id, body: old.text, secret: old.secret, tags: csv ? csv.split(",") : [] };
  },
};

export const step2to3: MigrationStep = {
  entity: "notes",
  from: 2,
  to: 3,
  fromSchema: NoteV[2],
  toSchema: NoteV[3],
  migrate(old: Rec) {
    const tags = old.tags as string[];
    return { id: old.id, body: old.body, secret: old.secret, tags, priority: tags.includes("urgent") ? 2 : tags.length ? 1 : 0 };
  },
};
