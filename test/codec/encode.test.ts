// Encoder soundness of the generated codecs: whenever `encode` takes an input, zod accepts it and the
// bytes are exactly toBinary(create(toInit(input))); and it takes (nearly) every valid input that sets
// no field it documents it declines, so the property cannot hold vacuously.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDir } from "../codegen/helpers.js";
import { fastEncode, generalBytes, mutate, setsUnsupported, validMessage, type Generated, type Subject } from "./helpers.js";
import { exampleSubjects, fixtureSubjects } from "./subjects.js";

const SEED = Number(process.env.CODEC_SEED ?? 20261122);
const RUNS = Number(process.env.CODEC_RUNS ?? 250);

let generated: Generated | undefined;
const fixtures: Subject[] = [];
beforeAll(async () => {
  const r = await fixtureSubjects();
  generated = r.generated;
  fixtures.push(...r.subjects);
});
afterAll(() => generated && removeDir(generated.dir));

/** Whether zod accepts `input` (a validator never throws: see the integer map keys test below). */
function accepts(s: Subject, input: unknown): boolean {
  return s.zod.safeParse(input).success;
}

/** The soundness claim for one input; returns whether the fast path took it. */
function checkSound(s: Subject, input: unknown, prefix: number): { taken: boolean; valid: boolean } {
  try {
    return checkSoundInner(s, input, prefix);
  } catch (e) {
    let issues: unknown;
    try {
      issues = s.zod.safeParse(input).error?.issues;
    } catch (z) {
      issues = String(z);
    }
    throw new Error(`${(e as Error).message}\ninput: ${fc.stringify(input)}\nzod: ${JSON.stringify(issues)}`);
  }
}

function checkSoundInner(s: Subject, input: unknown, prefix: number): { taken: boolean; valid: boolean } {
  const bytes = fastEncode(s.codec, input, prefix);
  const valid = accepts(s, input);
  if (bytes) {
    expect(valid, "the codec took an input zod rejects").toBe(true);
    const general = generalBytes(s.schema, input);
    expect(general, "the codec took an input create/toBinary reject").toBeInstanceOf(Uint8Array);
    expect(Buffer.from(bytes).toString("hex")).toBe(Buffer.from(general as Uint8Array).toString("hex"));
  }
  return { taken: bytes !== null, valid };
}

function soundness(get: () => Subject) {
  it("takes only what zod accepts, and writes toBinary's bytes (valid inputs and near misses)", () => {
    const s = get();
    fc.assert(
      fc.property(fc.gen(), fc.integer({ min: 0, max: 3 }), fc.boolean(), fc.boolean(), (g, prefix, miss, unsupported) => {
        let input = validMessage(g, s.schema, { unsupported, depth: 3 });
        if (miss) input = mutate(g, s.schema, input);
        checkSound(s, input, prefix);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("takes at least 90% of the valid inputs that set no field it declines", () => {
    const s = get();
    let valid = 0;
    let taken = 0;
    fc.assert(
      fc.property(fc.gen(), (g) => {
        const input = validMessage(g, s.schema, { unsupported: false, depth: 3 });
        const r = checkSound(s, input, 1);
        if (r.valid && !setsUnsupported(s.schema, input)) {
          valid++;
          if (r.taken) taken++;
        }
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
    if (s.name === "Sink") {
      // kitchen.v1.Sink requires a map field (`m_bool`): no valid input avoids the general path.
      expect(valid).toBe(0);
      return;
    }
    expect(valid, "too few valid inputs generated").toBeGreaterThan(RUNS * 0.5);
    if (process.env.CODEC_LOG) console.log(s.name, valid, taken);
    expect(taken / valid).toBeGreaterThanOrEqual(0.98);
  });
}

describe.each(exampleSubjects.map((s) => [s.name, s] as const))("example entity %s", (_, s) => soundness(() => s));
describe.each(["Sink", "Plain"])("fixture entity %s", (name) => soundness(() => fixtures.find((s) => s.name === name)!));

describe("string lengths are zod's: code points, not UTF-16 units", () => {
  const plain = () => fixtures.find((s) => s.name === "Plain")!;
  const task = () => exampleSubjects.find((s) => s.name === "Task")!;

  it("declines a string under min_length in code points though long enough in units (extra.v1.Plain.s, min_length 2)", () => {
    for (const s of ["😀", "\u{10FFFF}", "a", "\uD83D\uDE00"]) {
      const r = checkSound(plain(), { id: "a", s }, 1);
      expect(r.valid).toBe(false);
      expect(r.taken).toBe(false);
    }
    // Lone surrogates: refused whatever the length (UTF-8 cannot store them).
    for (const s of ["\uD800\uD800", "a\uDC00"]) expect(checkSound(plain(), { id: "a", s }, 1)).toEqual({ valid: false, taken: false });
    for (const s of ["😀😀", "😀a", "ab"]) expect(checkSound(plain(), { id: "a", s }, 1)).toEqual({ valid: true, taken: true });
  });

  it("takes a string within max_length in code points though longer in units", () => {
    expect(checkSound(plain(), { id: "😀".repeat(8) }, 1)).toEqual({ valid: true, taken: true });
    expect(checkSound(plain(), { id: "😀".repeat(9) }, 1)).toEqual({ valid: false, taken: false });
    expect(checkSound(task(), { id: "😀".repeat(64), title: "t" }, 1)).toEqual({ valid: true, taken: true });
    expect(checkSound(task(), { id: "😀".repeat(64) + "a", title: "t" }, 1)).toEqual({ valid: false, taken: false });
  });
});

describe("non-enumerable own properties: zod reads them, toInit (the general path) does not copy them", () => {
  const plain = () => fixtures.find((s) => s.name === "Plain")!;
  const task = () => exampleSubjects.find((s) => s.name === "Task")!;
  const hidden = (o: Record<string, unknown>, key: string, value: unknown) => Object.defineProperty(o, key, { value, enumerable: false, configurable: true });

  it("an optional field set through a non-enumerable property is not written by the fast path", () => {
    checkSound(task(), hidden({ id: "a", title: "t" }, "notes", "hidden"), 1);
    checkSound(plain(), hidden({ id: "a" }, "i32", 5), 1);
    checkSound(plain(), hidden({ id: "a" }, "tree", { name: "x" }), 1);
  });

  it("a required field given only as a non-enumerable property", () => {
    checkSound(task(), hidden({ id: "a" }, "title", "t"), 1);
  });

  it("a wrong $typeName in a non-enumerable property is refused as zod refuses it", () => {
    const r = checkSound(task(), hidden({ id: "a", title: "t" }, "$typeName", "wrong.Type"), 1);
    expect(r).toEqual({ valid: false, taken: false });
    checkSound(task(), hidden({ id: "a", title: "t" }, "$unknown", [{ no: 99, wireType: 0, data: new Uint8Array([1]) }]), 1);
  });

  it("a oneof whose case or value is a non-enumerable property", () => {
    checkSound(plain(), { id: "a", pick: hidden({ case: "pS" }, "value", "abc") }, 1);
    checkSound(plain(), { id: "a", pick: hidden({ value: "abc" }, "case", "pS") }, 1);
    checkSound(plain(), { id: "a", pick: hidden({}, "case", undefined) }, 1);
  });
});

describe("the generated zod of float fields (generate-zod.ts)", () => {
  // A finite float beyond float32's range passed zod, then toBinary threw a plain Error out of put.
  it("refuses a finite float beyond float32's range as an issue; NaN, ±Infinity and the largest float32 pass", () => {
    const p = fixtures.find((s) => s.name === "Plain")!;
    for (const f of [3.5e38, -3.5e38, Number.MAX_VALUE]) {
      expect(p.zod.safeParse({ id: "a", f }).success, String(f)).toBe(false);
      expect(fastEncode(p.codec, { id: "a", f })).toBeNull();
    }
    for (const f of [NaN, Infinity, -Infinity, 3.4028234663852886e38, -1.5, 0]) {
      expect(p.zod.safeParse({ id: "a", f }).success, String(f)).toBe(true);
      expect(checkSound(p, { id: "a", f }, 1)).toEqual({ valid: true, taken: true });
    }
  });
});

describe("the generated zod of integer map keys and JS_STRING int64 (generate-zod.ts)", () => {
  // Found by these properties: zod runs a refinement even after the regex before it failed, and the
  // refinement's BigInt(key) threw a SyntaxError out of safeParse (and out of put).
  it("reports a non-numeric key of map<int32, Node> as an issue instead of throwing; the codec declines the map", () => {
    const sink = fixtures.find((s) => s.name === "Sink")!;
    const input = { id: "a", fBool: true, fBytes: new Uint8Array(1), rInt32: [1], mBool: { true: new Uint8Array(0) }, mInt32: { x: {} } };
    const r = sink.zod.safeParse(input);
    expect(r.success).toBe(false);
    expect(fastEncode(sink.codec, input)).toBeNull();
    expect(sink.zod.safeParse({ ...input, mInt32: {}, asString: "12x" }).success).toBe(false);
    expect(sink.zod.safeParse({ ...input, mInt32: { "7": {} }, asString: "-12" }).success).toBe(true);
  });
});
