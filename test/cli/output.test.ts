// output.ts: one JSON document with --json, colours only on a terminal without NO_COLOR, and the progress
// bar (the real cli-progress) only on a terminal's stderr, once the work passes half a second.
import { Writable } from "node:stream";
import { expect, it } from "vitest";
import { createOutput } from "../../src/cli/output.js";
import type { CliContext } from "../../src/cli/context.js";

function stream(tty: boolean): Writable & { isTTY?: boolean; text: string; columns?: number } {
  const s = new Writable({
    write(chunk: Buffer, _e, done) {
      s.text += chunk.toString();
      done();
    },
  }) as Writable & { isTTY?: boolean; text: string; columns?: number; cursorTo?: unknown; clearLine?: unknown };
  s.text = "";
  if (tty) Object.assign(s, { isTTY: true, columns: 80, cursorTo: (_x: number, _y: unknown, cb?: () => void) => (cb?.(), true), clearLine: () => true, moveCursor: () => true });
  return s;
}

function ctx(tty: boolean, env: NodeJS.ProcessEnv = {}): CliContext & { stdout: ReturnType<typeof stream>; stderr: ReturnType<typeof stream> } {
  return { cwd: process.cwd(), env, stdout: stream(tty), stderr: stream(tty), stdin: process.stdin };
}

it("--json: exactly one JSON document on stdout (bigints as strings), never the human text", () => {
  const c = ctx(true);
  createOutput({ json: true }, c).result({ n: 2n, bytes: new Uint8Array([1, 2]) }, () => "human");
  expect(JSON.parse(c.stdout.text)).toEqual({ n: "2", bytes: "AQI=" });
  expect(c.stderr.text).toBe("");
});

it("colours on a terminal only, and never with NO_COLOR", () => {
  expect(createOutput({}, ctx(true)).color.bold("x")).toBe("\u001b[1mx\u001b[22m");
  expect(createOutput({}, ctx(false)).color.bold("x")).toBe("x");
  expect(createOutput({}, ctx(true, { NO_COLOR: "1" })).color.red("x")).toBe("x");
});

it("a progress bar on a terminal's stderr after half a second; none off a terminal or with --json", async () => {
  for (const [c, json, drawn] of [[ctx(true), false, true], [ctx(false), false, false], [ctx(true), true, false]] as const) {
    const bar = createOutput({ json }, c).progress("verifying", 10);
    bar.update(3);
    await new Promise((r) => setTimeout(r, 700));
    bar.update(7);
    bar.stop();
    expect(c.stderr.text.includes("verifying"), `tty ${c.stderr.isTTY} json ${json}`).toBe(drawn);
    expect(c.stdout.text).toBe("");
  }
  const quick = ctx(true);
  const bar = createOutput({}, quick).progress("quick", 1);
  bar.update(1);
  bar.stop();
  await new Promise((r) => setTimeout(r, 700));
  expect(quick.stderr.text).toBe("");
});
