// The real user's path: pack the SDK, install the tarball into a fresh app, `npx cellar init`, add a
// schema of the app's own, `npx cellar generate`, then compile and run the app's code that uses the
// generated repository on disk (write, reopen, query).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { journalAppOutput, journalMainTs, journalProto, journalTsconfig } from "./helpers/journal-app.js";
import { freshApp, installTarball, packedSdk, repoRoot, sh } from "./helpers/pack.js";

const work = mkdtempSync(join(tmpdir(), "cellar-pack-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

it("packs, installs into a fresh app, inits, generates, and runs the app's code on disk", () => {
  const tarball = packedSdk(); // prepack builds dist/
  expect(basename(tarball)).toMatch(/^cellar-\d+\.\d+\.\d+.*\.tgz$/);

  const app = freshApp(join(work, "app"), { name: "journal-app" });
  installTarball(app, tarball);

  const init = sh(app, "npx", ["--no-install", "cellar", "init"]);
  expect(init).toContain("cellar: wrote buf.yaml");
  expect(readFileSync(join(app, "buf.yaml"), "utf8")).toContain("- path: node_modules/cellar/schemas");

  mkdirSync(join(app, "schemas", "journal", "v1"), { recursive: true });
  writeFileSync(join(app, "schemas", "journal", "v1", "journal.proto"), journalProto);
  const gen = sh(app, "npx", ["--no-install", "cellar", "generate"]);
  expect(gen).toContain("cellar: updated");
  expect(readFileSync(join(app, "src", "generated", "journal", "v1", "journal_cellar.ts"), "utf8")).toContain(
    'import { defineCollection } from "cellar";',
  );
  expect(sh(app, "npx", ["--no-install", "cellar", "generate", "--check"])).toContain("cellar: generated code is up to date");

  // The app's own code, compiled with tsc (strict, NodeNext) and run with node.
  writeFileSync(join(app, "src", "main.ts"), journalMainTs);
  writeFileSync(join(app, "tsconfig.json"), journalTsconfig(repoRoot));
  sh(app, process.execPath, [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"]);
  const storeDir = join(work, "store");
  const out = execFileSync(process.execPath, [join(app, "out", "main.js"), storeDir], { cwd: app, encoding: "utf8" });
  expect(JSON.parse(out)).toEqual(journalAppOutput);
}, 600_000);

it("ships the sources of its source maps: every map in dist/ carries the TypeScript it was compiled from", () => {
  const app = join(work, "app", "node_modules", "cellar");
  const maps: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith(".js.map")) maps.push(join(d, e.name));
    }
  };
  walk(join(app, "dist"));
  expect(maps.length).toBeGreaterThan(50);
  for (const m of maps) {
    const map = JSON.parse(readFileSync(m, "utf8")) as { sources: string[]; sourcesContent?: (string | null)[] };
    expect(map.sources.length, m).toBeGreaterThan(0);
    expect(map.sourcesContent?.length, `${m} has no sourcesContent: a stack trace would point at a .ts file the package does not ship`).toBe(map.sources.length);
    expect(map.sourcesContent?.every((c) => typeof c === "string" && c.length > 0), m).toBe(true);
  }
  // The content is the real source: the runtime's entry point, byte for byte.
  const index = JSON.parse(readFileSync(join(app, "dist", "src", "runtime", "index.js.map"), "utf8")) as { sourcesContent: string[] };
  expect(index.sourcesContent[0]).toBe(readFileSync(join(repoRoot, "src", "runtime", "index.ts"), "utf8"));
});
