/**
 * fast-check arbitraries of protobuf messages built from their descriptors (every field kind, map keys of
 * each kind, oneofs, unknown enum numbers, NaN / ±Infinity / -0, 64-bit extremes, timestamps with 0, 3, 6
 * and 9 fractional digits, nested messages): the JSON writer and transcoder tests compare their text with
 * protobuf-es's on them.
 */
import { create, type DescField, type DescMessage, type Message, ScalarType } from "@bufbuild/protobuf";
import fc from "fast-check";

const I64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
const U64 = { min: 0n, max: 2n ** 64n - 1n };

function scalar(f: DescField, t: ScalarType): fc.Arbitrary<unknown> {
  const long = (r: { min: bigint; max: bigint }) => fc.bigInt(r).map((b) => ((f as { longAsString?: boolean }).longAsString ? b.toString() : b));
  switch (t) {
    case ScalarType.STRING:
      return fc.oneof(fc.string(), fc.constantFrom("", "ünï ✓", "\u2028\"\\\n", "𝄞", "a\u0000b"));
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.integer();
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.nat({ max: 2 ** 32 - 1 });
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return long(I64);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return long(U64);
    case ScalarType.DOUBLE:
      return fc.oneof(fc.double(), fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 1e21, 5e-324));
    case ScalarType.FLOAT:
      return fc.float();
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 24 });
  }
}

function single(f: DescField, kind: string | undefined, depth: number): fc.Arbitrary<unknown> {
  if (kind === "enum") {
    const e = (f as { enum: { values: { number: number }[] } }).enum;
    return fc.oneof(fc.constantFrom(...e.values.map((v) => v.number)), fc.integer({ min: -3, max: 1000 }));
  }
  if (kind === "message") return message((f as { message: DescMessage }).message, depth + 1);
  return scalar(f, (f as { scalar: ScalarType }).scalar);
}

export function message(desc: DescMessage, depth: number): fc.Arbitrary<Message | undefined> {
  if (desc.typeName === "google.protobuf.Timestamp") {
    return fc
      .record({
        seconds: fc.bigInt({ min: -62135596800n, max: 253402300799n }),
        nanos: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 999 }).map((n) => n * 1e6), fc.integer({ min: 1, max: 999999 }).map((n) => n * 1e3), fc.integer({ min: 0, max: 999999999 })),
      })
      .map((t) => create(desc, t as never));
  }
  if (desc.typeName === "google.protobuf.Duration") {
    return fc.integer({ min: -100000, max: 100000 }).map((s) => create(desc, { seconds: BigInt(s), nanos: 0 } as never));
  }
  if (desc.typeName.startsWith("google.protobuf.") || depth > 3) return fc.constant(undefined);
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const m of desc.members) {
    if (m.kind === "oneof") {
      parts[m.localName] = fc.oneof(fc.constant(undefined), ...m.fields.map((f) => single(f, f.fieldKind, depth).map((value) => ({ case: f.localName, value }))));
    } else if (m.fieldKind === "list") {
      parts[m.localName] = fc.array(single(m, m.listKind, depth), { maxLength: 3 }).map((a) => a.filter((x) => x !== undefined));
    } else if (m.fieldKind === "map") {
      const k = m.mapKey === ScalarType.STRING ? fc.string() : m.mapKey === ScalarType.BOOL ? fc.constantFrom("true", "false") : fc.integer({ min: -50, max: 50 }).map(String);
      parts[m.localName] = fc.dictionary(k, single(m, m.mapKind, depth).filter((x) => x !== undefined), { maxKeys: 3 });
    } else {
      parts[m.localName] = fc.option(single(m, m.fieldKind, depth), { nil: undefined });
    }
  }
  return fc.record(parts).map((init) => {
    const clean = Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined));
    return create(desc, clean as never) as Message;
  });
}
