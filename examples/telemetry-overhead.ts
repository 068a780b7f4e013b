/**
 * What telemetry costs a put and a get: the same loops on a store opened with `telemetry: false` (as without
 * `@opentelemetry/api`), with the api but no SDK registered (the default), and with the SDK's MeterProvider
 * and a reader; rounds interleaved, medians reported. Relaxed durability, so that fsync does not hide the
 * per-operation cost. `CELLAR_RUNTIME=/path/to/src/runtime/index.ts` runs it against another checkout
 * (a `before` without telemetry code: its modes are all the same code).
 *
 *   npx tsx examples/telemetry-overhead.ts [puts=20000] [rounds=5]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { metrics } from "@opentelemetry/api";
import { InMemoryMetricExporter, AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";

const runtime = process.env.CELLAR_RUNTIME ?? path.resolve(import.meta.dirname, "../src/runtime/index.ts");
const { openStore } = (await import(runtime)) as typeof import("../src/runtime/index.js");
const { TaskEntity } = await import(path.join(path.dirname(runtime), "../generated/examples/tasks/v1/tasks_cellar.ts"));

const N = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-overhead-"));
const key = new Uint8Array(32).fill(5);
const meterProvider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 3_600_000 })] });

type Mode = "off" | "api, no SDK" | "SDK";
/** µs of CPU (user + system) since `c`. */
const cpu = (c: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(c);
  return d.user + d.system;
};

async function round(mode: Mode, r: number): Promise<{ put: number; get: number; putCpu: number; getCpu: number }> {
  if (mode === "SDK") metrics.setGlobalMeterProvider(meterProvider);
  const store = await openStore({ tasks: TaskEntity }, { dir: path.join(tmp, `${mode}-${r}`), key, durability: "relaxed", ...(mode === "off" ? { telemetry: false } : {}) } as never) as any;
  metrics.disable();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await store.tasks.put({ id: `t${i}`, title: "a task title" });
  const t1 = performance.now();
  const putCpu = cpu(c0);
  const c1 = process.cpuUsage();
  for (let i = 0; i < N; i++) await store.tasks.get(`t${i}`);
  const t2 = performance.now();
  const getCpu = cpu(c1);
  await store.close();
  return { put: ((t1 - t0) * 1e3) / N, get: ((t2 - t1) * 1e3) / N, putCpu: putCpu / N, getCpu: getCpu / N };
}

const modes: Mode[] = ["off", "api, no SDK", "SDK"];
const results = new Map<Mode, Record<"put" | "get" | "putCpu" | "getCpu", number[]>>(modes.map((m) => [m, { put: [], get: [], putCpu: [], getCpu: [] }]));
await round("off", -1); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  for (const m of r % 2 ? [...modes].reverse() : modes) {
    const x = await round(m, r);
    for (const k of ["put", "get", "putCpu", "getCpu"] as const) results.get(m)![k].push(x[k]);
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
console.log(`runtime: ${path.relative(process.cwd(), runtime)}; ${N} puts then ${N} gets per round, ${ROUNDS} rounds, medians (µs per op: wall, CPU)`);
const f = (a: number[]) => median(a).toFixed(1).padStart(6);
for (const m of modes) {
  const x = results.get(m)!;
  console.log(`${m.padEnd(12)} put ${f(x.put)} wall ${f(x.putCpu)} cpu   get ${f(x.get)} wall ${f(x.getCpu)} cpu`);
}
fs.rmSync(tmp, { recursive: true, force: true });
await meterProvider.shutdown();
