/**
 * A real run's telemetry as text (docs/OBSERVABILITY.md): opens a store in a temp dir with the OpenTelemetry
 * SDK's in-memory metric exporter and span exporter and a logger that prints, does some work (puts, gets, a
 * query, a batch, a refused write, a compaction, backups), then prints every metric, span and log record.
 *
 *   npx tsx examples/telemetry-dump.ts
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { AggregationTemporality, DataPointType, InMemoryMetricExporter, MeterProvider, type MetricData, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { TaskEntity } from "../src/generated/examples/tasks/v1/tasks_cellar.js";
import { openStore } from "../src/runtime/index.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-dump-"));
const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
const meterProvider = new MeterProvider({ readers: [reader] });
const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
const logs: string[] = [];
const line = (level: string) => (fields: unknown, msg?: unknown) => void logs.push(`${level.padEnd(5)} ${String(msg)} ${JSON.stringify(fields)}`);
const logger = { debug: line("debug"), info: line("info"), warn: line("warn"), error: line("error") };

const store = await openStore(
  { tasks: TaskEntity },
  { dir: path.join(tmp, "tasks-store"), key: new Uint8Array(32).fill(7), quota: { maxBytes: 64 * 1024 * 1024 }, backups: { every: "1d", keep: { last: 3 } }, logger, telemetry: { meterProvider, tracerProvider } },
);
await Promise.all(Array.from({ length: 50 }, (_, i) => store.tasks.put({ id: `t${i}`, title: `task ${i}`, tags: i % 2 ? ["home"] : ["work"] })));
for (let i = 0; i < 200; i++) await store.tasks.put({ id: `t${i % 100}`, title: `task ${i}`, tags: ["work"] });
for (let i = 0; i < 100; i++) await store.tasks.get(`t${i % 60}`);
await store.tasks.query({ tags: "work" }, { limit: 10 });
await store.batch((tx) => {
  tx.tasks.delete("t1");
  tx.tasks.put({ id: "t2", title: "in a batch" });
});
await store.tasks.put({ id: "", title: "no id" }).catch(() => {}); // E_VALIDATION
await store.compact();
await store.backup({ to: path.join(tmp, "manual.cellarbackup") });
await new Promise((r) => setTimeout(r, 200)); // the automatic backup at open
await reader.forceFlush();

const fmt = (v: unknown) => (typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(3) : String(v));
function printMetric(m: MetricData): void {
  console.log(`${m.descriptor.name} (${m.descriptor.unit}) ${DataPointType[m.dataPointType].toLowerCase()}: ${m.descriptor.description}`);
  for (const p of m.dataPoints) {
    const attrs = Object.entries(p.attributes).filter(([k]) => k !== "db.system.name" && k !== "db.namespace").map(([k, v]) => `${k}=${String(v)}`).join(" ");
    const v = p.value as number | { count: number; sum: number; min?: number; max?: number; buckets: { boundaries: number[]; counts: number[] } };
    const value = typeof v === "number" ? fmt(v) : `count=${v.count} sum=${fmt(v.sum)} min=${fmt(v.min)} max=${fmt(v.max)} buckets=[${v.buckets.counts.join(",")}]`;
    console.log(`  {${attrs}} ${value}`);
  }
}
const last = exporter.getMetrics().at(-1)!;
console.log(`# metrics (every point also has db.system.name=cellar db.namespace=tasks-store)`);
for (const sm of last.scopeMetrics) for (const m of sm.metrics) printMetric(m);
console.log(`\n# spans`);
for (const s of spans.getFinishedSpans()) {
  const attrs = Object.entries(s.attributes).filter(([k]) => k !== "db.system.name" && k !== "db.namespace").map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ");
  console.log(`${s.name} ${(s.duration[0] * 1e3 + s.duration[1] / 1e6).toFixed(1)} ms status=${s.status.code} ${attrs}`);
}
await store.close();
console.log(`\n# log records`);
for (const l of logs) console.log(l.replace(/"ms":\d+/g, '"ms":…'));
fs.rmSync(tmp, { recursive: true, force: true });
await meterProvider.shutdown();
