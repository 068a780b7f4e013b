// One finding per cause, fixes that paste, and `cellar lock` naming only what changed: a reused
// field number is one finding (not one per buf rule), a missing reservation's fix is the lines to add
// (pasted as printed, the check passes), and an entity sharing a file with a changed one is not
// reported as updated.
import { afterAll, describe, expect, it } from "vitest";
import { formatFinding } from "../../src/cli/check.js";
import { lock } from "../../src/cli/lock.js";
import { removeDir } from "./helpers.js";
import { copyOf, lineOf, lockedBase, shopFile, writeOrdersMigration } from "./schema-project.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));
const base = lockedBase("findings-base", dirs);
const project = (name: string) => copyOf(base, `findings-${name}`, dirs);

describe("cellar check: one finding per cause", () => {
  it("a field number reused by a new field (another name and type) is one finding on its line, and one note once migrated", () => {
    const p = project("reuse");
    p.edit("  string note = 2;\n", "  bool gift = 2;\n");
    let r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    const line = lineOf(p.schema(), "bool gift = 2;");
    expect(r.errors).toHaveLength(1);
    const [f] = r.errors;
    expect(f).toMatchObject({ rule: "FIELD_NUMBER_REUSED", entity: "orders", position: { file: shopFile, line, column: 3 } });
    expect(f?.message).toMatch(
      /^field number 2 of `shop\.v1\.Order` now holds `gift` \(singular `bool`\); records stored earlier hold `note` \(singular `string`\) there \(buf: [A-Z_, ]+\)$/,
    );
    expect(f?.fix).toBe(
      "records of `orders` stored at version 1 cannot be read as this shape: raise `version` of entity `orders` to 2 and run `cellar generate` to write the migration from 1",
    );
    expect(r.text.split("\n").filter((l) => l.startsWith(`${shopFile}:${line}:`))).toHaveLength(1);

    p.edit('version: 1, name: "orders"', 'version: 2, name: "orders"');
    writeOrdersMigration(p, "return { ...record, gift: false };");
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    expect(r.infos.filter((i) => i.position.line === line)).toHaveLength(1);
  });

  it("a missing reservation's fix is the statements to add, one per line; pasted as printed, the check passes", () => {
    const p = project("reserve");
    p.edit("  string note = 2;\n", "");
    const r = p.check();
    expect(r.exitCode, r.text).toBe(1);
    expect(r.errors).toHaveLength(1);
    const printed = formatFinding(r.errors[0]!);
    expect(printed).toBe(
      `${shopFile}:${lineOf(p.schema(), "message Order {")}:1: field \`note\` (2) was removed from \`shop.v1.Order\` without reserving its number and name [FIELD_NOT_RESERVED]\n` +
        "  fix: add these lines to message `shop.v1.Order` so the number and name are never reused (stored records still carry them):\n" +
        "      reserved 2;\n" +
        '      reserved "note";',
    );
    const pasted = printed.split("\n").slice(2).map((l) => l.trim()).join("\n  ");
    p.edit("  Line line = 5;\n", `  Line line = 5;\n  ${pasted}\n`);
    const fixed = p.check();
    expect(fixed.exitCode, fixed.text).toBe(0);
  });

  it("a removed enum value's fix lists its statements one per line too", () => {
    const p = project("enum");
    p.edit("  STATUS_PAID = 2;\n", "");
    const r = p.check();
    expect(r.errors.map((f) => f.fix)).toEqual([
      "add these lines to enum `shop.v1.Status` so the number and name are never reused (stored records and JSON exports still carry them):\n" +
        "      reserved 2;\n" +
        '      reserved "STATUS_PAID";',
    ]);
  });
});

describe("cellar lock reports only the entities that changed", () => {
  it("an additive change to one entity does not report the entity sharing its file", () => {
    const p = project("lock-shared");
    p.edit("  int32 percent = 2;\n", "  int32 percent = 2;\n  string label = 3;\n");
    const r = lock({ root: p.dir });
    expect(r.exitCode, r.messages.join("\n")).toBe(0);
    expect(r.messages).toEqual([
      "cellar: updated `coupons` version 1: its descriptors changed in ways old records read through",
      "cellar: wrote the schema lock (proto/cellar.lock); commit it with the release",
    ]);
  });
});
