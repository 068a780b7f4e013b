// Reads the fixture schema sets of test/fixtures/codegen/<feature>/input.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { repoRoot } from "./helpers.js";

export const fixturesRoot = join(repoRoot, "test", "fixtures", "codegen");
export const features = ["collection", "singleton", "types"] as const;

export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)).split(sep).join("/"));
    }
  };
  walk(dir);
  return out.sort();
}

/** The input schemas of a feature, path → source. */
export function fixtureProtos(feature: string): Record<string, string> {
  const dir = join(fixturesRoot, feature, "input");
  return Object.fromEntries(listFiles(dir).map((p) => [p, readFileSync(join(dir, p), "utf8")]));
}
