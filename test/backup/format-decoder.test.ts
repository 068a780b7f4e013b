/**
 * A second reader of the backup file, written from docs/FORMAT.md ("Backup file") alone (it imports nothing
 * from src/runtime/ but through the store it backs up): it must find in the file what the runtime says is there.
 */
import fs from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { CHEAP, KEY, task, tempRoot } from "./helpers.js";

const { root, cleanup } = tempRoot("cellar-backup-doc-");
afterAll(cleanup);

function decode(b: Buffer) {
  expect(b.subarray(0, 8).toString("latin1")).toBe("CELLARBK");
  const version = b[8];
  const protection = b[9];
  expect(b.readUInt16LE(10)).toBe(0);
  const m = b.readUInt32LE(12);
  expect(b.readUInt32LE(16 + m)).toBe(crc32(b.subarray(0, 16 + m)));
  let p = 16;
  const varint = () => {
    let v = 0;
    for (let mul = 1; ; mul *= 128) {
      const x = b[p++]!;
      v += (x & 0x7f) * mul;
      if (x < 0x80) return v;
    }
  };
  const str = () => {
    const n = varint();
    const s = b.subarray(p, p + n).toString("utf8");
    p += n;
    return s;
  };
  const createdAt = varint();
  const storeId = b.subarray(p, p + 16).toString("hex");
  p += 16;
  const label = str();
  const entities = Array.from({ length: varint() }, () => ({ name: str(), version: varint(), records: varint() }));
  const files = Array.from({ length: varint() }, () => ({ name: str(), length: varint() }));
  expect(p).toBe(16 + m);
  let at = 20 + m;
  const packed = new Map<string, Buffer>();
  for (const f of files) {
    packed.set(f.name, b.subarray(at, at + f.length));
    at += f.length;
  }
  expect(at + 4).toBe(b.length);
  expect(b.readUInt32LE(at)).toBe(crc32(b.subarray(0, at)));
  return { version, protection, createdAt, storeId, label, entities, files, packed };
}

describe("the backup file as FORMAT.md describes it", () => {
  it("header, metadata, packed store files (each a Cellar file of the store), checksum", async () => {
    const store = await openStore({ dir: path.join(root, "s"), key: KEY });
    for (let i = 0; i < 30; i++) await store.tasks.put(task(i));
    await store.compact();
    await store.tasks.put(task(99));
    const before = Date.now();
    const file = path.join(root, "b.cellarbackup");
    const info = await store.backup({ to: file, label: "l ✓", password: "pw", passwordCost: CHEAP });
    await store.close();
    const d = decode(fs.readFileSync(file));
    expect(d.version).toBe(1);
    expect(d.protection).toBe(2);
    expect(d.createdAt).toBeLessThanOrEqual(Date.now());
    expect(d.createdAt).toBeGreaterThan(before - 60_000);
    expect(d.storeId).toBe(info.storeId);
    expect(d.label).toBe("l ✓");
    expect(d.entities).toEqual(info.entities);
    expect(d.files.map((f) => f.name)).toEqual(["MANIFEST", "KEYRING", ...d.files.slice(2).map((f) => f.name).sort()]);
    for (const [name, bytes] of d.packed) {
      expect(bytes.subarray(0, 6).toString("latin1")).toBe("CELLAR");
      expect(String.fromCharCode(bytes[6]!)).toBe(name === "MANIFEST" ? "M" : name === "KEYRING" ? "K" : name.startsWith("journal") ? "J" : "S");
      expect(bytes.subarray(8, 24).toString("hex")).toBe(info.storeId);
    }
    expect(d.packed.get("KEYRING")![32 + 24]).toBe(2); // kekKind 2: a passphrase keyring (Argon2id salt and cost inside)
    // A journal ends with its end record (type 6) right after its last frame: no preallocated zeros.
    for (const [name, bytes] of d.packed) if (name.startsWith("journal")) expect(bytes[bytes.length - 32 + 8]).toBe(6);
  });
});
