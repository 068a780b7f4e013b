/**
 * One writer per store (issue 19): the kernel lock on `LOCK`, in one process and across real child
 * processes. A pid file let two writers in through a symlinked path, an empty or rewritten `LOCK`, a pid
 * that another namespace (or a reboot) reuses, and a race on a stale `LOCK`.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Engine } from "../../src/runtime/storage/engine.js";
import { isCellarError, type StoreLockedError } from "../../src/runtime/errors.js";
import { loadNativeLock, nodeFileIO } from "../../src/runtime/platform/io.js";
import { StoreLock } from "../../src/runtime/platform/lock.js";
import { TEST_KEY, valueFor } from "./helpers/model.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-lock-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A lock-child.ts process: `send` a command, get its one-line answer. */
class Child {
  readonly proc: ChildProcessWithoutNullStreams;
  private readonly answers: string[] = [];
  private readonly waiting: ((line: string) => void)[] = [];
  readonly exited: Promise<void>;
  constructor() {
    this.proc = spawn(process.execPath, ["--import", "tsx", path.join(here, "helpers", "lock-child.ts")], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    this.proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    readline.createInterface({ input: this.proc.stdout }).on("line", (line) => {
      const w = this.waiting.shift();
      if (w) w(line);
      else this.answers.push(line);
    });
    this.exited = new Promise((resolve) => this.proc.on("exit", () => resolve()));
    void this.exited.then(() => {
      for (const w of this.waiting.splice(0)) w(`EXITED ${stderr.slice(-500)}`);
    });
  }
  get pid(): number {
    return this.proc.pid!;
  }
  /** Write the command now; the promise resolves with its answer. */
  send(cmd: string): Promise<string> {
    this.proc.stdin.write(cmd + "\n");
    const ready = this.answers.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  async kill(): Promise<void> {
    this.proc.kill("SIGKILL");
    await this.exited;
  }
}

const children: Child[] = [];
function child(): Child {
  const c = new Child();
  children.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()));
});

const put = (key: string) => ({ op: "put" as const, entity: "e", key, version: 1, value: valueFor(key, 1), terms: [] });
const lockedError = async (p: Promise<unknown>): Promise<StoreLockedError> => {
  const e = await p.then(
    async (opened) => {
      await (opened as Engine).close();
      return new Error("opened a store another open holds");
    },
    (x: unknown) => x,
  );
  if (!isCellarError(e, "E_LOCKED")) throw e;
  return e as StoreLockedError;
};
/** A pid no process has: one that just exited. */
const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid!;
const lockFile = (dir: string) => path.join(dir, "LOCK");
const rewriteLock = (dir: string, holder: object | string) =>
  fs.writeFileSync(lockFile(dir), typeof holder === "string" ? holder : JSON.stringify(holder)); // in place: same inode

async function newStore(name: string): Promise<string> {
  const dir = path.join(tmp, name);
  const e = await Engine.open({ dir, key: TEST_KEY });
  await e.write([put("seed")]);
  await e.close();
  return dir;
}

describe("one process", () => {
  it("the same store through a symlink is refused with E_LOCKED, so 20 puts alternating between two handles cannot lose any", async () => {
    const dir = await newStore("sym1");
    const link = path.join(tmp, "sym1-link");
    fs.symlinkSync(dir, link, "dir");
    const a = await Engine.open({ dir, key: TEST_KEY });
    // the scenario: a second handle through the link, puts alternating between the two
    const b = await Engine.open({ dir: link, key: TEST_KEY }).catch((x: unknown) => x);
    expect(isCellarError(b, "E_LOCKED")).toBe(true);
    expect((b as StoreLockedError).holder?.pid).toBe(process.pid);
    const handles = [a, b instanceof Engine ? b : a];
    for (let i = 0; i < 20; i++) await handles[i % 2]!.write([put(`alt-${i}`)]);
    for (const h of new Set(handles)) await h.close();
    const r = await Engine.open({ dir: link, key: TEST_KEY });
    for (let i = 0; i < 20; i++) expect(r.has("e", `alt-${i}`)).toBe(true);
    // and the other way round: open through the link, then the direct path
    expect(await lockedError(Engine.open({ dir, key: TEST_KEY }))).toMatchObject({ holder: { pid: process.pid } });
    await r.close();
  });

  it("tryAcquire returns null while held and the lock again after release; LOCK stays, emptied, at release", async () => {
    const io = nodeFileIO();
    const dir = path.join(tmp, "api");
    fs.mkdirSync(dir);
    const first = StoreLock.tryAcquire(io, dir)!;
    expect(first).not.toBeNull();
    expect(JSON.parse(fs.readFileSync(lockFile(dir), "utf8"))).toMatchObject({ pid: process.pid, hostname: os.hostname() });
    expect(StoreLock.tryAcquire(io, dir)).toBeNull();
    expect(() => StoreLock.acquire(io, dir)).toThrow(expect.objectContaining({ code: "E_LOCKED" }));
    first.release();
    first.release(); // idempotent
    expect(fs.readFileSync(lockFile(dir)).length).toBe(0);
    const second = StoreLock.tryAcquire(io, dir);
    expect(second).not.toBeNull();
    second!.release();
  });

  it("a platform where the native lock does not load gets E_LOCK_UNAVAILABLE, not a store without a lock", () => {
    const err = (() => {
      try {
        loadNativeLock(() => {
          throw new Error("no prebuild for this platform");
        });
      } catch (e) {
        return e;
      }
    })();
    // loadNativeLock keeps a module that loaded: only a fresh process exercises the failure path fully
    if (err === undefined) {
      const r = spawnSync(
        process.execPath,
        ["--import", "tsx", "-e", `import("${path.join(here, "../../src/runtime/platform/io.ts").replace(/\\/g, "/")}").then((m) => { try { m.loadNativeLock(() => { throw new Error("x"); }); } catch (e) { console.log(e.code, e.message); } })`],
        { encoding: "utf8" },
      );
      expect(r.stdout).toMatch(/^E_LOCK_UNAVAILABLE no kernel file lock on this platform: the native module `fs-native-extensions` did not load/);
    } else {
      expect(err).toMatchObject({ code: "E_LOCK_UNAVAILABLE" });
    }
  });

  it("the native lock module is loaded with the open path's modules, so the first open does not pay its dlopen (issue 15)", () => {
    // A fresh process: import storage/open.ts only (no open), then look for the addon among the loaded modules.
    const open = path.join(here, "../../src/runtime/storage/open.ts").replace(/\\/g, "/");
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", "-e", `import("${open}").then(() => console.log(Object.keys(require("node:module")._cache).some((k) => k.includes("fs-native-extensions"))))`],
      { encoding: "utf8" },
    );
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("true");
  });
});

describe("two processes", () => {
  it("a store held by a child through a symlink is refused with E_LOCKED on the direct path, and the other way round", async () => {
    const dir = await newStore("sym2");
    const link = path.join(tmp, "sym2-link");
    fs.symlinkSync(dir, link, "dir");
    const c = child();
    expect(await c.send(`open ${link}`)).toBe(`OPEN ${c.pid}`);
    expect((await lockedError(Engine.open({ dir, key: TEST_KEY }))).holder?.pid).toBe(c.pid);
    expect(await c.send("close")).toBe("CLOSED");
    const mine = await Engine.open({ dir, key: TEST_KEY });
    expect(await c.send(`open ${link}`)).toBe(`LOCKED ${process.pid}`);
    await mine.close();
  });

  it("a held store stays locked when LOCK is emptied, or names a dead pid, another host, or the opener's own pid (another PID namespace)", async () => {
    const dir = await newStore("rewritten");
    const holder = child();
    expect(await holder.send(`open ${dir}`)).toBe(`OPEN ${holder.pid}`);
    const other = child();
    const host = os.hostname();
    const cases: [string, object | string, string][] = [
      ["empty", "", "LOCKED -"],
      ["garbage", "\u0000\u0001{not json", "LOCKED -"],
      ["a dead pid on this host", { pid: deadPid(), hostname: host, since: "2020-01-01T00:00:00.000Z" }, "LOCKED"],
      ["another host", { pid: 4242, hostname: "elsewhere.example", since: "2020-01-01T00:00:00.000Z" }, "LOCKED 4242"],
      ["the opener's own pid", { pid: other.pid, hostname: host, since: "2020-01-01T00:00:00.000Z" }, `LOCKED ${other.pid}`],
    ];
    for (const [, content, answer] of cases) {
      rewriteLock(dir, content);
      expect(await other.send(`open ${dir}`)).toMatch(new RegExp(`^${answer}`));
    }
    // in this process too (its own pid in LOCK)
    rewriteLock(dir, { pid: process.pid, hostname: host, since: "2020-01-01T00:00:00.000Z" });
    await lockedError(Engine.open({ dir, key: TEST_KEY }));
    // the holder still writes, and nothing it acknowledged is lost
    expect(await holder.send("put from-holder")).toBe("OK");
    await holder.kill();
    const e = await Engine.open({ dir, key: TEST_KEY });
    expect(e.has("e", "from-holder")).toBe(true);
    await e.close();
  });

  it("a SIGKILLed holder's lock is free at once, even when the pid in its LOCK now belongs to a live process (pid reuse)", async () => {
    const dir = await newStore("killed");
    const c = child();
    expect(await c.send(`open ${dir}`)).toBe(`OPEN ${c.pid}`);
    expect(await c.send("put k1")).toBe("OK");
    await c.kill();
    // after a reboot a LOCK's pid often belongs to another live process: it must not matter
    const alive = child();
    rewriteLock(dir, { pid: alive.pid, hostname: os.hostname(), since: "2020-01-01T00:00:00.000Z" });
    const e = await Engine.open({ dir, key: TEST_KEY });
    expect(e.has("e", "k1")).toBe(true);
    await e.close();
  });

  it("4 processes racing to open a store with a stale LOCK: exactly one opens, in every round", async () => {
    const dir = await newStore("race");
    const racers = Array.from({ length: 4 }, () => child());
    const dead = deadPid();
    for (let r = 0; r < 20; r++) {
      rewriteLock(dir, { pid: dead, hostname: os.hostname(), since: "2020-01-01T00:00:00.000Z" });
      const answers = await Promise.all(racers.map((c) => c.send(`open ${dir}`)));
      expect(answers.filter((a) => a.startsWith("OPEN")), `round ${r}: ${answers.join(", ")}`).toHaveLength(1);
      expect(answers.filter((a) => a.startsWith("LOCKED")), `round ${r}: ${answers.join(", ")}`).toHaveLength(3);
      await Promise.all(racers.map((c, i) => (answers[i]!.startsWith("OPEN") ? c.send("close") : null)));
    }
  });
});
