/**
 * The runtime stays readable (docs/ARCHITECTURE.md): no source file over 500 lines and no function over 120,
 * measured with the TypeScript parser so that a file's long function is found wherever it is nested.
 */
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const runtime = path.resolve(import.meta.dirname, "../../src/runtime");
const MAX_FILE_LINES = 500;
const MAX_FUNCTION_LINES = 120;

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith(".ts") ? [p] : [];
  });
}

/** Lines as `wc -l` counts them. */
function lineCount(text: string): number {
  return text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
}

/** Every function-like node with a body longer than `max` lines: `file:line name (n lines)`. */
export function longFunctions(file: string, text: string, max: number): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isFunctionLike(n) && "body" in n && n.body) {
      const first = sf.getLineAndCharacterOfPosition(n.getStart()).line;
      const last = sf.getLineAndCharacterOfPosition(n.end).line;
      const lines = last - first + 1;
      const name = n.name && ts.isIdentifier(n.name) ? n.name.text : "(anonymous)";
      if (lines > max) found.push(`${path.relative(runtime, file)}:${first + 1} ${name} (${lines} lines)`);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

describe("runtime sizes", () => {
  const files = sources(runtime);

  it("measures functions, nested ones included", () => {
    const body = Array.from({ length: 5 }, () => "  x++;").join("\n");
    const text = `function outer() {\n  const inner = () => {\n${body}\n  };\n}\n`;
    expect(longFunctions(path.join(runtime, "t.ts"), text, 6)).toEqual(["t.ts:1 outer (9 lines)", "t.ts:2 (anonymous) (7 lines)"]);
  });

  it(`no file is over ${MAX_FILE_LINES} lines`, () => {
    const long = files
      .map((f) => ({ f: path.relative(runtime, f), n: lineCount(fs.readFileSync(f, "utf8")) }))
      .filter((x) => x.n > MAX_FILE_LINES)
      .map((x) => `${x.f} (${x.n} lines)`);
    expect(long).toEqual([]);
  });

  it(`no function is over ${MAX_FUNCTION_LINES} lines`, () => {
    expect(files.flatMap((f) => longFunctions(f, fs.readFileSync(f, "utf8"), MAX_FUNCTION_LINES))).toEqual([]);
  });
});
