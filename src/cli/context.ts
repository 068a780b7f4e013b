/**
 * What every `cellar` command runs against: the working directory, the environment and the three standard
 * streams (a test or an embedding hands its own), the documented exit codes, and `CliError`, the error a
 * command throws to end with a message and one of those codes. Node built-ins only: loaded before any
 * command runs (test/codegen/cli-imports.test.ts).
 */

export interface CliContext {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** The exit codes of `cellar` (docs/CLI.md, "Exit codes"). */
export const EXIT = {
  /** Done; nothing found. */
  OK: 0,
  /** The command ran and found problems (verify found damage, check found incompatibilities, a bad backup). */
  FINDINGS: 1,
  /** The command line is wrong (unknown command or option, a missing or bad value), or the check could not run. */
  USAGE: 2,
  /** No key was given (and no terminal to ask on), or the key does not open the store. */
  KEY: 3,
  /** Another process holds the store and the command cannot be done through it. */
  IN_USE: 4,
  /** The store cannot be opened because it is damaged. */
  DAMAGED: 5,
  /** A file could not be read or written (permissions, disk full, quota). */
  IO: 6,
  /** Any other failure. */
  FAILED: 10,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error a command throws to end with `message` (printed `cellar: <message> (<code>)`) and `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly code: string,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** The context of the real process. */
export function processContext(): CliContext {
  return { cwd: process.cwd(), env: process.env, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
}

const exitCodes = new WeakMap<CliContext, number>();

/**
 * End the running command with `code` once its action returns (after it printed its result): how a command
 * reports `FINDINGS`, or passes on the code of a step it ran. (Throw `CliError` to end with an error message.)
 */
export function setExitCode(ctx: CliContext, code: number): void {
  exitCodes.set(ctx, code);
}

/** The code `setExitCode` set for `ctx` (0 when none). */
export function exitCodeSet(ctx: CliContext): number {
  return exitCodes.get(ctx) ?? 0;
}
