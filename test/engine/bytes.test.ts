/**
 * Tests that edit bytes (LevelDB log_test.cc style): real stores in temp dirs,
 * real libsodium; each test damages a file in one documented way and asserts
 * what open dropped, why (the recovery report's file/offset/reason/records),
 * and that everything else is still there with its exact value.
 * Offsets are found with the FORMAT.md-only decoder (test/format/decoder.ts).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { crc32 } from "node:zlib";
import sodium from "sodium-native";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type EngineOptions, type WriteOp } from "../../src/runtime/storage/engine.js";
import { isCellarError } from "../../src/runtime/errors.js";
import { setSegmentWriteVersion } from "../../src/runtime/storage/segment.js";
import { frameAt, readManifest, readSegment } from "../format/decoder.js";

// ---- helpers ---------------------------------------------------------------------

/** XOR one byte of `file` at `offset` (default: all bits). Returns the old byte. */
export function flipByte(file: string, offset: number, mask = 0xff): number {
  const fd = fs.openSync(file, "r+");
  try {
    const b = Buffer.alloc(1);
    if (fs.readSync(fd, b, 0, 1, offset) !== 1) throw new Error(`offset ${offset} is past the end of ${file}`);
    const old = b[0]!;
    b[0] = old ^ mask;
    fs.writeSync(fd, b, 0, 1, offset);
    return old;
  } finally {
    fs.closeSync(fd);
  }
}

/** Cut the last `n` bytes of `file`. */
export function truncateBy(file: string, n: number): void {
  fs.truncateSync(file, fs.statSync(file).size - n);
}

/** Append `n` non-zero pseudo-random bytes (or the given bytes) to `file`. */
export function appendGarbage(file: string, bytes: number | Uint8Array): void {
  const b = typeof bytes === "number" ? Buffer.from(Array.from({ length: bytes }, (_, i) => ((i * 131 + 7) % 255) + 1)) : bytes;
  fs.appendFileSync(file, b);
}

/** Overwrite bytes at `offset`. */
function patch(file: string, offset: number, bytes: Uint8Array): void {
  const fd = fs.openSync(file, "r+");
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** Recompute the crc32 of the frame at `offset` (a tamperer who knows the format). */
function fixFrameCrc(file: string, offset: number): void {
  const b = fs.readFileSync(file);
  const len = b.readUInt32LE(offset + 4);
  const c = Buffer.alloc(4);
  c.writeUInt32LE(crc32(b.subarray(offset + 4, offset + 24 + len)));
  patch(file, offset, c);
}

function fixHeaderCrc(file: string): void {
  const b = fs.readFileSync(file);
  const c = Buffer.alloc(4);
  c.writeUInt32LE(crc32(b.subarray(0, 28)));
  patch(file, 28, c);
}

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-bytes-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const enc = new TextEncoder();
const dec = new TextDecoder();
const put = (entity: string, key: string, value: string, version = 1): WriteOp => ({
  op: "put",
  entity,
  key,
  version,
  value: enc.encode(value),
  terms: [],
});
const masterKey = () => {
  const k = Buffer.alloc(32);
  sodium.randombytes_buf(k);
  return k;
};

const J1 = "journal-000001.log";

/** Frames of a journal: offset and total length, in order. */
function frames(file: string): { offset: number; length: number; seq: number }[] {
  const b = fs.readFileSync(file);
  const out: { offset: number; length: number; seq: number }[] = [];
  for (let pos = 32; pos + 24 <= b.length && !b.subarray(pos, pos + 24).every((x) => x === 0); ) {
    const f = frameAt(file, b, pos);
    if (f.type === 6) break; // the end record (format version 3)
    out.push({ offset: pos, length: f.bytes.length, seq: f.seq });
    pos += f.bytes.length;
  }
  return out;
}

function value(e: Engine, entity: string, key: string): string | undefined {
  const got = e.get(entity, key);
  return got ? dec.decode(got.value) : undefined;
}

/** A store with `n` puts of task k0..k{n-1}, one frame each. */
async function journalStore(n: number, extra: Partial<EngineOptions> = {}) {
  const dir = tmp();
  const key = masterKey();
  const opts: EngineOptions = { dir, key, compaction: { auto: false }, ...extra };
  const e = await Engine.open(opts);
  for (let i = 0; i < n; i++) await e.write([put("task", `k${i}`, `value of k${i}`)]);
  await e.close();
  const file = path.join(dir, J1);
  return { dir, key, opts, file, frames: frames(file) };
}

/** A compacted store: entity `task` spans several segment blocks, `note` has one; plus journal records after it. */
async function segmentStore(extra: Partial<EngineOptions> = {}) {
  const dir = tmp();
  const key = masterKey();
  const opts: EngineOptions = { dir, key, compaction: { auto: false }, ...extra };
  const e = await Engine.open(opts);
  const batch: WriteOp[] = [];
  for (let i = 0; i < 60; i++) batch.push(put("task", `t${String(i).padStart(2, "0")}`, `${i}:`.padEnd(3000, String(i % 10))));
  await e.write(batch);
  await e.write([put("note", "n1", "note one"), put("note", "n2", "note two")]);
  await e.compact();
  await e.write([put("note", "n3", "after compaction")]);
  await e.close();
  const m = readManifest(dir, key);
  const segNo = m.segments[0]!;
  const name = `segment-${String(segNo).padStart(6, "0")}.seg`;
  const seg = readSegment(dir, segNo, m);
  const expected = new Map<string, string>();
  for (const op of batch) if (op.op === "put") expected.set(`task/${op.key}`, dec.decode(op.value));
  expected.set("note/n1", "note one").set("note/n2", "note two").set("note/n3", "after compaction");
  return { dir, key, opts, name, file: path.join(dir, name), seg, expected };
}

function readAll(e: Engine): Map<string, string> {
  const out = new Map<string, string>();
  for (const entity of ["note", "task"]) for (const k of e.keys(entity)) out.set(`${entity}/${k}`, value(e, entity, k)!);
  return out;
}

/** Every record the engine returns has exactly the value written for it (damage may remove records, never alter them). */
function expectNothingWrong(e: Engine, entity: string, written: (key: string) => string): void {
  for (const k of e.keys(entity)) expect(value(e, entity, k), `${entity}/${k}`).toBe(written(k));
}
const kValue = (k: string) => `value of ${k}`;

async function openErr(opts: EngineOptions): Promise<Record<string, unknown>> {
  try {
    const e = await Engine.open(opts);
    await e.close();
  } catch (err) {
    return err as Record<string, unknown>;
  }
  throw new Error("open succeeded");
}

// ---- journal ----------------------------------------------------------------------

/**
 * The length open reports for a tail torn `cut` bytes into a frame at `offset`: the journal is preallocated
 * with zeros, so a torn tail ends at its last non-zero byte, and sealed bytes end in a zero once in 256 runs.
 */
function tornLength(file: Uint8Array, offset: number, cut: number): number {
  let n = cut;
  while (n > 0 && file[offset + n - 1] === 0) n--;
  return n;
}

describe("journal tail", () => {
  it("a truncated trailing frame is cut off and reported; every frame before it survives", async () => {
    const s = await journalStore(5);
    const last = s.frames[4]!;
    const size = fs.statSync(s.file).size;
    truncateBy(s.file, size - (last.offset + 30)); // the writer died 30 bytes into the 5th frame
    const before = fs.readFileSync(s.file);
    const tornBytes = tornLength(before, last.offset, 30);
    const e = await Engine.open(s.opts);
    expect(e.recovery.damaged).toEqual([]);
    expect(e.recovery.truncatedTail).toMatchObject({ file: J1, offset: last.offset, bytes: tornBytes });
    const q = e.recovery.truncatedTail!.quarantinedAs!;
    expect(q).toMatch(/^quarantine\/journal-000001\.log\.\d+$/);
    const kept = fs.readFileSync(path.join(s.dir, q)); // the torn bytes are kept aside
    expect(kept.length).toBeGreaterThanOrEqual(last.offset + tornBytes);
    expect(kept.subarray(0, last.offset + tornBytes).equals(before.subarray(0, last.offset + tornBytes))).toBe(true);
    for (let i = 0; i < 4; i++) expect(value(e, "task", `k${i}`)).toBe(`value of k${i}`);
    expect(e.has("task", "k4")).toBe(false);
    await e.close();
    // the torn bytes were zeroed in place and the end record put back: the journal now ends cleanly
    const after = fs.readFileSync(s.file);
    expect(frameAt(s.file, after, last.offset)).toMatchObject({ type: 6, seq: 4 });
    expect(after.subarray(last.offset + 32).every((x) => x === 0)).toBe(true);
  });

  it("a torn tail followed by new writes and a reopen loses nothing acknowledged", async () => {
    const s = await journalStore(5);
    const last = s.frames[4]!;
    truncateBy(s.file, fs.statSync(s.file).size - (last.offset + last.length - 1)); // one byte short
    const tornBytes = tornLength(fs.readFileSync(s.file), last.offset, last.length - 1);
    let e = await Engine.open(s.opts);
    expect(e.recovery.truncatedTail).toMatchObject({ file: J1, offset: last.offset, bytes: tornBytes });
    for (let i = 5; i < 8; i++) await e.write([put("task", `k${i}`, `value of k${i}`)]);
    await e.close();
    const after = frames(s.file);
    expect(after.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]); // the new frames took the torn frame's place and seq
    expect(after[4]!.offset).toBe(last.offset);
    e = await Engine.open(s.opts);
    expect(e.recovery).toMatchObject({ truncatedTail: null, damaged: [], removedFiles: [] });
    expect([...e.keys("task")].sort()).toEqual(["k0", "k1", "k2", "k3", "k5", "k6", "k7"]);
    for (const k of ["k0", "k1", "k2", "k3", "k5", "k6", "k7"]) expect(value(e, "task", k)).toBe(`value of ${k}`);
    await e.close();
  });

  it("garbage appended after the preallocated zeros is a torn tail: cut from the end of the last frame, nothing lost", async () => {
    const s = await journalStore(3);
    const size = fs.statSync(s.file).size;
    appendGarbage(s.file, 100);
    const end = s.frames[2]!.offset + s.frames[2]!.length;
    const e = await Engine.open(s.opts);
    expect(e.recovery.damaged).toEqual([]);
    expect(e.recovery.truncatedTail).toMatchObject({ file: J1, offset: end, bytes: size + 100 - end });
    for (let i = 0; i < 3; i++) expect(value(e, "task", `k${i}`)).toBe(`value of k${i}`);
    await e.close();
  });

  it("a zeroed frame header before good frames is not a clean end: the gap is reported as damage, not as the end", async () => {
    const s = await journalStore(4);
    const f = s.frames[1]!;
    patch(s.file, f.offset, new Uint8Array(24));
    const e = await Engine.open(s.opts);
    expect(e.recovery.damaged[0]).toMatchObject({ file: J1, offset: f.offset, bytes: f.length, reason: "checksum mismatch" });
    expect(value(e, "task", "k0")).toBe("value of k0");
    expect(e.has("task", "k1")).toBe(false);
    expectNothingWrong(e, "task", kValue); // that k2 and k3 replay is checked in "default open quarantines …"

    await e.close();
  });
});

describe("damage in the middle of a journal", () => {
  it("default open quarantines a frame with a flipped byte, lists it, and replays every later frame", async () => {
    // Regression: the resync once kept `expected` at the damaged frame's seq, rejecting every later frame.
    const s = await journalStore(5);
    const bad = s.frames[2]!;
    flipByte(s.file, bad.offset + 24 + 30); // inside the sealed payload
    const damagedCopy = fs.readFileSync(s.file);
    const e = await Engine.open(s.opts);
    expect(e.recovery.truncatedTail).toBeNull();
    expect(e.recovery.damaged).toHaveLength(1);
    const d = e.recovery.damaged[0]!;
    expect(d).toMatchObject({ file: J1, offset: bad.offset, bytes: bad.length, reason: "checksum mismatch", records: [] });
    expect(d.quarantinedAs).toMatch(/^quarantine\/journal-000001\.log\.\d+$/);
    expect(Buffer.compare(fs.readFileSync(path.join(s.dir, d.quarantinedAs!)), damagedCopy)).toBe(0);
    // nothing wrong is returned: the damaged record is absent, the others exact
    expect(e.has("task", "k2")).toBe(false);
    expect(e.get("task", "k2")).toBeUndefined();
    for (const i of [0, 1, 3, 4]) expect(value(e, "task", `k${i}`)).toBe(`value of k${i}`);
    await e.write([put("task", "k5", "value of k5")]);
    await e.close(); // waits for the compaction open started to retire the damaged journal
    const again = await Engine.open(s.opts);
    expect(again.recovery).toMatchObject({ truncatedTail: null, damaged: [] });
    expect([...again.keys("task")].sort()).toEqual(["k0", "k1", "k3", "k4", "k5"]);
    await again.close();
    expect(fs.existsSync(s.file)).toBe(false); // retired by the compaction; the copy stays in quarantine/
    expect(fs.existsSync(path.join(s.dir, d.quarantinedAs!))).toBe(true);
  });

  it('`onCorruption: "refuse"` throws E_CORRUPT naming the journal file and the frame offset, and changes no byte of it', async () => {
    const s = await journalStore(5);
    const bad = s.frames[1]!;
    flipByte(s.file, bad.offset + 9); // the flags byte
    const before = fs.readFileSync(s.file);
    const err = await openErr({ ...s.opts, onCorruption: "refuse" });
    expect(err).toMatchObject({ name: "CorruptionError", code: "E_CORRUPT", file: J1, offset: bad.offset, reason: "checksum mismatch" });
    expect(String(err.message)).toBe(`corrupt store file \`${J1}\` at offset ${bad.offset}: checksum mismatch`);
    expect(Buffer.compare(fs.readFileSync(s.file), before)).toBe(0);
    // the lock was released: a default open now recovers
    const e = await Engine.open(s.opts);
    expect(e.recovery.damaged[0]).toMatchObject({ offset: bad.offset, reason: "checksum mismatch" });
    await e.close();
  });

  it("a frame with a valid crc but tampered sealed bytes is damage (authentication failed), not data", async () => {
    const s = await journalStore(3);
    const bad = s.frames[1]!;
    flipByte(s.file, bad.offset + 24 + 40);
    fixFrameCrc(s.file, bad.offset);
    const e = await Engine.open(s.opts);
    expect(e.recovery.damaged[0]).toMatchObject({ file: J1, offset: bad.offset, bytes: bad.length, reason: "authentication failed" });
    expect(value(e, "task", "k0")).toBe("value of k0");
    expect(e.has("task", "k1")).toBe(false);
    expectNothingWrong(e, "task", kValue);
    await e.close();
  });

  it("two frames swapped in place (crc valid) fail the sequence check at the first displaced offset; nothing wrong is returned", async () => {
    const s = await journalStore(4);
    const [, a, b] = s.frames;
    expect(a!.length).toBe(b!.length);
    const bytes = fs.readFileSync(s.file);
    const fa = Buffer.from(bytes.subarray(a!.offset, a!.offset + a!.length));
    const fb = Buffer.from(bytes.subarray(b!.offset, b!.offset + b!.length));
    patch(s.file, a!.offset, fb);
    patch(s.file, b!.offset, fa);
    const e = await Engine.open(s.opts);
    expect(e.recovery.damaged[0]).toMatchObject({ file: J1, offset: a!.offset, reason: "unexpected sequence (found 3, expected 2): frames are missing" });
    expect(value(e, "task", "k0")).toBe("value of k0");
    expectNothingWrong(e, "task", kValue); // each frame is authentic: a moved frame can only be dropped, never altered
    await e.close();
  });

  it("a plaintext store's frame with a flipped byte is caught by the crc32 alone", async () => {
    const s = await journalStore(3, { key: undefined, encryption: "none" });
    const bad = s.frames[1]!;
    flipByte(s.file, bad.offset + bad.length - 1, 0x01); // last byte of the value
    const e = await Engine.open(s.opts);
    expect(e.recovery.damaged).toMatchObject([{ file: J1, offset: bad.offset, reason: "checksum mismatch" }]);
    expect(e.get("task", "k1")).toBeUndefined();
    await e.close();
  });
});

// ---- segments -------------------------------------------------------------------------

describe("segments", () => {
  for (const mode of [true, "background"] as const) {
    it(`a flipped byte in a data block loses exactly that block's records (listed); every other record reads back (verifyOnOpen: ${mode})`, async () => {
      const s = await segmentStore();
      expect(s.seg.index.length).toBeGreaterThanOrEqual(3);
      const blk = s.seg.index[1]!;
      flipByte(s.file, blk.offset + blk.frameLength - 5);
      const e = await Engine.open({ ...s.opts, verifyOnOpen: mode });
      const problems: unknown[] = [];
      e.onProblem = (p) => problems.push(p);
      if (mode === "background") {
        expect(e.recovery.damaged).toEqual([]); // open did not read the blocks
        await e.verified;
        expect(problems).toHaveLength(1);
      }
      expect(e.recovery.truncatedTail).toBeNull();
      expect(e.recovery.damaged).toHaveLength(1);
      const d = e.recovery.damaged[0]!;
      const lostKeys = blk.slots.map((x) => ({ entity: blk.entity, key: x.key }));
      expect(d).toMatchObject({ file: s.name, offset: blk.offset, bytes: blk.frameLength, reason: "checksum mismatch", records: lostKeys });
      expect(lostKeys.length).toBeGreaterThan(0);
      expect(d.quarantinedAs).toMatch(new RegExp(`^quarantine/${s.name}\\.\\d+$`));
      const got = readAll(e);
      const want = new Map(s.expected);
      for (const r of lostKeys) want.delete(`${r.entity}/${r.key}`);
      expect(got).toEqual(want);
      expect(e.count("task")).toBe([...want.keys()].filter((k) => k.startsWith("task/")).length);
      await e.close();
    });
  }

  it("a block whose crc holds but whose seal was tampered: reads throw E_CORRUPT, and compaction leaves its records out, reports them and goes on", async () => {
    const s = await segmentStore();
    const blk = s.seg.index[1]!;
    flipByte(s.file, blk.offset + blk.frameLength - 5);
    fixFrameCrc(s.file, blk.offset); // passes the checksum checked at open; only authentication can tell
    const e = await Engine.open(s.opts);
    expect(e.recovery.damaged).toEqual([]);
    const lostKeys = blk.slots.map((x) => ({ entity: blk.entity, key: x.key }));
    expect(() => e.get("task", lostKeys[0]!.key)).toThrow(expect.objectContaining({ code: "E_CORRUPT", reason: "authentication failed" }));
    const problems: unknown[] = [];
    e.onProblem = (p) => problems.push(p);
    await e.compact();
    // the failed read is announced, then the compaction's summary of what it could not copy
    expect(String((problems.at(-1) as Error).message)).toContain(`${lostKeys.length} record(s) lost`);
    expect(e.recovery.damaged).toHaveLength(1);
    expect(e.recovery.damaged[0]).toMatchObject({ file: s.name, offset: blk.offset, reason: "authentication failed", records: lostKeys });
    expect(e.recovery.damaged[0]!.quarantinedAs).toMatch(new RegExp(`^quarantine/${s.name}\\.\\d+$`));
    const want = new Map(s.expected);
    for (const r of lostKeys) want.delete(`${r.entity}/${r.key}`);
    expect(readAll(e)).toEqual(want);
    await e.compact(); // and the store compacts cleanly from then on
    await e.close();
    const r = await Engine.open(s.opts);
    expect(r.recovery.damaged).toEqual([]);
    expect(readAll(r)).toEqual(want);
    await r.close();
  });

  it("a flipped byte in the segment index loses the segment's records (reported at the index offset); journal records survive", async () => {
    const s = await segmentStore();
    flipByte(s.file, s.seg.indexOffset + 30);
    const e = await Engine.open(s.opts);
    expect(e.recovery.damaged).toMatchObject([{ file: s.name, offset: s.seg.indexOffset, reason: "checksum mismatch", records: [] }]);
    expect(readAll(e)).toEqual(new Map([["note/n3", "after compaction"]]));
    await e.close();
    // the compaction that followed the default open retired the damaged segment: the store is consistent again
    const again = await Engine.open({ ...s.opts, onCorruption: "refuse" });
    expect(readAll(again)).toEqual(new Map([["note/n3", "after compaction"]]));
    await again.close();
  });

  for (const version of [3, 4]) it(`a plaintext segment index (version ${version}${version === 4 ? ": its first page" : ""}) edited anywhere with its crc fixed: open refuses it, or every lookup returns or throws E_CORRUPT, never another error (slots are decoded lazily)`, async () => {
    const dir = tmp();
    const opts: EngineOptions = { dir, encryption: "none", compaction: { auto: false }, verifyOnOpen: false };
    setSegmentWriteVersion(version);
    let e = await Engine.open(opts);
    const written = new Map<string, string>();
    const batch: WriteOp[] = [];
    for (let i = 0; i < 40; i++) {
      const k = `k${String(i).padStart(2, "0")}`;
      written.set(k, `value ${i}`);
      batch.push({ op: "put", entity: "task", key: k, version: 1, value: new TextEncoder().encode(`value ${i}`), terms: [`tag\u0000${i % 3}`] });
    }
    await e.write(batch);
    await e.compact();
    await e.close();
    setSegmentWriteVersion(4);
    const segName = fs.readdirSync(dir).find((n) => n.startsWith("segment-"))!;
    const file = path.join(dir, segName);
    const orig = fs.readFileSync(file);
    let indexOffset = Number(orig.readBigUInt64LE(orig.length - 24));
    let indexEnd = orig.length - 24;
    if (version === 4) {
      // The slots are in the index pages: edit the first one (the frame after the blocks).
      let o = 32;
      while (orig[o + 8] === 2) o += 24 + orig.readUInt32LE(o + 4);
      expect(orig[o + 8]).toBe(7);
      indexOffset = o;
      indexEnd = o + 24 + orig.readUInt32LE(o + 4);
    }
    const outcomes = { refusedAtOpen: 0, corruptOnRead: 0, intact: 0 };
    for (let at = indexOffset + 24; at < indexEnd; at++) {
      const bad = Buffer.from(orig);
      bad[at]! ^= 0x41;
      fs.writeFileSync(file, bad);
      fixFrameCrc(file, indexOffset);
      try {
        e = await Engine.open({ ...opts, onCorruption: "refuse" });
      } catch (err) {
        expect(isCellarError(err, "E_CORRUPT"), `byte ${at}: ${String(err)}`).toBe(true);
        outcomes.refusedAtOpen++;
        continue;
      }
      let corrupt = false;
      try {
        for (const k of written.keys()) {
          try {
            // A plaintext store has only the crc: with it recomputed, an edited slot may read back other bytes
            // of its block (FORMAT.md, "What the checks do not catch"). What this checks is that the lazily
            // decoded slots are bounds-checked: a lookup returns or throws E_CORRUPT, nothing else.
            e.get("task", k);
          } catch (err) {
            expect(isCellarError(err, "E_CORRUPT"), `byte ${at}, key ${k}: ${String(err)}`).toBe(true);
            corrupt = true;
          }
        }
        for (const k of e.keys("task")) void k;
      } catch (err) {
        expect(isCellarError(err, "E_CORRUPT"), `byte ${at}: ${String(err)}`).toBe(true);
        corrupt = true;
      } finally {
        await e.close();
      }
      if (corrupt) outcomes.corruptOnRead++;
      else outcomes.intact++;
    }
    fs.writeFileSync(file, orig);
    // Version 4: an open, "refuse" too, reads only the pages its journal replay meets (none here): an edited page
    // is found by the lookups (a backup's verify and restore read every page: test/backup/restore-blocks.test.ts).
    if (version === 3) expect(outcomes.refusedAtOpen).toBeGreaterThan(0);
    else expect(outcomes.refusedAtOpen).toBe(0);
    expect(outcomes.corruptOnRead).toBeGreaterThan(0);
  });

  it('a flipped byte in the segment index with `onCorruption: "refuse"` is E_CORRUPT at the index offset', async () => {
    const s = await segmentStore();
    flipByte(s.file, s.seg.indexOffset + 30);
    const err = await openErr({ ...s.opts, onCorruption: "refuse" });
    expect(err).toMatchObject({ code: "E_CORRUPT", file: s.name, offset: s.seg.indexOffset, reason: "checksum mismatch" });
  });

  it("a flipped byte in the segment footer: its crc (offset size-24) or its magic (offset size-8) is reported", async () => {
    const s = await segmentStore();
    const size = s.seg.size;
    flipByte(s.file, size - 24 + 2); // index offset field
    let err = await openErr({ ...s.opts, onCorruption: "refuse" });
    expect(err).toMatchObject({ code: "E_CORRUPT", file: s.name, offset: size - 24, reason: "checksum mismatch (footer)" });
    flipByte(s.file, size - 24 + 2);
    flipByte(s.file, size - 3); // footer magic
    err = await openErr({ ...s.opts, onCorruption: "refuse" });
    expect(err).toMatchObject({ code: "E_CORRUPT", file: s.name, offset: size - 8, reason: "bad magic (footer)" });
    const e = await Engine.open(s.opts);
    expect(e.recovery.damaged).toMatchObject([{ file: s.name, offset: size - 8, reason: "bad magic (footer)" }]);
    expect([...e.keys("note")]).toEqual(["n3"]);
    await e.close();
  });

  it("a segment truncated by a few bytes has no footer: reported, journal records survive", async () => {
    const s = await segmentStore();
    truncateBy(s.file, 5);
    const err = await openErr({ ...s.opts, onCorruption: "refuse" });
    expect(err).toMatchObject({ code: "E_CORRUPT", file: s.name, offset: s.seg.size - 5 - 8, reason: "bad magic (footer)" });
  });
});

// ---- manifest -----------------------------------------------------------------------

/**
 * Remove `MANIFEST.copy`, leaving `MANIFEST` the only copy (a store written before copies existed): how a
 * damaged only copy is refused. With both copies, see test/engine/manifest-copies.test.ts.
 */
function onlyManifest(dir: string): void {
  fs.unlinkSync(path.join(dir, "MANIFEST.copy"));
}

describe("manifest (its only copy)", () => {
  it("a flipped byte anywhere in the MANIFEST is E_CORRUPT; nothing is opened", async () => {
    const s = await journalStore(1);
    onlyManifest(s.dir);
    const mf = path.join(s.dir, "MANIFEST");
    const size = fs.statSync(mf).size;
    const reasons = new Map<number, string>();
    for (let i = 0; i < size; i++) {
      flipByte(mf, i);
      const err = await openErr(s.opts);
      flipByte(mf, i);
      expect(err.code, `byte ${i}: ${String(err.message)}`).toBe("E_CORRUPT");
      expect(err.file).toBe("MANIFEST");
      reasons.set(i, String(err.reason));
    }
    expect(reasons.get(0)).toBe("bad magic");
    expect(reasons.get(6)).toBe("header checksum mismatch"); // kind is checked after the header checksum
    expect(reasons.get(7)).toBe("unsupported format version (found 251, expected 2 to 4)");
    expect(reasons.get(12)).toBe("header checksum mismatch");
    expect(reasons.get(33)).toBe("checksum mismatch");
    expect(reasons.get(36)).toBe("bad record length");
    expect(reasons.get(size - 1)).toBe("checksum mismatch");
  });

  it("a flipped MANIFEST flags byte (offset 41) is E_CORRUPT (checksum first), not a key problem", async () => {
    const s = await journalStore(1);
    onlyManifest(s.dir);
    const mf = path.join(s.dir, "MANIFEST");
    flipByte(mf, 41);
    const err = await openErr(s.opts);
    expect(err).toMatchObject({ code: "E_CORRUPT", file: "MANIFEST", reason: "checksum mismatch" });
  });

  it("a MANIFEST with a good checksum opened with the wrong key is E_KEY, and so is a tampered body with a recomputed crc", async () => {
    const s = await journalStore(1);
    const err = await openErr({ ...s.opts, key: masterKey() });
    expect(err).toMatchObject({ name: "KeyError", code: "E_KEY" });
    expect(String(err.message)).toMatch(/wrong key/);
    onlyManifest(s.dir);
    const mf = path.join(s.dir, "MANIFEST");
    flipByte(mf, 60);
    fixFrameCrc(mf, 32);
    expect(await openErr(s.opts)).toMatchObject({ code: "E_KEY" });
  });

  it("an encrypted store opened without a key, and a plaintext store opened with one, are E_KEY before any frame is read", async () => {
    const s = await journalStore(1);
    expect(await openErr({ dir: s.dir, encryption: "none" })).toMatchObject({ code: "E_KEY" });
    const p = await journalStore(1, { key: undefined, encryption: "none" });
    expect(await openErr({ dir: p.dir, key: masterKey() })).toMatchObject({ code: "E_KEY" });
  });
});

// ---- file headers: magic → version → header checksum → kind ----------------------------

describe("file headers are checked in the documented order", () => {
  /** Give the file another kind than its own (with a correct header crc). */
  const otherKind = (f: string) => (fs.readFileSync(f)[6] === 0x53 ? 0x4a : 0x53);
  const cases: { name: string; edit: (file: string) => void; reason: string }[] = [
    { name: "bad magic wins over everything", edit: (f) => (flipByte(f, 1), flipByte(f, 7), flipByte(f, 6)), reason: "bad magic" },
    { name: "then the version", edit: (f) => (patch(f, 7, Uint8Array.of(5)), flipByte(f, 6)), reason: "unsupported format version (found 5, expected 2 to 4)" },
    { name: "then the header checksum", edit: (f) => flipByte(f, 6), reason: "header checksum mismatch" },
    { name: "then the kind", edit: (f) => (patch(f, 6, Uint8Array.of(otherKind(f))), fixHeaderCrc(f)), reason: "wrong file kind (found 0x…)" },
  ];
  const expectedReason = (r: string, f: string) => (r.endsWith("0x…)") ? `wrong file kind (found 0x${otherKind(f).toString(16)})` : r);
  for (const c of cases) {
    it(`manifest: ${c.name} (“${c.reason}”)`, async () => {
      const s = await journalStore(1);
      onlyManifest(s.dir);
      const want = expectedReason(c.reason, path.join(s.dir, "MANIFEST"));
      c.edit(path.join(s.dir, "MANIFEST"));
      expect(await openErr(s.opts)).toMatchObject({ code: "E_CORRUPT", file: "MANIFEST", offset: 0, reason: want });
    });
  }

  it("journal: the same checks; a bad header loses the whole file (reported at offset 0 with its size)", async () => {
    const s = await journalStore(2);
    const size = fs.statSync(s.file).size;
    for (const c of cases) {
      const orig = fs.readFileSync(s.file);
      const want = expectedReason(c.reason, s.file);
      c.edit(s.file);
      const err = await openErr({ ...s.opts, onCorruption: "refuse" });
      expect(err, c.name).toMatchObject({ code: "E_CORRUPT", file: J1, offset: 0, reason: want });
      fs.writeFileSync(s.file, orig);
    }
    patch(s.file, 7, Uint8Array.of(9));
    const e = await Engine.open(s.opts);
    expect(e.recovery.damaged).toMatchObject([{ file: J1, offset: 0, bytes: size, reason: "unsupported format version (found 9, expected 2 to 4)" }]);
    expect(e.count("task")).toBe(0);
    await e.close();
  });

  it("segment: the same checks, reported at offset 0", async () => {
    const s = await segmentStore();
    for (const c of cases) {
      const orig = fs.readFileSync(s.file);
      const want = expectedReason(c.reason, s.file);
      c.edit(s.file);
      const err = await openErr({ ...s.opts, onCorruption: "refuse" });
      expect(err, c.name).toMatchObject({ code: "E_CORRUPT", file: s.name, offset: 0, reason: want });
      fs.writeFileSync(s.file, orig);
    }
  });
});

// ---- every length read from disk is bounded -----------------------------------------------

describe("lengths read from disk are bounded", () => {
  const arrayBuffers = () => process.memoryUsage().arrayBuffers;

  it("a journal frame length of 0xFFFFFFFF is a bad record length (no 4 GiB allocation); the length is not trusted", async () => {
    const s = await journalStore(4);
    const bad = s.frames[1]!;
    patch(s.file, bad.offset + 4, Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    const before = arrayBuffers();
    const e = await Engine.open(s.opts);
    expect(arrayBuffers() - before).toBeLessThan(256 * 1024 * 1024);
    expect(e.recovery.damaged[0]).toMatchObject({ file: J1, offset: bad.offset, bytes: bad.length, reason: "bad record length" });
    expect(value(e, "task", "k0")).toBe("value of k0");
    expect(e.has("task", "k1")).toBe(false);
    expectNothingWrong(e, "task", kValue);
    await e.close();
  });

  it("a MANIFEST frame length of 0xFFFFFFFF is E_CORRUPT “bad record length”", async () => {
    const s = await journalStore(1);
    onlyManifest(s.dir);
    patch(path.join(s.dir, "MANIFEST"), 36, Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    expect(await openErr(s.opts)).toMatchObject({ code: "E_CORRUPT", file: "MANIFEST", offset: 32, reason: "bad record length" });
  });

  it("a segment footer naming a 4 GiB index (footer crc recomputed) is “bad record length (index)”", async () => {
    const s = await segmentStore();
    const size = s.seg.size;
    patch(s.file, size - 24 + 8, Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    const b = fs.readFileSync(s.file);
    const c = Buffer.alloc(4);
    c.writeUInt32LE(crc32(b.subarray(size - 24, size - 12)));
    patch(s.file, size - 12, c);
    const before = arrayBuffers();
    const err = await openErr({ ...s.opts, onCorruption: "refuse" });
    expect(arrayBuffers() - before).toBeLessThan(256 * 1024 * 1024);
    expect(err).toMatchObject({ code: "E_CORRUPT", file: s.name, offset: size - 24, reason: "bad record length (index)" });
  });

  it("a compressed frame declaring a 4 GiB plaintext (crc recomputed, plaintext store) is “bad payload”, not an allocation", async () => {
    const dir = tmp();
    const opts: EngineOptions = { dir, encryption: "none", compressJournal: true, compaction: { auto: false } };
    let e = await Engine.open(opts);
    await e.write([put("task", "small", "before")]);
    await e.write([put("task", "big", "y".repeat(8000))]); // ≥ 4 KiB with compressJournal: compressed
    await e.write([put("task", "after", "after")]);
    await e.close();
    const file = path.join(dir, J1);
    const fr = frames(file);
    expect(fs.readFileSync(file)[fr[1]!.offset + 9]).toBe(0x01);
    patch(file, fr[1]!.offset + 24, Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    fixFrameCrc(file, fr[1]!.offset);
    e = await Engine.open(opts);
    expect(e.recovery.damaged[0]).toMatchObject({
      file: J1,
      offset: fr[1]!.offset,
      bytes: fr[1]!.length,
      reason: "bad payload (declared plaintext length 4294967295 exceeds bound 67108864)",
    });
    expect(value(e, "task", "small")).toBe("before");
    expect(e.has("task", "big")).toBe(false);
    await e.close();
  });

  it("a value length varint above 16 MiB inside a commit payload (crc recomputed) is “bad payload”", async () => {
    const dir = tmp();
    const opts: EngineOptions = { dir, encryption: "none", compaction: { auto: false } };
    let e = await Engine.open(opts);
    await e.write([put("t", "a", "12345")]);
    await e.write([put("t", "b", "67890")]);
    await e.close();
    const file = path.join(dir, J1);
    const f = frames(file)[0]!;
    // payload: 01 | 01 't' | 01 'a' | version 01 | terms 00 | len 05 | value → the length varint is at +7
    patch(file, f.offset + 24 + 7, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f));
    fixFrameCrc(file, f.offset);
    e = await Engine.open(opts);
    // FORMAT.md, Journal: `varint(16 MiB + 40) vlen` (a sealed value is 40 bytes longer), in every store.
    expect(e.recovery.damaged[0]).toMatchObject({ file: J1, offset: f.offset, reason: "bad payload (value 4294967295 exceeds bound 16777256)" });
    expect(e.has("t", "a")).toBe(false);
    await e.close();
  });
});

// ---- regressions: runtime bugs found while writing docs/FORMAT.md ------------------------------

describe("recovery regressions", () => {
  it("an intact first frame of the next journal replays when the previous journal ends in damage", async () => {
    // Once: scanJournal required the first frame of each journal to carry exactly `firstSeq`, so after damage
    // at the end of the previous journal the next journal's first frame was zeroed as a torn tail.
    const dir = tmp();
    const key = masterKey();
    let failRotate = false;
    const opts: EngineOptions = {
      dir,
      key,
      compaction: { auto: false },
      failpoint: (n) => {
        if (failRotate && n === "compaction.afterRotate") throw new Error("injected");
      },
    };
    const e = await Engine.open(opts);
    await e.write([put("task", "a", "in journal 1")]);
    await e.write([put("task", "b", "in journal 1, damaged later")]);
    failRotate = true;
    await expect(e.compact()).rejects.toThrow("injected"); // journal 2 now takes writes; journal 1 stays live
    await e.write([put("task", "c", "acknowledged, in journal 2")]);
    await e.close();
    const j1 = path.join(dir, J1);
    const f = frames(j1);
    flipByte(j1, f[1]!.offset + 30);
    const r = await Engine.open({ dir, key, compaction: { auto: false } });
    expect(r.recovery.damaged.map((d) => [d.file, d.offset])).toEqual([[J1, f[1]!.offset]]);
    expect(value(r, "task", "a")).toBe("in journal 1");
    expect(r.recovery.truncatedTail).toBeNull(); 
    expect(value(r, "task", "c")).toBe("acknowledged, in journal 2"); 
    await r.close();
  });

  it("journals without a MANIFEST make open refuse (E_CORRUPT) and are kept: they hold acknowledged writes", async () => {
    // A store's MANIFEST is always written before its first journal, so a journal without a MANIFEST means
    // the MANIFEST was lost (once, such journals were deleted as creation leftovers).
    const s = await journalStore(3);
    fs.unlinkSync(path.join(s.dir, "MANIFEST"));
    fs.unlinkSync(path.join(s.dir, "MANIFEST.copy"));
    const err = await openErr(s.opts);
    expect(fs.existsSync(s.file)).toBe(true);
    expect(err).toMatchObject({ code: "E_CORRUPT", file: "MANIFEST" });
  });
});
