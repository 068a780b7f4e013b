// `cellar check`, one scenario per rule on the shape of stored records: each project is a copy of one
// locked base, fails with the finding (file:line:column, what is wrong, what to do), then passes once
// fixed the way the finding says.
import { afterAll, describe, expect, it } from "vitest";
import { removeDir } from "./helpers.js";
import { copyOf, lineOf, lockedBase, shopFile, writeOrdersMigration } from "./schema-project.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));
const base = lockedBase("rules-base", dirs);
const project = (name: string) => copyOf(base, `rules-${name}`, dirs);

it("the locked base is clean and says so", () => {
  const p = project("clean");
  const r = p.check();
  expect(r.exitCode, r.text).toBe(0);
  expect(r.findings).toEqual([]);
  expect(r.text).toBe("cellar: 2 entities compatible with the schema lock (proto/cellar.lock, 2 locked)");
});

describe("a shape old records cannot be read as needs a raised version and a migration", () => {
  it("field type changed: buf's WIRE_JSON finding at the field, mapped to the app-root path; fixed by version 2 + a migration", () => {
    const p = project("type");
    p.edit("string note = 2;", "int64 note = 2;");
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    const line = lineOf(p.schema(), "int64 note = 2;");
    expect(r.text).toContain(
      `${shopFile}:${line}:3: field \`2\` with name \`note\` on message \`Order\` changed type from \`string\` to \`int64\` (entity \`orders\`, version 1) [FIELD_WIRE_JSON_COMPATIBLE_TYPE]\n` +
        "  fix: records of `orders` stored at version 1 cannot be read as this shape: raise `version` of entity `orders` to 2 and run `cellar generate` to write the migration from 1",
    );
    expect(r.errors).toHaveLength(1); // Cellar's own comparison saw it too, but buf already said it on that line
    expect(r.text).toContain("cellar: 1 finding in 1 entity against the schema lock (proto/cellar.lock)");

    p.edit("version: 1, name: \"orders\"", "version: 2, name: \"orders\"");
    writeOrdersMigration(p, "return { ...record, note: BigInt(record.note.length) };");
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    expect(r.text).toContain(
      `${shopFile}:${line}:3: info: field \`2\` with name \`note\` on message \`Order\` changed type from \`string\` to \`int64\` (covered by the migration of \`orders\` from 1 to 2)`,
    );
  });

  it("field number reused by a new field of another type", () => {
    const p = project("reuse");
    p.edit("  Line line = 5;\n", "  Line line = 5;\n  reserved 2;\n  reserved \"note\";\n");
    p.edit("  string note = 2;\n", "");
    expect(p.check().exitCode).toBe(0); // removed and reserved: fine
    p.edit("  reserved 2;\n  reserved \"note\";\n", "  bool gift = 2;\n");
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    const line = lineOf(p.schema(), "bool gift = 2;");
    // One cause, one finding (buf's three rules on the line are named in it).
    expect(r.errors.map((f) => `${f.rule}@${f.position.line}`)).toEqual([`FIELD_NUMBER_REUSED@${line}`]);
    p.edit("version: 1, name: \"orders\"", "version: 2, name: \"orders\"");
    writeOrdersMigration(p, "return { ...record, gift: false };");
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
  });

  it("key field changed (Cellar's rule: buf has no notion of a key)", () => {
    const p = project("key");
    p.edit('name: "coupons", key: "code"', 'name: "coupons", key: "percent"');
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    expect(r.errors).toMatchObject([
      {
        rule: "KEY_CHANGED",
        position: { file: shopFile, line: lineOf(p.schema(), "message Coupon {"), column: 1 },
        message: "key of entity `coupons` changed from `code` (1, string) to `percent` (2, int32)",
      },
    ]);
    expect(r.errors[0]?.fix).toContain("raise `version` of entity `coupons` to 2");
    p.edit('name: "coupons", key: "percent"', 'name: "coupons", key: "code"');
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
  });

  it("a renamed message is compared by storage name, so its field changes are still found", () => {
    const p = project("renamed");
    p.setSchema(p.schema().replace("message Coupon {", "message Voucher {").replace("int32 percent = 2;", "string percent = 2;"));
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    expect(r.errors).toMatchObject([
      {
        rule: "VERSION_NOT_RAISED",
        position: { file: shopFile, line: lineOf(p.schema(), "string percent = 2;"), column: 3 },
        message: "field `percent` (2) of `shop.v1.Voucher` changed type from `int32` to `string`",
      },
    ]);
    expect(r.infos.map((f) => f.message)).toContain(
      "message of entity `coupons` renamed from `shop.v1.Coupon` to `shop.v1.Voucher` (the storage name is unchanged): protobuf reads records stored at version 1 without help; no version bump or migration needed",
    );
    p.edit("string percent = 2;", "int32 percent = 2;");
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
  });
});

describe("rules that hold even with a raised version", () => {
  it("a field never loses `sensitive`", () => {
    const p = project("sensitive");
    p.edit("string card_token = 3 [(cellar.v1.field).sensitive = true];", "string card_token = 3;");
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    expect(r.text).toContain(
      `${shopFile}:${lineOf(p.schema(), "string card_token = 3;")}:3: field \`card_token\` (3) of \`shop.v1.Order\` lost \`sensitive\` [SENSITIVE_REMOVED]\n` +
        "  fix: a field never loses `sensitive`: records already stored hold a secret there; put `sensitive: true` back",
    );
    // A raised version does not make it acceptable.
    p.edit("version: 1, name: \"orders\"", "version: 2, name: \"orders\"");
    writeOrdersMigration(p, "return record;");
    expect(p.check().errors.map((f) => f.rule)).toEqual(["SENSITIVE_REMOVED"]);
    p.edit("string card_token = 3;", "string card_token = 3 [(cellar.v1.field).sensitive = true];");
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
  });

  it("a removed field's number and name must be reserved", () => {
    const p = project("reserve");
    p.edit("  string note = 2;\n", "");
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    expect(r.errors).toMatchObject([
      {
        rule: "FIELD_NOT_RESERVED",
        position: { file: shopFile, line: lineOf(p.schema(), "message Order {"), column: 1 },
        message: "field `note` (2) was removed from `shop.v1.Order` without reserving its number and name",
        fix: 'add these lines to message `shop.v1.Order` so the number and name are never reused (stored records still carry them):\n      reserved 2;\n      reserved "note";',
      },
    ]);
    p.edit("  reserved 9;\n", "  reserved 2, 9;\n");
    expect(p.check().errors.map((f) => f.message)).toEqual([
      "field `note` (2) was removed from `shop.v1.Order` without reserving its name",
    ]);
    p.edit('  reserved "legacy";\n', '  reserved "legacy", "note";\n');
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    expect(r.infos.map((f) => f.rule)).toEqual(["FIELD_REMOVED"]);
  });

  it("a removed enum value's number and name must be reserved (through the entity's field)", () => {
    const p = project("enum");
    p.edit("  STATUS_PAID = 2;\n", "");
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    expect(r.errors).toMatchObject([
      {
        rule: "ENUM_VALUE_NOT_RESERVED",
        entity: "orders",
        position: { file: shopFile, line: lineOf(p.schema(), "enum Status {"), column: 1 },
        message: "value `STATUS_PAID` (2) was removed from `shop.v1.Status` without reserving its number and name",
      },
    ]);
    p.edit("  STATUS_OPEN = 1;\n", '  STATUS_OPEN = 1;\n  reserved 2;\n  reserved "STATUS_PAID";\n');
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
  });

  it("reservations are never dropped", () => {
    const p = project("unreserve");
    p.edit("  reserved 9;\n", "");
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    expect(r.errors).toMatchObject([{ rule: "RESERVED_REMOVED", message: "`shop.v1.Order` no longer reserves number 9" }]);
    p.edit('  reserved "legacy";\n', '  reserved 9;\n  reserved "legacy";\n');
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
  });
});

describe("additive changes", () => {
  it("a new field and a new enum value need no version and no migration: exit 0 with info lines", () => {
    const p = project("additive");
    p.edit("  Line line = 5;\n", "  Line line = 5;\n  optional string coupon_code = 6;\n");
    p.edit("  STATUS_PAID = 2;\n", "  STATUS_PAID = 2;\n  STATUS_REFUNDED = 3;\n");
    const r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    expect(r.errors).toEqual([]);
    expect(r.text).toContain(
      `${shopFile}:${lineOf(p.schema(), "coupon_code = 6")}:3: info: field \`coupon_code\` (6) added to \`shop.v1.Order\`: protobuf reads records stored at version 1 without help; no version bump or migration needed`,
    );
    expect(r.text).toContain(
      `${shopFile}:${lineOf(p.schema(), "STATUS_REFUNDED")}:3: info: value \`STATUS_REFUNDED\` (3) added to \`shop.v1.Status\`: protobuf reads records stored at version 1 without help; no version bump or migration needed`,
    );
    expect(r.text).toMatch(/cellar: 2 entities compatible with the schema lock \(proto\/cellar\.lock, 2 locked\); 2 notes above$/);
  });
});
