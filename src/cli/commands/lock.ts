/** `cellar lock`: record the current version of every entity in the schema lock (lock.ts); runs the check first. */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { type LockFlags, lockArgs, lockOptions } from "./check.js";
import { printMessages } from "./init.js";

export function register(program: Command, ctx: CliContext): void {
  lockOptions(
    program
      .command("lock")
      .description("record the current version of every entity in the schema lock (when a release is cut); runs the check first and changes nothing if it fails"),
  ).action(async (opts: LockFlags) => {
    const { lock } = await import("../lock.js");
    printMessages(ctx, lock(lockArgs(ctx, opts)));
  });
}
