/**
 * What a command prints: its result (`--json`: exactly one JSON document on stdout; else the human text),
 * progress bars (cli-progress, on stderr, only when stderr is a terminal and not `--json`), notes and
 * warnings on stderr, and colours (none when `NO_COLOR` is set or stdout is not a terminal).
 * cli-progress is loaded when a bar is first shown, so a command that shows none never loads it.
 */
import { createRequire } from "node:module";
import { styleText } from "node:util";
import type { CliContext } from "./context.js";

export interface Output {
  readonly json: boolean;
  /** `--json`: `doc` as one JSON document on stdout (bigints as decimal strings); else `human()`'s text. */
  result(doc: unknown, human: () => string): void;
  /** A bar on stderr when stderr is a terminal and not `--json` (shown once the work passes half a second); otherwise silent. */
  progress(label: string, total?: number): ProgressHandle;
  info(msg: string): void;
  warn(msg: string): void;
  readonly color: Colors;
}

export interface ProgressHandle {
  update(done: number, total?: number): void;
  stop(): void;
}

export interface Colors {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
}

const plain: Colors = { bold: (s) => s, dim: (s) => s, red: (s) => s, green: (s) => s, yellow: (s) => s };

/** Colours for `stream`: none when `NO_COLOR` is set (to anything but "") or the stream is not a terminal. */
export function colorsFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): Colors {
  if ((env.NO_COLOR !== undefined && env.NO_COLOR !== "") || stream.isTTY !== true) return plain;
  const style = (f: Parameters<typeof styleText>[0]) => (s: string) => styleText(f, s);
  return { bold: style("bold"), dim: style("dim"), red: style("red"), green: style("green"), yellow: style("yellow") };
}

/** JSON text of `doc`: bigints as decimal strings, byte arrays as base64. */
export function toJsonText(doc: unknown, indent?: number): string {
  return JSON.stringify(
    doc,
    (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v),
    indent,
  );
}

const silent: ProgressHandle = { update() {}, stop() {} };

/** How long work runs before its bar shows (work done sooner shows none). */
const BAR_DELAY_MS = 500;

function bar(label: string, total: number | undefined, stream: CliContext["stderr"]): ProgressHandle {
  let done = 0;
  let max = total;
  let shown: { update(n: number, p?: object): void; setTotal(n: number): void; stop(): void } | null = null;
  const timer = setTimeout(() => {
    const { SingleBar, Presets } = createRequire(import.meta.url)("cli-progress") as typeof import("cli-progress");
    const format = max === undefined ? `${label} {value}` : `${label} [{bar}] {percentage}% {value}/{total}`;
    const b = new SingleBar({ stream, format, hideCursor: true, clearOnComplete: true, barsize: 30 }, Presets.shades_classic);
    b.start(max ?? 0, done);
    shown = b;
  }, BAR_DELAY_MS);
  timer.unref();
  return {
    update(n, t) {
      done = n;
      if (t !== undefined && t !== max) {
        max = t;
        shown?.setTotal(t);
      }
      shown?.update(n);
    },
    stop() {
      clearTimeout(timer);
      shown?.stop();
      shown = null;
    },
  };
}

export function createOutput(opts: { json?: boolean }, ctx: CliContext): Output {
  const json = opts.json === true;
  return {
    json,
    result(doc, human) {
      if (json) ctx.stdout.write(toJsonText(doc, 2) + "\n");
      else {
        const text = human();
        if (text) ctx.stdout.write(text.endsWith("\n") ? text : text + "\n");
      }
    },
    progress(label, total) {
      return json || ctx.stderr.isTTY !== true ? silent : bar(label, total, ctx.stderr);
    },
    info(msg) {
      ctx.stderr.write(`cellar: ${msg}\n`);
    },
    warn(msg) {
      ctx.stderr.write(`cellar: warning: ${msg}\n`);
    },
    color: colorsFor(ctx.stdout, ctx.env),
  };
}
