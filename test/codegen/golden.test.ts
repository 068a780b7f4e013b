// Golden files: protoc-gen-cellar's output for each fixture schema set equals expected/ byte for byte.
// Golden copies carry a `.golden` suffix so the repository's type check does not compile them (they
// import `cellar` and protoc-gen-es output that only exist in an app; compile.test.ts compiles the real thing).
// After an intended change: UPDATE_GOLDEN=1 npx vitest run test/codegen/golden.test.ts, then review the diff.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { features, fixtureProtos, fixturesRoot, listFiles } from "./fixtures.js";
import { runPlugin } from "./helpers.js";

const update = process.env.UPDATE_GOLDEN === "1";
const suffix = ".golden";

describe.each(features)("golden output of fixture `%s`", (feature) => {
  it("matches expected/", () => {
    const { files } = runPlugin(fixtureProtos(feature));
    const expectedDir = join(fixturesRoot, feature, "expected");
    if (update) {
      rmSync(expectedDir, { recursive: true, force: true });
      for (const [name, content] of files) {
        mkdirSync(dirname(join(expectedDir, name)), { recursive: true });
        writeFileSync(join(expectedDir, name + suffix), content);
      }
    }
    expect(existsSync(expectedDir), `${expectedDir} is missing; run with UPDATE_GOLDEN=1`).toBe(true);
    expect([...files.keys()].map((n) => n + suffix).sort()).toEqual(listFiles(expectedDir));
    for (const [name, content] of files) {
      expect(content, name).toBe(readFileSync(join(expectedDir, name + suffix), "utf8"));
    }
  });
});
