/**
 * An import larger than one write (32 MiB): its values spilled to a sealed staging file past `memoryBytes`, merged by one compaction, still
 * all or nothing: a bad last line leaves the store byte for byte as it was (and no staging directory); a good
 * file lands whole, index terms and sensitive fields included, in merge and replace mode, and survives a
 * reopen.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isCellarError } from "../../src/runtime/index.js";
import { openStore } from "../../src/runtime/typed/store.js";
import { STAGING_DIR } from "../../src/runtime/typed/import.js";
import { storeSnapshot } from "../helpers/files.js";
import { notesAt } from "./helpers/notes-versions.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-import-large-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(3);
const RECORDS = 300;
const BODY = 120 * 1024; // 300 × 120 KiB ≈ 35 MiB of records: past the 32 MiB of one write

/** An export file of `notes` v3 written directly (what `export` writes, line by line). */
function writeFile(file: string, lastLine?: string): void {
  const fd = fs.openSync(file, "w");
  const header = { format: "cellar-export", version: 1, storeId: "00", createdAt: "", includeSensitive: true, entities: [{ entity: "notes", kind: "collection", version: 3, records: RECORDS, redacted: [] }] };
  fs.writeSync(fd, JSON.stringify(header) + "\n");
  const body = "x".repeat(BODY);
  for (let i = 0; i < RECORDS; i++) {
    const id = `n${String((i * 7919) % RECORDS).padStart(4, "0")}`; // not in key order
    const record = { id, body: body + id, tags: i % 2 ? ["odd"] : ["even"], priority: i % 5, secret: `s-${id}` };
    fs.writeSync(fd, JSON.stringify({ entity: "notes", version: 3, key: id, record }) + "\n");
  }
  if (lastLine) fs.writeSync(fd, lastLine + "\n");
  fs.closeSync(fd);
}

async function seeded(dir: string) {
  const store = await openStore({ notes: notesAt(3) }, { dir, key });
  await store.notes.put({ id: "n0001", body: "stored", tags: ["stored"], secret: "old" });
  await store.notes.put({ id: "zz-mine", body: "only in the store", tags: ["stored"], secret: "mine" });
  return store;
}

describe("an import past 32 MiB", () => {
  it("with a bad last line writes nothing and leaves no staging directory (staged on disk)", async () => {
    const file = path.join(tmp, "bad.ndjson");
    writeFile(file, JSON.stringify({ entity: "notes", version: 3, key: "bad", record: { id: "bad", priority: -1 } }));
    const dir = path.join(tmp, "bad");
    const store = await seeded(dir);
    const before = storeSnapshot(dir);
    let err: unknown;
    try {
      await store.import(file, { memoryBytes: 8 << 20 });
    } catch (e) {
      err = e;
    }
    expect(isCellarError(err, "E_IMPORT")).toBe(true);
    expect(err).toMatchObject({ line: RECORDS + 2, entity: "notes", path: ["priority"] });
    expect(fs.existsSync(path.join(dir, STAGING_DIR))).toBe(false);
    expect(storeSnapshot(dir)).toEqual(before);
    expect(await store.notes.count()).toBe(2);
    await store.close();
  }, 60_000);

  for (const [how, memoryBytes] of [["held in memory", undefined], ["staged on disk", 8 << 20]] as const) it(`merges the whole file in one switch (merge), and holds exactly the file after replace (${how})`, async () => {
    const file = path.join(tmp, "good.ndjson");
    writeFile(file);
    const dir = path.join(tmp, `good-${memoryBytes ?? "mem"}`);
    const staged: string[] = [];
    const opts = { ...(memoryBytes ? { memoryBytes } : {}), onProgress: (p: { phase: string }) => void (p.phase === "stage" && staged.push(p.phase)) };
    let store = await seeded(dir);
    const changes: string[] = [];
    store.on("change", (e) => changes.push(String(e.key)));
    const res = await store.import(file, opts);
    expect(res).toMatchObject({ staged: true, records: { notes: RECORDS } });
    expect(staged.length).toBe(memoryBytes ? 1 : 0);
    expect(changes).toEqual([]); // merged in by a compaction: no per-record events (README)
    expect(fs.existsSync(path.join(dir, STAGING_DIR))).toBe(false);
    const check = async () => {
      expect((await store.notes.get("n0001"))?.body).toBe("x".repeat(BODY) + "n0001");
      expect((await store.notes.get("n0001"))?.secret).toBe("s-n0001");
      expect(await store.notes.query({ tags: "odd" })).toHaveLength(RECORDS / 2);
      expect(await store.notes.query({ tags: "stored" })).toHaveLength(1);
    };
    expect(await store.notes.count()).toBe(RECORDS + 1);
    await check();
    await store.close();
    store = await openStore({ notes: notesAt(3) }, { dir, key });
    expect(await store.notes.count()).toBe(RECORDS + 1);
    await check();
    expect((await store.notes.get("zz-mine"))?.secret).toBe("mine");

    const replaced = await store.import(file, { ...opts, mode: "replace" });
    expect(replaced).toMatchObject({ staged: true, deleted: 1 });
    expect(await store.notes.has("zz-mine")).toBe(false);
    expect(await store.notes.count()).toBe(RECORDS);
    expect(await store.notes.query({ tags: "stored" })).toHaveLength(0);
    await store.close();
    store = await openStore({ notes: notesAt(3) }, { dir, key });
    expect(await store.notes.count()).toBe(RECORDS);
    expect((await store.notes.get("n0299"))?.secret).toBe("s-n0299");
    await store.close();
  }, 60_000);

  it("spills the held values sealed (no record byte in clear in import-staging/), and a changed staging file fails the import with E_CORRUPT, nothing written", async () => {
    const file = path.join(tmp, "spill.ndjson");
    writeFile(file);
    const dir = path.join(tmp, "spill");
    const store = await seeded(dir);
    const values = path.join(dir, STAGING_DIR, "values");
    let spilled = 0;
    let clear = true;
    const res = await store.import(file, {
      memoryBytes: 8 << 20,
      onProgress: (p) => {
        if (p.phase !== "switch") return;
        const bytes = fs.readFileSync(values);
        spilled = bytes.length;
        clear = bytes.includes("x".repeat(64)) || bytes.includes("s-n0001"); // a body, a sensitive value
      },
    });
    expect(res).toMatchObject({ staged: true, records: { notes: RECORDS } });
    expect(spilled).toBeGreaterThan(24 << 20); // spilled several times (each time 8 MiB were held), not once
    expect(clear).toBe(false);
    expect((await store.notes.get("n0002"))?.body).toBe("x".repeat(BODY) + "n0002");
    expect(fs.existsSync(path.join(dir, STAGING_DIR))).toBe(false);

    const before = storeSnapshot(dir);
    let err: unknown;
    try {
      await store.import(file, {
        memoryBytes: 8 << 20,
        onProgress: (p) => {
          if (p.phase !== "switch") return;
          const fd = fs.openSync(values, "r+");
          fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 1000); // inside the first chunk's ciphertext
          fs.closeSync(fd);
        },
      });
    } catch (e) {
      err = e;
    }
    expect(isCellarError(err, "E_CORRUPT"), String(err)).toBe(true);
    expect(String(err)).not.toContain("xxxx");
    expect(storeSnapshot(dir)).toEqual(before);
    expect(fs.existsSync(path.join(dir, STAGING_DIR))).toBe(false);
    await store.close();
  }, 60_000);

  it("sorts keys from every UTF-16 range in UTF-8 order when merging in (astral keys after U+E000-U+FFFF ones)", async () => {
    const file = path.join(tmp, "keys.ndjson");
    const fd = fs.openSync(file, "w");
    const header = { format: "cellar-export", version: 1, includeSensitive: true, entities: [{ entity: "notes", kind: "collection", version: 3 }] };
    fs.writeSync(fd, JSON.stringify(header) + "\n");
    const prefixes = ["a", "é", "\uE000", "\uFFFD", "𝄞", "😀", "z"];
    const ids: string[] = [];
    for (let i = 0; i < 230; i++) {
      const id = `${prefixes[i % prefixes.length]}-${i}`;
      ids.push(id);
      fs.writeSync(fd, JSON.stringify({ entity: "notes", version: 3, key: id, record: { id, body: "k".repeat(BODY), tags: ["t"] } }) + "\n");
    }
    fs.closeSync(fd);
    const dir = path.join(tmp, "keys");
    let store = await openStore({ notes: notesAt(3) }, { dir, key });
    expect((await store.import(file)).staged).toBe(true);
    await store.close();
    store = await openStore({ notes: notesAt(3) }, { dir, key });
    expect(await store.notes.count()).toBe(ids.length);
    for (const id of ids) expect((await store.notes.get(id))?.id).toBe(id);
    expect(await store.notes.query({ tags: "t" })).toHaveLength(ids.length);
    await store.close();
  }, 60_000);
});
