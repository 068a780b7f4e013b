// The decoders of the read path, fed arbitrary and mutated bytes (fast-check): each returns a value or
// throws its layer's own decode error, which the engine and the store turn into E_CORRUPT (DecodeError,
// FrameError, SegmentProblem, or a CorruptionError already); never a TypeError, a RangeError or a hang.
// The store fuzzer (store-fuzz.test.ts) checks the same end to end, through real files and the public API.
import { crc32 } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TaskSchema } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import { TaskEntity } from "../../src/generated/examples/tasks/v1/tasks_cellar.js";
import { ConversationEntity } from "../../src/generated/examples/conversations/v1/conversations_cellar.js";
import { ByteReader, DecodeError } from "../../src/runtime/format/bytes.js";
import { CorruptionError, isCellarError } from "../../src/runtime/errors.js";
import { FileKind, FrameFlag, FrameType } from "../../src/runtime/format/format.js";
import { decodeFileHeader, decodeFrame, encodeFileHeader, encodeFrame, FrameError } from "../../src/runtime/format/frame.js";
import type { FileIO } from "../../src/runtime/platform/io.js";
import { decodeCommit, encodeBlock, encodeCommit, encodeIndex, type IndexBlock, PagedIndexBuilder } from "../../src/runtime/format/records.js";
import { Sealer } from "../../src/runtime/crypto/seal.js";
import { SegmentIndex } from "../../src/runtime/format/segment-index.js";
import { openSegment, readBlock, readIndexPage, SegmentProblem } from "../../src/runtime/storage/segment.js";
import { parseEnvelope, ValueCodec } from "../../src/runtime/crypto/value.js";

const SEED = Number(process.env.DECODER_FUZZ_SEED ?? 20261207);
const RUNS = Number(process.env.DECODER_FUZZ_RUNS ?? 400);
const opts = { seed: SEED, numRuns: RUNS };

/** Errors a decoder may throw: its layer's own, never a raw one. */
function typed(e: unknown): boolean {
  return e instanceof DecodeError || e instanceof FrameError || e instanceof SegmentProblem || e instanceof CorruptionError || isCellarError(e);
}

function decodes(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!typed(e)) throw new Error(`untyped error from a decoder: ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
  }
}

/** Bytes: arbitrary, or a valid encoding with some bytes changed, truncated or extended. */
function mutated(valid: Uint8Array): fc.Arbitrary<Uint8Array> {
  const edit = fc.record({
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    cut: fc.option(fc.nat(), { freq: 4 }),
    tail: fc.uint8Array({ maxLength: 16 }),
  });
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
      let b = valid.slice();
      for (const e of edits) {
        if (b.length) for (let i = 0; i < e.bytes.length; i++) b[(e.at + i) % b.length] = e.bytes[i]!;
        if (e.cut !== null) b = b.subarray(0, e.cut % (b.length + 1));
        if (e.tail.length) b = Uint8Array.of(...b, ...e.tail);
      }
      return b;
    }),
  );
}

const enc = new TextEncoder();
const validCommit = encodeCommit([
  { op: "put", entity: "tasks", key: "t-1", version: 1, value: enc.encode("value one"), terms: ["status=1", "tags=a"] },
  { op: "delete", entity: "tasks", key: "t-2" },
  { op: "put", entity: "conversations", key: "c-1", version: 3, value: new Uint8Array(40), terms: [] },
]).plain;

function validIndex(): Uint8Array {
  const a = encodeBlock([
    { key: "a", version: 1, value: enc.encode("x"), terms: ["f=1"] },
    { key: "b", version: 1, value: enc.encode("yy"), terms: ["f=1", "g=2"] },
  ]);
  const b = encodeBlock([{ key: "k", version: 2, value: enc.encode("zzz"), terms: [] }]);
  const blocks: IndexBlock[] = [
    { offset: 32, frameLength: 24 + a.plaintext.length, entity: "tasks", slots: a.slots },
    { offset: 32 + 24 + a.plaintext.length, frameLength: 24 + b.plaintext.length, entity: "conversations", slots: b.slots },
  ];
  return encodeIndex(blocks);
}

describe("record decoders never throw a raw error", () => {
  it("decodeCommit: entries inside the payload, or DecodeError", () => {
    fc.assert(
      fc.property(mutated(validCommit), (b) => {
        decodes(() => {
          for (const e of decodeCommit(b)) if (e.op === "put") expect(e.start + e.length).toBeLessThanOrEqual(b.length);
        });
      }),
      opts,
    );
  });

  it("ByteReader: varints, strings and bytes of any input", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 12 }), (b, ops) => {
        decodes(() => {
          const r = new ByteReader(b);
          for (const op of ops) {
            if (op === 0) r.varint();
            else if (op === 1) r.string(1024);
            else if (op === 2) r.bytes(r.varint(64));
            else r.u32();
          }
        });
      }),
      opts,
    );
  });

  it("parseEnvelope and ValueCodec.decode: a message or DecodeError (protobuf-es's own errors are wrapped by the store)", () => {
    const tasks = new ValueCodec("tasks", TaskEntity.schema, [], TaskEntity.codec);
    const conv = new ValueCodec("conversations", ConversationEntity.schema, [], ConversationEntity.codec);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        decodes(() => parseEnvelope(b));
        // The generated decoders never throw: they return undefined and leave the bytes to fromBinary.
        expect(() => TaskEntity.codec!.decode(b)).not.toThrow();
        expect(() => ConversationEntity.codec!.decode(b)).not.toThrow();
        for (const c of [tasks, conv]) {
          try {
            c.decode(b, "k", 1, null);
          } catch (e) {
            // Anything else than a typed error must be an Error the store can wrap (never a non-Error).
            expect(e).toBeInstanceOf(Error);
          }
        }
      }),
      opts,
    );
    void TaskSchema;
  });
});

describe("frame decoders never throw a raw error", () => {
  const header = encodeFileHeader(FileKind.journal, new Uint8Array(16).fill(7), 2);
  const bound = header.subarray(0, 28);
  const sealer = new Sealer(1, new Uint8Array(32).fill(9));
  const keys = (id: number) => (id === 1 ? sealer : null);

  it("decodeFileHeader", () => {
    fc.assert(fc.property(mutated(header), (b) => decodes(() => decodeFileHeader(b, FileKind.journal))), opts);
  });

  it("decodeFrame over frames whose checksum matches (any flags, key id, payload)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        fc.constantFrom(0, 1, 2, 0xffffffff),
        fc.boolean(),
        (payload, type, flags, keyId, requireSealed) => {
          const f = new Uint8Array(24 + payload.length);
          const v = new DataView(f.buffer);
          v.setUint32(4, payload.length, true);
          f[8] = type;
          f[9] = flags;
          v.setUint32(12, keyId, true);
          v.setBigUint64(16, 0xffffffffffffffffn, true);
          f.set(payload, 24);
          v.setUint32(0, crc32(f.subarray(4)), true);
          decodes(() => decodeFrame(f, bound, keys, requireSealed));
          decodes(() => decodeFrame(f.slice(), bound, keys, requireSealed, 1 << 20, true));
        },
      ),
      opts,
    );
  });

  it("decodeFrame over mutated real frames (compressed, sealed, both)", () => {
    const plain = enc.encode("a compressible payload ".repeat(40));
    const frames = [FrameFlag.compressed, FrameFlag.sealed, FrameFlag.compressed | FrameFlag.sealed, 0].map((fl) =>
      encodeFrame({ type: FrameType.commit, seq: 5, plaintext: plain, compress: (fl & FrameFlag.compressed) !== 0, sealer: fl & FrameFlag.sealed ? sealer : null }, bound),
    );
    fc.assert(
      fc.property(fc.constantFrom(...frames), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 4 }), fc.boolean(), (frame, at, bytes, fix) => {
        const f = frame.slice();
        for (let i = 0; i < bytes.length; i++) f[(at + i) % f.length] = bytes[i]!;
        if (fix) new DataView(f.buffer).setUint32(0, crc32(f.subarray(4)), true);
        decodes(() => decodeFrame(f, bound, keys, false));
      }),
      opts,
    );
  });
});

describe("segment decoders never throw a raw error", () => {
  const index = validIndex();

  it("SegmentIndex.parse and every lookup of what it accepts", () => {
    fc.assert(
      fc.property(mutated(index), fc.string({ maxLength: 4 }), (b, probe) => {
        decodes(() => {
          const ix = SegmentIndex.parse(b, 3);
          for (const entity of [...ix.entities(), "tasks", "nope"]) {
            const range = ix.range(entity);
            decodes(() => ix.find(entity, probe));
            decodes(() => ix.find(entity, "a"));
            decodes(() => ix.after(entity, probe));
            if (!range) continue;
            for (let s = range.from; s < range.to && s < range.from + 64; s++) {
              decodes(() => ix.key(s));
              decodes(() => ix.loc(s));
              decodes(() => ix.readLoc(s, "a"));
            }
          }
        });
      }),
      opts,
    );
  });

  for (const paged of [false, true]) it(`openSegment, readBlock${paged ? " and readIndexPage" : ""} over mutated segment files (version ${paged ? 4 : 3})`, () => {
    const storeId = new Uint8Array(16).fill(3);
    const file = buildSegment(storeId, paged);
    fc.assert(
      fc.property(mutated(file), fc.boolean(), (b, fixFooter) => {
        if (fixFooter && b.length >= 24) {
          const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
          v.setUint32(b.length - 12, crc32(b.subarray(b.length - 24, b.length - 12)), true);
        }
        decodes(() => {
          const io = memoryIO(b);
          const seg = openSegment(io, "segment-000003.seg", 3, storeId, () => null, false, true);
          seg.index.blocks.forEach((bl, i) => decodes(() => readBlock(io, seg, bl, i, () => null, false)));
          seg.index.pages.forEach((_, p) => decodes(() => readIndexPage(io, seg, seg.index, p, () => null, false)));
        });
      }),
      { ...opts, numRuns: Math.ceil(RUNS / 2) },
    );
  });
});

/** A plaintext segment of two blocks, written the way writeSegment does (header, blocks, index, footer); `paged`: version 4 (index pages, then the directory). */
function buildSegment(storeId: Uint8Array, paged = false): Uint8Array {
  const header = encodeFileHeader(FileKind.segment, storeId, 3, paged ? 4 : 3);
  const bound = header.subarray(0, 28);
  const parts: Uint8Array[] = [header];
  const blocks: IndexBlock[] = [];
  let offset = 32;
  const recs = [
    [{ key: "a", version: 1, value: enc.encode("one"), terms: ["x=1"] }],
    [{ key: "b", version: 1, value: enc.encode("two"), terms: [] }],
  ];
  recs.forEach((r, i) => {
    const { plaintext, slots } = encodeBlock(r);
    const frame = encodeFrame({ type: FrameType.block, seq: i, plaintext, compress: i === 1, sealer: null }, bound);
    parts.push(frame);
    blocks.push({ offset, frameLength: frame.length, entity: i ? "conversations" : "tasks", slots });
    offset += frame.length;
  });
  let seq = blocks.length;
  let indexPlain = encodeIndex(blocks);
  if (paged) {
    const b = new PagedIndexBuilder();
    for (const blk of blocks) b.add(blk);
    const lengths: number[] = [];
    for (const pg of b.pages()) {
      const frame = encodeFrame({ type: FrameType.indexPage, seq: seq++, plaintext: pg.plain, compress: false, sealer: null }, bound);
      parts.push(frame);
      lengths.push(frame.length);
      offset += frame.length;
    }
    indexPlain = b.directory(lengths);
  }
  const index = encodeFrame({ type: FrameType.index, seq, plaintext: indexPlain, compress: false, sealer: null }, bound);
  parts.push(index);
  const footer = new Uint8Array(24);
  const v = new DataView(footer.buffer);
  v.setBigUint64(0, BigInt(offset), true);
  v.setUint32(8, index.length, true);
  v.setUint32(12, crc32(footer.subarray(0, 12)), true);
  footer.set(enc.encode("CELLEND\0"), 16);
  parts.push(footer);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let p = 0;
  for (const x of parts) {
    out.set(x, p);
    p += x.length;
  }
  return out;
}

/** A FileIO over one in-memory file (what openSegment and readBlock need). */
function memoryIO(bytes: Uint8Array): FileIO {
  const no = () => {
    throw new Error("not in this test");
  };
  return {
    open: () => 3,
    close: () => {},
    read: (_fd: number, into: Uint8Array, pos: number) => {
      const n = Math.max(0, Math.min(into.length, bytes.length - pos));
      into.set(bytes.subarray(pos, pos + n));
      return n;
    },
    size: () => bytes.length,
    write: no,
    datasync: no,
    fsync: no,
    truncate: no,
    rename: no,
    unlink: no,
    syncDir: no,
    readdir: no,
    mkdirp: no,
    exists: () => true,
    readFile: () => bytes,
  } as unknown as FileIO;
}
