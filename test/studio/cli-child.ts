/**
 * `cellar studio` as a real child process for the studio's tests: started on a store, its URL read from
 * stdout, its stderr kept, stopped by SIGTERM (it closes the store and exits).
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "../..");
export const CHROMIUM = "/usr/bin/chromium";

/** Whether the browser tests can run; under CI=true a missing Chromium is a failure, not a skip. */
export function chromiumPresent(): boolean {
  return fs.existsSync(CHROMIUM);
}

export interface StudioChild {
  readonly url: string;
  readonly origin: string;
  readonly port: number;
  stderr(): string;
  stop(): Promise<number | null>;
}

export async function startStudioCli(dir: string, keyFile: string, extra: readonly string[] = [], timeoutMs = 60_000): Promise<StudioChild> {
  const args = ["--import", "tsx", "src/cli/cellar.ts", "studio", dir, "--no-open", "--schema", "src/generated/index.ts", "--key-file", keyFile, ...extra];
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  let out = "";
  let err = "";
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`no URL from cellar studio within ${timeoutMs / 1000} s; stderr: ${err}`));
    }, timeoutMs);
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+\/auth\?token=[\w-]+/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`cellar studio exited (${code}) before printing a URL; stderr: ${err}`));
    });
  });
  const u = new URL(url);
  return {
    url,
    origin: u.origin,
    port: Number(u.port),
    stderr: () => err,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.once("exit", (code) => resolve(code));
        child.kill("SIGTERM");
      }),
  };
}

/** A raw HTTP request with exactly the headers given (fetch would set Host and Origin itself). */
export function rawRequest(port: number, options: { method?: string; path?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: options.method ?? "GET", path: options.path ?? "/", headers: options.headers ?? {}, setHost: false }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end(options.body);
  });
}
