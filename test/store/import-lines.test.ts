/**
 * The import's line reader (typed/import.ts `fileLines`) reads a file in batches of whole lines, with a small
 * buffer here so that lines cross reads and outgrow the buffer: its lines must be readline's (`crlfDelay:
 * Infinity`, as the import read files before), whatever the line ends (`\n`, `\r\n`, a lone `\r`), the UTF-8
 * widths split across reads and whether the file ends with a newline (fast-check).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { fileLines } from "../../src/runtime/typed/import.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-import-lines-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;

async function readlineLines(file: string): Promise<string[]> {
  const out: string[] = [];
  for await (const l of readline.createInterface({ input: fs.createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity })) out.push(l);
  return out;
}

async function batchLines(file: string, readBytes: number): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of fileLines(file, readBytes)) out.push(...batch);
  return out;
}

describe("fileLines", () => {
  it("gives readline's lines for any text, line ends and buffer size (fast-check)", async () => {
    const piece = fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 40 }),
      fc.constantFrom("\n", "\r\n", "\r", "\n\n", "é", "✓", "𝄞", "{\"a\":1}", "x".repeat(300)),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 60 }), fc.integer({ min: 1, max: 64 }), async (pieces, readBytes) => {
        const file = path.join(tmp, `lines-${n++}.txt`);
        fs.writeFileSync(file, pieces.join(""));
        const got = await batchLines(file, readBytes);
        const want = await readlineLines(file);
        // readline may or may not give a last empty line after a final lone `\r`; blank last lines are ignored by the import.
        const trim = (a: string[]) => (a.length && a[a.length - 1] === "" && pieces.join("").endsWith("\r") ? a.slice(0, -1) : a);
        expect(trim(got)).toEqual(trim(want));
      }),
      { numRuns: 300 },
    );
  });

  it("reads a file of lines longer than its buffer, and invalid UTF-8 as readline decodes it", async () => {
    const file = path.join(tmp, "long.txt");
    const long = "ü".repeat(5000);
    fs.writeFileSync(file, Buffer.concat([Buffer.from(`a\n${long}\r\nb\n`), Buffer.from([0xff, 0xc3, 0x0a, 0x61, 0xe2, 0x9c])]));
    expect(await batchLines(file, 1000)).toEqual(await readlineLines(file));
    expect((await batchLines(file, 1000))[1]).toBe(long);
  });
});
