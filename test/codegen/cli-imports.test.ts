// The `cellar` command decides to skip an unchanged `generate` before loading anything heavy: the
// modules it imports statically (transitively) are node built-ins and the CLI's light helpers only;
// ts-morph, typescript, buf, protobuf and the plugin come in through `await import()` when a command runs.
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { expect, it } from "vitest";
import { repoRoot } from "./helpers.js";

/** Value imports (not `import type`) of a TypeScript file, as written. */
function staticImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^import\s+(?!type\b)[^;]*?from\s+"([^"]+)";/gms), ...text.matchAll(/^import\s+"([^"]+)";/gm)].map((m) => m[1] ?? "");
}

it("cellar.ts loads only node built-ins and light CLI modules before a command runs", () => {
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
  visit(join(repoRoot, "src", "cli", "cellar.ts"));
  expect([...seen].map((f) => f.slice(repoRoot.length + 1)).sort()).toEqual([
    "src/cli/buf.ts",
    "src/cli/cellar.ts",
    "src/cli/generate-stamp.ts",
    "src/cli/paths.ts",
  ]);
  expect([...external].filter((s) => !s.startsWith("node:"))).toEqual([]);
});
