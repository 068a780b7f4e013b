/** `cellar init [--force] [--js]`: scaffold buf.yaml, buf.gen.yaml and schemas/ in this app (init.ts). */
import type { Command } from "commander";
import { type CliContext, setExitCode } from "../context.js";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("init")
    .description("scaffold buf.yaml, buf.gen.yaml and schemas/ in this app (a project with no code yet becomes ESM)")
    .option("--force", "overwrite existing files")
    .option("--js", "generate JavaScript with .d.ts")
    .action(async (opts: { force?: boolean; js?: boolean }) => {
      const { init } = await import("../init.js");
      const r = init({ root: ctx.cwd, force: opts.force === true, target: opts.js ? "js" : "ts" });
      printMessages(ctx, r);
    });
}

/** The codegen commands' messages: stdout when they succeeded, else stderr; their exit code passed on. */
export function printMessages(ctx: CliContext, r: { exitCode: number; messages: readonly string[] }): void {
  for (const m of r.messages) (r.exitCode === 0 ? ctx.stdout : ctx.stderr).write(m + "\n");
  setExitCode(ctx, r.exitCode);
}
