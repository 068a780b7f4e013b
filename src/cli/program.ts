/**
 * The `cellar` program: commander, with every command module of `COMMANDS` registered on it (each imported
 * when the program is built, so each keeps its own heavy imports inside its action: `generate` with nothing
 * to do loads no codegen, no runtime), the documented exit codes, and the one place where an error becomes
 * a message and an exit code (`exitCodeOf`).
 */
import { Command, CommanderError } from "commander";
import { CliError, type CliContext, EXIT, exitCodeSet, processContext } from "./context.js";
import { packageVersion } from "./paths.js";

export interface CommandModule {
  register(program: Command, ctx: CliContext): void;
}

/** Every command module, one line each (docs/CLI.md lists them). */
export const COMMANDS: ReadonlyArray<() => Promise<CommandModule>> = [
  () => import("./commands/init.js"),
  () => import("./commands/generate.js"),
  () => import("./commands/check.js"),
  () => import("./commands/lock.js"),
  () => import("./commands/info.js"),
  () => import("./commands/inspect.js"),
  () => import("./commands/verify.js"),
  () => import("./commands/migrate.js"),
  () => import("./commands/compact.js"),
  () => import("./commands/backup.js"),
  () => import("./commands/restore.js"),
  () => import("./commands/backups.js"),
  () => import("./commands/export.js"),
  () => import("./commands/import.js"),
  () => import("./commands/rotate-key.js"),
  () => import("./commands/change-passphrase.js"),
  () => import("./commands/reencrypt.js"),
  () => import("./commands/repair.js"),
  () => import("./commands/audit.js"),
  () => import("./commands/studio.js"),
];

/** Exit code of a `CellarError` by its `code`; any other code is `FAILED`. */
const EXIT_BY_CODE: Readonly<Record<string, number>> = {
  E_USAGE: EXIT.USAGE,
  E_KEY: EXIT.KEY,
  E_CHANNEL_AUTH: EXIT.KEY,
  E_LOCKED: EXIT.IN_USE,
  E_LOCK_UNAVAILABLE: EXIT.IN_USE,
  E_FOLLOWER: EXIT.IN_USE,
  E_VERSION_SKEW: EXIT.IN_USE,
  E_CORRUPT: EXIT.DAMAGED,
  E_BACKUP_CORRUPT: EXIT.DAMAGED,
  E_IO: EXIT.IO,
  E_NOSPACE: EXIT.IO,
  E_QUOTA: EXIT.IO,
};

/** The exit code and the code an error is reported with. */
export function exitCodeOf(e: unknown): { exitCode: number; code: string } {
  if (e instanceof CliError) return { exitCode: e.exitCode, code: e.code };
  const code = (e as { code?: unknown } | null)?.code;
  if (e instanceof Error && typeof code === "string" && code.startsWith("E_")) return { exitCode: EXIT_BY_CODE[code] ?? EXIT.FAILED, code };
  return { exitCode: EXIT.FAILED, code: "E_FAILED" };
}

export async function buildProgram(ctx: CliContext): Promise<Command> {
  const program = new Command("cellar")
    .description("Cellar's command: code generation and the schema gate for an app; look inside, check and move a store")
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.stdout.write(s), writeErr: (s) => ctx.stderr.write(s), outputError: () => {} })
    .version(`cellar ${packageVersion()}`, "-v, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .addHelpText("after", "\nExit codes: 0 ok, 1 findings, 2 usage, 3 key, 4 in use, 5 damaged, 6 I/O, 10 failed (docs/CLI.md).");
  for (const load of COMMANDS) (await load()).register(program, ctx);
  return program;
}

/** Run `cellar` with `argv` (without node and the script); resolves with the exit code. */
export async function run(argv: readonly string[], partial?: Partial<CliContext>): Promise<number> {
  const ctx: CliContext = { ...processContext(), ...partial };
  const program = await buildProgram(ctx);
  if (argv.length === 0) {
    program.outputHelp();
    return EXIT.USAGE;
  }
  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCodeSet(ctx);
  } catch (e) {
    return report(e, argv, ctx);
  }
}

/** Print an error (`cellar: <message> (<code>)` on stderr; with --json also a JSON document on stdout) and give its exit code. */
function report(e: unknown, argv: readonly string[], ctx: CliContext): number {
  if (e instanceof CommanderError) return commanderError(e, argv, ctx);
  const { exitCode, code } = exitCodeOf(e);
  const message = e instanceof Error ? e.message : String(e);
  ctx.stderr.write(`cellar: ${message} (${code})\n`);
  if (code === "E_FAILED" && e instanceof Error && ctx.env.CELLAR_DEBUG) ctx.stderr.write(`${e.stack ?? ""}\n`);
  const end = argv.indexOf("--");
  if ((end < 0 ? argv : argv.slice(0, end)).includes("--json")) {
    ctx.stdout.write(JSON.stringify({ error: { code, message, exitCode } }, null, 2) + "\n");
  }
  return exitCode;
}

/** Commander's own ends: help and version (0), and the command line's errors (`USAGE`) in Cellar's words. */
function commanderError(e: CommanderError, argv: readonly string[], ctx: CliContext): number {
  if (e.exitCode === 0) return EXIT.OK; // --help, help, --version: printed already
  const command = argv.find((a) => !a.startsWith("-"));
  const quoted = /'([^']*)'/.exec(e.message)?.[1];
  const hint = /\(Did you mean [^)]*\)/.exec(e.message)?.[0];
  let text: string;
  if (e.code === "commander.unknownOption" && quoted !== undefined) {
    text = `unknown option \`${quoted}\`${command ? ` for \`${command}\`` : ""}`;
  } else if (e.code === "commander.unknownCommand" && quoted !== undefined) {
    text = `unknown command \`${quoted}\``;
  } else if (e.code === "commander.excessArguments") {
    text = `unexpected argument${command ? ` for \`${command}\`` : ""}: ${e.message.replace(/^error:\s*/, "")}`;
  } else {
    text = e.message.replace(/^error:\s*/, "");
  }
  const scope = command !== undefined && e.code !== "commander.unknownCommand" && command !== "help" ? `${command} ` : "";
  ctx.stderr.write(`cellar: ${text}${hint ? ` ${hint}` : ""}\nrun \`cellar ${scope}--help\` for the options\n`);
  return EXIT.USAGE;
}
