/**
 * The import's fast path (typed/import-json.ts) reads a line's protobuf JSON straight into a write input;
 * whenever it answers, its input must equal the general path's (`toInput(fromJson(json))`), and whenever
 * `fromJson` refuses the JSON it must leave it to the general path (`undefined`). Random messages of every
 * example entity and of a message with every field shape (fast-check), as `toJson` writes them and in the
 * variants a hand-edited or foreign file may have: proto names, nulls, zero values written out, enums and
 * 64-bit integers as numbers, numbers as strings, both spellings of a key, unknown keys, any JSON value in
 * any field; timestamps of every shape.
 */
import { create, createFileRegistry, type DescMessage, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, file_google_protobuf_duration, file_google_protobuf_timestamp } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { entities } from "../../src/generated/index.js";
import { inputReader } from "../../src/runtime/typed/import-json.js";
import { toInput } from "../../src/runtime/typed/import-records.js";
import { message } from "../helpers/proto-arbitrary.js";

/** `sink.Sink`: every scalar type, optional, oneof, lists, maps, enums (open), nested and recursive messages, jstype, Timestamp, Duration. */
function sinkSchema(): DescMessage {
  const scalars: [string, number][] = [
    ["f_double", 1], ["f_float", 2], ["f_int64", 3], ["f_uint64", 4], ["f_int32", 5], ["f_fixed64", 6], ["f_fixed32", 7], ["f_bool", 8],
    ["f_string", 9], ["f_bytes", 12], ["f_uint32", 13], ["f_sfixed32", 15], ["f_sfixed64", 16], ["f_sint32", 17], ["f_sint64", 18],
  ];
  let no = 1;
  const jsonName = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const field = (name: string, type: number, extra: Record<string, unknown> = {}) => ({ name, jsonName: jsonName(name), number: no++, type, label: 1, ...extra });
  const file = create(FileDescriptorProtoSchema, {
    name: "sink.proto",
    package: "sink",
    syntax: "proto3",
    dependency: ["google/protobuf/timestamp.proto", "google/protobuf/duration.proto"],
    enumType: [{ name: "Flavor", value: [{ name: "FLAVOR_UNSPECIFIED", number: 0 }, { name: "FLAVOR_SWEET", number: 1 }, { name: "FLAVOR_SOUR", number: 2 }] }],
    messageType: [
      {
        name: "Sink",
        field: [
          ...scalars.map(([name, type]) => field(name, type)),
          field("r_int32", 5, { label: 3 }),
          field("r_int64", 3, { label: 3 }),
          field("r_bytes", 12, { label: 3 }),
          field("r_string", 9, { label: 3 }),
          field("r_flavor", 14, { label: 3, typeName: ".sink.Flavor" }),
          field("r_node", 11, { label: 3, typeName: ".sink.Node" }),
          field("r_at", 11, { label: 3, typeName: ".google.protobuf.Timestamp" }),
          field("flavor", 14, { typeName: ".sink.Flavor" }),
          field("node", 11, { typeName: ".sink.Node" }),
          field("at", 11, { typeName: ".google.protobuf.Timestamp" }),
          field("took", 11, { typeName: ".google.protobuf.Duration" }),
          field("as_string", 3, { options: { jstype: 1 } }),
          field("maybe", 9, { proto3Optional: true, oneofIndex: 1 }),
          field("maybe_n", 13, { proto3Optional: true, oneofIndex: 2 }),
          field("c_text", 9, { oneofIndex: 0 }),
          field("c_node", 11, { oneofIndex: 0, typeName: ".sink.Node" }),
          field("c_flavor", 14, { oneofIndex: 0, typeName: ".sink.Flavor" }),
          field("c_at", 11, { oneofIndex: 0, typeName: ".google.protobuf.Timestamp" }),
          field("m_string", 11, { label: 3, typeName: ".sink.Sink.MStringEntry" }),
        ],
        oneofDecl: [{ name: "choice" }, { name: "_maybe" }, { name: "_maybe_n" }],
        nestedType: [{ name: "MStringEntry", field: [{ name: "key", jsonName: "key", number: 1, type: 9, label: 1 }, { name: "value", jsonName: "value", number: 2, type: 9, label: 1 }], options: { mapEntry: true } }],
      },
      { name: "Node", field: [{ name: "label", number: 1, type: 9, label: 1, jsonName: "label" }, { name: "child_nodes", jsonName: "childNodes", number: 2, type: 11, label: 3, typeName: ".sink.Node" }] },
    ],
  });
  const deps = new Map([
    ["google/protobuf/timestamp.proto", file_google_protobuf_timestamp.proto],
    ["google/protobuf/duration.proto", file_google_protobuf_duration.proto],
  ]);
  return createFileRegistry(file, (name) => deps.get(name)).getMessage("sink.Sink")!;
}

const schemas: [string, DescMessage][] = [...Object.entries(entities).map(([p, d]): [string, DescMessage] => [p, d.schema as DescMessage]), ["sink", sinkSchema()]];

/** The general path's write input, or null when `fromJson` refuses the JSON. */
function general(schema: DescMessage, json: unknown): unknown {
  try {
    return toInput(schema, fromJson(schema, json as JsonValue));
  } catch {
    return null;
  }
}

/** The fast path agrees with the general one on `json`; true when it answered. */
function agrees(schema: DescMessage, json: unknown): boolean {
  const want = general(schema, json);
  const got = inputReader(schema)(json);
  if (want === null) expect(got).toBeUndefined();
  else if (got !== undefined) expect(got).toEqual(want);
  return got !== undefined;
}

/** The canonical JSON of a random message, as a line holds it (through JSON text), or null when toJson refuses it. */
function jsonOf(schema: DescMessage, msg: unknown): Record<string, unknown> | null {
  try {
    return JSON.parse(JSON.stringify(toJson(schema, msg as never))) as Record<string, unknown>;
  } catch {
    return null;
  }
}

const protoName = (schema: DescMessage, key: string) => schema.fields.find((f) => f.jsonName === key)?.name ?? key;

describe("import-json", () => {
  for (const [prop, schema] of schemas) {
    it(`reads \`toJson\`'s JSON of \`${prop}\` as the general path does, or leaves it to it`, () => {
      let taken = 0;
      fc.assert(
        fc.property(message(schema, 0), (msg) => {
          const json = jsonOf(schema, msg);
          if (json === null) return;
          agrees(schema, json);
          // Without the fields it leaves to the general path (sink: a Duration, a jstype string, a map).
          for (const k of ["took", "asString", "mString"]) delete json[k];
          if (agrees(schema, json)) taken++;
        }),
        { numRuns: 300, endOnFailure: true },
      );
      // Not vacuous: a record without maps or other well-known types is always taken.
      if (prop === "tasks") expect(taken).toBe(300);
      else expect(taken).toBeGreaterThan(0);
    });

    it(`variants of \`${prop}\`'s JSON: never a different input`, () => {
      const anyJson = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(null, 0, -0, "", "0", "-0", "1", " 1", "1.5", "0x10", "NaN", "Infinity", 1e400, 2 ** 53, -(2 ** 31), 2 ** 32, "AAEC", "AA==", "-_", "!", true, "true", [], {}, [null], "FLAVOR_SWEET", "TASK_STATUS_DONE", "2024-02-29T12:00:00Z"));
      fc.assert(
        fc.property(message(schema, 0), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 6 }), anyJson), { minLength: 1, maxLength: 4 }), (msg, edits) => {
          const json = jsonOf(schema, msg);
          if (json === null) return;
          const keys = schema.fields.map((f) => f.jsonName);
          for (const [pick, how, v] of edits) {
            const key = keys[pick % keys.length]!;
            if (how === 0) json[key] = v; // any value in a known field
            else if (how === 1) json[key] = null;
            else if (how === 2 && key in json) {
              json[protoName(schema, key)] = json[key]; // the proto name instead
              if (protoName(schema, key) !== key) delete json[key];
            } else if (how === 3 && key in json) json[protoName(schema, key)] = json[key]; // both spellings
            else if (how === 4) json[`x${pick}`] = v; // unknown key
            else if (how === 5 && typeof json[key] === "number") json[key] = String(json[key]); // a number as a string
            else if (how === 6) json[key] = Array.isArray(v) ? v : [v]; // a list of anything
          }
          agrees(schema, json);
        }),
        { numRuns: 300, endOnFailure: true },
      );
    });
  }

  const tasks = entities.tasks.schema as DescMessage;

  it("zero values written out, enums by number, nulls: the input a put of the same record takes", () => {
    const json = { id: "a", title: "", status: 0, priority: "PRIORITY_UNSPECIFIED", notes: "", tags: [], estimateMinutes: 0, projectId: null, created_at: "2026-01-02T03:04:05.5Z" };
    const got = inputReader(tasks)(json);
    expect(got).toEqual(general(tasks, json));
    expect(got).toEqual({ id: "a", createdAt: { $typeName: "google.protobuf.Timestamp", seconds: BigInt(Date.UTC(2026, 0, 2, 3, 4, 5) / 1000), nanos: 500_000_000 } });
  });

  it("timestamps of every shape: the general path's seconds and nanos, or left to it", () => {
    const two = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, "0"));
    const stamp = fc
      .tuple(
        fc.oneof(fc.integer({ min: 0, max: 9999 }).map((n) => String(n).padStart(4, "0")), fc.constantFrom("1970", "2000", "1900", "2100", "0001", "9999", "12345", "19a0")),
        two(13),
        two(32),
        fc.oneof(two(25), fc.constant("24")),
        two(61),
        two(61),
        fc.oneof(fc.constant(""), fc.stringMatching(/^\.[0-9]{0,11}$/), fc.constantFrom(".", ".5", ".123456789", ".1234567890")),
        fc.constantFrom("Z", "Z", "Z", "z", "+00:00", "-05:30", ""),
        fc.constantFrom("-", "-", "/"),
        fc.constantFrom("T", "T", "t", " "),
      )
      .map(([y, mo, d, h, mi, s, frac, zone, sep, t]) => `${y}${sep}${mo}${sep}${d}${t}${h}:${mi}:${s}${frac}${zone}`);
    const valid = fc
      .tuple(fc.date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true }), fc.stringMatching(/^[0-9]{0,9}$/))
      .map(([d, frac]) => d.toISOString().slice(0, 19) + (frac ? `.${frac}` : "") + "Z");
    let taken = 0;
    fc.assert(
      fc.property(fc.oneof(valid, stamp), (at) => {
        if (agrees(tasks, { id: "x", title: "t", createdAt: at })) taken++;
      }),
      { numRuns: 2000 },
    );
    expect(taken).toBeGreaterThan(500);
    for (const at of ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2024-02-29T00:00:00Z", "2000-02-29T23:59:59Z", "1969-12-31T23:59:59.000000001Z"]) {
      expect(agrees(tasks, { createdAt: at })).toBe(true);
    }
    for (const at of ["2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-01-01T24:00:00Z", "0000-01-01T00:00:00Z", "2024-01-01T00:00:00+01:00"]) {
      expect(inputReader(tasks)({ createdAt: at })).toBeUndefined();
      agrees(tasks, { createdAt: at });
    }
  });
});
