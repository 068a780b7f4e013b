import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real child processes, real fsync and real libsodium: give each file room, run files in forks.
    pool: "forks",
    // Two files at a time: vitest's default on a 2-core machine is one, and most files wait on child
    // processes, fsync or libsodium rather than the CPU (measured on a fresh clone here: 440 s with one,
    // 340 s with two, every test passing both ways). Three is not better: 457 s against 448 s with two
    // (full `npm test` runs one after the other on a shared machine, issue 11).
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
