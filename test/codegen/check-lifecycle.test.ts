// `cellar check`, one scenario per rule on versions, migrations and entities, each failing first and
// passing once fixed; exit codes of the real command (0, 1, 2).
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { check } from "../../src/cli/check.js";
import { generate } from "../../src/cli/generate.js";
import { lock } from "../../src/cli/lock.js";
import { removeDir, repoRoot } from "./helpers.js";
import { copyOf, lineOf, lockedBase, shopFile, writeOrdersMigration } from "./schema-project.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));
const base = lockedBase("life-base", dirs);
const project = (name: string) => copyOf(base, `life-${name}`, dirs);
const ordersV2 = ['version: 1, name: "orders"', 'version: 2, name: "orders"'] as const;

describe("versions", () => {
  it("only go up", () => {
    const p = project("lowered");
    p.edit(ordersV2[0], ordersV2[1]);
    writeOrdersMigration(p, "return record;");
    expect(lock({ root: p.dir }).exitCode).toBe(0); // release 2 locks orders v2
    p.edit(ordersV2[1], ordersV2[0]);
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    const line = lineOf(p.schema(), 'name: "orders"');
    expect(r.text).toContain(
      `${shopFile}:${line}:33: entity \`orders\` is at schema version 1, below version 2 in the schema lock; versions only go up [VERSION_LOWERED]\n` +
        "  fix: set `version: 2` (or 3 with a migration): stored records may already be at 2",
    );
    p.edit(ordersV2[0], ordersV2[1]);
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
  });

  it("go one step per release", () => {
    const p = project("skipped");
    p.edit(ordersV2[0], 'version: 3, name: "orders"');
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    expect(r.errors).toMatchObject([
      {
        rule: "VERSION_SKIPPED",
        message: "entity `orders` is at schema version 3, but the schema lock ends at version 1; no store holds the versions in between",
        fix: "set `version: 2`: one version step per release",
      },
    ]);
    p.edit('version: 3, name: "orders"', ordersV2[1]);
    writeOrdersMigration(p, "return record;");
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
  });
});

describe("migrations", () => {
  it("a raised version needs a migration for the step", () => {
    const p = project("missing");
    p.edit(ordersV2[0], ordersV2[1]);
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    expect(r.text).toContain(
      `${shopFile}:${lineOf(p.schema(), 'name: "orders"')}:33: entity \`orders\` is at version 2, but no migration of \`orders\` from version 1 to 2 exists under src/migrations/ [MIGRATION_MISSING]\n` +
        "  fix: run `cellar generate` to write src/migrations/orders/v2.ts, then implement it",
    );
    writeOrdersMigration(p, "return record;");
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
  });

  it("a migration must be registered", () => {
    const p = project("unregistered");
    p.edit(ordersV2[0], ordersV2[1]);
    writeOrdersMigration(p, "return record;", false);
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    expect(r.errors).toMatchObject([
      {
        rule: "MIGRATION_NOT_REGISTERED",
        position: { file: "src/migrations/orders/v2.ts", line: 3, column: 1 },
        message: "the migration of `orders` from version 1 to 2 is not imported by registry.ts, so the runtime never runs it",
        fix: "import `migrateOrdersV2` in src/migrations/registry.ts and add it to `migrations`",
      },
    ]);
    rmSync(join(p.dir, "src/migrations/registry.ts"));
    expect(p.check().errors.map((f) => f.message)).toEqual([
      "the migration of `orders` from version 1 to 2 is not registered: there is no registry.ts, so the runtime never runs it",
    ]);
    writeOrdersMigration(p, "return record;", true);
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
  });

  it("the stub `cellar generate` writes fails the check until it is implemented", () => {
    const p = project("stub");
    p.edit(ordersV2[0], ordersV2[1]);
    const g = generate({ root: p.dir });
    expect(g.exitCode, g.messages.join("\n")).toBe(0);
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    const stub = p.read("src/migrations/orders/v2.ts");
    expect(r.text).toContain(
      `src/migrations/orders/v2.ts:${lineOf(stub, "throw new MigrationNotImplementedError")}:5: the migration of \`orders\` from version 1 to 2 is still the generated stub (it throws \`MigrationNotImplementedError\`) [MIGRATION_NOT_IMPLEMENTED]\n` +
        "  fix: write `migrate` (old record in, new shape out) and remove the `throw`",
    );
    expect(r.errors).toHaveLength(1);
    p.write("src/migrations/orders/v2.ts", stub.replace(/void record;[\s\S]*?\);\n/, "return record;\n"));
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
  });
});

describe("entities", () => {
  it("a locked entity may not disappear unless it is retired first", () => {
    const p = project("removed");
    const withCoupon = p.schema();
    const couponStart = withCoupon.indexOf("// Coupon is a discount code.");
    p.setSchema(withCoupon.slice(0, couponStart));
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    expect(r.text).toContain(
      "proto/cellar.lock/index.json:5:5: entity `coupons` (`shop.v1.Coupon`) is in the schema lock but no longer in the schemas; users' stores still hold its records [ENTITY_REMOVED]\n" +
        "  fix: put the message back with `retired: true` in its (cellar.v1.entity) option and run `cellar lock`; after that release it may be deleted",
    );
    // Retire it: back in the schemas, marked retired; the check passes and the lock records it.
    p.setSchema(withCoupon.replace('name: "coupons", key: "code"', 'name: "coupons", key: "code", retired: true'));
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    expect(r.infos.map((f) => f.rule)).toEqual(["ENTITY_RETIRED"]);
    const l = lock({ root: p.dir });
    expect(l.exitCode, l.messages.join("\n")).toBe(0);
    expect(p.read("proto/cellar.lock/index.json")).toContain('    "coupons": {\n      "retired": true,\n');
    // Now it may go.
    p.setSchema(withCoupon.slice(0, couponStart));
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    // And its storage name is never reused.
    p.setSchema(withCoupon.replace("message Coupon {", "message Gift {"));
    r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    expect(r.errors).toMatchObject([{ rule: "RETIRED_NAME_REUSED", fix: "give the entity another `name` in its (cellar.v1.entity) option" }]);
    p.edit('name: "coupons"', 'name: "gifts"');
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    expect(r.infos.map((f) => f.message)).toContain("entity `gifts` is new (version 1); `cellar lock` records it when the release is cut");
  });
});

it("codegen must read the lock the check compares with", () => {
  const p = project("config");
  const template = p.read("buf.gen.yaml");
  p.write("buf.gen.yaml", template.replace(", lock=proto/cellar.lock", ""));
  let r = check({ root: p.dir, lock: "proto/cellar.lock" });
  expect(r.exitCode).toBe(1);
  expect(r.findings).toMatchObject([
    {
      rule: "LOCK_NOT_CONFIGURED",
      position: { file: "buf.gen.yaml", line: lineOf(template, "protoc-gen-cellar"), column: 1 },
      message: "protoc-gen-cellar has no `lock` option, so codegen cannot generate the historical types and typed steps of the schema lock (proto/cellar.lock)",
      fix: "add `lock=proto/cellar.lock` to the plugin's `opt` list (and drop `--lock`, so codegen and the check read one lock)",
    },
  ]);
  p.write("buf.gen.yaml", template);
  r = check({ root: p.dir, lock: "proto/cellar.lock" });
  expect(r.exitCode, r.messages.join("\n")).toBe(0);
});

describe("the `cellar check` command", () => {
  const cellar = (cwd: string, ...args: string[]) => {
    const r = spawnSync(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli", "cellar.ts"), ...args], { cwd, encoding: "utf8" });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it("exits 0 when compatible, 1 with findings (on stderr), 2 when it cannot run", () => {
    const p = project("cli");
    expect(cellar(p.dir, "check")).toMatchObject({ status: 0, stdout: "cellar: 2 entities compatible with the schema lock (proto/cellar.lock, 2 locked)\n" });
    p.edit("int32 quantity = 2;", "string quantity = 2;");
    const failed = cellar(p.dir, "check");
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain(`${shopFile}:${lineOf(p.schema(), "string quantity = 2;")}:3: field \`2\` with name \`quantity\` on message \`Line\` changed type`);
    // A schema buf cannot compile: exit 2, with buf's message at the app-root path.
    p.edit("string quantity = 2;", "string quantity = 2");
    const broken = cellar(p.dir, "check");
    expect(broken.status).toBe(2);
    expect(broken.stderr).toContain(`${shopFile}:`);
    expect(broken.stderr).toContain("cellar: the check could not run");
    // An unreadable lock: exit 2.
    p.edit("string quantity = 2", "int32 quantity = 2;");
    writeFileSync(join(p.dir, "proto/cellar.lock/index.json"), "{ not json");
    const badLock = check({ root: p.dir });
    expect(badLock.exitCode).toBe(2);
    expect(badLock.messages[0]).toMatch(/^cellar: schema lock `.*index\.json` is not valid JSON: /);
    // Usage errors: exit 2.
    const usage = cellar(p.dir, "check", "--strict");
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain("cellar: unknown option `--strict` for `check`");
  });
});
