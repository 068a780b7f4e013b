/**
 * The background check of a segment (`verifyOnOpen: "background"`) runs after `Engine.open` returned, when
 * nobody awaits it (`engine.verified` is awaited by `close`, or by a caller who asks). A failure there (an I/O
 * error reading a block) must be reported like other problems found in the background, through `onProblem`,
 * and never surface as an unhandled promise rejection, which Node turns into the end of the app's process.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { Engine, type EngineOptions } from "../../src/runtime/storage/engine.js";
import { type CellarError, IoError } from "../../src/runtime/errors.js";
import { type FileIO, nodeFileIO } from "../../src/runtime/platform/io.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Real files; `onRead(position)` is called before each read of a segment file (it may throw). */
function segmentReads(onRead: (position: number) => void): FileIO {
  const io = nodeFileIO();
  const segmentFds = new Set<number>();
  return {
    ...io,
    open(file, flags) {
      const fd = io.open(file, flags);
      if (file.endsWith(".seg")) segmentFds.add(fd);
      return fd;
    },
    read(fd, into, position) {
      if (segmentFds.has(fd)) onRead(position);
      return io.read(fd, into, position);
    },
  };
}

/** Reads of a segment file throw EIO (as `nodeFileIO` reports it) once `failing.on` is set. */
function failingReads(failing: { on: boolean }): FileIO {
  return segmentReads(() => {
    if (failing.on) throw new IoError("read", "segment", "EIO");
  });
}

it("an I/O error in the background segment check is reported through onProblem, never as an unhandled rejection", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-scrub-"));
  dirs.push(dir);
  const opts: EngineOptions = { dir, encryption: "none", compaction: { auto: false } };
  const first = await Engine.open(opts);
  await first.write(Array.from({ length: 50 }, (_, i) => ({ op: "put" as const, entity: "task", key: `t${i}`, version: 1, value: new Uint8Array(2000).fill(i), terms: [] })));
  await first.compact();
  await first.close();

  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    const failing = { on: false };
    const e = await Engine.open({ ...opts, io: failingReads(failing), verifyOnOpen: "background" });
    const problems: CellarError[] = [];
    e.onProblem = (p) => problems.push(p);
    failing.on = true; // the disk fails after open returned, while the check runs on its own
    // Nobody awaits e.verified here: let the check run and fail, then give Node time to report a rejection.
    await new Promise((r) => setTimeout(r, 200));
    expect(unhandled).toEqual([]);
    expect(problems.map((p) => p.code)).toEqual(["E_IO"]);
    await expect(e.verified).resolves.toBeUndefined();
    failing.on = false;
    expect(e.get("task", "t1")).toBeDefined(); // the store goes on serving reads once the disk reads again
    await e.close();
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});

it("the background check does not read again a block a read has checked since open (issue 15), and reads each other block once", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-scrub-"));
  dirs.push(dir);
  const opts: EngineOptions = { dir, encryption: "none", compaction: { auto: false } };
  const first = await Engine.open(opts);
  await first.write(Array.from({ length: 200 }, (_, i) => ({ op: "put" as const, entity: "task", key: `t${String(i).padStart(3, "0")}`, version: 1, value: new Uint8Array(2000).fill(i), terms: [] })));
  await first.compact();
  await first.close();

  const reads = new Map<number, number>(); // segment offset → reads
  const counting = segmentReads((position) => reads.set(position, (reads.get(position) ?? 0) + 1));
  const e = await Engine.open({ ...opts, io: counting, verifyOnOpen: "background" });
  const before = new Map(reads);
  expect(e.get("task", "t150")).toBeDefined(); // its block read and checked now, before the check reaches it
  const readBlock = [...reads.keys()].find((k) => !before.has(k))!;
  await e.verified;
  expect(reads.get(readBlock)).toBe(1);
  const blocks = [...reads.entries()].filter(([k]) => !before.has(k));
  expect(blocks.length).toBeGreaterThan(3); // 400 kB of values: several blocks, each read once
  expect(blocks.every(([, n]) => n === 1)).toBe(true);
  await e.close();
});
