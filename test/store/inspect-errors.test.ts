// inspect() gives the same typed error as a read when a stored record does not decode or has no JSON form:
// E_CORRUPT naming entity, file and offset, never the record's key or value (issue 19).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { TaskEntity } from "../../src/generated/examples/tasks/v1/tasks_cellar.js";
import { TaskSchema } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import { CorruptionError, isCellarError } from "../../src/runtime/errors.js";
import { openStore } from "../../src/runtime/typed/store.js";
import { ValueKind } from "../../src/runtime/crypto/value.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A plaintext store holding one good task and, under key `secret-key-7`, the stored value `value`. */
async function storeWith(value: Uint8Array): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-inspect-"));
  dirs.push(dir);
  const s = await openStore({ tasks: TaskEntity }, { dir, encryption: "none" });
  await s.tasks.put({ id: "a-good", title: "fine" });
  await s.close();
  // The engine takes any bytes: what a damaged plaintext file (with a matching crc32) would hold.
  const e = await Engine.open({ dir, encryption: "none" });
  await e.write([{ op: "put", entity: "tasks", key: "secret-key-7", version: 1, value, terms: [] }]);
  await e.close();
  return dir;
}

const plain = (pb: Uint8Array) => Uint8Array.of(ValueKind.plain, ...pb);

async function inspectAll(dir: string): Promise<{ records: unknown[]; error: unknown; events: unknown[] }> {
  const s = await openStore({ tasks: TaskEntity }, { dir, encryption: "none" });
  const events: unknown[] = [];
  s.on("corruption", (e) => events.push(e));
  const records: unknown[] = [];
  let error: unknown;
  try {
    for await (const r of s.inspect()) records.push(r);
  } catch (e) {
    error = e;
  } finally {
    await s.close();
  }
  return { records, error, events };
}

describe("inspect() on records that do not decode", () => {
  it("a value with an illegal wire type is E_CORRUPT naming entity, file and offset, not the key", async () => {
    // field 1, wire type 7 (no such wire type): protobuf-es throws a plain Error
    const dir = await storeWith(plain(Uint8Array.of(0x0f, 0x01)));
    const { records, error, events } = await inspectAll(dir);
    expect(records).toHaveLength(1); // the good record, in key order before the bad one
    expect(error).toBeInstanceOf(CorruptionError);
    expect(isCellarError(error, "E_CORRUPT")).toBe(true);
    const err = error as CorruptionError;
    expect(err.file).toMatch(/^journal-\d+\.log$/);
    expect(err.offset).toBeGreaterThan(0);
    expect(err.message).toContain("`tasks`");
    expect(err.message).not.toContain("secret-key-7");
    expect(events).toContain(error);
  });

  it("a truncated value (a length running past the end) is E_CORRUPT", async () => {
    const dir = await storeWith(plain(Uint8Array.of(0x12, 0x7f, 0x41)));
    const { error } = await inspectAll(dir);
    expect(isCellarError(error, "E_CORRUPT")).toBe(true);
  });

  it("an unknown value kind is E_CORRUPT", async () => {
    const dir = await storeWith(Uint8Array.of(0x09, 0x01));
    const { error } = await inspectAll(dir);
    expect(isCellarError(error, "E_CORRUPT")).toBe(true);
  });

  it("a Timestamp with no JSON form (nanos 2e9) is E_CORRUPT, not a raw Error from toJson", async () => {
    const msg = create(TaskSchema, { id: "secret-key-7", title: "t", createdAt: { seconds: 1n, nanos: 2_000_000_000 } });
    const dir = await storeWith(plain(toBinary(TaskSchema, msg)));
    const { records, error } = await inspectAll(dir);
    expect(records).toHaveLength(1);
    expect(isCellarError(error, "E_CORRUPT")).toBe(true);
    expect((error as Error).message).not.toContain("secret-key-7");
  });
});
