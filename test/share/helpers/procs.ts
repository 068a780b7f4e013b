/**
 * Real processes for the sharing tests: each runs share-child.ts on one store; `send` a command and get
 * its `=` answer, `waitFor` an event line (`!`).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach } from "vitest";

const here = path.dirname(fileURLToPath(import.meta.url));

export class Proc {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly events: string[] = [];
  private readonly answers: string[] = [];
  private readonly waiting: ((line: string) => void)[] = [];
  private readonly watchers: { re: RegExp; resolve: (line: string) => void }[] = [];
  readonly exited: Promise<number | null>;
  stderr = "";

  constructor(dir: string, keyHex: string, env: NodeJS.ProcessEnv) {
    this.proc = spawn(process.execPath, ["--import", "tsx", path.join(here, "share-child.ts"), dir, keyHex], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
    this.proc.stderr.on("data", (d: Buffer) => (this.stderr += d.toString()));
    readline.createInterface({ input: this.proc.stdout }).on("line", (line) => {
      if (line.startsWith("! ")) {
        const ev = line.slice(2);
        this.events.push(ev);
        for (const w of [...this.watchers]) {
          if (w.re.test(ev)) {
            this.watchers.splice(this.watchers.indexOf(w), 1);
            w.resolve(ev);
          }
        }
        return;
      }
      const answer = line.startsWith("= ") ? line.slice(2) : line;
      const w = this.waiting.shift();
      if (w) w(answer);
      else this.answers.push(answer);
    });
    this.exited = new Promise((resolve) => this.proc.on("exit", (code) => resolve(code)));
    void this.exited.then(() => {
      for (const w of this.waiting.splice(0)) w(`EXITED ${this.stderr.slice(-800)}`);
    });
  }

  /** The next `=` answer (the first is the open's: `open <role> <pid>` or `error <code>`). */
  next(): Promise<string> {
    const a = this.answers.shift();
    if (a !== undefined) return Promise.resolve(a);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  send(cmd: string): Promise<string> {
    this.proc.stdin.write(cmd + "\n");
    return this.next();
  }

  /** The first event (past or future) matching `re`, or a rejection after `ms`. */
  waitFor(re: RegExp, ms = 10_000): Promise<string> {
    const seen = this.events.find((e) => re.test(e));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no event ${re} within ${ms} ms; events: ${this.events.slice(-5).join(" | ")}; stderr: ${this.stderr.slice(-500)}`)), ms);
      this.watchers.push({ re, resolve: (l) => (clearTimeout(t), resolve(l)) });
    });
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.proc.kill(signal);
  }
}

/** Start `n` processes on `dir`: the first alone (it creates the store and is its writer), then the others at once. */
export async function start(n: number, dir: string, keyHex: string, env: NodeJS.ProcessEnv): Promise<{ procs: Proc[]; opens: string[] }> {
  const first = new Proc(dir, keyHex, env);
  const opens = [await first.next()];
  const rest = Array.from({ length: n - 1 }, () => new Proc(dir, keyHex, env));
  opens.push(...(await Promise.all(rest.map((p) => p.next()))));
  return { procs: [first, ...rest], opens };
}

/**
 * A test file's scope for real processes: a temp directory for its stores, a channel runtime directory of its
 * own (`env.XDG_RUNTIME_DIR`, for the children), and `live`, the processes to SIGKILL after each test; both
 * directories go after the file.
 */
export function processScope(prefix: string, extraEnv: NodeJS.ProcessEnv = {}): { tmp: string; runtime: string; env: NodeJS.ProcessEnv; live: Proc[] } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const runtime = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-rt-"));
  const live: Proc[] = [];
  afterEach(() => {
    for (const p of live.splice(0)) p.kill();
  });
  afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(runtime, { recursive: true, force: true });
  });
  return { tmp, runtime, env: { XDG_RUNTIME_DIR: runtime, ...extraEnv }, live };
}
