// `cellar init` and the app's module format: Cellar and its generated code are ES modules, while
// `npm init -y` writes `"type": "commonjs"`. A project with no code yet becomes ESM; one with
// TypeScript code stays CommonJS (its generated code compiles to CommonJS with it) and is told what
// that needs; one with CommonJS JavaScript is refused for the JavaScript target, with what to change.
// The packed-tarball runs of each kind of app are in guide.test.ts.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { init, typeDependentFile } from "../../src/cli/init.js";
import { removeDir, repoRoot, scratchDir } from "../codegen/helpers.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

/** What `npm init -y` writes (npm 11), plus an installed node_modules/cellar with its schemas. */
function app(pkg: Record<string, unknown> = { type: "commonjs" }): string {
  const dir = scratchDir("adopt-init");
  dirs.push(dir);
  const npmInit = { name: "my-app", version: "1.0.0", main: "index.js", scripts: { test: "echo \"Error: no test specified\" && exit 1" }, license: "ISC", ...pkg };
  writeFileSync(join(dir, "package.json"), JSON.stringify(npmInit, null, 2) + "\n");
  const schemas = join(dir, "node_modules", "cellar", "schemas", "cellar", "v1");
  mkdirSync(schemas, { recursive: true });
  copyFileSync(join(repoRoot, "schemas", "cellar", "v1", "options.proto"), join(schemas, "options.proto"));
  return dir;
}

const readPkg = (dir: string) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Record<string, unknown>;

describe("a project with no code yet becomes ESM", () => {
  it.each([
    ["`\"type\": \"commonjs\"` (npm init -y)", { type: "commonjs" }, '`"type": "commonjs"`'],
    ["no `type`", { type: undefined }, "no `type`"],
  ])("%s", (_name, pkg, was) => {
    const dir = app(pkg);
    const r = init({ root: dir });
    expect(r.exitCode, r.messages.join("\n")).toBe(0);
    expect(readPkg(dir).type).toBe("module");
    expect(r.messages).toContain(
      `cellar: set \`"type": "module"\` in package.json (it had ${was}): Cellar and the code it generates are ES modules, and no file of this project changes meaning by it (CommonJS files can be .cjs and \`require()\` them on Node >= 20.19 or >= 22.12)`,
    );
    // The rest of package.json is kept, with the scripts added.
    expect(readPkg(dir)).toMatchObject({ name: "my-app", main: "index.js", license: "ISC", scripts: { codegen: "cellar generate" } });
  });

  it("files that name their format (.cjs, .mjs, .cts, .mts, .d.ts) do not count as code the switch changes", () => {
    const dir = app();
    for (const f of ["tools/build.cjs", "tools/run.mjs", "src/a.cts", "src/b.mts", "types/env.d.ts"]) {
      mkdirSync(join(dir, f, ".."), { recursive: true });
      writeFileSync(join(dir, f), "\n");
    }
    expect(typeDependentFile(dir)).toBeUndefined();
    expect(init({ root: dir }).exitCode).toBe(0);
    expect(readPkg(dir).type).toBe("module");
  });

  it("an ESM project is left as it is, with no note about its format", () => {
    const dir = app({ type: "module" });
    const r = init({ root: dir });
    expect(r.messages.filter((m) => m.includes("type") || m.includes("CommonJS"))).toEqual([]);
    expect(readPkg(dir).type).toBe("module");
  });

  it("--js: a JavaScript target (.js with .d.ts) for both plugins", () => {
    const dir = app();
    expect(init({ root: dir, target: "js" }).exitCode).toBe(0);
    expect(readPkg(dir).type).toBe("module");
    const gen = readFileSync(join(dir, "buf.gen.yaml"), "utf8");
    expect(gen.match(/- target=js\+dts\n/g)).toHaveLength(2);
    expect(gen).not.toContain("target=ts");
    expect(gen).toContain("      - migrations_import=../migrations/registry.js\n");
  });
});

describe("a CommonJS project with code", () => {
  function cjsApp(): string {
    const dir = app();
    mkdirSync(join(dir, "src"));
    writeFileSync(join(dir, "src", "server.ts"), 'import { readFileSync } from "node:fs";\nexport const x = readFileSync;\n');
    writeFileSync(join(dir, "index.js"), 'module.exports = require("./dist/server.js");\n');
    return dir;
  }

  it("TypeScript: keeps CommonJS and says what the generated code needs", () => {
    const dir = cjsApp();
    expect(typeDependentFile(dir)).toBe("index.js");
    const r = init({ root: dir });
    expect(r.exitCode).toBe(0);
    expect(readPkg(dir).type).toBe("commonjs");
    expect(r.messages).toContain(
      'cellar: kept CommonJS (`"type": "commonjs"` in package.json; this project has code, e.g. `index.js`): the generated TypeScript compiles to CommonJS with yours, and `require("cellar")` loads Cellar\'s ES modules (Node >= 20.19 or >= 22.12)',
    );
    expect(r.messages).toContain(
      'cellar: for CommonJS, set `"module": "nodenext"` in tsconfig.json (TypeScript >= 5.8) and call `openStore` inside an async function: CommonJS has no top-level `await` (tsx refuses it)',
    );
    expect(existsSync(join(dir, "buf.gen.yaml"))).toBe(true);
  });

  it("--js: refused with what to change, and nothing written", () => {
    const dir = cjsApp();
    const before = readFileSync(join(dir, "package.json"), "utf8");
    const r = init({ root: dir, target: "js" });
    expect(r.exitCode).toBe(1);
    expect(r.messages).toEqual([
      'cellar: this project is CommonJS (`"type": "commonjs"` in package.json) and has code (`index.js`), so Node would load the generated .js files, which are ES modules, as CommonJS; nothing was written. ' +
        'Either set `"type": "module"` in package.json and rename your CommonJS .js files to .cjs (they can `require()` the generated code on Node >= 20.19 or >= 22.12), ' +
        "or write the app in TypeScript (`cellar init` without `--js`), whose generated code compiles to CommonJS with yours",
    ]);
    expect(readFileSync(join(dir, "package.json"), "utf8")).toBe(before);
    expect(existsSync(join(dir, "buf.yaml"))).toBe(false);
    expect(existsSync(join(dir, "buf.gen.yaml"))).toBe(false);
  });
});

it("names the dependencies the generated code imports that the app has not installed", () => {
  const dir = app({ type: "module", dependencies: { zod: "^4.0.0" } });
  expect(init({ root: dir }).messages.at(-1)).toBe(
    "cellar: the generated code imports `@bufbuild/protobuf`; add it to your dependencies: `npm install @bufbuild/protobuf`",
  );
  const both = app({ type: "module", dependencies: { zod: "^4.0.0", "@bufbuild/protobuf": "^2.0.0" } });
  expect(init({ root: both }).messages.join("\n")).not.toContain("add it to your dependencies");
});
