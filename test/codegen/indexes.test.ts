// `(cellar.v1.entity).indexes`: compound indexes and the Timestamp, Duration, double and float kinds, as
// codegen emits them (`indexes`, `indexSpecs`, the index type) and refuses them (`file:line:column`).
import { fromBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FocusSessionCodec } from "../../src/generated/examples/focus/v1/focus_codec.js";
import { FocusSessionSchema } from "../../src/generated/examples/focus/v1/focus_pb.js";
import { ProtoWriter } from "../../src/runtime/format/protowire.js";
import { pluginError, runPlugin } from "./helpers.js";

const file = "shop/v1/shop.proto";

/** A schema whose line 7 (`message Order {`) starts the entity; `option` is on line 8. */
function schema(body: string, extra = ""): Record<string, string> {
  return {
    [file]: `syntax = "proto3";
package shop.v1;
import "cellar/v1/options.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/timestamp.proto";

message Order {
${body}
}
${extra}`,
  };
}

/** `file:line:column: ` of `needle`'s first occurrence in the schema (1-based, as protoc counts). */
function at(protos: Record<string, string>, needle: string): string {
  const lines = protos[file]!.split("\n");
  const line = lines.findIndex((l) => l.includes(needle));
  if (line < 0) throw new Error(`${needle} is not in the schema`);
  return `${file}:${line + 1}:${lines[line]!.indexOf(needle) + 1}: `;
}

const fields = `  string id = 1;
  string project_id = 2;
  google.protobuf.Timestamp placed_at = 3;
  google.protobuf.Duration took = 4;
  double score = 5;
  float weight = 6;
  repeated string tags = 7;
  Status status = 8;
  bytes receipt = 9;
  string card = 10 [(cellar.v1.field).sensitive = true];
  repeated google.protobuf.Timestamp stamps = 11;
  oneof pay { string voucher = 12; }`;
const statusEnum = "enum Status { STATUS_UNSPECIFIED = 0; STATUS_OPEN = 1; }\n";

/** The entity with one `indexes: "<declaration>"` statement per line, the first on line 11. */
function withIndexes(...declarations: string[]): Record<string, string> {
  const statements = declarations.map((d) => `    indexes: ${JSON.stringify(d)}\n`).join("");
  return schema(`  option (cellar.v1.entity) = {\n    version: 1\n    key: "id"\n${statements}  };\n${fields}`, statusEnum);
}

/** Where codegen points a finding about declaration `i` of {@link withIndexes}: its own statement. */
const declarationAt = (i: number) => `${file}:${11 + i}:5: `;

describe("index declarations in generated code", () => {
  const protos = withIndexes("tags", "project_id, placed_at", "placed_at", "score,weight,took", "status,project_id");
  const run = runPlugin(protos);
  const cellar = run.files.get("shop/v1/shop_cellar.ts") ?? "";

  it("lists every component field once, first seen first, as `indexes` and the index type", () => {
    expect(cellar).toContain('  indexes: ["tags", "projectId", "placedAt", "score", "weight", "took", "status"],\n');
    expect(cellar).toContain('export type OrderIndex = "tags" | "projectId" | "placedAt" | "score" | "weight" | "took" | "status";\n');
  });

  it("emits one IndexSpec per declaration: field numbers as id, local names, the declaration without spaces", () => {
    expect(cellar).toContain(
      "  indexSpecs: [\n" +
        '    { id: "7", fields: ["tags"], name: "tags" },\n' +
        '    { id: "2,3", fields: ["projectId", "placedAt"], name: "project_id,placed_at" },\n' +
        '    { id: "3", fields: ["placedAt"], name: "placed_at" },\n' +
        '    { id: "5,6,4", fields: ["score", "weight", "took"], name: "score,weight,took" },\n' +
        '    { id: "8,2", fields: ["status", "projectId"], name: "status,project_id" },\n' +
        "  ],\n",
    );
    expect(cellar).toContain(
      " * Fields `order` can be queried by: every field of its indexes (`(cellar.v1.entity).indexes`: `tags`, `project_id,placed_at`, `placed_at`, `score,weight,took`, `status,project_id`).\n",
    );
  });

  it("hands the store the index values the codec read: scalars as read, Timestamp and Duration as a zero message holding what their encoder read", () => {
    const codec = run.files.get("shop/v1/shop_codec.ts") ?? "";
    expect(codec).toContain("  if (w.depth === 1) w.top.score = v;\n");
    expect(codec).toContain(
      "    if (!encode_google_protobuf_Timestamp(w, v, w.depth === 1 ? (w.top.placedAt = zero_google_protobuf_Timestamp()) : undefined)) return false;\n",
    );
    expect(codec).toContain("    if (!encode_google_protobuf_Duration(w, v, w.depth === 1 ? (w.top.took = zero_google_protobuf_Duration()) : undefined)) return false;\n");
    expect(codec).toContain("function encode_google_protobuf_Timestamp(w: ProtoWriter, o: any, into?: any): boolean {\n");
    expect(codec).toContain("  if (into !== undefined && v !== undefined) into.seconds = v;\n");
    expect(codec).not.toContain("w.top.receipt");
    expect(codec).not.toContain("w.top.placedAt = v");
  });

  it("a Timestamp index value is what the encoder read and wrote, even when a getter answers differently later", () => {
    let reads = 0;
    const startedAt = {
      get seconds() {
        return reads++ === 0 ? 1_700_000_000n : 5n;
      },
      nanos: 250,
    };
    const w = new ProtoWriter();
    expect(FocusSessionCodec.encode(w, { id: "s1", startedAt, duration: { seconds: 1500n } })).toBe(true);
    expect(reads).toBe(1);
    const stored = fromBinary(FocusSessionSchema, w.buf.subarray(0, w.pos));
    expect(stored.startedAt?.seconds).toBe(1_700_000_000n);
    // The store indexes this (a zero message holding what was read), not `startedAt` read again (5n).
    expect(w.top.startedAt).toEqual({ $typeName: "google.protobuf.Timestamp", seconds: 1_700_000_000n, nanos: 250 });
    expect(w.top.duration).toEqual({ $typeName: "google.protobuf.Duration", seconds: 1500n, nanos: 0 });
    expect(w.top.startedAt).not.toBe(startedAt);
  });

  it("an unset Duration index field is not handed over (the record is not in its index)", () => {
    const w = new ProtoWriter();
    expect(FocusSessionCodec.encode(w, { id: "s2", startedAt: { seconds: 1n } })).toBe(true);
    expect(w.top).toEqual({ id: "s2", startedAt: { $typeName: "google.protobuf.Timestamp", seconds: 1n, nanos: 0 } });
  });

  it("is byte-identical across runs", () => {
    expect(runPlugin(protos).files).toEqual(run.files);
  });

  it("an entity without indexes has empty `indexes` and `indexSpecs`", () => {
    const none = runPlugin(schema(`  option (cellar.v1.entity) = { version: 1, key: "id" };\n  string id = 1;`));
    const text = none.files.get("shop/v1/shop_cellar.ts") ?? "";
    expect(text).toContain("  indexes: [],\n  indexSpecs: [],\n");
    expect(text).toContain("export type OrderIndex = never;\n");
  });
});

describe("index declarations codegen refuses", () => {
  const entity = "of entity `Order`";
  const kinds =
    "index string, bool, enum, integer, float or double fields (singular or repeated) or google.protobuf.Timestamp and google.protobuf.Duration fields (singular)";
  const cases: [string, string[], number, string][] = [
    [
      "a compound index naming no field",
      ["project_id,placd_at"],
      0,
      `field \`placd_at\` of index \`project_id,placd_at\` ${entity} names no field of the message; its fields are \`id\`, \`project_id\`, \`placed_at\`, \`took\`, \`score\`, \`weight\`, \`tags\`, \`status\`, \`receipt\`, \`card\`, \`stamps\`, \`voucher\``,
    ],
    [
      "a compound index naming a field by its local name",
      ["projectId,placed_at"],
      0,
      `field \`projectId\` of index \`projectId,placed_at\` ${entity} names no field of the message; did you mean \`project_id\`? (options use proto field names)`,
    ],
    [
      "a field of an unsupported kind in a compound index",
      ["project_id,receipt"],
      0,
      `field \`receipt\` of index \`project_id,receipt\` ${entity} is \`bytes\`, which cannot be indexed; ${kinds}`,
    ],
    [
      "a repeated Timestamp",
      ["stamps"],
      0,
      `index \`stamps\` ${entity} is \`repeated google.protobuf.Timestamp\`, which cannot be indexed; ${kinds}`,
    ],
    [
      "a sensitive field in a compound index",
      ["placed_at,card"],
      0,
      `sensitive field \`card\` cannot be an index ${entity}: index values are readable by every tool that opens the store (sealed under its meta key); remove it from \`indexes\``,
    ],
    ["a field listed twice in one index", ["status, project_id, status"], 0, `index \`status,project_id,status\` ${entity} lists field \`status\` twice`],
    [
      "one compound index declared twice (spaces do not count)",
      ["project_id,placed_at", "status", "project_id , placed_at"],
      2,
      `index \`project_id,placed_at\` ${entity} is listed twice`,
    ],
    ["one single-field index declared twice", ["score", "score"], 1, `index \`score\` ${entity} is listed twice`],
    [
      "a repeated field in a compound index",
      ["tags,placed_at"],
      0,
      `field \`tags\` of index \`tags,placed_at\` ${entity} is \`repeated string\`: a repeated field can only be indexed on its own (\`"tags"\`), not in a compound index`,
    ],
    [
      "a oneof member",
      ["voucher"],
      0,
      `index \`voucher\` ${entity} is a member of oneof \`pay\`, which cannot be indexed; index fields outside oneofs`,
    ],
    [
      "an empty field name",
      ["project_id,"],
      0,
      `index \`project_id,\` ${entity} has an empty field name; name each field once, separated by commas (\`"project_id,created_at"\`)`,
    ],
  ];
  it.each(cases)("%s", (_name, declarations, i, reason) => {
    expect(pluginError(withIndexes(...declarations))).toBe(declarationAt(i) + reason);
  });

  it("reports every bad declaration, one line each, and no other", () => {
    const protos = withIndexes("placed_at,took", "tags,status", "status", "receipt", "weight,score");
    expect(pluginError(protos).split("\n")).toEqual([
      declarationAt(1) + `field \`tags\` of index \`tags,status\` ${entity} is \`repeated string\`: a repeated field can only be indexed on its own (\`"tags"\`), not in a compound index`,
      declarationAt(3) + `index \`receipt\` ${entity} is \`bytes\`, which cannot be indexed; ${kinds}`,
    ]);
  });
});

/** A field of a random schema: its declaration, and what an index may do with it. */
interface RandomField {
  readonly type: string;
  readonly indexable: boolean;
  readonly repeated: boolean;
  readonly sensitive?: boolean;
  readonly oneof?: boolean;
}
const fieldKinds: RandomField[] = [
  { type: "string", indexable: true, repeated: false },
  { type: "bool", indexable: true, repeated: false },
  { type: "sint32", indexable: true, repeated: false },
  { type: "uint64", indexable: true, repeated: false },
  { type: "double", indexable: true, repeated: false },
  { type: "float", indexable: true, repeated: false },
  { type: "Status", indexable: true, repeated: false },
  { type: "google.protobuf.Timestamp", indexable: true, repeated: false },
  { type: "google.protobuf.Duration", indexable: true, repeated: false },
  { type: "repeated string", indexable: true, repeated: true },
  { type: "repeated fixed32", indexable: true, repeated: true },
  { type: "bytes", indexable: false, repeated: false },
  { type: "map<string, string>", indexable: false, repeated: false },
  { type: "repeated google.protobuf.Duration", indexable: false, repeated: true },
  { type: "google.protobuf.StringValue", indexable: false, repeated: false },
  { type: "string", indexable: true, repeated: false, sensitive: true },
  { type: "int64", indexable: true, repeated: false, oneof: true },
];
/** A field any index may hold (a repeated one only alone). */
const plain = (k: RandomField) => k.indexable && !k.sensitive && !k.oneof && !k.repeated;
const names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];

describe("random schemas' indexes", () => {
  it("are generated exactly as declared, or refused on exactly the lines of the bad declarations", () => {
    const model = fc.record({
      // Mostly fields an index may hold, so that as many schemas pass as fail.
      kinds: fc.array(
        fc.oneof({ arbitrary: fc.constantFrom(...fieldKinds.filter(plain)), weight: 5 }, { arbitrary: fc.constantFrom(...fieldKinds.filter((k) => !plain(k))), weight: 1 }),
        { minLength: 1, maxLength: names.length },
      ),
      numbers: fc.shuffledSubarray([2, 3, 5, 7, 11, 13, 17, 19, 100, 1000], { minLength: names.length, maxLength: names.length }),
      // Components: the i-th field (modulo the field count) or, rarely, a name no field has.
      declarations: fc.array(
        fc.array(fc.tuple(fc.oneof({ arbitrary: fc.nat(names.length), weight: 12 }, { arbitrary: fc.constant(-1), weight: 1 }), fc.constantFrom("", " ")), {
          minLength: 1,
          maxLength: 3,
        }),
        { minLength: 0, maxLength: 4 },
      ),
    });
    fc.assert(
      fc.property(model, ({ kinds, numbers, declarations }) => {
        const fs = kinds.map((k, i) => ({ ...k, name: names[i]!, number: numbers[i]! }));
        const nameOf = (i: number) => (i < 0 ? "nope" : fs[i % fs.length]!.name);
        const decls = declarations.map((parts) => parts.map(([i, space]) => nameOf(i) + space).join(`,${parts[0]![1]}`));
        const lines = [
          "syntax = \"proto3\";",
          "package shop.v1;",
          'import "cellar/v1/options.proto";',
          'import "google/protobuf/duration.proto";',
          'import "google/protobuf/timestamp.proto";',
          'import "google/protobuf/wrappers.proto";',
          "message Order {",
          '  option (cellar.v1.entity) = { version: 1, key: "id"',
          // One statement per declaration, so a finding's line tells which declaration it is about.
          ...decls.map((d) => `    indexes: ${JSON.stringify(d)}`),
          "  };",
          "  string id = 1;",
          ...fs.map((f) => {
            const annotation = f.sensitive ? " [(cellar.v1.field).sensitive = true]" : "";
            const decl = `${f.type} ${f.name} = ${f.number}${annotation};`;
            return f.oneof ? `  oneof choice_${f.name} { ${decl} }` : `  ${decl}`;
          }),
          "}",
          "enum Status { STATUS_UNSPECIFIED = 0; STATUS_OPEN = 1; }",
          "",
        ];
        const firstDeclLine = 9;

        // What the rules say, written from the option's documentation.
        const bad = new Set<number>();
        const seen = new Set<string>();
        const specs: { id: string; fields: string[]; name: string }[] = [];
        decls.forEach((d, i) => {
          const comps = d.split(",").map((s) => s.trim());
          const found = comps.map((c) => fs.find((f) => f.name === c));
          if (found.some((f) => !f) || new Set(comps).size !== comps.length) return void bad.add(i);
          const id = found.map((f) => f!.number).join(",");
          if (seen.has(id)) return void bad.add(i);
          seen.add(id);
          const compound = comps.length > 1;
          if (found.some((f) => !f!.indexable || f!.sensitive || f!.oneof || (compound && f!.repeated))) return void bad.add(i);
          specs.push({ id, fields: comps, name: comps.join(",") });
        });

        const protos = { [file]: lines.join("\n") };
        if (bad.size > 0) {
          const errorLines = new Set(pluginError(protos).split("\n").map((l) => Number(/^shop\/v1\/shop\.proto:(\d+):\d+: /.exec(l)?.[1])));
          expect(errorLines).toEqual(new Set([...bad].map((i) => firstDeclLine + i)));
          return;
        }
        const text = runPlugin(protos).files.get("shop/v1/shop_cellar.ts") ?? "";
        const union = [...new Set(specs.flatMap((s) => s.fields))];
        expect(text).toContain(`  indexes: [${union.map((n) => JSON.stringify(n)).join(", ")}],\n`);
        expect(text).toContain(`export type OrderIndex = ${union.length > 0 ? union.map((n) => JSON.stringify(n)).join(" | ") : "never"};\n`);
        const specLines = specs.map((s) => `    { id: "${s.id}", fields: [${s.fields.map((n) => JSON.stringify(n)).join(", ")}], name: "${s.name}" },\n`);
        expect(text).toContain(specs.length > 0 ? `  indexSpecs: [\n${specLines.join("")}  ],\n` : "  indexSpecs: [],\n");
      }),
      { numRuns: 24 },
    );
  });
});
