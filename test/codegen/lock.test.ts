// `cellar lock`: the lock round-trips the exact descriptors buf builds, is idempotent, refuses a
// different shape under a locked version, grows a version by additive changes, and this repository's
// own lock covers every example entity.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { create, equals, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, it } from "vitest";
import { formatLockIndex, readLock, readLockedSet } from "../../codegen/lock.js";
import { check } from "../../src/cli/check.js";
import { lock } from "../../src/cli/lock.js";
import { bufBuild, removeDir, repoRoot } from "./helpers.js";
import { copyOf, lockedBase } from "./schema-project.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));
const base = lockedBase("lock-base", dirs);
const project = (name: string) => copyOf(base, `lock-${name}`, dirs);

describe("cellar lock", () => {
  it("records each entity's file and its imports exactly as buf builds them, without source info", () => {
    const p = project("roundtrip");
    const l = readLock(join(p.dir, "proto/cellar.lock"));
    expect([...l.entities.keys()]).toEqual(["coupons", "orders"]);
    const orders = l.entities.get("orders")!;
    expect(orders).toMatchObject({ retired: false, versions: [{ version: 1, message: "shop.v1.Order", file: "shop/v1/shop.proto", descriptors: "orders/v1.binpb" }] });
    const locked = readLockedSet(l, orders.versions[0]!);
    expect(locked.file.map((f) => f.name)).toEqual(["google/protobuf/descriptor.proto", "cellar/v1/options.proto", "shop/v1/shop.proto"]);
    const built = fromBinary(FileDescriptorSetSchema, bufBuild(p.dir));
    for (const f of locked.file) {
      const b = built.file.find((x) => x.name === f.name)!;
      b.sourceCodeInfo = undefined;
      expect(equals(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [f] }), create(FileDescriptorSetSchema, { file: [b] })), f.name).toBe(true);
    }
    // index.json is the formatter's output (one line per version) and reads back to the same lock.
    expect(p.read("proto/cellar.lock/index.json")).toBe(formatLockIndex([...l.entities.values()]));
  });

  it("is idempotent: nothing changes, and comments or formatting are not changes", () => {
    const p = project("idempotent");
    const before = statSync(join(p.dir, "proto/cellar.lock/orders/v1.binpb")).mtimeMs;
    expect(lock({ root: p.dir })).toMatchObject({ exitCode: 0, written: [], messages: ["cellar: the schema lock (proto/cellar.lock) is up to date"] });
    p.edit("// Order is a customer's order.", "// Order is a customer's order, as placed.\n//\n// (More words.)");
    expect(lock({ root: p.dir })).toMatchObject({ exitCode: 0, written: [] });
    expect(statSync(join(p.dir, "proto/cellar.lock/orders/v1.binpb")).mtimeMs).toBe(before);
  });

  it("refuses a locked version with a shape old records cannot be read as, and writes nothing", () => {
    const p = project("refuse");
    const index = p.read("proto/cellar.lock/index.json");
    const set = readFileSync(join(p.dir, "proto/cellar.lock/orders/v1.binpb"));
    p.edit("string note = 2;", "bytes note = 2;");
    const r = lock({ root: p.dir });
    expect(r.exitCode).toBe(1);
    expect(r.messages.join("\n")).toContain("[FIELD_WIRE_JSON_COMPATIBLE_TYPE]");
    expect(r.messages.at(-1)).toBe("cellar: the schemas do not pass `cellar check` against the lock; nothing was locked");
    expect(p.read("proto/cellar.lock/index.json")).toBe(index);
    expect(readFileSync(join(p.dir, "proto/cellar.lock/orders/v1.binpb")).equals(set)).toBe(true);
  });

  it("grows a version by an additive change, and then remembers the added field", () => {
    const p = project("additive");
    p.edit("  Line line = 5;\n", "  Line line = 5;\n  string gift_message = 6;\n");
    const r = lock({ root: p.dir });
    expect(r).toMatchObject({ exitCode: 0, written: ["orders/v1.binpb", "coupons/v1.binpb", "index.json"] });
    expect(r.messages).toContain("cellar: updated `orders` version 1: its descriptors changed in ways old records read through");
    const l = readLock(join(p.dir, "proto/cellar.lock"));
    const shop = readLockedSet(l, l.entities.get("orders")!.versions[0]!).file.find((f) => f.name === "shop/v1/shop.proto")!;
    expect(shop.messageType[0]?.field.map((f) => f.name)).toContain("gift_message");
    // Released with version 1: removing it again without reserving is caught.
    p.edit("  string gift_message = 6;\n", "");
    const c = check({ root: p.dir });
    expect(c.exitCode).toBe(1);
    expect(c.findings.filter((f) => f.level === "error").map((f) => f.message)).toEqual([
      "field `gift_message` (6) was removed from `shop.v1.Order` without reserving its number and name",
    ]);
  });
});

describe("this repository's schema lock", () => {
  it("holds every example entity, and the example schemas pass `cellar check` against it", () => {
    const l = readLock(join(repoRoot, "schemas/cellar.lock"));
    expect([...l.entities.keys()]).toEqual(["app_state", "conversations", "focus_sessions", "grid_layouts", "profiles", "settings", "tasks"]);
    // focus_sessions has a released history (test/store/fixtures.test.ts migrates stores of v1 and v2).
    expect(l.entities.get("focus_sessions")!.versions.map((v) => v.version)).toEqual([1, 2, 3]);
    const r = check({ root: repoRoot });
    expect(r.messages.join("\n")).toBe("cellar: 7 entities compatible with the schema lock (schemas/cellar.lock, 7 locked)");
    expect(r.exitCode).toBe(0);
  });
});
