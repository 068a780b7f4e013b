// Every codegen error: a bad schema fails with `file:line:column: plain sentence`.
import { describe, expect, it } from "vitest";
import { pluginError } from "./helpers.js";

const file = "shop/v1/shop.proto";

/** A schema whose line 5 (`message Order {`) starts the entity under test. */
function schema(body: string, extra = ""): Record<string, string> {
  return {
    [file]: `syntax = "proto3";
package shop.v1;
import "cellar/v1/options.proto";
import "google/protobuf/timestamp.proto";
message Order {
${body}
}
${extra}`,
  };
}

describe("codegen errors", () => {
  it("missing version", () => {
    expect(pluginError(schema(`  option (cellar.v1.entity) = { key: "id" };\n  string id = 1;`))).toBe(
      `${file}:6:10: entity \`Order\` has no schema version; set \`version: 1\` (or higher) in (cellar.v1.entity)`,
    );
  });

  it("key naming a field that does not exist", () => {
    expect(pluginError(schema(`  option (cellar.v1.entity) = { version: 1, key: "order_id" };\n  string id = 1;\n  string note = 2;`))).toBe(
      `${file}:6:45: key \`order_id\` of entity \`Order\` names no field of the message; its fields are \`id\`, \`note\``,
    );
  });

  it("key naming a field by its local name gets a hint", () => {
    expect(
      pluginError(schema(`  option (cellar.v1.entity) = { version: 1, key: "orderId" };\n  string order_id = 1;`)),
    ).toBe(
      `${file}:6:45: key \`orderId\` of entity \`Order\` names no field of the message; did you mean \`order_id\`? (options use proto field names)`,
    );
  });

  it("sensitive field used as key", () => {
    expect(
      pluginError(
        schema(`  option (cellar.v1.entity) = { version: 1, key: "email" };\n  string email = 1 [(cellar.v1.field).sensitive = true];`),
      ),
    ).toBe(
      `${file}:6:45: sensitive field \`email\` cannot be the key of entity \`Order\`: keys are readable by every tool that opens the store (sealed under its meta key, to find records); key the entity by a non-sensitive id`,
    );
  });

  it("sensitive field used as index", () => {
    expect(
      pluginError(
        schema(
          `  option (cellar.v1.entity) = { version: 1, key: "id", indexes: ["card"] };\n  string id = 1;\n  string card = 2 [(cellar.v1.field).sensitive = true];`,
        ),
      ),
    ).toBe(
      `${file}:6:56: sensitive field \`card\` cannot be an index of entity \`Order\`: index values are readable by every tool that opens the store (sealed under its meta key); remove it from \`indexes\``,
    );
  });

  it("index on an unsupported field kind", () => {
    expect(
      pluginError(
        schema(`  option (cellar.v1.entity) = { version: 1, key: "id", indexes: ["receipt"] };\n  string id = 1;\n  bytes receipt = 2;`),
      ),
    ).toBe(
      `${file}:6:56: index \`receipt\` of entity \`Order\` is \`bytes\`, which cannot be indexed; index string, bool, enum, integer, float or double fields (singular or repeated) or google.protobuf.Timestamp and google.protobuf.Duration fields (singular)`,
    );
  });

  it("two entities with one storage name", () => {
    expect(
      pluginError(
        schema(
          `  option (cellar.v1.entity) = { version: 1, key: "id", name: "orders" };\n  string id = 1;`,
          `message LegacyOrder {\n  option (cellar.v1.entity) = { version: 1, key: "id", name: "orders" };\n  string id = 1;\n}\n`,
        ),
      ),
    ).toBe(
      `${file}:10:56: entities \`shop.v1.Order\` (${file}:5:1) and \`shop.v1.LegacyOrder\` both use the storage name \`orders\`; give one of them another (cellar.v1.entity).name`,
    );
  });

  it("singleton with a key", () => {
    expect(pluginError(schema(`  option (cellar.v1.entity) = { version: 1, singleton: true, key: "id" };\n  string id = 1;`))).toBe(
      `${file}:6:62: singleton entity \`Order\` cannot have a key (\`id\`): a singleton holds exactly one value; remove \`key\` or \`singleton\``,
    );
  });

  it("points at the exact option when it is set on its own line", () => {
    expect(
      pluginError(schema(`  option (cellar.v1.entity).version = 1;\n  option (cellar.v1.entity).key = "nope";\n  string id = 1;`)),
    ).toMatch(new RegExp(`^${file}:7:3: key \`nope\``));
  });

  it("reports every problem, one per line", () => {
    const message = pluginError(
      schema(
        `  option (cellar.v1.entity) = { key: "id", indexes: ["missing"] };\n  string id = 1;\n  string title = 2 [(cellar.v1.field).max_items = 3];`,
      ),
    );
    expect(message.split("\n")).toEqual([
      `${file}:8:21: \`max_items\` applies to repeated and map fields, but field \`title\` (string) is neither`,
      `${file}:6:10: entity \`Order\` has no schema version; set \`version: 1\` (or higher) in (cellar.v1.entity)`,
      `${file}:6:44: index \`missing\` of entity \`Order\` names no field of the message; its fields are \`id\`, \`title\``,
    ]);
  });
});

describe("more schema checks", () => {
  const cases: [string, string, string, RegExp][] = [
    ["collection without a key", `  option (cellar.v1.entity) = { version: 1 };\n  string id = 1;`, "", /collection entity `Order` has no key/],
    [
      "key of a non-key type",
      `  option (cellar.v1.entity) = { version: 1, key: "ids" };\n  repeated string ids = 1;`,
      "",
      /key field `ids` of entity `Order` is `repeated string`; a key must be a singular string or integer field/,
    ],
    [
      "singleton with indexes",
      `  option (cellar.v1.entity) = { version: 1, singleton: true, indexes: ["a"] };\n  string a = 1;`,
      "",
      /singleton entity `Order` cannot have indexes/,
    ],
    [
      "invalid storage name",
      `  option (cellar.v1.entity) = { version: 1, key: "id", name: "Orders" };\n  string id = 1;`,
      "",
      /storage name `Orders` of entity `Order` must be lower snake case/,
    ],
    [
      "reserved storage name",
      `  option (cellar.v1.entity) = { version: 1, key: "id", name: "close" };\n  string id = 1;`,
      "",
      /storage name `close` of entity `Order` is reserved/,
    ],
    [
      "retention by a non-timestamp field",
      `  option (cellar.v1.entity) = { version: 1, key: "id", retention: { timestamp_field: "id", max_age: "1d" } };\n  string id = 1;`,
      "",
      /retention `timestamp_field` `id` of entity `Order` is `string`; it must be a google.protobuf.Timestamp field/,
    ],
    [
      "malformed max_age",
      `  option (cellar.v1.entity) = { version: 1, key: "id", retention: { timestamp_field: "at", max_age: "3 days" } };\n  string id = 1;\n  google.protobuf.Timestamp at = 2;`,
      "",
      /retention `max_age` of entity `Order` must be a positive whole number with a unit/,
    ],
    [
      "length rule on a number",
      `  option (cellar.v1.entity) = { version: 1, key: "id" };\n  string id = 1;\n  int32 n = 2 [(cellar.v1.field).max_length = 3];`,
      "",
      /`min_length` and `max_length` apply to string and bytes fields, but field `n` \(int32\) is neither/,
    ],
    [
      "invalid pattern",
      `  option (cellar.v1.entity) = { version: 1, key: "id" };\n  string id = 1 [(cellar.v1.field).pattern = "(unclosed"];`,
      "",
      /`pattern` of field `id` is not a valid JavaScript regular expression/,
    ],
    [
      "fractional bound on an integer",
      `  option (cellar.v1.entity) = { version: 1, key: "id" };\n  string id = 1;\n  int64 n = 2 [(cellar.v1.field).min = 0.5];`,
      "",
      /`min` of integer field `n` must be a whole number, found 0.5/,
    ],
    [
      "default that does not parse",
      `  option (cellar.v1.entity) = { version: 1, singleton: true };\n  bool on = 1 [(cellar.v1.field).default = "yes"];`,
      "",
      /`default` of bool field `on` must be `true` or `false`, found `yes`/,
    ],
    [
      "default naming no enum value",
      `  option (cellar.v1.entity) = { version: 1, singleton: true };\n  Color c = 1 [(cellar.v1.field).default = "PURPLE"];`,
      "enum Color { COLOR_UNSPECIFIED = 0; COLOR_RED = 1; }\n",
      /`default` of field `c` is `PURPLE`, which is not a value of enum `shop.v1.Color` \(values: `COLOR_UNSPECIFIED`, `COLOR_RED`\)/,
    ],
    [
      "required oneof member",
      `  option (cellar.v1.entity) = { version: 1, key: "id" };\n  string id = 1;\n  oneof pay { string card = 2 [(cellar.v1.field).required = true]; }`,
      "",
      /`required` cannot be set on field `card`, a member of oneof `pay`/,
    ],
  ];
  it.each(cases)("%s", (_name, body, extra, expected) => {
    const message = pluginError(schema(body, extra));
    expect(message).toMatch(new RegExp(`^${file}:\\d+:\\d+: `));
    expect(message).toMatch(expected);
  });
});
