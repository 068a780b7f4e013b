// `cellar generate` skips a run when nothing that decides its output changed (a content hash kept in
// node_modules/.cache/cellar), and only then: an edited schema, a hand-edited or deleted output, a
// deleted registry all mean a real run; `--force` always runs; `--check` never trusts the stamp.
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { removeDir, repoRoot } from "./helpers.js";
import { makeProject, notesSchema } from "./project.js";

const dir = makeProject("stamp", { "notes/v1/notes.proto": notesSchema(1) });
mkdirSync(join(dir, "node_modules"), { recursive: true }); // an app has one; the stamp lives in it
afterAll(() => removeDir(dir));

const skipped = "cellar: generated code is up to date (no input changed since the last run; --force regenerates)\n";
function cellar(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli", "cellar.ts"), ...args], { cwd: dir, encoding: "utf8" });
  return { status: r.status, out: r.stdout + r.stderr };
}
const zod = join(dir, "src/generated/notes/v1/notes_zod.ts");

describe.sequential("the generate stamp", () => {
  it("skips a second run with nothing changed", () => {
    expect(cellar("generate")).toMatchObject({ status: 0, out: expect.stringMatching(/^cellar: updated \d+ files\n$/) });
    expect(readdirSync(join(dir, "node_modules/.cache/cellar"))).toHaveLength(1);
    expect(cellar("generate")).toEqual({ status: 0, out: skipped });
  });

  it("a schema edit is an input change", () => {
    writeFileSync(join(dir, "proto/notes/v1/notes.proto"), notesSchema(1).replace("string body = 2;", "string body = 2;\n  string title = 3;"));
    expect(cellar("generate").out).toMatch(/^cellar: updated \d+ files\n$/);
    expect(readFileSync(zod, "utf8")).toContain("title");
    expect(cellar("generate")).toEqual({ status: 0, out: skipped });
  });

  it("a hand edit of generated code is repaired, not trusted", () => {
    const good = readFileSync(zod, "utf8");
    writeFileSync(zod, good + "// hand edit\n");
    expect(cellar("generate")).toEqual({ status: 0, out: "cellar: updated 1 file\n" });
    expect(readFileSync(zod, "utf8")).toBe(good);
  });

  it("the registry generate keeps is rewritten when deleted", () => {
    rmSync(join(dir, "src/migrations/registry.ts"));
    expect(cellar("generate")).toEqual({ status: 0, out: "cellar: updated 1 file\n" });
    expect(cellar("generate")).toEqual({ status: 0, out: skipped });
  });

  it("--force runs anyway", () => {
    expect(cellar("generate", "--force")).toEqual({ status: 0, out: "cellar: generated code is up to date\n" });
  });

  it("--check never trusts the stamp: a stamp claiming a hand-edited file is current still fails the check", () => {
    const [name] = readdirSync(join(dir, "node_modules/.cache/cellar"));
    const stampFile = join(dir, "node_modules/.cache/cellar", name ?? "");
    writeFileSync(zod, readFileSync(zod, "utf8") + "// hand edit\n");
    const stamp = JSON.parse(readFileSync(stampFile, "utf8")) as { outputs: Record<string, string> };
    stamp.outputs["src/generated/notes/v1/notes_zod.ts"] = createHash("sha256").update(readFileSync(zod)).digest("hex");
    writeFileSync(stampFile, JSON.stringify(stamp));
    expect(cellar("generate")).toEqual({ status: 0, out: skipped }); // the forged stamp fools the shortcut…
    const r = cellar("generate", "--check"); // …but not the freshness check
    expect(r.status).toBe(1);
    expect(r.out).toContain("  src/generated/notes/v1/notes_zod.ts (out of date)");
  });
});
