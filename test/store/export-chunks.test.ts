/**
 * Export encodes its lines straight into 1 MiB chunks (typed/export.ts, `chunkedLines`): lines that cross a
 * chunk's end, lines longer than a chunk, and multi-byte UTF-8 (2-, 3- and 4-byte characters) are written
 * whole and in order, as `Buffer.from` encodes them, and an export imports back to the same records.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { task } from "../backup/helpers.js";
import { chunkedLines } from "../../src/runtime/typed/export.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-export-chunks-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(7);

describe("export in chunks", () => {
  it("chunkedLines writes the bytes of Buffer.from(lines.join) for lines shorter and longer than a chunk (lone surrogates as U+FFFD)", async () => {
    const lines: string[] = [];
    for (let i = 0; i < 200; i++) lines.push(`${i}:` + "aé€😀\uD800"[i % 5]!.repeat((i * 7919) % 20_000));
    lines.splice(100, 0, "€".repeat(400_000), "", "x".repeat(1 << 20)); // 1.2 MB and 1 MiB lines: bigger than a chunk
    const file = path.join(tmp, "lines.txt");
    const out = fs.createWriteStream(file);
    const failed = new Promise<never>((_, reject) => out.once("error", reject));
    const { write, flush } = chunkedLines(out, failed);
    for (let i = 0; i < lines.length; i += 17) await write(lines.slice(i, i + 17));
    await flush();
    await new Promise<void>((r) => out.end(() => r()));
    expect(fs.readFileSync(file).equals(Buffer.from(lines.join("\n") + "\n"))).toBe(true);
  });

  it("an export's lines cross chunk ends whole, in every UTF-8 length, and import back to the same records", async () => {
    const store = await openStore({ dir: path.join(tmp, "a"), key });
    const notes = new Map<string, string>();
    await store.batch((tx) => {
      for (let i = 0; i < 300; i++) {
        // 4-17 KiB a line (1.5 MB in all), mixed widths: chunk ends fall inside lines.
        const n = `${i} é€😀 `.repeat(400 + (i % 7) * 250);
        const t = { ...task(i), notes: n };
        notes.set(t.id, n);
        tx.tasks.put(t);
      }
    });
    const file = path.join(tmp, "a.ndjson");
    await store.export({ to: file, entities: ["tasks"] });
    const text = fs.readFileSync(file);
    expect(text.toString("utf8").includes("\uFFFD")).toBe(false);
    const lines = text.toString("utf8").split("\n");
    expect(lines.pop()).toBe("");
    expect(lines.length).toBe(301);
    const seen = lines.slice(1).map((l) => JSON.parse(l) as { key: string; record: { notes: string; id: string } });
    expect(seen.map((l) => l.key)).toEqual([...notes.keys()].sort());
    for (const l of seen) expect(l.record.notes).toBe(notes.get(l.key));
    const other = await openStore({ dir: path.join(tmp, "b"), key });
    await other.import(file);
    expect((await other.tasks.get("task-00150"))?.notes).toBe(notes.get("task-00150"));
    expect((await other.tasks.list()).map((r) => other.tasks.toJson(r))).toEqual((await store.tasks.list()).map((r) => store.tasks.toJson(r)));
    expect(await other.tasks.count()).toBe(300);
    await other.close();
    await store.close();
  });
});
