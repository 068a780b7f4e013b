// The real user's path: pack the SDK, install the tarball into a fresh app, `npx cellar init`, add a
// schema of the app's own, `npx cellar generate`, then compile and run the app's code that uses the
// generated repository on disk (write, reopen, query).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { packTarball, repoRoot, sh } from "./helpers/pack.js";

const work = mkdtempSync(join(tmpdir(), "cellar-pack-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const journalProto = `syntax = "proto3";

package journal.v1;

import "cellar/v1/options.proto";
import "google/protobuf/timestamp.proto";

// Entry is one journal entry of this app.
message Entry {
  option (cellar.v1.entity) = {
    version: 1
    name: "entries"
    key: "id"
    indexes: ["mood"]
  };

  string id = 1 [(cellar.v1.field).required = true];
  string text = 2 [(cellar.v1.field) = {
    sensitive: true
    max_length: 10000
  }];
  Mood mood = 3;
  google.protobuf.Timestamp written_at = 4;
}

// Mood of an entry.
enum Mood {
  MOOD_UNSPECIFIED = 0;
  MOOD_GOOD = 1;
  MOOD_BAD = 2;
}
`;

const mainTs = `import { timestampNow } from "@bufbuild/protobuf/wkt";
import { isCellarError } from "cellar";
import { openStore } from "./generated/index.js";
import { Mood } from "./generated/journal/v1/journal_pb.js";

const dir = process.argv[2] ?? "";
const key = new Uint8Array(32).fill(7);
const first = await openStore({ dir, key });
await first.entries.put({ id: "e1", text: "A good day", mood: Mood.GOOD, writtenAt: timestampNow() });
await first.entries.put({ id: "e2", text: "A bad day", mood: Mood.BAD });
let rejected = "";
try {
  await first.entries.put({ id: "" });
} catch (e) {
  rejected = isCellarError(e, "E_VALIDATION") ? "validation" : String(e);
}
const settings = await first.appSettings.get();
await first.close();
const again = await openStore({ dir, key });
const good = await again.entries.query({ mood: Mood.GOOD });
console.log(JSON.stringify({
  count: await again.entries.count(),
  good: good.map((e) => e.text),
  rejected,
  language: settings.language,
}));
await again.close();
`;

it("packs, installs into a fresh app, inits, generates, and runs the app's code on disk", () => {
  const tarball = packTarball(work); // prepack builds dist/

  const app = join(work, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "journal-app", private: true, type: "module" }, null, 2) + "\n");
  sh(app, "npm", ["install", tarball, "--no-audit", "--no-fund", "--prefer-offline"]);

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
  writeFileSync(join(app, "src", "main.ts"), mainTs);
  writeFileSync(
    join(app, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        skipLibCheck: true,
        outDir: "out",
        rootDir: "src",
        typeRoots: [join(repoRoot, "node_modules", "@types")],
        types: ["node"],
      },
      include: ["src"],
    }),
  );
  sh(app, process.execPath, [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"]);
  const storeDir = join(work, "store");
  const out = execFileSync(process.execPath, [join(app, "out", "main.js"), storeDir], { cwd: app, encoding: "utf8" });
  expect(JSON.parse(out)).toEqual({ count: 2, good: ["A good day"], rejected: "validation", language: "en" });
}, 600_000);
