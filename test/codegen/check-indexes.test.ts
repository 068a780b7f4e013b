// `cellar check` and `cellar lock` on index changes: adding or removing an index needs no new version or
// migration (the store builds or drops it at open); the check says so in `info:` lines at the declaration,
// with exit code 0, and the lock records the new indexes under the same version.
import { afterAll, describe, expect, it } from "vitest";
import { lock } from "../../src/cli/lock.js";
import { removeDir } from "./helpers.js";
import { makeProject, projectLock } from "./project.js";
import { copyOf, lineOf, shopFile, shopPath, writeOrdersMigration, type ShopProject } from "./schema-project.js";

const shop = `syntax = "proto3";
package shop.v1;
import "cellar/v1/options.proto";
import "google/protobuf/timestamp.proto";

// Order is a customer's order.
message Order {
  option (cellar.v1.entity) = {
    version: 1
    name: "orders"
    key: "id"
    indexes: [
      "status",
      "note, status"
    ]
  };
  string id = 1;
  string note = 2;
  Status status = 4;
  google.protobuf.Timestamp placed_at = 5;
}

// Status of an order.
enum Status {
  STATUS_UNSPECIFIED = 0;
  STATUS_OPEN = 1;
}

// Coupon is a discount code.
message Coupon {
  option (cellar.v1.entity) = { version: 1, name: "coupons", key: "code" };
  string code = 1;
  int32 percent = 2;
}
`;

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));
const base = makeProject("indexes-base", { [shopPath]: shop }, { lock: true });
dirs.push(base);
const locked = lock({ root: base });
const project = (name: string) => copyOf(base, `indexes-${name}`, dirs);

/** `file:line:column` of the first occurrence of `needle` in the project's schema. */
function at(p: ShopProject, needle: string, from = 0): string {
  const text = p.schema();
  const line = lineOf(text.slice(from), needle) + text.slice(0, from).split("\n").length - 1;
  return `${shopFile}:${line}:${text.split("\n")[line - 1]!.indexOf(needle) + 1}`;
}

describe("cellar check on index changes", () => {
  it("the locked base has indexes and no notes", () => {
    expect(locked.exitCode, locked.messages.join("\n")).toBe(0);
    const r = project("clean").check();
    expect(r.exitCode, r.text).toBe(0);
    expect(r.findings).toEqual([]);
  });

  it("a new index is an info line at its declaration, a removed one at `indexes`; no version, exit 0", () => {
    const p = project("add-remove");
    p.edit('"note, status"', '"status,placed_at"');
    const r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    expect(r.errors).toEqual([]);
    expect(r.messages).toEqual([
      `${at(p, "indexes: [")}: info: index \`note,status\` of entity \`orders\` was removed: dropped at open`,
      `${at(p, '"status,placed_at"')}: info: index \`status,placed_at\` of entity \`orders\` is new: built at open`,
      "cellar: 2 entities compatible with the schema lock (proto/cellar.lock, 2 locked); 2 notes above",
    ]);
    expect(r.infos.map((f) => [f.rule, f.entity])).toEqual([
      ["INDEX_REMOVED", "orders"],
      ["INDEX_ADDED", "orders"],
    ]);
  });

  it("an index is its fields' numbers: respelled or over a renamed field, it is the same index", () => {
    const p = project("same");
    p.edit('"note, status"', '"note,status"');
    expect(p.check().findings).toEqual([]);
    // A rename changes the JSON name (a version and a migration), not the index `2,4`.
    p.edit('"note,status"', '"memo , status"');
    p.edit("  string note = 2;", "  string memo = 2;");
    p.edit("version: 1\n", "version: 2\n");
    writeOrdersMigration(p, "return { ...record, memo: record.note };");
    const r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    expect(r.infos.filter((f) => f.rule.startsWith("INDEX_"))).toEqual([]);
  });

  it("index lines come with a raised version too", () => {
    const p = project("raised");
    p.edit('"status",', '"status",\n      "placed_at",');
    p.edit("version: 1\n", "version: 2\n");
    p.edit("  string note = 2;", "  int64 note = 2;");
    writeOrdersMigration(p, "return { ...record, note: 0n };");
    const r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    expect(r.messages).toContain(`${at(p, '"placed_at"')}: info: index \`placed_at\` of entity \`orders\` is new: built at open`);
  });

  it("an entity that drops every index: each removal at the entity option", () => {
    const p = project("none");
    p.edit('    indexes: [\n      "status",\n      "note, status"\n    ]\n', "");
    const r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    const option = at(p, "(cellar.v1.entity)");
    expect(r.messages.slice(0, -1)).toEqual([
      `${option}: info: index \`status\` of entity \`orders\` was removed: dropped at open`,
      `${option}: info: index \`note,status\` of entity \`orders\` was removed: dropped at open`,
    ]);
  });

  it("an entity locked without indexes that gains some: one line each, at each declaration on a shared line", () => {
    const p = project("gain");
    p.edit('name: "coupons", key: "code" }', 'name: "coupons", key: "code", indexes: ["percent", "percent,code"] }');
    const r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    const coupon = p.schema().indexOf("message Coupon");
    expect(r.messages.slice(0, -1)).toEqual([
      `${at(p, '"percent"', coupon)}: info: index \`percent\` of entity \`coupons\` is new: built at open`,
      `${at(p, '"percent,code"', coupon)}: info: index \`percent,code\` of entity \`coupons\` is new: built at open`,
    ]);
  });
});

describe("cellar lock on index changes", () => {
  it("records new and removed indexes under the same version and says so; the check is quiet afterwards", () => {
    const p = project("lock");
    p.edit('"note, status"', '"status,placed_at"');
    const r = lock({ root: p.dir });
    expect(r.exitCode, r.messages.join("\n")).toBe(0);
    expect(r.messages).toEqual([
      "cellar: updated `orders` version 1: index `status,placed_at` is new (built at open); index `note,status` was removed (dropped at open)",
      `cellar: wrote the schema lock (${projectLock}); commit it with the release`,
    ]);
    // The descriptors of the file (coupons share it) are rewritten, at version 1.
    expect([...r.written].sort()).toEqual(["coupons/v1.binpb", "index.json", "orders/v1.binpb"]);
    const index = JSON.parse(p.read(`${projectLock}/index.json`)) as { entities: Record<string, { versions: Record<string, unknown> }> };
    expect(Object.keys(index.entities.orders!.versions)).toEqual(["1"]);
    const after = p.check();
    expect(after.exitCode, after.text).toBe(0);
    expect(after.findings).toEqual([]);
    expect(lock({ root: p.dir }).messages).toEqual([`cellar: the schema lock (${projectLock}) is up to date`]);
  });

  it("an additive field change and an index change in one release are both named", () => {
    const p = project("lock-both");
    p.edit("  google.protobuf.Timestamp placed_at = 5;\n", "  google.protobuf.Timestamp placed_at = 5;\n  string memo = 6;\n");
    p.edit('"status",', '"status",\n      "memo",');
    const r = lock({ root: p.dir });
    expect(r.exitCode, r.messages.join("\n")).toBe(0);
    expect(r.messages[0]).toBe(
      "cellar: updated `orders` version 1: its descriptors changed in ways old records read through; index `memo` is new (built at open)",
    );
  });
});
