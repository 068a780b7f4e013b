// The `cellar` command decides to skip an unchanged `generate` before loading anything heavy: the
// modules it imports statically (transitively) are node built-ins, commander and the CLI's light helpers
// only; ts-morph, typescript, buf, protobuf, the plugin and the runtime come in through `await import()`
// when a command runs. Every command module of src/cli/commands/ is imported when the program is built
// (program.ts `COMMANDS`), so each must be as light.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { expect, it } from "vitest";
import { repoRoot } from "./helpers.js";

/** Value imports (not `import type`) of a TypeScript file, as written. */
function staticImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^import\s+(?!type\b)[^;]*?from\s+"([^"]+)";/gms), ...text.matchAll(/^import\s+"([^"]+)";/gm)].map((m) => m[1] ?? "");
}

/** The files `entry` imports statically (transitively), and the packages. */
function graph(entry: string): { files: string[]; external: string[] } {
  const seen = new Set<string>();
  const external = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of staticImports(file)) {
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec).replace(/\.js$/, ".ts"));
      else external.add(spec);
    }
  };
  visit(entry);
  return { files: [...seen].map((f) => f.slice(repoRoot.length + 1)).sort(), external: [...external].filter((s) => !s.startsWith("node:")) };
}

it("cellar.ts loads only node built-ins, commander and light CLI modules before a command runs", () => {
  const { files, external } = graph(join(repoRoot, "src", "cli", "cellar.ts"));
  expect(files).toEqual(["src/cli/cellar.ts", "src/cli/context.ts", "src/cli/paths.ts", "src/cli/program.ts"]);
  expect(external).toEqual(["commander"]);
});

it("every command module is as light: the runtime, codegen and cli-progress load inside actions", () => {
  const light = new Set(["src/cli/buf.ts", "src/cli/context.ts", "src/cli/generate-stamp.ts", "src/cli/output.ts", "src/cli/paths.ts", "src/cli/store-options.ts", "src/cli/where.ts"]);
  const dir = join(repoRoot, "src", "cli", "commands");
  const modules = readdirSync(dir).filter((f) => f.endsWith(".ts"));
  expect(modules).toContain("generate.ts");
  for (const m of modules) {
    const { files, external } = graph(join(dir, m));
    expect(files.filter((f) => !f.startsWith("src/cli/commands/") && !light.has(f)), m).toEqual([]);
    expect(external, m).toEqual(external.includes("commander") ? ["commander"] : []);
  }
});
