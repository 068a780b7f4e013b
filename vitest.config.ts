import { configDefaults, defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The longest files (a minute or more each: packed tarballs installed into fresh apps, real SIGKILL rounds)
 * start first. Vitest orders files by their cached durations when it has them; a fresh clone (CI) has none,
 * and it then starts the largest files first, which put the guide replay last: its two minutes then ran
 * after every other file had finished, alone on one worker.
 */
const LONGEST_FIRST = ["test/adoption/guide.test.ts", "test/lts/node-lts.test.ts", "test/engine/crash.test.ts", "test/codegen/migrations.test.ts"];

/**
 * Checks of the install rather than of the code, run by CI as a step of their own (`npm run test:install`,
 * and `npm run test:bench` for the harness) and left out of `npm test`, which must stay within 8 minutes on 2
 * cores (511 s on a fresh clone with them in): the getting-started guide replayed from a packed tarball (two
 * minutes), the packed SDK installed under Node 22 and 24 from the registry, and the benchmark harness (every
 * peer under `test:bench`). `CELLAR_INSTALL_TESTS=1` puts them back.
 */
const INSTALL_TESTS = ["test/adoption/guide.test.ts", "test/lts/**", "test/bench-smoke.test.ts", "test/cli/packed.test.ts"];

/**
 * Codegen end to end, run by CI as a step of its own (`npm run test:codegen-e2e`) and left out of `npm test`
 * for its time: real `buf generate` and `tsc --strict` over temp projects, ~170 s of test time on 2 cores
 * (with them in, `npm test` passed 8 minutes on a fresh clone once issue 13's multi-process tests came:
 * 509 s). `CELLAR_CODEGEN_E2E=1` (or `CELLAR_INSTALL_TESTS=1`) puts them back.
 */
const CODEGEN_E2E_TESTS = [
  "test/codegen/migrations.test.ts",
  "test/codegen/compile.test.ts",
  "test/codegen/check-lifecycle.test.ts",
  // The real `cellar init/generate/check/lock` command spawned over temp projects (buf included): 46 s and
  // 33 s of test time on a quiet 2-core machine, moved here when `npm test` reached 440 s (session 10).
  "test/codegen/cli.test.ts",
  "test/codegen/generate-stamp.test.ts",
  // `cellar generate` refusing breaking changes over copies of a locked project (buf each time), and a plain
  // JavaScript app generated, migrated and run under node: 24 s and 21 s of test time on a quiet 2-core
  // machine, moved here when `npm test` took 398 s quiet and 580 s at load 6 (session 11).
  "test/codegen/generate-rules.test.ts",
  "test/codegen/javascript-app.test.ts",
];

/**
 * The `cellar` CLI end to end, run by CI as a step of its own (`npm run test:cli`) and left out of `npm test`
 * for its time: each test starts the real command (`node --import tsx src/cli/cellar.ts`) several times
 * against real stores, ~200 s of test time on 2 cores (with them in, `npm test` took 580 s on a quiet 2-core
 * machine here). The CLI's own units (`test/cli/output.test.ts`, `describe.test.ts`) stay in `npm test`.
 * `CELLAR_CLI_E2E=1` (or `CELLAR_INSTALL_TESTS=1`) puts them back.
 */
const CLI_E2E_TESTS = ["test/cli/cli.test.ts", "test/cli/ops-*.test.ts", "test/cli/keychain.test.ts", "test/audit/cli.test.ts"];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification): number => {
      const i = LONGEST_FIRST.findIndex((name) => f.moduleId.replaceAll("\\", "/").endsWith(name));
      return i < 0 ? LONGEST_FIRST.length : i;
    };
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: [
      ...configDefaults.exclude,
      ...(process.env.CELLAR_INSTALL_TESTS ? [] : INSTALL_TESTS),
      ...(process.env.CELLAR_INSTALL_TESTS || process.env.CELLAR_CODEGEN_E2E ? [] : CODEGEN_E2E_TESTS),
      ...(process.env.CELLAR_INSTALL_TESTS || process.env.CELLAR_CLI_E2E ? [] : CLI_E2E_TESTS),
    ],
    // Real child processes, real fsync and real libsodium: give each file room, run files in forks.
    pool: "forks",
    // Two files at a time: vitest's default on a 2-core machine is one, and most files wait on child
    // processes, fsync or libsodium rather than the CPU (measured on a fresh clone here: 440 s with one,
    // 340 s with two, every test passing both ways). Three is not better: 457 s against 448 s with two
    // (full `npm test` runs one after the other on a shared machine, issue 11).
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
