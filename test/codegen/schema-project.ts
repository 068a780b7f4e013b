// A locked app project for `cellar check` / `cellar lock` scenarios: one base project is built and
// locked once per test file, and each scenario works on its own copy of it (no second lock run).
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { expect } from "vitest";
import { check, type CheckResult, type Finding } from "../../src/cli/check.js";
import { lock } from "../../src/cli/lock.js";
import { removeDir, scratchDir } from "./helpers.js";
import { makeProject } from "./project.js";

export const shopPath = "shop/v1/shop.proto";
export const shopFile = `proto/${shopPath}`;

/** Version 1 of the shop: two collections, an enum, a nested message, a sensitive field, reservations. */
export const shopV1 = `syntax = "proto3";
package shop.v1;
import "cellar/v1/options.proto";

// Order is a customer's order.
message Order {
  option (cellar.v1.entity) = { version: 1, name: "orders", key: "id" };
  string id = 1;
  string note = 2;
  string card_token = 3 [(cellar.v1.field).sensitive = true];
  Status status = 4;
  Line line = 5;
  reserved 9;
  reserved "legacy";
}

// Status of an order.
enum Status {
  STATUS_UNSPECIFIED = 0;
  STATUS_OPEN = 1;
  STATUS_PAID = 2;
}

// Line is one item of an order.
message Line {
  string sku = 1;
  int32 quantity = 2;
}

// Coupon is a discount code.
message Coupon {
  option (cellar.v1.entity) = { version: 1, name: "coupons", key: "code" };
  string code = 1;
  int32 percent = 2;
}
`;

export interface ShopProject {
  readonly dir: string;
  schema(): string;
  setSchema(text: string): void;
  edit(from: string, to: string): void;
  write(path: string, text: string): void;
  read(path: string): string;
  check(): CheckResult & { errors: Finding[]; infos: Finding[]; text: string };
}

/** Builds and locks the base project (one `cellar lock`). */
export function lockedBase(prefix: string, dirs: string[]): string {
  const dir = makeProject(prefix, { [shopPath]: shopV1 }, { lock: true });
  dirs.push(dir);
  const r = lock({ root: dir });
  expect(r.exitCode, r.messages.join("\n")).toBe(0);
  return dir;
}

/** A fresh copy of the locked base project. */
export function copyOf(base: string, prefix: string, dirs: string[]): ShopProject {
  const dir = scratchDir(prefix);
  dirs.push(dir);
  removeDir(dir);
  cpSync(base, dir, { recursive: true });
  // The copy's buf.gen.yaml points at this repository's runtime by a relative path; same depth, same path.
  const p: ShopProject = {
    dir,
    schema: () => readFileSync(join(dir, shopFile), "utf8"),
    setSchema: (text) => writeFileSync(join(dir, shopFile), text),
    edit: (from, to) => {
      const s = p.schema();
      if (!s.includes(from)) throw new Error(`schema has no \`${from}\``);
      p.setSchema(s.replace(from, to));
    },
    write: (path, text) => {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    },
    read: (path) => readFileSync(join(dir, path), "utf8"),
    check: () => {
      const r = check({ root: dir });
      return {
        ...r,
        errors: r.findings.filter((f) => f.level === "error"),
        infos: r.findings.filter((f) => f.level === "info"),
        text: r.messages.join("\n"),
      };
    },
  };
  return p;
}

/** 1-based line of the first line of the current schema containing `needle`. */
export function lineOf(text: string, needle: string): number {
  const i = text.split("\n").findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`no line contains \`${needle}\``);
  return i + 1;
}

/** A hand-written (implemented) migration of `orders` from 1 to 2, and a registry listing it. */
export function writeOrdersMigration(p: ShopProject, body: string, register = true): void {
  p.write(
    "src/migrations/orders/v2.ts",
    `import { defineMigration } from "../../generated/migrations.js";\n\nexport const migrateOrdersV2 = defineMigration({\n  entity: "orders",\n  from: 1,\n  to: 2,\n  migrate(record) {\n    ${body}\n  },\n});\n`,
  );
  p.write(
    "src/migrations/registry.ts",
    register
      ? `import type { MigrationStep } from "../generated/migrations.js";\nimport { migrateOrdersV2 } from "./orders/v2.js";\n\nexport const migrations: readonly MigrationStep[] = [migrateOrdersV2];\n`
      : `import type { MigrationStep } from "../generated/migrations.js";\n\nexport const migrations: readonly MigrationStep[] = [];\n`,
  );
}
