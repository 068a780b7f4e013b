/** `cellar check`: the schema evolution gate against the schema lock (check.ts); exit 0 compatible, 1 findings, 2 could not run. */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { printMessages } from "./init.js";

export interface LockFlags {
  lock?: string;
  template?: string;
  migrations?: string;
}

/** --lock, --template, --migrations (check and lock). */
export function lockOptions(cmd: Command): Command {
  return cmd
    .option("--lock <dir>", "schema lock folder (default: `lock=` of buf.gen.yaml, else schemas/cellar.lock)")
    .option("--template <file>", "buf.gen.yaml to read `lock=` from")
    .option("--migrations <dir>", "user-owned migrations folder (default: src/migrations)");
}

export function lockArgs(ctx: CliContext, opts: LockFlags) {
  return {
    root: ctx.cwd,
    ...(opts.template !== undefined ? { template: opts.template } : {}),
    ...(opts.migrations !== undefined ? { migrationsDir: opts.migrations } : {}),
    ...(opts.lock !== undefined ? { lock: opts.lock } : {}),
  };
}

export function register(program: Command, ctx: CliContext): void {
  lockOptions(
    program
      .command("check")
      .description("compare the schemas with the schema lock (buf breaking WIRE_JSON plus Cellar's rules); exit 0 compatible, 1 findings, 2 could not run"),
  ).action(async (opts: LockFlags) => {
    const { check } = await import("../check.js");
    printMessages(ctx, check(lockArgs(ctx, opts)));
  });
}
