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
  // Decided above for this context's stream; styleText's own check (Node ≥ 20.18) would look at process.stdout.
  const plainStyle = styleText as unknown as (f: string, s: string, o: { validateStream: boolean }) => string;
  const style = (f: Parameters<typeof styleText>[0]) => (s: string) => plainStyle(f as string, s, { validateStream: false });
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

/** `n` bytes as `812 B`, `1.5 KiB`, `3.2 MiB`, `1.1 GiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** Rows as aligned columns (two spaces apart); the header line in bold. Cells must hold no colour codes. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], color: Colors, indent = "  "): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) => indent + cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [color.bold(line(header)), ...rows.map(line)].join("\n");
}
