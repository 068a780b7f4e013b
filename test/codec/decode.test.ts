// Decoder equivalence of the generated codecs: for any bytes, `decode` is `undefined` when fromBinary
// throws, and otherwise `undefined` or an object toStrictEqual to fromBinary's; for the encodings of
// valid messages that set no field it declines it must not give up.
import { create, fromBinary, ScalarType, toBinary, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDir } from "../codegen/helpers.js";
import { concat, embed, generalBytes, longAsString, setsUnsupported, validMessage, type Generated, type Subject } from "./helpers.js";
import { exampleSubjects, fixtureSubjects } from "./subjects.js";

const SEED = Number(process.env.CODEC_SEED ?? 20261122);
const RUNS = Number(process.env.CODEC_RUNS ?? 150);

let generated: Generated | undefined;
const fixtures: Subject[] = [];
beforeAll(async () => {
  const r = await fixtureSubjects();
  generated = r.generated;
  fixtures.push(...r.subjects);
});
afterAll(() => generated && removeDir(generated.dir));
const fixture = (name: string) => () => fixtures.find((s) => s.name === name)!;

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

/** The equivalence claim for one byte string; returns what `decode` returned. */
/** Paths of the objects and arrays in `v` that are not frozen (byte arrays cannot be). */
function unfrozen(v: unknown, path = "$"): string[] {
  if (typeof v !== "object" || v === null || ArrayBuffer.isView(v)) return [];
  const out = Object.isFrozen(v) ? [] : [path];
  for (const [k, x] of Object.entries(v)) out.push(...unfrozen(x, `${path}.${k}`));
  return out;
}

function checkDecode(s: Subject, bytes: Uint8Array): object | undefined {
  let expected: unknown;
  let threw: unknown;
  try {
    expected = fromBinary(s.schema, bytes);
  } catch (e) {
    threw = e;
  }
  const got = s.codec.decode(bytes);
  try {
    if (threw !== undefined) expect(got, `fromBinary threw ${String(threw)}`).toBeUndefined();
    else if (got !== undefined) {
      expect(got).toStrictEqual(expected);
      expect(unfrozen(got), "the codec returns messages deeply frozen").toEqual([]);
    }
  } catch (e) {
    throw new Error(`${(e as Error).message}\nbytes: ${hex(bytes)} (offset ${bytes.byteOffset} in ${bytes.buffer.byteLength})`);
  }
  return got;
}

/** The encoding of a random valid message of `s` (and whether it sets a field the codec declines). */
const validEncoding = (s: Subject, unsupported: boolean) =>
  fc.gen().map((g) => {
    for (;;) {
      const input = validMessage(g, s.schema, { unsupported, depth: 3 });
      const bytes = generalBytes(s.schema, input);
      if (bytes instanceof Uint8Array) return { bytes, plain: !setsUnsupported(s.schema, input), input };
    }
  });

/**
 * The same message written differently: fields in a random order, each repeated scalar packed or
 * unpacked (against its declaration), a packed list split in two runs.
 */
function reencode(desc: DescMessage, msg: Record<string, unknown>, order: number[], packing: boolean[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const members = desc.members;
  members.forEach((m, i) => {
    if (m.kind === "oneof") {
      parts.push(toBinary(desc, create(desc, { [m.localName]: msg[m.localName] } as never)));
      return;
    }
    const v = msg[m.localName];
    if (m.fieldKind === "list" && m.listKind !== "message" && Array.isArray(v) && v.length > 0 && !longAsString(m)) {
      const scalar = m.listKind === "enum" ? undefined : m.scalar;
      if (scalar === ScalarType.STRING || scalar === ScalarType.BYTES) {
        parts.push(toBinary(desc, create(desc, { [m.localName]: v } as never)));
        return;
      }
      parts.push(writeList(m, v, packing[i % packing.length]!, i));
      return;
    }
    parts.push(toBinary(desc, create(desc, { [m.localName]: v } as never)));
  });
  const shuffled = parts.map((p, i) => [order[i % order.length]! + i / 1000, p] as const).sort((a, b) => a[0] - b[0]);
  return concat(...shuffled.map(([, p]) => p));
}

/** A list of scalars or enums, packed (in up to two runs) or one record per element. */
function writeList(f: DescField & { fieldKind: "list" }, values: unknown[], packed: boolean, salt: number): Uint8Array {
  const w = new BinaryWriter();
  const write = (x: unknown) => {
    if (f.listKind === "enum") return void w.int32(x as number);
    const scalar = f.listKind === "scalar" ? f.scalar : 0;
    const name = ["", "double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool", "", "", "", "", "uint32", "", "sfixed32", "sfixed64", "sint32", "sint64"][scalar]!;
    (w as unknown as Record<string, (x: unknown) => void>)[name]!(x);
  };
  const wire = f.listKind === "enum" ? WireType.Varint : [0, 1, 5, 0, 0, 0, 1, 5, 0, 2, 2, 2, 2, 0, 0, 5, 1, 0, 0][f.listKind === "scalar" ? f.scalar : 0]!;
  if (packed) {
    const cut = values.length > 1 && salt % 2 ? 1 : values.length;
    for (const run of [values.slice(0, cut), values.slice(cut)]) {
      if (run.length === 0) continue;
      w.tag(f.number, WireType.LengthDelimited).fork();
      run.forEach(write);
      w.join();
    }
  } else {
    for (const x of values) {
      w.tag(f.number, wire);
      write(x);
    }
  }
  return w.finish();
}

function equivalence(get: () => Subject) {
  it("decodes the encodings of valid messages as fromBinary does, and takes those that set nothing it declines", () => {
    const s = get();
    fc.assert(
      fc.property(validEncoding(s, false), validEncoding(s, true), ({ bytes, plain }, other) => {
        const got = checkDecode(s, bytes);
        if (plain) expect(got, `declined ${hex(bytes)}`).toBeDefined();
        checkDecode(s, other.bytes);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("merges concatenated encodings (repeated append, messages merge, last scalar and oneof member win)", () => {
    const s = get();
    fc.assert(
      fc.property(validEncoding(s, false), validEncoding(s, false), validEncoding(s, true), (a, b, c) => {
        const got = checkDecode(s, concat(a.bytes, b.bytes));
        if (a.plain && b.plain) expect(got).toBeDefined();
        checkDecode(s, concat(b.bytes, c.bytes, a.bytes));
        checkDecode(s, concat(a.bytes, a.bytes));
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });

  it("decodes fields in any order, lists packed or unpacked (against the declaration) and split", () => {
    const s = get();
    fc.assert(
      fc.property(validEncoding(s, false), fc.array(fc.nat(50), { minLength: 1, maxLength: 8 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), ({ bytes, plain }, order, packing) => {
        const msg = fromBinary(s.schema, bytes) as Record<string, unknown>;
        const again = reencode(s.schema, msg, order, packing);
        const got = checkDecode(s, again);
        if (plain) expect(got).toBeDefined();
        expect(got ?? fromBinary(s.schema, again)).toStrictEqual(msg);
      }),
      { seed: SEED + 2, numRuns: RUNS },
    );
  });

  it("gives up or agrees on truncated, flipped, spliced and random bytes", () => {
    const s = get();
    fc.assert(
      fc.property(
        validEncoding(s, true),
        fc.nat(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        fc.uint8Array({ maxLength: 40 }),
        ({ bytes }, cut, flips, noise) => {
          checkDecode(s, bytes.subarray(0, bytes.length ? cut % bytes.length : 0));
          const flipped = bytes.slice();
          for (const [at, x] of flips) if (flipped.length) flipped[at % flipped.length] = x;
          checkDecode(s, flipped);
          checkDecode(s, concat(bytes, noise));
          checkDecode(s, noise);
          const at = bytes.length ? cut % bytes.length : 0;
          checkDecode(s, concat(bytes.subarray(0, at), noise, bytes.subarray(at)));
        },
      ),
      { seed: SEED + 3, numRuns: RUNS },
    );
  });

  it("reads a view at an offset of a larger buffer without looking past it, and views of one buffer one after another", () => {
    const s = get();
    fc.assert(
      fc.property(validEncoding(s, true), validEncoding(s, false), fc.uint8Array({ maxLength: 12 }), fc.uint8Array({ minLength: 1, maxLength: 12 }), fc.nat(), (a, b, before, after, cut) => {
        // `a` whole, then cut short: what follows in the buffer (`after`, then `b`) must not be read.
        const big = concat(before, a.bytes, after, b.bytes);
        const va = big.subarray(before.length, before.length + a.bytes.length);
        const vb = big.subarray(before.length + a.bytes.length + after.length);
        const n = a.bytes.length ? cut % a.bytes.length : 0;
        const short = big.subarray(before.length, before.length + n);
        const ra = checkDecode(s, va);
        const rs = checkDecode(s, short);
        const rb = checkDecode(s, vb);
        if (a.plain) expect(ra).toBeDefined();
        if (b.plain) expect(rb).toBeDefined();
        // The same views again, in another order (the shared reader keeps the buffer's view).
        expect(checkDecode(s, vb)).toStrictEqual(rb);
        expect(checkDecode(s, short)).toStrictEqual(rs);
        expect(checkDecode(s, embed(a.bytes, after, before))).toStrictEqual(ra);
        expect(checkDecode(s, va)).toStrictEqual(ra);
      }),
      { seed: SEED + 4, numRuns: RUNS },
    );
  });
}

describe.each(exampleSubjects.map((s) => [s.name, s] as const))("example entity %s", (_, s) => equivalence(() => s));
describe.each(["Sink", "Plain"])("fixture entity %s", (name) => equivalence(fixture(name)));

// ------------------------------------------------------------------ hand-written bytes

/** A record of one field: tag plus body written by `body`. */
function rec(no: number, wire: WireType, body: (w: BinaryWriter) => void): Uint8Array {
  const w = new BinaryWriter().tag(no, wire);
  body(w);
  return w.finish();
}
const varintBytes = (...bs: number[]) => new Uint8Array(bs);
const len = (no: number, payload: Uint8Array) => rec(no, WireType.LengthDelimited, (w) => w.bytes(payload));

describe("hand-written encodings of kitchen.v1.Sink and extra.v1.Plain", () => {
  const sink = fixture("Sink");
  const plain = fixture("Plain");
  const num = (s: Subject, local: string) => s.schema.fields.find((f) => f.localName === local)!.number;

  it("negative int32 and enums (ten-byte varints), 32-bit values sent as 64-bit varints", () => {
    const p = plain();
    const cases = [
      rec(num(p, "i32"), WireType.Varint, (w) => w.int32(-1)),
      rec(num(p, "i32"), WireType.Varint, (w) => w.int32(-2147483648)),
      rec(num(p, "i32"), WireType.Varint, (w) => w.int64(2n ** 40n + 5n)), // truncated to 32 bits
      rec(num(p, "u32"), WireType.Varint, (w) => w.int64(-1n)),
      rec(num(p, "color"), WireType.Varint, (w) => w.int32(-2)),
      rec(num(p, "color"), WireType.Varint, (w) => w.int32(2147483647)),
      rec(num(p, "color"), WireType.Varint, (w) => w.int32(12345)), // an unknown value of an open enum
      rec(num(p, "oColor"), WireType.Varint, (w) => w.int32(0)),
      rec(num(p, "rColor"), WireType.Varint, (w) => w.int32(-2)),
      rec(num(p, "b"), WireType.Varint, (w) => w.int64(2n ** 40n)), // bool from a high bit
      rec(num(p, "b"), WireType.Varint, (w) => w.uint64(0n)),
      concat(varintBytes((num(p, "i32") << 3) | 0), varintBytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)),
      concat(varintBytes((num(p, "i32") << 3) | 0), varintBytes(0x81, 0x00)), // over-long 1
      concat(varintBytes((num(p, "i64") << 3) | 0), varintBytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)), // tenth byte > 1
    ];
    for (const b of cases) expect(checkDecode(p, b), hex(b)).toBeDefined();
    // Eleven bytes: not a varint (fromBinary throws).
    for (const field of ["i32", "i64", "u32", "b", "color"]) {
      checkDecode(p, concat(varintBytes((num(p, field) << 3) | 0), varintBytes(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00)));
    }
  });

  it("64-bit extremes of every 64-bit kind, signed and unsigned, and sint/fixed 32-bit kinds", () => {
    const p = plain();
    const i64 = [0n, 1n, -1n, 2n ** 31n, -(2n ** 31n), 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 63n - 1n, -(2n ** 63n)];
    const u64 = [0n, 1n, 2n ** 32n - 1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];
    const i32 = [0, 1, -1, 2147483647, -2147483648, 64, -65];
    const u32 = [0, 1, 4294967295, 2147483648];
    for (const [field, values] of [
      ["i64", i64], ["s64", i64], ["sfx64", i64], ["oI64", i64], ["oS64", i64], ["oSfx64", i64], ["rI64", i64], ["uS64", i64],
      ["u64", u64], ["fx64", u64], ["oU64", u64], ["oFx64", u64], ["rFx64", u64], ["uFx64", u64],
      ["s32", i32], ["sfx32", i32], ["oS32", i32], ["oSfx32", i32], ["rS32", i32], ["uSfx32", i32],
      ["u32", u32], ["fx32", u32], ["oFx32", u32], ["rU32", u32], ["uFx32", u32],
    ] as const) {
      const f = p.schema.fields.find((x) => x.localName === field)!;
      for (const v of values) {
        const init = f.fieldKind === "list" ? { [field]: [v, v] } : { [field]: v };
        const b = toBinary(p.schema, create(p.schema, init as never));
        expect(checkDecode(p, b), `${field} = ${v}`).toBeDefined();
      }
    }
  });

  it("-0.0, NaN (also with payload bits), infinities and subnormals in float and double fields", () => {
    const p = plain();
    const doubles = [-0, 0, NaN, Infinity, -Infinity, Number.MIN_VALUE, -Number.MAX_VALUE];
    for (const field of ["d", "oD", "rD", "uD", "f", "oF", "rF", "uF", "pD", "pF"]) {
      const f = p.schema.fields.find((x) => x.localName === field)!;
      for (const v of doubles) {
        const value = f.scalar === 2 ? Math.fround(v) : v;
        const init = f.oneof ? { [f.oneof.localName]: { case: field, value } } : f.fieldKind === "list" ? { [field]: [value] } : { [field]: value };
        const b = toBinary(p.schema, create(p.schema, init as never));
        expect(checkDecode(p, b), `${field} = ${v}`).toBeDefined();
      }
    }
    // NaNs with payloads and the sign bit, written by hand.
    for (const bits of [[0x01, 0, 0, 0, 0, 0, 0xf8, 0x7f], [0, 0, 0, 0, 0, 0, 0xf8, 0xff], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]]) {
      expect(checkDecode(p, concat(varintBytes((2 << 3) | 1), varintBytes(...bits)))).toBeDefined();
      expect(checkDecode(p, concat(varintBytes((3 << 3) | 5), varintBytes(...bits.slice(4))))).toBeDefined();
    }
  });

  it("non-ASCII, 4-byte and long UTF-8 strings; invalid UTF-8 and a leading BOM", () => {
    const p = plain();
    const id = num(p, "id");
    const strings = ["é", "日本語", "😀", "a😀b", "\u{10FFFF}", "\uFEFF", "\uFEFFx", "x".repeat(15), "x".repeat(16), "é".repeat(100), "😀".repeat(40), "\0"];
    for (const s of strings) {
      const b = rec(id, WireType.LengthDelimited, (w) => w.string(s));
      const got = checkDecode(p, b) as { id: string } | undefined;
      expect(got?.id, JSON.stringify(s)).toBe(s);
    }
    const invalid = [[0xff], [0xc3], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0xaf], [0x61, 0x80]];
    for (const bad of invalid) checkDecode(p, len(id, new Uint8Array(bad)));
  });

  it("nesting at the recursion limit and one past it", () => {
    const p = plain();
    const s = sink();
    for (const depth of [98, 99, 100, 101, 102]) {
      // Tree.left: depth-1 levels below the root message, each a length-delimited field 2.
      let inner: Uint8Array = new Uint8Array(0);
      for (let i = 0; i < depth - 2; i++) inner = len(2, inner);
      const b = len(num(p, "tree"), inner);
      checkDecode(p, b);
      let node: Uint8Array = new Uint8Array(0);
      for (let i = 0; i < depth - 2; i++) node = len(2, node); // Node.children
      checkDecode(s, len(num(s, "rNode"), node));
    }
  });

  it("wire-type mismatches, unknown fields, groups, bad tags and lengths", () => {
    const p = plain();
    const cases = [
      rec(num(p, "id"), WireType.Varint, (w) => w.int32(1)),
      rec(num(p, "i32"), WireType.LengthDelimited, (w) => w.bytes(new Uint8Array([1]))),
      rec(num(p, "i32"), WireType.Bit32, (w) => w.fixed32(1)),
      rec(num(p, "d"), WireType.Bit32, (w) => w.fixed32(1)),
      rec(999, WireType.Varint, (w) => w.int32(1)),
      rec(num(p, "bigNumberField"), WireType.Varint, (w) => w.int32(7)),
      concat(rec(num(p, "tree"), WireType.StartGroup, () => {}), rec(num(p, "tree"), WireType.EndGroup, () => {})),
      varintBytes(0x00),
      varintBytes(0x07, 0x00),
      varintBytes(0x0a, 0x05, 0x61),
      varintBytes(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f),
      varintBytes(0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
      varintBytes(0x0a, 0x80, 0x00),
      varintBytes(0x11, 0x00, 0x00),
      // A submessage whose length stops inside its last field.
      concat(varintBytes((num(p, "tree") << 3) | 2, 0x02), rec(1, WireType.LengthDelimited, (w) => w.string("ab"))),
      // A packed run whose length stops inside an element.
      concat(varintBytes((num(p, "rI32") << 3) | 2, 0x01, 0x80, 0x01)),
      concat(varintBytes((num(p, "rFx32") << 3) | 2, 0x03, 1, 2, 3, 4)),
    ];
    for (const b of cases) checkDecode(p, b);
  });

  it("over-long tags: up to five bytes protobuf-es reads, more it rejects", () => {
    const p = plain();
    // Field 4 (i32), varint: tag 0x20, then the value 7.
    expect(checkDecode(p, varintBytes(0xa0, 0x00, 0x07))).toBeDefined();
    expect(checkDecode(p, varintBytes(0xa0, 0x80, 0x80, 0x80, 0x00, 0x07))).toBeDefined();
  });

  it("a tag over five bytes, or with bits above 32, is refused (to fromBinary, which throws)", () => {
    const p = plain();
    // Field 4 varint, as a six-byte varint and as a five-byte one with high bits: fromBinary throws "varint overflows uint32".
    checkDecode(p, varintBytes(0xa0, 0x80, 0x80, 0x80, 0x80, 0x00, 0x07));
    checkDecode(p, varintBytes(0xa0, 0x80, 0x80, 0x80, 0x10, 0x07));
  });

  it("a Node Buffer without bytes fields", () => {
    const p = plain();
    const b = toBinary(p.schema, create(p.schema, { id: "a", s: "é😀", rI32: [1, -1], tree: { name: "t" } } as never));
    expect(checkDecode(p, Buffer.from(b))).toBeDefined();
    expect(checkDecode(p, Buffer.concat([Buffer.from("xyz"), Buffer.from(b)]).subarray(3))).toBeDefined();
  });

  // fromBinary slices bytes fields out of its input (`buf.subarray`), so for a Buffer input (the store decrypts
  // records into Buffers) they are Buffers: the codec's must be too (found by this test: they were Uint8Arrays).
  it("bytes fields of a Buffer input are Buffers, as fromBinary's", () => {
    const p = plain();
    const b = toBinary(p.schema, create(p.schema, { id: "a", by: new Uint8Array([1, 2]) } as never));
    checkDecode(p, Buffer.from(b));
  });
});
