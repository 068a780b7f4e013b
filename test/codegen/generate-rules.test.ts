// With a schema lock present, `cellar generate` runs the lock's rules before writing anything: a
// shape stored records cannot be read as, without a raised version, is refused with check's finding
// (exit 1, nothing written); raising the version as the finding says lets it through and writes the stub.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generate } from "../../src/cli/generate.js";
import { removeDir, repoRoot } from "./helpers.js";
import { copyOf, lineOf, lockedBase, shopFile } from "./schema-project.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));
const base = lockedBase("genrules-base", dirs);
const project = (name: string) => copyOf(base, `genrules-${name}`, dirs);

function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const root = join(dir, "src");
  if (!existsSync(root)) return out;
  for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.set(join(e.parentPath, e.name), readFileSync(join(e.parentPath, e.name), "utf8"));
  }
  return out;
}

describe("generate with a schema lock", () => {
  it("refuses a breaking change without a raised version (exit 1, check's finding, nothing written), then passes once the version is raised", () => {
    const p = project("breaking");
    expect(generate({ root: p.dir }).exitCode).toBe(0);
    const before = snapshot(p.dir);
    p.edit("string note = 2;", "int64 note = 2;");
    const line = lineOf(p.schema(), "int64 note = 2;");
    const r = spawnSync(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli", "cellar.ts"), "generate"], { cwd: p.dir, encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      `${shopFile}:${line}:3: field \`2\` with name \`note\` on message \`Order\` changed type from \`string\` to \`int64\` (entity \`orders\`, version 1) [FIELD_WIRE_JSON_COMPATIBLE_TYPE]\n` +
        "  fix: records of `orders` stored at version 1 cannot be read as this shape: raise `version` of entity `orders` to 2 and run `cellar generate` to write the migration from 1\n" +
        "cellar: 1 finding in 1 entity against the schema lock (proto/cellar.lock)\n" +
        "cellar: the schemas break the schema lock (proto/cellar.lock); nothing was generated. Do what each `fix:` says (usually: raise the entity's `version`), then run `cellar generate` again\n",
    );
    expect(snapshot(p.dir)).toEqual(before);

    p.edit('version: 1, name: "orders"', 'version: 2, name: "orders"');
    const ok = generate({ root: p.dir });
    expect(ok.exitCode, ok.messages.join("\n")).toBe(0);
    expect(ok.messages).toContain("cellar: wrote migration stub src/migrations/orders/v2.ts; implement it before shipping");
  });

  it("an additive change passes (no finding), and without a lock nothing is checked", () => {
    const p = project("additive");
    p.edit("  Line line = 5;\n", "  Line line = 5;\n  string gift_note = 6;\n");
    const r = generate({ root: p.dir });
    expect(r.exitCode, r.messages.join("\n")).toBe(0);
    removeDir(join(p.dir, "proto/cellar.lock"));
    p.edit("string note = 2;", "int64 note = 2;");
    expect(generate({ root: p.dir }).exitCode).toBe(0);
  });
});
