/**
 * What the logger receives (docs/OBSERVABILITY.md, "The logger"): a migration's records, damage found after
 * open, a background failure, and a follower's open and promotion when the writer process dies (real
 * processes); a logger that throws does not break the store.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TaskEntity } from "../../src/generated/examples/tasks/v1/tasks_cellar.js";
import { openStore } from "../../src/runtime/index.js";
import { damageSegment } from "../helpers/files.js";
import { notesAt, step1to2 } from "../store/helpers/notes-versions.js";
import { memoryLogger } from "./helpers/sdk.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-logger-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(6);

describe("the logger", () => {
  it("logs a migration's start and end with its entities, versions, records and backup file", async () => {
    const dir = path.join(tmp, "migrate");
    let store = await openStore({ notes: notesAt(1) }, { dir, key });
    for (let i = 0; i < 4; i++) await store.notes.put({ id: `n${i}`, text: "t", tagsCsv: "a", secret: "s" });
    await store.close();
    const log = memoryLogger();
    store = await openStore({ notes: notesAt(2) }, { dir, key, migrations: [step1to2], logger: log.logger });
    await store.close();
    const m = log.events().filter((e) => e.event === "migration");
    expect(m.map((e) => e.phase)).toEqual(["start", "done"]);
    expect(m[1]!.entities).toEqual([{ entity: "notes", from: 1, to: 2, records: 4 }]);
    expect(m[1]!.backup).toMatch(/^migrate-pre-migration-.*\.cellarbackup$/);
    // The pre-migration backup and the migrating rewrite (a compaction) run inside the migration, inside the open.
    expect(log.events().map((e) => `${e.event}${e.kind ? `:${e.kind}` : ""}`)).toEqual(["migration", "backup:pre-migration", "compaction:migration", "migration", "open", "close"]);
  });

  it("logs damage found by a read after open, with Cellar's file name and no key", async () => {
    const dir = path.join(tmp, "damage");
    let store = await openStore({ tasks: TaskEntity }, { dir, key, compaction: { auto: false } });
    for (let i = 0; i < 50; i++) await store.tasks.put({ id: `k${i}`, title: "x" });
    await store.compact();
    await store.close();
    damageSegment(dir);
    const log = memoryLogger();
    store = await openStore({ tasks: TaskEntity }, { dir, key, verifyOnOpen: false, compaction: { auto: false }, logger: log.logger });
    for (let i = 0; i < 50; i++) await store.tasks.get(`k${i}`).catch(() => null);
    await store.close();
    const c = log.events().find((e) => e.event === "corruption")!;
    expect(c).toMatchObject({ level: "error", code: "E_CORRUPT", store: "damage" });
    expect(String(c.file)).toMatch(/\.seg$/);
    expect(JSON.stringify(c)).not.toMatch(/"k\d+"/);
  });

  it("a logger that throws does not break the store", async () => {
    const boom = () => {
      throw new Error("logger down");
    };
    const store = await openStore({ tasks: TaskEntity }, { dir: path.join(tmp, "boom"), key, logger: { debug: boom, info: boom, warn: boom, error: boom } });
    await store.tasks.put({ id: "a", title: "still works" });
    await store.compact();
    await store.close();
  });

  it("a follower logs its open as follower, then its promotion when the writer process dies", async () => {
    const dir = path.join(tmp, "shared");
    const child = spawn(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "helpers", "writer-child.ts"), dir], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
        child.on("exit", (code) => reject(new Error(`writer exited ${code}`)));
      });
      const log = memoryLogger();
      const store = await openStore({ tasks: TaskEntity }, { dir, key, logger: log.logger });
      expect(log.events()[0]).toMatchObject({ event: "open", role: "follower" });
      const promoted = new Promise<void>((r) => store.on("role", () => r()));
      child.kill("SIGKILL");
      await promoted;
      expect(log.events().find((e) => e.event === "promotion")).toMatchObject({ level: "info", role: "writer" });
      expect((await store.tasks.get("w"))?.title).toBe("from the writer");
      await store.close();
    } finally {
      child.kill("SIGKILL");
    }
  }, 60_000);
});
