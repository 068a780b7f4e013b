import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { isCellarError } from "../../src/runtime/errors.js";
import type { Failpoint } from "../../src/runtime/platform/io.js";
import { faultyIO } from "./helpers/faulty-io.js";
import { TEST_KEY, valueFor } from "./helpers/model.js";
import { startChild, waitForLine } from "./helpers/spawn.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-faults-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const put = (key: string, n: number, size = 120): WriteOp => ({
  op: "put",
  entity: "e",
  key,
  version: 1,
  // large values are random so compression cannot shrink them
  value: size === 120 ? valueFor(key, n) : Object.assign(randomBytes(size), { 0: n & 0xff }),
  terms: [],
});
const text = (e: Engine, k: string) => {
  const got = e.get("e", k);
  return got ? Buffer.from(got.value).toString() : undefined;
};

async function fill(e: Engine, n: number, prefix = "k"): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => e.write([put(`${prefix}${i % 50}`, i)])));
}

describe("compaction failing inside each window (injected error)", () => {
  const windows: Failpoint[] = [
    "compaction.afterRotate",
    "compaction.afterSegmentWrite",
    "compaction.beforeSegmentRename",
    "compaction.beforeDirSync",
    "compaction.beforeManifestRename",
    "manifest.beforeRename",
    "manifest.beforeCopyRename",
  ];
  for (const w of windows) {
    it(`an error at ${w} rejects compact(), keeps every record readable and writable, and a reopen agrees`, async () => {
      const dir = path.join(tmp, `inj-${w}`);
      let armed = false;
      const e = await Engine.open({
        dir,
        key: TEST_KEY,
        compaction: { auto: false },
        failpoint: (name) => {
          if (armed && name === w) throw new Error(`injected failure at ${name}`);
        },
      });
      await fill(e, 300);
      const before = new Map([...e.keys("e")].map((k) => [k, text(e, k)]));
      armed = true;
      await expect(e.compact()).rejects.toThrow(`injected failure at ${w}`);
      armed = false;
      for (const [k, v] of before) expect(text(e, k)).toBe(v);
      await e.write([put("after", 1)]);
      expect(fs.readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
      await e.compact(); // and a later compaction succeeds
      await e.close();
      const r = await Engine.open({ dir, key: TEST_KEY });
      for (const [k, v] of before) expect(text(r, k)).toBe(v);
      expect(text(r, "after")).toBe(Buffer.from(valueFor("after", 1)).toString());
      await r.close();
    });
  }
});

describe("disk full", () => {
  it("injected ENOSPC rejects the write with E_NOSPACE, keeps acknowledged data, and writes resume when space returns", async () => {
    const dir = path.join(tmp, "enospc");
    const io = faultyIO();
    const e = await Engine.open({ dir, key: TEST_KEY, io, compaction: { auto: false } });
    await fill(e, 100);
    io.failWrites = true;
    // a write that needs new journal space: larger than what is preallocated
    const big = put("big", 9, 2 * 1024 * 1024);
    const err = await e.write([big]).catch((x: unknown) => x);
    expect(isCellarError(err, "E_NOSPACE")).toBe(true);
    expect(e.has("e", "big")).toBe(false);
    await expect(e.compact()).rejects.toMatchObject({ code: "E_NOSPACE" });
    io.failWrites = false;
    await e.write([put("k1", 5000)]);
    await e.write([big]);
    expect(text(e, "k1")).toContain("k1#5000#");
    await e.close();
    const r = await Engine.open({ dir, key: TEST_KEY });
    expect(r.recovery.damaged).toEqual([]);
    expect(text(r, "k1")).toContain("k1#5000#");
    expect(r.get("e", "big")!.value.length).toBe(2 * 1024 * 1024);
    await r.close();
  });

  it("a failed fdatasync stops all further writes with E_IO until the store is reopened", async () => {
    const dir = path.join(tmp, "eio");
    const io = faultyIO();
    const e = await Engine.open({ dir, key: TEST_KEY, io });
    await e.write([put("a", 1)]);
    io.failSyncs = true;
    await expect(e.write([put("a", 2)])).rejects.toMatchObject({ code: "E_IO" });
    io.failSyncs = false;
    await expect(e.write([put("a", 3)])).rejects.toMatchObject({ code: "E_IO" });
    expect(text(e, "a")).toContain("a#1#");
    await e.close();
    const r = await Engine.open({ dir, key: TEST_KEY });
    await r.write([put("a", 4)]);
    expect(text(r, "a")).toContain("a#4#");
    await r.close();
  });

  const mnt = path.join(tmp, "tmpfs");
  let mounted = false;
  try {
    fs.mkdirSync(mnt);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt], { stdio: "ignore" });
    mounted = true;
  } catch {
    mounted = false;
  }
  afterAll(() => {
    if (mounted) execFileSync("umount", ["-l", mnt]);
  });

  it.skipIf(!mounted)("on a real 3 MiB tmpfs: fills up with E_NOSPACE, reopens while full, resumes after space is freed", async () => {
    const dir = path.join(mnt, "store");
    const ballast = path.join(mnt, "other-app-file");
    fs.writeFileSync(ballast, randomBytes(512 * 1024)); // space some other program holds
    const e = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    const acked = new Map<string, number>();
    const fillUp = async (store: Engine, prefix: string) => {
      for (let i = 0; i < 10_000; i++) {
        try {
          await store.write([put(`${prefix}${i}`, i, 8 * 1024)]);
          acked.set(`${prefix}${i}`, i);
        } catch (x) {
          return x;
        }
      }
      return null;
    };
    expect(await fillUp(e, "f")).toMatchObject({ code: "E_NOSPACE" });
    expect(acked.size).toBeGreaterThan(50);
    await e.close();
    // still full: open works and every acknowledged record reads back
    const r = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    expect(r.recovery.damaged).toEqual([]);
    for (const [k, n] of acked) expect(r.get("e", k)!.value[0]).toBe(n & 0xff);
    expect(await fillUp(r, "g")).toMatchObject({ code: "E_NOSPACE" });
    // space comes back: writes resume, nothing acknowledged is lost
    fs.rmSync(ballast);
    await r.write([put("resumed", 1, 64 * 1024)]);
    await r.close();
    const r2 = await Engine.open({ dir, key: TEST_KEY });
    for (const [k, n] of acked) expect(r2.get("e", k)!.value[0]).toBe(n & 0xff);
    expect(r2.has("e", "resumed")).toBe(true);
    await r2.close();
  });
});

describe("lock", () => {
  it("a second open in the same process gets E_LOCKED naming this process", async () => {
    const dir = path.join(tmp, "lock1");
    const e = await Engine.open({ dir, key: TEST_KEY });
    const err = await Engine.open({ dir, key: TEST_KEY }).catch((x: unknown) => x);
    expect(isCellarError(err, "E_LOCKED")).toBe(true);
    expect((err as Error).message).toContain(String(process.pid));
    await e.close();
    const again = await Engine.open({ dir, key: TEST_KEY });
    await again.close();
  });

  it("an open in another process gets E_LOCKED naming the holder; a killed holder's lock is taken over", async () => {
    const dir = path.join(tmp, "lock2");
    const log = path.join(tmp, "lock2.log");
    const { child, exited } = startChild("crash-writer.ts", [dir, log, "3"]);
    await waitForLine(log, /^A \d+$/m);
    const err = await Engine.open({ dir, key: TEST_KEY }).catch((x: unknown) => x);
    expect(isCellarError(err, "E_LOCKED")).toBe(true);
    expect((err as { holder: { pid: number } }).holder.pid).toBe(child.pid);
    child.kill("SIGKILL");
    await exited;
    const e = await Engine.open({ dir, key: TEST_KEY });
    expect(e.count("e")).toBeGreaterThan(0);
    await e.close();
  });
});
