// CommonJS apps load Cellar with `require()` (Node's require of ES modules, 20.19+/22.12+). That holds
// only while every entry of package.json `exports` answers `require` (the `default` condition, one
// set of files for both, so no dual-package hazard) and no module the runtime loads has a top-level
// `await` (else `require` throws ERR_REQUIRE_ASYNC_MODULE). The packed-tarball run is the `cjs` path
// of guide.test.ts; this checks both rules on every file, fast.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { expect, it } from "vitest";
import { repoRoot } from "../helpers/pack.js";

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Line numbers of `await` (and `for await`) outside any function, class member or arrow. */
export function topLevelAwaits(text: string): number[] {
  const sf = ts.createSourceFile("x.ts", text, ts.ScriptTarget.ES2022, true);
  const lines: number[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) || ts.isClassStaticBlockDeclaration(node)) return;
    if (ts.isAwaitExpression(node) || (ts.isForOfStatement(node) && node.awaitModifier !== undefined)) {
      lines.push(sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return lines;
}

it("finds top-level await, and only that", () => {
  expect(topLevelAwaits("const a = await f();\nfor await (const x of y) {}\nif (c) { await g(); }\n")).toEqual([1, 2, 3]);
  expect(topLevelAwaits("async function f() { await g(); }\nconst h = async () => { await g(); };\nclass C { async m() { await g(); } }\n")).toEqual([]);
});

it("no module of the runtime has a top-level await", () => {
  const found = sources(join(repoRoot, "src", "runtime")).flatMap((file) =>
    topLevelAwaits(readFileSync(file, "utf8")).map((line) => `${relative(repoRoot, file)}:${line}`),
  );
  expect(found).toEqual([]);
});

it("every entry of package.json `exports` answers `require` and `import` with the same files", () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { exports: Record<string, string | Record<string, string>> };
  for (const [entry, target] of Object.entries(pkg.exports)) {
    if (typeof target === "string") continue; // "./package.json"
    expect(Object.keys(target), entry).toEqual(["types", "default"]);
    expect(target["types"]?.replace(/\.d\.ts$/, ".js"), entry).toBe(target["default"]);
  }
});
