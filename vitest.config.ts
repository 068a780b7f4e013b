import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real child processes, real fsync and real libsodium: give each file room, run files in forks.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
