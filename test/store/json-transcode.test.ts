/**
 * The export's transcoder (typed/json-transcode.ts) writes a record's bytes straight to JSON; whenever it
 * answers OK its bytes must be exactly the general path's (`JSON.stringify(toJson(fromBinary(bytes)))`,
 * which json-writer.test.ts ties to json-writer.ts), and whenever protobuf-es refuses the bytes it must not
 * answer OK. Random messages of every example entity (fast-check), and wire variants the canonical
 * encoding never has: fields reordered, a singular field twice (last one wins, messages merge), zero values
 * written out, invalid UTF-8; strings that need escaping; an output buffer too small.
 */
import { create, type DescMessage, fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { entities } from "../../src/generated/index.js";
import { BAIL, jsonTranscoder, OK, ROOM } from "../../src/runtime/typed/json-transcode.js";
import { message } from "../helpers/proto-arbitrary.js";

/** The general path's text, or null when protobuf-es refuses the bytes (or toJson the message). */
function general(schema: DescMessage, bytes: Uint8Array): string | null {
  try {
    return JSON.stringify(toJson(schema, fromBinary(schema, bytes)));
  } catch {
    return null;
  }
}

function transcode(schema: DescMessage, bytes: Uint8Array, size = 1 << 16): { r: number; text: string } {
  const out = { buf: Buffer.alloc(size), pos: 0 };
  const r = jsonTranscoder(schema)(bytes, out);
  return { r, text: out.buf.toString("utf8", 0, out.pos) };
}

/** Top-level fields of a message's bytes, each as its own bytes (tag included). */
function fieldsOf(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let p = 0;
  const varint = () => {
    let v = 0;
    for (let mul = 1; ; mul *= 128) {
      const x = b[p++]!;
      v += (x & 0x7f) * mul;
      if (x < 0x80) return v;
    }
  };
  while (p < b.length) {
    const s = p;
    const wt = varint() % 8;
    if (wt === 0) varint();
    else if (wt === 1) p += 8;
    else if (wt === 5) p += 4;
    else if (wt === 2) {
      const n = varint();
      p += n;
    }
    else throw new Error("group");
    out.push(b.subarray(s, p));
  }
  return out;
}

const concat = (parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));

function agrees(schema: DescMessage, bytes: Uint8Array): number {
  const want = general(schema, bytes);
  const got = transcode(schema, bytes);
  if (want === null) expect(got.r).toBe(BAIL);
  else if (got.r === OK) expect(got.text).toBe(want);
  else expect(got.r).toBe(BAIL);
  return got.r;
}

describe("json-transcode", () => {
  for (const [prop, def] of Object.entries(entities)) {
    const schema = def.schema as DescMessage;
    it(`writes the general path's JSON or leaves the record to it, for \`${prop}\``, () => {
      let ok = 0;
      fc.assert(
        fc.property(message(schema, 0), (msg) => {
          if (agrees(schema, toBinary(schema, msg!)) === OK) ok++;
        }),
        { numRuns: 300, endOnFailure: true },
      );
      // Canonical bytes of a message without maps or other well-known types are taken: the test is not vacuous.
      if (prop === "tasks") expect(ok).toBe(300);
    });

    it(`wire variants of \`${prop}\`: reordered, repeated, zero values, cut: never a different text`, () => {
      fc.assert(
        fc.property(message(schema, 0), fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), (msg, picks) => {
          const fields = fieldsOf(toBinary(schema, msg!));
          if (fields.length === 0) return;
          const pick = (i: number) => fields[picks[i % picks.length]! % fields.length]!;
          agrees(schema, concat([...fields].reverse()));
          agrees(schema, concat([...fields, pick(0)]));
          agrees(schema, concat([pick(1), ...fields]));
          agrees(schema, concat([...fields, ...fields]));
          const whole = concat(fields);
          agrees(schema, whole.subarray(0, picks[0]! % whole.length));
        }),
        { numRuns: 200, endOnFailure: true },
      );
    });
  }

  const tasks = entities.tasks.schema as DescMessage;

  it("zero values written out on the wire are left out, as toJson leaves them out", () => {
    // status = 0 (field 3), notes = "" (field 10), estimate_minutes = 0 (field 12), then id = "a" would be out of order: put it first.
    const bytes = Uint8Array.from([0x0a, 0x01, 0x61, 0x18, 0x00, 0x52, 0x00, 0x60, 0x00]);
    const got = transcode(tasks, bytes);
    expect(got.r).toBe(OK);
    expect(got.text).toBe(general(tasks, bytes));
    expect(got.text).toBe('{"id":"a"}');
  });

  it("strings: escapes and every UTF-8 width as JSON.stringify writes them; invalid UTF-8 left to the general path", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.constantFrom('"', "\\", "\n", "\u2028", "\u0000", "ü\"𝄞", "\uFEFFx")), (title) => {
        const bytes = toBinary(tasks, create(tasks, { title } as never));
        const got = transcode(tasks, bytes);
        expect(got.r).toBe(OK);
        expect(got.text).toBe(general(tasks, bytes));
      }),
      { numRuns: 500 },
    );
    for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0x61, 0x80, 0x22]]) {
      const bytes = Uint8Array.from([0x12, bad.length, ...bad]);
      expect(general(tasks, bytes)).toBe(null);
      expect(transcode(tasks, bytes).r).toBe(BAIL);
    }
  });

  it("an output buffer too small answers ROOM, never a cut text", () => {
    const bytes = toBinary(tasks, create(tasks, { id: "x", title: "t".repeat(200), tags: ["a", "b"] } as never));
    const want = general(tasks, bytes)!;
    for (let size = 0; size < want.length + 4; size += 7) {
      const got = transcode(tasks, bytes, size);
      if (size >= want.length) expect(got).toEqual({ r: OK, text: want });
      else expect(got.r).toBe(ROOM);
    }
  });
});
