/**
 * The packed SDK under the current LTS lines of Node, 22 and 24 (issue 11), whatever Node runs the tests:
 * real Node binaries from the npm registry's `node` package (fetched once into npm's cache by `npx`).
 * Under each: `npm install` of the tarball into a fresh app (no EBADENGINE warning; the native addons
 * sodium-native and fs-native-extensions load from their prebuilds), and the journal app (test/helpers/journal-app.ts)
 * opening a store, writing, reopening and reading. Under 22 the app also runs `cellar init` and
 * `cellar generate`; under 24, `cellar generate --check` on the same files (codegen gives the same bytes)
 * and the app reopens the store Node 22 wrote. The Node 22 app also runs under the Node running the tests,
 * and the installed package's source maps carry their sources (checks of the former test/pack.test.ts, which
 * installed the same tarball once more for them).
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { journalAppOutput, journalMainTs, journalProto, journalTsconfig } from "../helpers/journal-app.js";
import { freshApp, installTarball, nodeBinary, packedSdk, repoRoot, sh } from "../helpers/pack.js";

const work = mkdtempSync(join(tmpdir(), "cellar-lts-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let tarball = "";
const node = new Map<number, string>();
beforeAll(() => {
  tarball = packedSdk(); // prepack builds dist/
  expect(basename(tarball)).toMatch(/^cellar-\d+\.\d+\.\d+.*\.tgz$/);
  for (const major of [22, 24]) node.set(major, nodeBinary(major));
}, 300_000);

/** Installs the tarball into a fresh app under Node `major`; returns the app's directory and npm's output. */
function installUnder(major: number): { app: string; output: string } {
  const bin = node.get(major) ?? "";
  expect(sh(work, bin, ["--version"])).toMatch(new RegExp(`^v${major}\\.`));
  const app = freshApp(join(work, `app-${major}`), { name: `journal-app-node${major}` });
  return { app, output: installTarball(app, tarball, bin) };
}

/** Runs the compiled app under Node `major` (0: the Node running the tests) on `store`; returns what it printed, parsed. */
function runApp(major: number, app: string, store: string): unknown {
  const out = sh(app, major === 0 ? process.execPath : (node.get(major) ?? ""), [join(app, "out", "main.js"), store]);
  return JSON.parse(out.trim().split("\n").pop() ?? "");
}

const store22 = join(work, "store-22");

describe.sequential("the packed SDK under Node 22 and 24", () => {
  it("Node 22: installs without EBADENGINE, inits, generates, and the app writes, reopens and reads", () => {
    const { app, output } = installUnder(22);
    expect(output).not.toContain("EBADENGINE");
    expect(sh(app, "npx", ["--no-install", "cellar", "init"], { node: node.get(22) })).toContain("cellar: wrote buf.yaml");
    expect(readFileSync(join(app, "buf.yaml"), "utf8")).toContain("- path: node_modules/cellar/schemas");
    mkdirSync(join(app, "schemas", "journal", "v1"), { recursive: true });
    writeFileSync(join(app, "schemas", "journal", "v1", "journal.proto"), journalProto);
    expect(sh(app, "npx", ["--no-install", "cellar", "generate"], { node: node.get(22) })).toContain("cellar: updated");
    expect(readFileSync(join(app, "src", "generated", "journal", "v1", "journal_cellar.ts"), "utf8")).toContain(
      'import { defineCollection } from "cellar";',
    );
    // The app's own code, compiled with tsc (strict, NodeNext) and run with node.
    writeFileSync(join(app, "src", "main.ts"), journalMainTs);
    writeFileSync(join(app, "tsconfig.json"), journalTsconfig(repoRoot));
    sh(app, process.execPath, [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"]);
    expect(runApp(22, app, store22)).toEqual(journalAppOutput);
    // The same install and compiled app under the Node running the tests, on a store of its own.
    expect(runApp(0, app, join(work, "store-test-node"))).toEqual(journalAppOutput);
  }, 300_000);

  it("ships the sources of its source maps: every map in the installed dist/ carries the TypeScript it was compiled from", () => {
    const pkg = join(work, "app-22", "node_modules", "cellar");
    const maps: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else if (e.name.endsWith(".js.map")) maps.push(join(d, e.name));
      }
    };
    walk(join(pkg, "dist"));
    expect(maps.length).toBeGreaterThan(50);
    for (const m of maps) {
      const map = JSON.parse(readFileSync(m, "utf8")) as { sources: string[]; sourcesContent?: (string | null)[] };
      expect(map.sources.length, m).toBeGreaterThan(0);
      expect(map.sourcesContent?.length, `${m} has no sourcesContent: a stack trace would point at a .ts file the package does not ship`).toBe(map.sources.length);
      expect(map.sourcesContent?.every((c) => typeof c === "string" && c.length > 0), m).toBe(true);
    }
    // The content is the real source: the runtime's entry point, byte for byte.
    const index = JSON.parse(readFileSync(join(pkg, "dist", "src", "runtime", "index.js.map"), "utf8")) as { sourcesContent: string[] };
    expect(index.sourcesContent[0]).toBe(readFileSync(join(repoRoot, "src", "runtime", "index.ts"), "utf8"));
  });

  it("Node 24: installs without EBADENGINE, the same generated code is up to date, and the app reads Node 22's store and a new one", () => {
    const { app, output } = installUnder(24);
    expect(output).not.toContain("EBADENGINE");
    // The Node 22 app's own files (schemas, generated code, compiled app), not its node_modules.
    for (const f of ["buf.yaml", "buf.gen.yaml", "schemas", "src", "out", "tsconfig.json"]) cpSync(join(work, "app-22", f), join(app, f), { recursive: true });
    expect(sh(app, "npx", ["--no-install", "cellar", "generate", "--check"], { node: node.get(24) })).toContain("cellar: generated code is up to date");
    expect(runApp(24, app, store22)).toEqual(journalAppOutput);
    expect(runApp(24, app, join(work, "store-24"))).toEqual(journalAppOutput);
  }, 300_000);
});
