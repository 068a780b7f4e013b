/**
 * `cellar generate [--check] [--force] [--template f] [--migrations dir]`: codegen, skipped when no input
 * changed since the last run (generate-stamp.ts decides that before anything heavy loads).
 */
import { join, resolve } from "node:path";
import { type Command, Option } from "commander";
import { CliError, type CliContext, EXIT } from "../context.js";
import { upToDate } from "../generate-stamp.js";
import { printMessages } from "./init.js";

interface GenerateFlags {
  check?: boolean;
  force?: boolean;
  template?: string;
  migrations?: string;
  lock?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("generate")
    .description(
      "generate code from schemas/ into the out dirs of buf.gen.yaml and write migration stubs; skipped when no input changed since the last run",
    )
    .option("--check", "always regenerate, change nothing, exit 1 if stale")
    .option("--force", "run even when no input changed")
    .option("--template <file>", "buf.gen.yaml to use (default: buf.gen.yaml)")
    .option("--migrations <dir>", "user-owned migrations folder (default: src/migrations)")
    .addOption(new Option("--lock <dir>").hideHelp()) // refused below with a word on where the lock is named
    .action(async (opts: GenerateFlags) => {
      if (opts.lock !== undefined) {
        throw new CliError("`generate` reads the lock named by `lock=` in buf.gen.yaml; `--lock` is for `check` and `lock`", EXIT.USAGE, "E_USAGE");
      }
      if (!opts.check && !opts.force) {
        const root = resolve(ctx.cwd);
        const stamp = { root, template: opts.template ?? "buf.gen.yaml", migrationsDir: join(root, opts.migrations ?? join("src", "migrations")) };
        if (upToDate(stamp)) {
          ctx.stdout.write("cellar: generated code is up to date (no input changed since the last run; --force regenerates)\n");
          return;
        }
      }
      const { generate } = await import("../generate.js");
      const r = generate({
        root: ctx.cwd,
        check: opts.check === true,
        ...(opts.template !== undefined ? { template: opts.template } : {}),
        ...(opts.migrations !== undefined ? { migrationsDir: opts.migrations } : {}),
      });
      printMessages(ctx, r);
    });
}
