/**
 * The runtime's layers (docs/ARCHITECTURE.md): a module imports only modules of its own layer or of a lower
 * one. Read from the source text, so a new file or a new import is checked the moment it is written.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const runtime = path.resolve(import.meta.dirname, "../../src/runtime");

/**
 * Lowest first. `errors.ts` is the root every layer may throw from; `index.ts` is the public API; `electron/`
 * (`cellar/electron`, an entry point of its own) serves the typed layer's store to Electron renderers.
 */
const LAYERS = ["errors.ts", "format", "platform", "crypto", "storage", "share", "observe", "typed", "electron", "index.ts"] as const;

function layerOf(file: string): number {
  const top = path.relative(runtime, file).split(path.sep)[0]!;
  const rank = LAYERS.indexOf(top as (typeof LAYERS)[number]);
  if (rank < 0) throw new Error(`\`${path.relative(runtime, file)}\` is in no layer: put it in one of ${LAYERS.join(", ")}`);
  return rank;
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith(".ts") ? [p] : [];
  });
}

/** Every relative specifier of `import … from`, `export … from` and `import(…)`, type-only imports included. */
export function relativeImports(text: string): string[] {
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*["'](\.{1,2}\/[^"']+)["']/g)) specs.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g)) specs.push(m[1]!);
  return specs;
}

describe("runtime layers", () => {
  const files = sources(runtime);

  it("finds the runtime's modules and their imports", () => {
    expect(files.length).toBeGreaterThan(20);
    expect(relativeImports('import { a } from "./a.js";\nimport type { B } from "../b/b.js";\nexport * from "./c.js";\nconst d = await import("./d.js");'))
      .toEqual(["./a.js", "../b/b.js", "./c.js", "./d.js"]);
  });

  it("every module is in a layer", () => {
    for (const f of files) expect(() => layerOf(f)).not.toThrow();
  });

  it("no module imports from a higher layer", () => {
    const violations: string[] = [];
    for (const file of files) {
      for (const spec of relativeImports(fs.readFileSync(file, "utf8"))) {
        const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, ".ts");
        if (!target.startsWith(runtime + path.sep)) {
          violations.push(`${path.relative(runtime, file)} imports \`${spec}\`, outside the runtime`);
        } else if (layerOf(target) > layerOf(file)) {
          violations.push(`${path.relative(runtime, file)} (${LAYERS[layerOf(file)]}) imports ${path.relative(runtime, target)} (${LAYERS[layerOf(target)]})`);
        }
      }
    }
    expect(violations).toEqual([]);
  });
});
