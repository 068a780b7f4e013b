/**
 * Metrics and spans from a real store in a temp dir, read by the real OpenTelemetry SDK (sdk-metrics'
 * in-memory exporter, sdk-trace-base's in-memory span exporter): names, units, attributes and values
 * (docs/OBSERVABILITY.md); the global providers; and a store with no SDK registered, whose repositories are
 * left unwrapped.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { metrics, trace } from "@opentelemetry/api";
import { DataPointType, type HistogramMetricData, type MetricData } from "@opentelemetry/sdk-metrics";
import {
  ATTR_DB_COLLECTION_NAME,
  ATTR_DB_NAMESPACE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_SYSTEM_NAME,
  ATTR_ERROR_TYPE,
  METRIC_DB_CLIENT_OPERATION_DURATION,
} from "@opentelemetry/semantic-conventions";
import { afterAll, describe, expect, it } from "vitest";
import { TaskEntity } from "../../src/generated/examples/tasks/v1/tasks_cellar.js";
import { openStore } from "../../src/runtime/index.js";
import type { Engine } from "../../src/runtime/storage/engine.js";
import { damageSegment } from "../helpers/files.js";
import { notesAt, step1to2 } from "../store/helpers/notes-versions.js";
import { memoryLogger, sdk } from "./helpers/sdk.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-otel-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(3);
const entities = { tasks: TaskEntity };
let n = 0;
const freshDir = () => path.join(tmp, `store${n++}`);

const engineOf = (s: unknown) => (s as { engine: Engine }).engine;
type Point = { attributes: Record<string, unknown>; value: unknown };
const points = (m: MetricData | undefined): Point[] => (m?.dataPoints ?? []) as Point[];
const histogram = (m: MetricData | undefined, match: Record<string, unknown>) =>
  (m as HistogramMetricData | undefined)?.dataPoints.find((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v))?.value;

describe("metrics from a real store (sdk-metrics)", () => {
  it("records db.client.operation.duration per operation and entity, with error.type on failure", async () => {
    const otel = sdk();
    const dir = freshDir();
    const store = await openStore(entities, { dir, key, telemetry: { meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider } });
    for (let i = 0; i < 12; i++) await store.tasks.put({ id: `t${i}`, title: "a task" });
    for (let i = 0; i < 5; i++) await store.tasks.get(`t${i}`);
    await store.tasks.query({ status: 0 });
    await store.batch((tx) => tx.tasks.delete("t0"));
    await expect(store.tasks.put({ id: "", title: "no id" })).rejects.toMatchObject({ code: "E_VALIDATION" });
    const m = await otel.collect();
    const d = m.get(METRIC_DB_CLIENT_OPERATION_DURATION)!;
    expect(d.descriptor.unit).toBe("s");
    expect(d.dataPointType).toBe(DataPointType.HISTOGRAM);
    const base = { [ATTR_DB_SYSTEM_NAME]: "cellar", [ATTR_DB_NAMESPACE]: path.basename(dir) };
    const put = histogram(d, { ...base, [ATTR_DB_OPERATION_NAME]: "put", [ATTR_DB_COLLECTION_NAME]: "tasks" })!;
    expect(put.count).toBe(12);
    expect(put.buckets.boundaries).toEqual([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]);
    expect(put.sum).toBeGreaterThan(0);
    expect(put.max!).toBeLessThan(5); // seconds, not milliseconds
    expect(histogram(d, { [ATTR_DB_OPERATION_NAME]: "get" })!.count).toBe(5);
    expect(histogram(d, { [ATTR_DB_OPERATION_NAME]: "query", [ATTR_DB_COLLECTION_NAME]: "tasks" })!.count).toBe(1);
    const batch = points(d).find((p) => p.attributes[ATTR_DB_OPERATION_NAME] === "batch")!;
    expect(batch.attributes).toEqual({ ...base, [ATTR_DB_OPERATION_NAME]: "batch" }); // a batch spans entities: no db.collection.name
    const failed = points(d).find((p) => p.attributes[ATTR_ERROR_TYPE] !== undefined)!;
    expect(failed.attributes).toEqual({ ...base, [ATTR_DB_OPERATION_NAME]: "put", [ATTR_DB_COLLECTION_NAME]: "tasks", [ATTR_ERROR_TYPE]: "E_VALIDATION" });
    // Every point carries the required attribute.
    for (const p of points(d)) expect(p.attributes[ATTR_DB_SYSTEM_NAME]).toBe("cellar");
    await store.close();
    await otel.shutdown();
  });

  it("records Cellar's own: commit groups, fsync, compactions, bytes per entity, cache lookups, quota, backup age", async () => {
    const otel = sdk();
    const dir = freshDir();
    const store = await openStore(entities, {
      dir,
      key,
      quota: { maxBytes: 5_000_000 },
      backups: { every: "1d", keep: { last: 3 } },
      telemetry: { meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider, namespace: "tasks-db" },
    });
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.tasks.put({ id: `g${i}`, title: "grouped" }))); // one group commit
    for (let i = 0; i < 5; i++) await store.tasks.put({ id: `g${i}`, title: "overwritten" });
    await store.compact();
    await store.tasks.get("g1");
    await store.tasks.get("g1");
    await store.tasks.put({ id: "after", title: "in the journal" });
    const m = await otel.collect();
    const base = { [ATTR_DB_SYSTEM_NAME]: "cellar", [ATTR_DB_NAMESPACE]: "tasks-db" };
    const group = m.get("cellar.commit.group.size")!;
    expect(group.descriptor.unit).toBe("{write}");
    const g = histogram(group, base)!;
    expect(g.max).toBe(10);
    expect(g.sum).toBeGreaterThanOrEqual(16); // and the store's own writes at open
    const fsync = histogram(m.get("cellar.fsync.duration"), base)!;
    expect(m.get("cellar.fsync.duration")!.descriptor.unit).toBe("s");
    expect(fsync.count).toBeGreaterThanOrEqual(7); // one per commit at least
    const compactions = points(m.get("cellar.compactions")).find((p) => p.attributes["cellar.compaction.kind"] === "compaction")!;
    expect(compactions.value).toBe(1);
    expect(histogram(m.get("cellar.compaction.duration"), { "cellar.compaction.kind": "compaction" })!.count).toBe(1);
    const size = points(m.get("cellar.entity.size"));
    expect(m.get("cellar.entity.size")!.descriptor.unit).toBe("By");
    const live = size.find((p) => p.attributes["db.collection.name"] === "tasks" && p.attributes["cellar.bytes.state"] === "live")!;
    expect(live.value).toBe(store.stats().entities.tasks!.liveBytes);
    expect(size.every((p) => !String(p.attributes["db.collection.name"]).startsWith("~"))).toBe(true);
    const cache = points(m.get("cellar.cache.lookups"));
    const hits = cache.find((p) => p.attributes["cellar.cache.result"] === "hit")!.value as number;
    const misses = cache.find((p) => p.attributes["cellar.cache.result"] === "miss")!.value as number;
    expect(hits).toBeGreaterThan(0);
    expect(hits + misses).toBe(engineOf(store).cache.hits + engineOf(store).cache.misses);
    expect(points(m.get("cellar.quota.usage"))[0]!.value).toBe(store.stats().fileBytes);
    expect(points(m.get("cellar.quota.limit"))[0]!.value).toBe(5_000_000);
    await store.close();
    await otel.shutdown();
  });

  it("reports the newest automatic backup's age, found from the backup files at the next open", async () => {
    const dir = freshDir();
    let store = await openStore(entities, { dir, key, backups: { every: "1d", keep: { last: 3 } } });
    await store.tasks.put({ id: "x", title: "x" });
    await new Promise((r) => setTimeout(r, 300));
    await store.close(); // waits for the automatic backup at open
    const backups = fs.readdirSync(`${dir}.backups`);
    expect(backups.length).toBe(1);
    const otel = sdk();
    store = await openStore(entities, { dir, key, backups: { every: "1d", keep: { last: 3 } }, telemetry: { meterProvider: otel.meterProvider } });
    const age = points((await otel.collect()).get("cellar.backup.age"))[0]!;
    expect(age.attributes).toEqual({ [ATTR_DB_SYSTEM_NAME]: "cellar", [ATTR_DB_NAMESPACE]: path.basename(dir) });
    expect(age.value as number).toBeGreaterThan(0.2);
    expect(age.value as number).toBeLessThan(60);
    await store.close();
    // After close its observers are gone: the age is not observed again (the SDK repeats the last value).
    await new Promise((r) => setTimeout(r, 100));
    expect(points((await otel.collect()).get("cellar.backup.age"))[0]!.value).toBe(age.value);
    await otel.shutdown();
  });

  it("counts damage found at open and logs the recovery", async () => {
    const dir = freshDir();
    let store = await openStore(entities, { dir, key });
    for (let i = 0; i < 30; i++) await store.tasks.put({ id: `d${i}`, title: "to be damaged" });
    await store.compact();
    await store.close();
    damageSegment(dir);
    const otel = sdk();
    const log = memoryLogger();
    store = await openStore(entities, { dir, key, verifyOnOpen: true, logger: log.logger, telemetry: { meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider } });
    await new Promise((r) => setImmediate(r)); // the corruption event comes on the next turn
    await engineOf(store).verified;
    const c = points((await otel.collect()).get("cellar.corruptions"));
    expect(c.find((p) => p.attributes["cellar.corruption.phase"] === "open")!.value).toBe(store.recoveryReport.damaged.length);
    const recovery = log.events().find((e) => e.event === "recovery")!;
    expect(recovery.level).toBe("error");
    expect((recovery.damaged as { lostRecords: number }[])[0]!.lostRecords).toBeGreaterThan(0);
    await store.close();
    await otel.shutdown();
  });
});

describe("spans from a real store (sdk-trace-base)", () => {
  it("open, migration (with its pre-migration backup), compaction and backup, with attributes and errors", async () => {
    const dir = freshDir();
    let store = await openStore({ notes: notesAt(1) }, { dir, key });
    for (let i = 0; i < 5; i++) await store.notes.put({ id: `n${i}`, text: "t", tagsCsv: "a,b", secret: "s" });
    await store.close();
    const otel = sdk();
    const telemetry = { meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider };
    store = await openStore({ notes: notesAt(2) }, { dir, key, migrations: [step1to2], telemetry });
    await store.compact();
    await store.backup({ to: path.join(tmp, "manual.backup") });
    const failure = await store.backup({ to: path.join(tmp, "manual.backup", "x.backup") }).catch((e: { code: string }) => e.code);
    await store.close();
    const spans = otel.spans();
    const byName = (n: string) => spans.filter((s) => s.name === n);
    const open = byName("cellar.open")[0]!;
    expect(open.attributes).toMatchObject({ "db.system.name": "cellar", "db.namespace": path.basename(dir), "cellar.store.role": "writer", "cellar.store.created": false });
    const migration = byName("cellar.migration")[0]!;
    expect(migration.attributes).toMatchObject({ "cellar.migration.entities": ["notes"], "cellar.migration.records": 5 });
    expect(migration.status.code).toBe(0);
    const kinds = byName("cellar.backup").map((s) => s.attributes["cellar.backup.kind"]);
    expect(kinds).toEqual(["pre-migration", "manual", "manual"]);
    expect(failure).toMatch(/^E_/); // a file where a directory should be
    const failed = byName("cellar.backup")[2]!;
    expect(failed.status.code).toBe(2); // ERROR
    expect(failed.attributes["error.type"]).toBe(failure);
    expect(failed.events[0]!.name).toBe("exception");
    const kindsC = byName("cellar.compaction").map((s) => s.attributes["cellar.compaction.kind"]);
    expect(kindsC).toContain("migration");
    expect(kindsC).toContain("compaction");
    const c = byName("cellar.compaction").find((s) => s.attributes["cellar.compaction.kind"] === "compaction")!;
    expect(c.attributes["cellar.compaction.bytes_after"]).toBeGreaterThan(0);
    await otel.shutdown();
  });

  it("a failed open ends its span with the error", async () => {
    const otel = sdk();
    const dir = freshDir();
    await (await openStore(entities, { dir, key })).close();
    await expect(openStore(entities, { dir, key: new Uint8Array(32).fill(4), telemetry: { tracerProvider: otel.tracerProvider } })).rejects.toMatchObject({ code: "E_KEY" });
    const open = otel.spans().find((s) => s.name === "cellar.open")!;
    expect(open.status.code).toBe(2);
    expect(open.attributes["error.type"]).toBe("E_KEY");
    await otel.shutdown();
  });
});

describe("global providers and no SDK", () => {
  it("uses the globally registered providers", async () => {
    const otel = sdk();
    metrics.setGlobalMeterProvider(otel.meterProvider);
    trace.setGlobalTracerProvider(otel.tracerProvider);
    try {
      const store = await openStore(entities, { dir: freshDir(), key });
      await store.tasks.put({ id: "g", title: "global" });
      await store.close();
      expect(histogram((await otel.collect()).get("db.client.operation.duration"), { "db.operation.name": "put" })!.count).toBe(1);
      expect(otel.spans().map((s) => s.name)).toContain("cellar.open");
    } finally {
      metrics.disable();
      trace.disable();
      await otel.shutdown();
    }
  });

  it("without a registered SDK nothing breaks and nothing is wrapped", async () => {
    const log = memoryLogger();
    const store = await openStore(entities, { dir: freshDir(), key, logger: log.logger });
    expect(Object.hasOwn(store.tasks, "put")).toBe(false); // the class's own method: no timing per call
    await store.tasks.put({ id: "a", title: "no sdk" });
    expect((await store.tasks.get("a"))?.title).toBe("no sdk");
    await store.compact();
    await store.close();
    expect(log.events().map((e) => e.event)).toEqual(["open", "compaction", "close"]);
  });

  it("`telemetry: false` turns metrics off even with a provider registered", async () => {
    const otel = sdk();
    metrics.setGlobalMeterProvider(otel.meterProvider);
    try {
      const store = await openStore(entities, { dir: freshDir(), key, telemetry: false });
      expect(Object.hasOwn(store.tasks, "put")).toBe(false);
      await store.tasks.put({ id: "a", title: "off" });
      await store.close();
      expect((await otel.collect()).size).toBe(0);
    } finally {
      metrics.disable();
      await otel.shutdown();
    }
  });

  it("refuses a logger without the level methods", async () => {
    await expect(openStore(entities, { dir: freshDir(), key, logger: { info() {} } as never })).rejects.toMatchObject({ code: "E_USAGE" });
  });
});
