/**
 * A version 4 segment's paged index (docs/FORMAT.md, "Segment"): a directory read at open, index pages read
 * when first needed. A flipped byte in a page or in the directory is reported and quarantined, never read back
 * as another record; a version 3 segment (one index frame, as the previous release wrote) still opens.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import sodium from "sodium-native";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type EngineOptions, type WriteOp } from "../../src/runtime/storage/engine.js";
import { isCellarError } from "../../src/runtime/errors.js";
import { setSegmentWriteVersion } from "../../src/runtime/storage/segment.js";
import { listLiveRecords } from "../format/decoder.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const enc = new TextEncoder();
const N = 1500;
const keyOf = (i: number) => `k-${String(i).padStart(5, "0")}`;
const put = (i: number): WriteOp => ({ op: "put", entity: "rec", key: keyOf(i), version: 1, value: enc.encode(`record ${i}`), terms: [`t-${i}`, "\u0001s\u0000x"] });

const key = Buffer.alloc(32);
sodium.randombytes_buf(key);
const modes: { name: string; opts: Partial<EngineOptions> }[] = [
  { name: "encrypted", opts: { key } },
  { name: "plaintext", opts: { encryption: "none" } },
];

/** A compacted store of N records (several index pages) and, for each frame of its segment, offset/type/length. */
async function store(extra: Partial<EngineOptions>, version = 4) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-pages-"));
  dirs.push(dir);
  const opts: EngineOptions = { dir, compaction: { auto: false }, ...extra };
  setSegmentWriteVersion(version);
  try {
    const e = await Engine.open(opts);
    for (let i = 0; i < N; i += 100) await e.write(Array.from({ length: 100 }, (_, j) => put(i + j)));
    await e.compact();
    await e.close();
  } finally {
    setSegmentWriteVersion(4);
  }
  const seg = path.join(dir, fs.readdirSync(dir).find((n) => n.endsWith(".seg"))!);
  const b = fs.readFileSync(seg);
  const frames: { offset: number; type: number; length: number }[] = [];
  const indexOffset = Number(b.readBigUInt64LE(b.length - 24));
  for (let o = 32; o <= indexOffset; o += 24 + b.readUInt32LE(o + 4)) frames.push({ offset: o, type: b[o + 8]!, length: 24 + b.readUInt32LE(o + 4) });
  return { dir, opts, seg, frames, version: b[7] };
}

/** Flip one byte in the payload of the frame at `f` and fix its crc up when `crc` (then only the tag, or the grammar, can tell). */
function flip(file: string, f: { offset: number; length: number }, at: number): void {
  const b = fs.readFileSync(file);
  b[f.offset + at]! ^= 0x01;
  fs.writeFileSync(file, b);
}

/** A read as the typed store's get makes it (`locate`, then `read`). */
function value(e: Engine, i: number): string | undefined {
  const loc = e.locate("rec", keyOf(i));
  return loc ? Buffer.from(e.read("rec", loc)).toString() : undefined;
}

describe("paged segment index (format version 4)", () => {
  it("a compaction writes a version 4 segment: blocks, several index pages, then the directory; every record reads back, the FORMAT.md decoder agrees", async () => {
    const s = await store(modes[0]!.opts);
    expect(s.version).toBe(4);
    const pages = s.frames.filter((f) => f.type === 7);
    expect(pages.length).toBeGreaterThan(2);
    expect(s.frames[s.frames.length - 1]!.type).toBe(3);
    const e = await Engine.open(s.opts);
    try {
      for (let i = 0; i < N; i += 37) expect(value(e, i)).toBe(`record ${i}`);
      expect(e.get("rec", "k-zzz")).toBeUndefined();
      expect([...e.scan("rec", keyOf(1200), false)].length).toBe(N - 1201);
      expect(e.count("rec")).toBe(N);
      await e.verified;
      expect(e.recovery.damaged).toEqual([]);
    } finally {
      await e.close();
    }
    expect(listLiveRecords(s.dir, key).length).toBe(N);
  });

  for (const mode of modes) {
    it(`${mode.name}: a flipped byte in an index page loses that page's records (reported, quarantined), never another record; the others read back`, async () => {
      const s = await store(mode.opts);
      const pages = s.frames.filter((f) => f.type === 7);
      const page = pages[1]!;
      // A byte of the page's slots (past its term table): in a plaintext store a crc mismatch, in an encrypted one too.
      flip(s.seg, page, page.length - 40);
      const problems: string[] = [];
      const e = await Engine.open({ ...s.opts, verifyOnOpen: false });
      e.onProblem = (err) => problems.push(String(err.message));
      try {
        // The first record of page 1 is the first key past page 0's records: find which by reading page 0's range.
        let lostFrom = -1;
        let threw = 0;
        for (let i = 0; i < N; i++) {
          try {
            const v = value(e, i);
            if (v === undefined) {
              if (lostFrom < 0) lostFrom = i;
            } else expect(v).toBe(`record ${i}`);
          } catch (err) {
            expect(isCellarError(err, "E_CORRUPT")).toBe(true);
            threw++;
            if (lostFrom < 0) lostFrom = i;
          }
        }
        expect(threw).toBe(1); // the lookup that met the damage throws; after, its records are absent
        expect(lostFrom).toBeGreaterThan(0);
        expect(e.recovery.damaged).toMatchObject([{ offset: page.offset, bytes: page.length, records: [] }]);
        expect(e.recovery.damaged[0]!.quarantinedAs).toMatch(/^quarantine\//);
        expect(problems.length).toBe(1);
        const lost = N - e.count("rec");
        expect(lost).toBeGreaterThan(0);
        expect([...e.scan("rec", undefined, false)].length).toBe(N - lost);
        // A compaction retires the damage: the next open reports nothing, and the rest is intact.
        await e.compact();
      } finally {
        await e.close();
      }
      const again = await Engine.open(s.opts);
      try {
        await again.verified;
        expect(again.recovery.damaged).toEqual([]);
        expect(again.count("rec")).toBeLessThan(N);
        for (const [k, loc] of again.scan("rec", undefined, false)) expect(Buffer.from(again.read("rec", loc)).toString()).toBe(`record ${Number(k.slice(2))}`);
      } finally {
        await again.close();
      }
    });

    it(`${mode.name}: the background check finds a damaged page no read reached; verifyOnOpen: true finds it before open returns`, async () => {
      const s = await store(mode.opts);
      const pages = s.frames.filter((f) => f.type === 7);
      const page = pages[pages.length - 1]!;
      flip(s.seg, page, 30);
      const copy = `${s.dir}-copy`;
      fs.cpSync(s.dir, copy, { recursive: true });
      dirs.push(copy);
      const e = await Engine.open(s.opts);
      try {
        await e.verified;
        expect(e.recovery.damaged).toMatchObject([{ offset: page.offset, bytes: page.length, records: [] }]);
        expect(e.count("rec")).toBeLessThan(N);
      } finally {
        await e.close();
      }
      // The damage found, a compaction retired it: the copy taken before still holds it.
      const v = await Engine.open({ ...s.opts, dir: copy, verifyOnOpen: true });
      try {
        expect(v.recovery.damaged).toMatchObject([{ offset: page.offset, bytes: page.length, records: [] }]);
        expect(v.count("rec")).toBeLessThan(N);
        expect(value(v, 0)).toBe("record 0");
      } finally {
        await v.close();
      }
    });

    it(`${mode.name}: a flipped byte in the directory loses the segment at open (reported at the index offset), never a wrong record`, async () => {
      const s = await store(mode.opts);
      const dir = s.frames[s.frames.length - 1]!;
      flip(s.seg, dir, 24 + 41);
      const e = await Engine.open(s.opts);
      try {
        expect(e.recovery.damaged).toMatchObject([{ offset: dir.offset, records: [] }]);
        expect(value(e, 0)).toBeUndefined();
      } finally {
        await e.close();
      }
    });
  }

  it("a version 3 segment (one index frame, as the previous release wrote it) opens and reads; the next compaction writes version 4", async () => {
    const s = await store(modes[0]!.opts, 3);
    expect(s.version).toBe(3);
    expect(s.frames.some((f) => f.type === 7)).toBe(false);
    const e = await Engine.open(s.opts);
    try {
      for (let i = 0; i < N; i += 53) expect(value(e, i)).toBe(`record ${i}`);
      await e.verified;
      expect(e.recovery.damaged).toEqual([]);
      await e.write([put(N)]);
      await e.compact();
    } finally {
      await e.close();
    }
    const seg = fs.readdirSync(s.dir).find((n) => n.endsWith(".seg"))!;
    expect(fs.readFileSync(path.join(s.dir, seg))[7]).toBe(4);
    const again = await Engine.open(s.opts);
    try {
      expect(again.count("rec")).toBe(N + 1);
      expect(value(again, N)).toBe(`record ${N}`);
    } finally {
      await again.close();
    }
  });
});
