/**
 * The writing commands while another process (the app) holds the store open and writes: `compact` and
 * `backup` go through that process (this one follows it); `rotate-key`, `restore`, `import` and `repair`
 * refuse with exit 4 (IN_USE) naming its pid; the app's data stays intact and readable throughout.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { cellar, noSecrets, open, seed, STORE, tempRoot } from "./helpers/ops.js";

const { root, cleanup } = tempRoot("cellar-cli-inuse-");
afterAll(cleanup);

const here = path.dirname(new URL(import.meta.url).pathname);

async function until<T>(f: () => T | undefined, ms = 60_000): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) {
    const v = f();
    if (v !== undefined) return v;
  }
  throw new Error("timed out");
}

const readStatus = (file: string) => (fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as { pid: number; written: number; readBack?: number; done?: boolean }) : undefined);

it("compact and backup run through the app's process; rotate-key, restore, import and repair refuse naming its pid; the app's writes survive", { timeout: 300_000 }, async () => {
  const dir = path.join(root, "held");
  await seed(dir, 30);
  const status = path.join(root, "status.json");
  const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "helpers/hold-store.ts"), dir, status], { stdio: ["ignore", "ignore", "pipe"] });
  let childErr = "";
  child.stderr.on("data", (d: Buffer) => (childErr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on("exit", r));
  try {
    const first = await until(() => (readStatus(status)?.written ?? 0) > 2 ? readStatus(status) : undefined);
    const pid = first.pid;

    const c = await cellar(["compact", dir, ...STORE, "--json"]);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)).toMatchObject({ ranIn: "writer process" });

    const bk = path.join(root, "held.cellarbackup");
    const b = await cellar(["backup", dir, ...STORE, "--to", bk, "--json"]);
    expect(b.code, b.stderr).toBe(0);
    expect(fs.existsSync(bk)).toBe(true);

    const refusals = await Promise.all([
      cellar(["rotate-key", dir, ...STORE]),
      cellar(["restore", dir, "--from", bk, ...STORE]),
      cellar(["import", dir, "--in", bk, ...STORE]),
      cellar(["repair", dir, ...STORE, "--json"]),
    ]);
    for (const r of refusals) {
      noSecrets(r);
      expect(r.code, r.stderr).toBe(4);
      // (with --json the error may be a JSON document: either stream)
      expect(r.stderr + r.stdout).toContain(`process ${pid}`);
      expect(r.stderr + r.stdout).toMatch(/close the app/);
    }
    expect(child.exitCode).toBeNull(); // still running, still writing
    const before = readStatus(status)!.written;
    await until(() => (readStatus(status)!.written > before + 2 ? true : undefined));
  } finally {
    fs.writeFileSync(`${status}.stop`, "");
  }
  expect(await exited, childErr).toBe(0);
  const end = readStatus(status)!;
  expect(end.done).toBe(true);
  expect(end.readBack).toBe(end.written);
  const s = await open(dir);
  expect(await s.tasks.count()).toBe(30 + end.written);
  expect(s.recoveryReport.damaged).toEqual([]);
  await s.close();
});
