/**
 * Restore's check of a sealed segment's blocks (storage/verify-records.ts, `checkSealedBlocks`): read in runs
 * through the buffer the unpack used, each block's tag checked without decrypting (`authenticateFrame`). A
 * damaged byte anywhere in the blocks or in the index is still refused, in a later run as in the first, in a
 * block bigger than the buffer, with every other check (frame crc, file checksum) fixed up to match.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/runtime/storage/engine.js";
import { readBackupHeader } from "../../src/runtime/storage/backup.js";
import { nodeFileIO } from "../../src/runtime/platform/io.js";
import { readFrameHeader } from "../../src/runtime/format/frame.js";
import { FILE_HEADER_SIZE, FRAME_HEADER_SIZE, FrameFlag, FrameType, SEGMENT_FOOTER_SIZE } from "../../src/runtime/format/format.js";
import { isCellarError, restoreBackup, verifyBackup } from "../../src/runtime/index.js";
import type { FileIO } from "../../src/runtime/platform/io.js";
import { KEY, tempRoot, val } from "./helpers.js";

const { root, cleanup } = tempRoot("cellar-restore-blocks-");
afterAll(cleanup);

/** 3 MB of incompressible records (blocks past the first 1 MiB run) and one 1.5 MB record (a block bigger than the run buffer). */
const values = new Map<string, Uint8Array>();
let file = "";
let good: Buffer;
/** The packed segment: where it starts in the backup file, its block frames (offsets in the segment) and its index frame. */
let seg = { at: 0, blocks: [] as { offset: number; length: number }[], pages: [] as { offset: number; length: number }[], index: { offset: 0, length: 0 } };

beforeAll(async () => {
  const dir = path.join(root, "store");
  const e = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
  // Record values as the engine takes them (an envelope around public bytes): random text, which deflates little.
  for (let i = 0; i < 60; i++) values.set(`k${String(i).padStart(3, "0")}`, val(randomBytes(50_000).toString("latin1")));
  values.set("k999-big", val(randomBytes(1_500_000).toString("latin1")));
  for (const [key, value] of values) await e.write([{ op: "put", entity: "e", key, version: 1, value, terms: [] }]);
  await e.compact();
  file = path.join(root, "b.cellarbackup");
  await e.backup({ to: file });
  await e.close();
  good = fs.readFileSync(file);
  const r = readBackupHeader(nodeFileIO(), file);
  let at = r.headerLength;
  for (const f of r.header.files) {
    if (f.name.startsWith("segment-")) break;
    at += f.length;
  }
  const segLen = r.header.files.find((f) => f.name.startsWith("segment-"))!.length;
  const footer = good.subarray(at + segLen - SEGMENT_FOOTER_SIZE);
  const index = { offset: Number(footer.readBigUInt64LE(0)), length: footer.readUInt32LE(8) };
  const blocks: { offset: number; length: number }[] = [];
  const pages: { offset: number; length: number }[] = [];
  for (let o = FILE_HEADER_SIZE; o < index.offset; ) {
    const h = readFrameHeader(good.subarray(at + o));
    const length = FRAME_HEADER_SIZE + h.length;
    (h.type === FrameType.block ? blocks : pages).push({ offset: o, length }); // then the index pages (format version 4)
    o += length;
  }
  seg = { at, blocks, pages, index };
});

/** A copy of the backup with `edit` applied to the frame at `offset` (segment offsets), its crc and the file checksum fixed up. */
function damaged(name: string, frame: { offset: number; length: number }, edit: (f: Buffer) => void): string {
  const b = Buffer.from(good);
  const f = b.subarray(seg.at + frame.offset, seg.at + frame.offset + frame.length);
  edit(f);
  f.writeUInt32LE(crc32(f.subarray(4)), 0);
  b.writeUInt32LE(crc32(b.subarray(0, b.length - 4)), b.length - 4);
  const out = path.join(root, `${name}.cellarbackup`);
  fs.writeFileSync(out, b);
  return out;
}

async function refused(backup: string, why: RegExp): Promise<void> {
  const dir = path.join(root, `${path.basename(backup)}-restored`);
  await expect(restoreBackup(backup, { dir, key: KEY })).rejects.toSatisfy((e) => isCellarError(e, "E_BACKUP_CORRUPT") && why.test((e as Error).message));
  expect(fs.existsSync(dir)).toBe(false);
}

describe("restore's check of sealed blocks, run by run", () => {
  it("restores the intact backup: blocks over several runs and one bigger than the run buffer", async () => {
    expect(seg.blocks.reduce((n, b) => n + b.length, 0)).toBeGreaterThan(3 * 1024 * 1024);
    expect(Math.max(...seg.blocks.map((b) => b.length))).toBeGreaterThan(1024 * 1024);
    const dir = path.join(root, "intact");
    await restoreBackup(file, { dir, key: KEY });
    const e = await Engine.open({ dir, key: KEY });
    try {
      for (const [key, value] of values) expect(Buffer.from(e.get("e", key)!.value).equals(Buffer.from(value))).toBe(true);
    } finally {
      await e.close();
    }
  });

  it("refuses a changed ciphertext byte in the first block, in the last one and in the one bigger than the buffer", async () => {
    const big = seg.blocks.reduce((m, b) => (b.length > m.length ? b : m));
    for (const [name, b] of [["first", seg.blocks[0]!], ["last", seg.blocks[seg.blocks.length - 1]!], ["big", big]] as const) {
      const backup = damaged(`ct-${name}`, b, (f) => (f[FRAME_HEADER_SIZE + 24 + Math.floor((f.length - FRAME_HEADER_SIZE - 40) / 2)]! ^= 0x20));
      await refused(backup, new RegExp(`packed \`segment-\\d+\\.seg\` at offset ${b.offset}: authentication failed`));
    }
  });

  it("refuses a changed tag, a changed nonce and a changed header field the tag covers (the block's position)", async () => {
    const b = seg.blocks[seg.blocks.length - 2]!;
    await refused(damaged("tag", b, (f) => (f[f.length - 1]! ^= 0x01)), new RegExp(`at offset ${b.offset}: authentication failed`));
    await refused(damaged("nonce", b, (f) => (f[FRAME_HEADER_SIZE]! ^= 0x80)), new RegExp(`at offset ${b.offset}: authentication failed`));
    await refused(damaged("seq", b, (f) => f.writeUInt32LE(f.readUInt32LE(16) + 1, 16)), new RegExp(`at offset ${b.offset}: unexpected sequence|authentication failed`));
  });

  it("refuses a block whose sealed flag was cleared (a downgrade, not data) and one whose crc alone is wrong", async () => {
    const b = seg.blocks[1]!;
    await refused(damaged("unsealed", b, (f) => (f[9]! &= ~FrameFlag.sealed)), new RegExp(`at offset ${b.offset}: authentication failed`));
    const bad = Buffer.from(good);
    bad[seg.at + b.offset + FRAME_HEADER_SIZE + 30]! ^= 0x04; // crc left stale, file checksum fixed up
    bad.writeUInt32LE(crc32(bad.subarray(0, bad.length - 4)), bad.length - 4);
    const out = path.join(root, "crc.cellarbackup");
    fs.writeFileSync(out, bad);
    await refused(out, new RegExp(`at offset ${b.offset}: checksum mismatch`));
  });

  it("refuses a changed byte of the index", async () => {
    await refused(damaged("index", seg.index, (f) => (f[FRAME_HEADER_SIZE + 24 + 5]! ^= 0x10)), new RegExp(`at offset ${seg.index.offset}: authentication failed`));
  });

  it("refuses a changed byte of an index page (format version 4), the first page and the last", async () => {
    expect(seg.pages.length).toBeGreaterThan(0);
    for (const pg of [seg.pages[0]!, seg.pages[seg.pages.length - 1]!]) {
      await refused(damaged(`page-${pg.offset}`, pg, (f) => (f[FRAME_HEADER_SIZE + 24 + 2]! ^= 0x10)), new RegExp(`at offset ${pg.offset}: authentication failed`));
    }
  });

  it("reads each index page once in a restore: its check reads every page, and the staged open does not read them first", async () => {
    // A FileIO that counts the bytes read from the unpacked segment's pages (between the last block and the index frame).
    let pageBytes = 0;
    const base = nodeFileIO();
    const io = Object.create(base) as FileIO;
    const segs = new Set<number>();
    io.open = (f, flags) => {
      const fd = base.open(f, flags);
      if (/segment-\d+\.seg$/.test(f)) segs.add(fd);
      else segs.delete(fd);
      return fd;
    };
    io.read = (fd, into, position) => {
      const n = base.read(fd, into, position);
      if (segs.has(fd)) pageBytes += Math.max(0, Math.min(position + n, seg.index.offset) - Math.max(position, seg.pages[0]!.offset));
      return n;
    };
    const pagesLength = seg.index.offset - seg.pages[0]!.offset;
    await restoreBackup(file, { dir: path.join(root, "counted"), key: KEY, io });
    expect(pageBytes).toBe(pagesLength); // twice before: the staged open checked every page, then the restore's check again
    // verify checks every page once too, and its walk of the blocks reads a page again for their first keys (3 times before).
    pageBytes = 0;
    await verifyBackup(file, { key: KEY, io });
    expect(pageBytes).toBe(2 * pagesLength);
  });
});
