/**
 * The worked example of docs/FORMAT.md ("Worked example"): a plaintext store
 * holding one put. Run `npx tsx test/format/example-store.ts [dir]` to print
 * each file as a hex dump; decoder.test.ts checks the dump in FORMAT.md
 * against a freshly written store.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Engine } from "../../src/runtime/storage/engine.js";

export async function writeExample(dir: string): Promise<void> {
  const engine = await Engine.open({ dir, encryption: "none", compaction: { auto: false } });
  await engine.write([{ op: "put", entity: "note", key: "n1", version: 1, value: new TextEncoder().encode("hello"), terms: [] }]);
  await engine.close();
}

export function hexDump(bytes: Uint8Array, upTo = bytes.length): string {
  const lines: string[] = [];
  for (let o = 0; o < upTo; o += 16) {
    const row = [...bytes.subarray(o, Math.min(o + 16, upTo))];
    const h = row.map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const a = row.map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${o.toString(16).padStart(8, "0")}  ${h.padEnd(47)}  |${a}|`);
  }
  return lines.join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dir = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), "cellar-example-"));
  await writeExample(dir);
  for (const name of fs.readdirSync(dir).sort()) {
    const bytes = fs.readFileSync(path.join(dir, name));
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end--;
    console.log(`== ${name} (${bytes.length} bytes${end < bytes.length ? `, zeros from 0x${end.toString(16)}` : ""})`);
    console.log(hexDump(bytes, Math.ceil(end / 16) * 16));
  }
}
