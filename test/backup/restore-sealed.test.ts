/**
 * What restore checks of a sealed segment block (docs/FORMAT.md, "Backup file", "Restore"): its crc, tag,
 * type and position, not its records (the tag proves they are the bytes the store sealed there); verify still
 * decodes every record, and a plaintext store's blocks (crc only) are still walked by restore too.
 */
import fs from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/runtime/storage/engine.js";
import { setSegmentWriteVersion } from "../../src/runtime/storage/segment.js";
import { readBackupHeader } from "../../src/runtime/storage/backup.js";
import { type FileIO, nodeFileIO } from "../../src/runtime/platform/io.js";
import { readsThroughWarm, WARM_READ_MIN } from "../../src/runtime/storage/restore.js";
import { readFrameHeader } from "../../src/runtime/format/frame.js";
import { FILE_HEADER_SIZE, FRAME_HEADER_SIZE, SEGMENT_FOOTER_SIZE } from "../../src/runtime/format/format.js";
import { isCellarError, restoreBackup, verifyBackup } from "../../src/runtime/index.js";
import { KEY, tempRoot, text, val } from "./helpers.js";

const { root, cleanup } = tempRoot("cellar-restore-sealed-");
afterAll(cleanup);

/** Where the packed segment's bytes start in the backup file. */
function segmentAt(file: string): number {
  const r = readBackupHeader(nodeFileIO(), file);
  let at = r.headerLength;
  for (const f of r.header.files) {
    if (f.name.startsWith("segment-")) return at;
    at += f.length;
  }
  throw new Error("no segment packed");
}

async function backupOf(name: string, opts: { key?: Uint8Array; encryption?: "none" }, values: [string, Uint8Array][]): Promise<string> {
  const dir = path.join(root, name);
  const e = await Engine.open({ dir, ...opts, compaction: { auto: false } });
  for (const [key, value] of values) await e.write([{ op: "put", entity: "e", key, version: 1, value, terms: [] }]);
  await e.compact();
  const file = path.join(root, `${name}.cellarbackup`);
  await e.backup({ to: file });
  await e.close();
  return file;
}

async function read(dir: string, key: string, opts: { key?: Uint8Array; encryption?: "none" }): Promise<string | null> {
  const e = await Engine.open({ dir, ...opts });
  try {
    const r = e.get("e", key);
    return r ? text(r.value) : null;
  } finally {
    await e.close();
  }
}

describe("restore of sealed segment blocks", () => {
  it("refuses a block whose ciphertext changed under a fixed-up frame crc and file checksum (the tag)", async () => {
    const file = await backupOf("tag", { key: KEY }, [["a", val("one")], ["b", val("two")]]);
    const b = fs.readFileSync(file);
    const frame = segmentAt(file) + FILE_HEADER_SIZE; // the first block
    const h = readFrameHeader(b.subarray(frame));
    b[frame + FRAME_HEADER_SIZE + Math.floor(h.length / 2)]! ^= 0x01;
    b.writeUInt32LE(crc32(b.subarray(frame + 4, frame + FRAME_HEADER_SIZE + h.length)), frame);
    b.writeUInt32LE(crc32(b.subarray(0, b.length - 4)), b.length - 4);
    fs.writeFileSync(file, b);
    const dir = path.join(root, "tag-restored");
    await expect(restoreBackup(file, { dir, key: KEY })).rejects.toSatisfy(
      (e) => isCellarError(e, "E_BACKUP_CORRUPT") && /packed `segment-\d+\.seg` at offset \d+: authentication failed/.test((e as Error).message),
    );
    expect(fs.existsSync(dir)).toBe(false);
  });

  it("restores the store's own authentic bytes that verify refuses as undecodable (verify decodes, restore checks tags)", async () => {
    const file = await backupOf("undecodable", { key: KEY }, [["good", val("fine")], ["bad", Buffer.from([7, 1, 2])]]);
    await expect(verifyBackup(file, { key: KEY })).rejects.toSatisfy((e) => isCellarError(e, "E_BACKUP_CORRUPT") && /does not decode/.test((e as Error).message));
    const dir = path.join(root, "undecodable-restored");
    await restoreBackup(file, { dir, key: KEY });
    expect(await read(dir, "good", { key: KEY })).toBe("fine");
  });

  it("still walks and decodes every record of a plaintext store's blocks (a crc is no proof of authenticity)", async () => {
    const file = await backupOf("plain", { encryption: "none" }, [["good", val("fine")], ["bad", Buffer.from([7, 1, 2])]]);
    const dir = path.join(root, "plain-restored");
    await expect(restoreBackup(file, { dir })).rejects.toSatisfy((e) => isCellarError(e, "E_BACKUP_CORRUPT") && /does not decode/.test((e as Error).message));
    expect(fs.existsSync(dir)).toBe(false);
  });

  it("restores an entity whose records the journal all deleted (the metadata leaves it out)", async () => {
    const dir = path.join(root, "emptied");
    const e = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
    await e.write([{ op: "put", entity: "e", key: "k", version: 1, value: val(""), terms: [] }]);
    await e.write([{ op: "delete", entity: "e", key: "k" }]);
    const file = path.join(root, "emptied.cellarbackup");
    await e.backup({ to: file });
    await e.close();
    const into = path.join(root, "emptied-restored");
    await restoreBackup(file, { dir: into, key: KEY });
    expect(await read(into, "k", { key: KEY })).toBeNull();
  });
});

describe("the staged open's reads through the unpack's buffer (a version 3 segment: its index is one frame)", () => {
  // A version 4 segment's index frame is a small directory and its pages are ~16 KiB, below WARM_READ_MIN;
  // a store written before version 4 still has one large index frame, which a restore reads this way.
  beforeAll(() => setSegmentWriteVersion(3));
  afterAll(() => setSegmentWriteVersion(4));
  /** A backup whose segment index frame is well above WARM_READ_MIN (2,000 keys of ~70 bytes), with where that frame lies in the file. */
  async function bigIndexBackup(name: string): Promise<{ file: string; index: number; indexLength: number }> {
    const dir = path.join(root, name);
    const e = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
    const ops = Array.from({ length: 2000 }, (_, i) => ({ op: "put" as const, entity: "e", key: `${"k".repeat(64)}-${String(i).padStart(5, "0")}`, version: 1, value: val(`v${i}`), terms: [] }));
    await e.write(ops);
    await e.compact();
    const file = path.join(root, `${name}.cellarbackup`);
    await e.backup({ to: file });
    await e.close();
    const r = readBackupHeader(nodeFileIO(), file);
    const seg = segmentAt(file);
    const length = r.header.files.find((f) => f.name.startsWith("segment-"))!.length;
    const footer = fs.readFileSync(file).subarray(seg + length - SEGMENT_FOOTER_SIZE, seg + length);
    const indexLength = footer.readUInt32LE(8);
    expect(indexLength).toBeGreaterThan(2 * WARM_READ_MIN);
    return { file, index: seg + Number(footer.readBigUInt64LE(0)), indexLength };
  }

  it("reads the segment index into fresh memory only by copies from the unpack's buffer (every large read lands in one buffer)", async () => {
    const { file } = await bigIndexBackup("warm");
    const base = nodeFileIO();
    const large = new Set<ArrayBufferLike>();
    const io = Object.create(base) as FileIO;
    io.read = (fd, into, position) => {
      if (into.length >= WARM_READ_MIN) large.add(into.buffer);
      return base.read(fd, into, position);
    };
    const dir = path.join(root, "warm-restored");
    await restoreBackup(file, { dir, key: KEY, io });
    // The unpack's chunks, the index read (in chunks) and the blocks' check: one buffer. Before, the index
    // was read in one read(2) into a buffer of its own.
    expect(large.size).toBe(1);
    expect(await read(dir, `${"k".repeat(64)}-01999`, { key: KEY })).toBe("v1999");
  });

  it("still refuses a damaged segment index read that way: a changed ciphertext byte (tag) and a changed byte under the frame crc", async () => {
    for (const fixCrc of [true, false]) {
      const { file, index, indexLength } = await bigIndexBackup(`warm-damaged-${fixCrc}`);
      const b = fs.readFileSync(file);
      b[index + FRAME_HEADER_SIZE + Math.floor((indexLength - FRAME_HEADER_SIZE) * 0.7)]! ^= 0x10; // in a later chunk of the read
      if (fixCrc) b.writeUInt32LE(crc32(b.subarray(index + 4, index + indexLength)), index);
      b.writeUInt32LE(crc32(b.subarray(0, b.length - 4)), b.length - 4);
      fs.writeFileSync(file, b);
      const dir = path.join(root, `warm-damaged-${fixCrc}-restored`);
      const why = fixCrc ? "authentication failed" : "checksum mismatch";
      await expect(restoreBackup(file, { dir, key: KEY })).rejects.toSatisfy(
        (e) => isCellarError(e, "E_BACKUP_CORRUPT") && new RegExp(`packed \`segment-\\d+\\.seg\` at offset \\d+: ${why}`).test((e as Error).message),
      );
      expect(fs.existsSync(dir)).toBe(false);
      await expect(verifyBackup(file, { key: KEY })).rejects.toSatisfy((e) => isCellarError(e, "E_BACKUP_CORRUPT"));
    }
  });

  it("returns the bytes and counts of a direct read, across chunks and at the end of the file", () => {
    const file = path.join(root, "warm-bytes");
    const bytes = Buffer.from(Array.from({ length: 2_600_000 }, (_, i) => (i * 7919) >>> 3));
    fs.writeFileSync(file, bytes);
    const io = nodeFileIO();
    const warm = new Uint8Array(1024 * 1024);
    const through = readsThroughWarm(io, warm);
    const fd = io.open(file, "r");
    try {
      for (const [at, len] of [[100, 2_400_000], [0, 2_600_000], [2_000_000, 1_000_000], [5, WARM_READ_MIN - 1], [0, 3 * 1024 * 1024]] as const) {
        const got = Buffer.alloc(len);
        const direct = Buffer.alloc(len);
        expect(through.read(fd, got, at)).toBe(io.read(fd, direct, at));
        expect(got.equals(direct)).toBe(true);
      }
      expect(through.size(fd)).toBe(bytes.length); // the other members are io's
    } finally {
      io.close(fd);
    }
  });
});
