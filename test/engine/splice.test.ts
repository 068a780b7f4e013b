/**
 * A frame or block spliced from a diverged copy of the same store (same store id, same keys) into the same
 * place passes every frame check (crc, seal, AD, seq); the read must still notice that the record there is
 * not the one it was asked for (issue 19). docs/FORMAT.md, "Reads".
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import sodium from "sodium-native";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type EngineOptions, type WriteOp } from "../../src/runtime/storage/engine.js";
import { isCellarError } from "../../src/runtime/errors.js";
import { frameAt } from "../format/decoder.js";

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-splice-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const enc = new TextEncoder();
const put = (key: string): WriteOp => ({ op: "put", entity: "rec", key, version: 1, value: enc.encode(`record ${key}`), terms: [`t-${key}`] });
const keysOf = (p: string) => Array.from({ length: 10 }, (_, i) => `${p}-${String(i).padStart(3, "0")}`);

const modes: { name: string; opts: () => Partial<EngineOptions> }[] = [
  { name: "encrypted", opts: () => {
    const k = Buffer.alloc(32);
    sodium.randombytes_buf(k);
    return { key: k };
  } },
  { name: "plaintext", opts: () => ({ encryption: "none" }) },
];

/** A store, and two copies of it (same store id, same keyring) that diverge: `a-…` records in one, `b-…` in the other. */
async function diverged(extra: Partial<EngineOptions>, step: (e: Engine, prefix: string) => Promise<void>) {
  const base = tmp();
  const opts = (dir: string): EngineOptions => ({ dir, compression: false, compaction: { auto: false }, ...extra });
  const e = await Engine.open(opts(base));
  for (const k of keysOf("base")) await e.write([put(k)]);
  await e.close();
  const a = tmp();
  const b = tmp();
  fs.cpSync(base, a, { recursive: true });
  fs.cpSync(base, b, { recursive: true });
  for (const [dir, prefix] of [[a, "a"], [b, "b"]] as const) {
    const x = await Engine.open(opts(dir));
    await step(x, prefix);
    await x.close();
  }
  return { a, b, opts };
}

async function readErr(e: Engine, key: string): Promise<Record<string, unknown>> {
  try {
    const got = e.get("rec", key);
    throw new Error(`read returned ${got ? Buffer.from(got.value).toString() : "nothing"}`);
  } catch (err) {
    if (!isCellarError(err)) throw err;
    return err as unknown as Record<string, unknown>;
  }
}

describe("a block or frame from a diverged copy of the store, at the same place", () => {
  for (const mode of modes) {
    it(`segment block (${mode.name}): get("a-000") is E_CORRUPT naming the file and offset, never b-000's record`, async () => {
      const s = await diverged(mode.opts(), async (e, p) => {
        for (const k of keysOf(p)) await e.write([put(k)]);
        await e.compact();
      });
      const seg = fs.readdirSync(s.a).find((n) => n.endsWith(".seg"))!;
      const fa = path.join(s.a, seg);
      const ba = fs.readFileSync(fa);
      const bb = fs.readFileSync(path.join(s.b, seg));
      expect(bb.length).toBe(ba.length); // same layout: the blocks sit at the same offsets
      // Splice every data block (from offset 32 up to the index: its pages, then its directory) of the other copy.
      let blocksEnd = 32;
      while (ba[blocksEnd + 8] === 2) blocksEnd += 24 + ba.readUInt32LE(blocksEnd + 4); // frames of type 2
      expect(bb.subarray(32, blocksEnd).equals(ba.subarray(32, blocksEnd))).toBe(false);
      fs.writeFileSync(fa, Buffer.concat([ba.subarray(0, 32), bb.subarray(32, blocksEnd), ba.subarray(blocksEnd)]));
      const e = await Engine.open({ ...s.opts(s.a), verifyOnOpen: true });
      expect(e.recovery.damaged).toEqual([]); // every block passes its crc, seal and position checks
      const err = await readErr(e, "a-000");
      expect(err).toMatchObject({ code: "E_CORRUPT", file: seg, offset: 32, reason: "bad payload (the record at this place is not the one the index names)" });
      expect(String(err.message)).not.toMatch(/a-000|b-000/);
      // every record of the spliced block is refused the same way; none comes back as another's
      for (const k of [...keysOf("a"), ...keysOf("base")]) {
        let got: string | undefined;
        try {
          got = Buffer.from(e.get("rec", k)!.value).toString();
        } catch (x) {
          expect(isCellarError(x, "E_CORRUPT")).toBe(true);
          continue;
        }
        expect(got).toBe(`record ${k}`);
      }
      await e.close();
    });

    it(`journal frame (${mode.name}): a frame replaced under an open store is E_CORRUPT on read, never b-000's record`, async () => {
      const s = await diverged(mode.opts(), async (e, p) => {
        await e.write([put(`${p}-000`)]);
      });
      const j = "journal-000001.log";
      const fa = path.join(s.a, j);
      const ba = fs.readFileSync(fa);
      const bb = fs.readFileSync(path.join(s.b, j));
      let off = 32;
      for (let i = 0; i < 10; i++) off += frameAt(j, ba, off).bytes.length; // past the 10 base frames
      const fA = frameAt(j, ba, off);
      const fB = frameAt(j, bb, off);
      expect(fB.bytes.length).toBe(fA.bytes.length);
      expect(fB.seq).toBe(fA.seq);
      const e = await Engine.open(s.opts(s.a));
      // the sync tool puts the other copy's frame in place while the store is open
      const fd = fs.openSync(fa, "r+");
      fs.writeSync(fd, fB.bytes, 0, fB.bytes.length, off);
      fs.closeSync(fd);
      const err = await readErr(e, "a-000");
      expect(err).toMatchObject({ code: "E_CORRUPT", file: j, offset: off, reason: "bad payload (the record at this place is not the one the index names)" });
      expect(String(err.message)).not.toMatch(/a-000|b-000/);
      expect(Buffer.from(e.get("rec", "base-003")!.value).toString()).toBe("record base-003");
      await e.close();
    });
  }
});
