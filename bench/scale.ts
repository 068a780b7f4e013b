/**
 * Scale curves (issue 15): the same measures at several store sizes (10k / 100k / 1M records by default),
 * in one run, for Cellar, better-sqlite3 FULL and lmdb. `npm run bench -- --scale [--tiers 10000,100000]
 * [--only cellar,sqlite-full] [--json s.json] [--out docs/BENCHMARKS.md]`; `--scale --quick`: tiny tiers,
 * for the smoke test; `--scale --render s.json`: rewrite the section and chart from a saved run.
 *
 * Per system and size, two fresh child processes (bench/scale-child.ts): `load` (bulk load, compaction,
 * put latency alone and during a compaction, bytes on disk), then, after the store's files are evicted
 * from the OS page cache, `read` (cold open, cold and warm random gets, iterate, memory). Writes the
 * section between SCALE_BEGIN and SCALE_END of the report (appended once at the end) and the chart
 * `scale.svg` next to it (plain SVG written here: log-scale x and y, no dependency).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runScript } from "./child-protocol.js";
import { formatBytes, sig3 } from "./format.js";
import { makeRunDir, removeDir } from "./fsutil.js";
import { codeRevision, machineInfo, type MachineInfo } from "./machine.js";
import { ensurePeers } from "./peers.js";
import type { LoadSample, Loop, ReadSample, ScaleRequest } from "./scale-child.js";
import { findSystem } from "./systems.js";

export const SCALE_BEGIN = "<!-- scale-curves:begin (written by `npm run bench -- --scale`; edit bench/scale.ts, not this) -->";
export const SCALE_END = "<!-- scale-curves:end -->";

export const SCALE_SYSTEMS = ["cellar", "sqlite-full", "lmdb"];
export const SCALE_TIERS = [10_000, 100_000, 1_000_000];
export const QUICK_TIERS = [1_000, 4_000];

/**
 * Cellar's cache budgets with `openStore`'s defaults (bench/adapters/cellar.ts passes none): 64 MiB for
 * decoded blocks (`blockCacheBytes`) and 64 MiB for decoded records (`cacheBytes`), one shared LRU.
 */
export const CELLAR_CACHE_BUDGET = 128 * 2 ** 20;

export interface ScaleOptions {
  tiers: number[];
  systems: string[];
  quick: boolean;
  skipCompaction: boolean;
  out: string;
  json: string | undefined;
}

export interface ScaleRow {
  system: string;
  records: number;
  load?: LoadSample;
  read?: ReadSample;
  /** Bytes of the store's files still in the page cache when the `read` child started (after eviction). */
  cachedBefore?: number;
  error?: string;
}

export interface ScaleResults {
  startedAt: string;
  durationSeconds: number;
  revision: string;
  machine: MachineInfo;
  /** 1-minute load average at the start and at the end of the run. */
  load: [number, number];
  tiers: number[];
  systems: { id: string; label: string }[];
  /** How the `read` step's "cold" was made (eviction worked, or what it was instead). */
  cold: string;
  rows: ScaleRow[];
  /** Set when merged from several runs (`--render a.json,b.json`): when each ran, for which systems. */
  parts?: { startedAt: string; durationSeconds: number; systems: string[]; load: [number, number]; revision: string }[];
}

/** One result from several runs (e.g. Cellar, then the peers once they were installed): rows and systems in order. */
export function mergeScaleResults(list: readonly ScaleResults[]): ScaleResults {
  const first = list[0];
  if (!first) throw new Error("nothing to merge");
  if (list.length === 1) return first;
  const tiers = [...new Set(list.flatMap((r) => r.tiers))].sort((a, b) => a - b);
  const systems = list.flatMap((r) => r.systems).filter((s, i, all) => all.findIndex((x) => x.id === s.id) === i);
  const rows = tiers.flatMap((t) => systems.flatMap((s) => list.flatMap((r) => r.rows.filter((x) => x.records === t && x.system === s.id))));
  return {
    ...first,
    durationSeconds: list.reduce((a, r) => a + r.durationSeconds, 0),
    load: [first.load[0], list[list.length - 1]!.load[1]],
    tiers,
    systems,
    rows,
    parts: list.map((r) => ({ startedAt: r.startedAt, durationSeconds: r.durationSeconds, systems: r.systems.map((s) => s.id), load: r.load, revision: r.revision })),
  };
}

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "scale-child.ts");
/**
 * How long one child may run. The 1M size's load step took > 15 min (the other children's limit) on a
 * 2-core machine at load 20–30, where it got ~8 % of a core: 3 h, so only a hung child is stopped.
 */
const SCALE_CHILD_TIMEOUT_MS = 3 * 60 * 60_000;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/**
 * Writes back and evicts every file of `dir` from the OS page cache: GNU dd's `oflag=nocache` with
 * `conv=fdatasync` and `count=0` syncs the file, then calls posix_fadvise(POSIX_FADV_DONTNEED) on all of
 * it (what Node cannot call), touching no byte. Returns the bytes still cached after it (util-linux
 * `fincore`), or undefined if either tool is missing.
 */
export function evictFromPageCache(dir: string): number | undefined {
  const files = filesUnder(dir);
  for (const f of files) {
    const r = spawnSync("dd", [`of=${f}`, "oflag=nocache", "conv=notrunc,fdatasync", "count=0", "status=none"]);
    if (r.status !== 0) return undefined;
  }
  if (files.length === 0) return 0;
  const r = spawnSync("fincore", ["--bytes", "--noheadings", "--output", "RES", ...files], { encoding: "utf8" });
  if (r.status !== 0) return undefined;
  return r.stdout
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isFinite(n))
    .reduce((a, b) => a + b, 0);
}

export async function runScale(opts: ScaleOptions, log: (line: string) => void): Promise<ScaleResults> {
  const specs = opts.systems.map(findSystem);
  if (specs.some((s) => s.kind === "peer")) ensurePeers(log);
  const started = new Date();
  const runDir = makeRunDir();
  const results: ScaleResults = {
    startedAt: started.toISOString(),
    durationSeconds: 0,
    revision: codeRevision(),
    machine: machineInfo(runDir),
    load: [loadavg()[0] ?? Number.NaN, Number.NaN],
    tiers: opts.tiers,
    systems: specs.map((s) => ({ id: s.id, label: s.label })),
    cold: "",
    rows: [],
  };
  const small = opts.quick;
  const base = { puts: small ? 40 : 300, gets: small ? 500 : 20_000, budgetMs: small ? 1_000 : 5_000 };
  let evicted = true;
  try {
    for (const records of opts.tiers) {
      for (const spec of specs) {
        const row: ScaleRow = { system: spec.id, records };
        results.rows.push(row);
        const dir = join(runDir, `${spec.id}-${records}`);
        const req = (mode: ScaleRequest["mode"]): ScaleRequest => ({ mode, system: spec.id, dir, records, ...base, ...(opts.skipCompaction ? { skipCompaction: true } : {}) });
        try {
          log(`scale: ${spec.label}, ${records.toLocaleString("en-US")} records: load …`);
          row.load = await runScript<LoadSample>(SCRIPT, req("load"), `${spec.id} load ${records}`, SCALE_CHILD_TIMEOUT_MS);
          const cached = evictFromPageCache(dir);
          if (cached === undefined) evicted = false;
          else row.cachedBefore = cached;
          log(`scale: ${spec.label}, ${records.toLocaleString("en-US")} records: read (${cached === undefined ? "page cache not evicted" : `${formatBytes(cached)} still cached`}) …`);
          row.read = await runScript<ReadSample>(SCRIPT, req("read"), `${spec.id} read ${records}`, SCALE_CHILD_TIMEOUT_MS);
          log(`  ${describeRow(row)}`);
          // Saved after every size, so a run stopped before its 1M size keeps what it measured.
          if (opts.json) writeFileSync(opts.json, JSON.stringify({ ...results, durationSeconds: (Date.now() - started.getTime()) / 1000 }, null, 2) + "\n");
        } catch (e) {
          row.error = e instanceof Error ? e.message : String(e);
          log(`  error: ${row.error}`);
        } finally {
          removeDir(dir);
        }
      }
    }
  } finally {
    removeDir(runDir);
  }
  results.cold = evicted
    ? "the store's files written back and evicted from the OS page cache (posix_fadvise DONTNEED through GNU `dd oflag=nocache conv=fdatasync count=0`; `fincore` checked what stayed) before a fresh process opens it; the Node binary, the libraries and the rest of the system stay cached"
    : "`dd`/`fincore` unavailable: the store's files may still be in the OS page cache (a fresh process, not a cold disk)";
  results.load[1] = loadavg()[0] ?? Number.NaN;
  results.durationSeconds = (Date.now() - started.getTime()) / 1000;
  return results;
}

function describeRow(r: ScaleRow): string {
  const l = r.load;
  const d = r.read;
  if (!l || !d) return "–";
  return [
    `bulk ${sig3(l.bulkRps)} rec/s`,
    `put p50/p99 ${sig3(l.put1P50)}/${sig3(l.put1P99)} ms`,
    `compact ${sig3(l.compactMs)} ms`,
    l.duringP99 === undefined ? "" : `put p99 during compaction ${sig3(l.duringP99)} ms (alone ${sig3(l.pacedP99)})`,
    `open ${sig3(d.openMs)} ms`,
    `cold gets ${sig3(d.coldGetsPerS)}/s`,
    `warm gets ${sig3(d.warmGetsPerS)}/s`,
    `RSS open/read ${mb(d.rssOpen - d.rssBase)}/${mb(Math.max(d.rssRead, d.rssWarm) - d.rssBase)} MB`,
    `disk ${formatBytes(l.diskBytes)}`,
  ]
    .filter(Boolean)
    .join(", ");
}

// ---------------------------------------------------------------------------------------------------
// Report

const mb = (bytes: number): string => sig3(bytes / 2 ** 20);
const n = (x: number): string => x.toLocaleString("en-US");
const tierLabel = (x: number): string => (x >= 1e6 ? `${x / 1e6}M` : x >= 1e3 ? `${x / 1e3}k` : String(x));

/** One measure of the tables: a value per row (undefined: not measured / not applicable). */
interface Measure {
  label: string;
  unit: string;
  value(r: ScaleRow): number | undefined;
  /** Plot it in the chart (log y), with this panel title. */
  chart?: string;
}

const loopCell = (l: Loop | undefined): number | undefined => l?.max;
const storeRss = (d: ReadSample | undefined, which: "rssOpen" | "rssRead" | "rssWarm"): number | undefined =>
  d === undefined ? undefined : (d[which] - d.rssBase) / 2 ** 20;

export const MEASURES: readonly Measure[] = [
  { label: "bulk load", unit: "records/s", value: (r) => r.load?.bulkRps, chart: "bulk load (records/s)" },
  { label: "bulk load, per CPU-second of the process", unit: "records/s", value: (r) => (r.load?.bulkCpuMs ? r.records / (r.load.bulkCpuMs / 1000) : undefined) },
  { label: "one durable put, p50", unit: "ms", value: (r) => r.load?.put1P50 },
  { label: "one durable put, p99", unit: "ms", value: (r) => r.load?.put1P99, chart: "one durable put, p99 (ms)" },
  { label: "paced puts (every 2 ms), p99", unit: "ms", value: (r) => r.load?.pacedP99 },
  { label: "…the same from when each was due, p99", unit: "ms", value: (r) => r.load?.pacedResponseP99 },
  { label: "paced puts during a compaction, p99", unit: "ms", value: (r) => r.load?.duringP99, chart: "put p99 during a compaction (ms)" },
  { label: "…during a compaction, from when each was due, p99", unit: "ms", value: (r) => r.load?.duringResponseP99 },
  { label: "compaction after bulk load", unit: "ms", value: (r) => r.load?.compactMs, chart: "compaction (ms)" },
  { label: "compaction after bulk load, CPU time", unit: "ms", value: (r) => r.load?.compactCpuMs },
  { label: "cold open → first record", unit: "ms", value: (r) => r.read?.openMs, chart: "cold open → first record (ms)" },
  { label: "cold open → first record, CPU time", unit: "ms", value: (r) => r.read?.openCpuMs },
  { label: "cold random get", unit: "gets/s", value: (r) => r.read?.coldGetsPerS, chart: "cold random get (gets/s)" },
  { label: "warm random get", unit: "gets/s", value: (r) => r.read?.warmGetsPerS, chart: "warm random get (gets/s)" },
  { label: "iterate every record (read + decode)", unit: "ms", value: (r) => r.read?.readAllMs, chart: "iterate every record (ms)" },
  { label: "iterate every record, CPU time", unit: "ms", value: (r) => r.read?.readAllCpuMs },
  { label: "resident memory after open (growth over the process before open)", unit: "MiB", value: (r) => storeRss(r.read, "rssOpen"), chart: "RSS growth after open (MiB)" },
  { label: "resident memory after reading everything", unit: "MiB", value: (r) => storeRss(r.read, "rssRead") },
  { label: "resident memory after the warm gets", unit: "MiB", value: (r) => storeRss(r.read, "rssWarm"), chart: "RSS growth after reading all (MiB)" },
  { label: "bytes on disk", unit: "MB", value: (r) => (r.load ? r.load.diskBytes / 1e6 : undefined), chart: "bytes on disk (MB)" },
];

const LOOPS: readonly { label: string; get(r: ScaleRow): Loop | undefined }[] = [
  { label: "bulk load", get: (r) => r.load?.bulkLoop },
  { label: "one durable put at a time", get: (r) => r.load?.put1Loop },
  { label: "compaction (alone)", get: (r) => r.load?.compactLoop },
  { label: "compaction with paced puts", get: (r) => r.load?.duringLoop },
  { label: "cold open → first record", get: (r) => r.read?.openLoop },
  { label: "cold random gets", get: (r) => r.read?.coldLoop },
  { label: "iterate every record", get: (r) => r.read?.readLoop },
  { label: "warm random gets", get: (r) => r.read?.warmLoop },
];

function rowOf(r: ScaleResults, system: string, records: number): ScaleRow | undefined {
  return r.rows.find((x) => x.system === system && x.records === records);
}

export interface ScaleTarget {
  target: string;
  measured: string;
  status: "met" | "not met" | "not measured";
}

/** Cellar's per-record index cost: what its resident memory grows by at open, per record, at the largest size measured. */
export function indexCostPerRecord(r: ScaleResults): { bytes: number; records: number } | undefined {
  for (const records of [...r.tiers].sort((a, b) => b - a)) {
    const d = rowOf(r, "cellar", records)?.read;
    if (d) return { bytes: (d.rssOpen - d.rssBase) / records, records };
  }
  return undefined;
}

export function evaluateScaleTargets(r: ScaleResults): ScaleTarget[] {
  const at = (records: number) => rowOf(r, "cellar", records);
  const big = at(1_000_000);
  const mid = at(100_000);
  const out: ScaleTarget[] = [];
  const ratio = (a: number | undefined, b: number | undefined): number => (a === undefined || b === undefined ? Number.NaN : a / b);
  const verdict = (v: number, ok: (v: number) => boolean): ScaleTarget["status"] => (Number.isFinite(v) ? (ok(v) ? "met" : "not met") : "not measured");
  // Judged on CPU time when both sizes have it (this machine's load, not the store, moves wall-clock time between
  // two sizes measured minutes apart); the wall-clock ratio is shown next to it.
  const cpuOr = (cpuA: number | undefined, cpuB: number | undefined, wall: number): { v: number; on: string } => {
    const c = ratio(cpuA, cpuB);
    return Number.isFinite(c) ? { v: c, on: `CPU time ${sig3(c)}× (judged); wall clock ${sig3(wall)}×` } : { v: wall, on: `wall clock ${sig3(wall)}×` };
  };
  const openWall = ratio(big?.read?.openMs, mid?.read?.openMs);
  const open = cpuOr(big?.read?.openCpuMs, mid?.read?.openCpuMs, openWall);
  out.push({
    target: "cold open → first record grows ≤ 2× from 100k to 1M records",
    measured: Number.isFinite(openWall) ? `${sig3(big!.read!.openMs)} ms / ${sig3(mid!.read!.openMs)} ms; ${open.on}` : "–",
    status: verdict(open.v, (v) => v <= 2),
  });
  const memOpen = ratio(storeRss(big?.read, "rssOpen"), storeRss(mid?.read, "rssOpen"));
  out.push({
    target: "resident memory after open (growth over the process before open) grows ≤ 2× from 100k to 1M",
    measured: Number.isFinite(memOpen) ? `${sig3(storeRss(big?.read, "rssOpen")!)} MiB / ${sig3(storeRss(mid?.read, "rssOpen")!)} MiB = ${sig3(memOpen)}×` : "–",
    status: verdict(memOpen, (v) => v <= 2),
  });
  const cost = indexCostPerRecord(r);
  const over: string[] = [];
  let checked = 0;
  if (cost) {
    for (const records of r.tiers) {
      const d = at(records)?.read;
      if (!d) continue;
      checked++;
      const used = Math.max(d.rssRead, d.rssWarm) - d.rssBase;
      const bound = CELLAR_CACHE_BUDGET + records * cost.bytes;
      if (used > bound) over.push(`${tierLabel(records)}: ${mb(used)} MiB > ${mb(bound)} MiB`);
    }
  }
  out.push({
    target: `resident memory never exceeds the cache budgets (${mb(CELLAR_CACHE_BUDGET)} MiB) plus the per-record index cost${cost ? ` (${sig3(cost.bytes)} B/record, measured after open at ${tierLabel(cost.records)})` : ""}`,
    measured: checked === 0 ? "–" : over.length === 0 ? `within it at ${r.tiers.filter((t) => at(t)?.read).map(tierLabel).join(", ")}` : over.join("; "),
    status: checked === 0 ? "not measured" : over.length === 0 ? "met" : "not met",
  });
  const bulkWall = ratio(big?.load?.bulkRps, mid?.load?.bulkRps);
  // Records per CPU-second: the inverse ratio of CPU time per record.
  const perRecordCpu = (row: ScaleRow | undefined): number | undefined => (row?.load?.bulkCpuMs ? row.load.bulkCpuMs / row.records : undefined);
  const bulk = cpuOr(perRecordCpu(mid), perRecordCpu(big), bulkWall);
  out.push({
    target: "bulk load at 1M ≥ 0.8× its rate at 100k",
    measured: Number.isFinite(bulkWall) ? `${sig3(big!.load!.bulkRps)} / ${sig3(mid!.load!.bulkRps)} records/s; ${bulk.on}` : "–",
    status: verdict(bulk.v, (v) => v >= 0.8),
  });
  for (const records of [100_000, 1_000_000]) {
    const l = at(records)?.load;
    const x = ratio(l?.duringP99, l?.pacedP99);
    out.push({
      target: `p99 put latency while a compaction runs ≤ 5× the p99 without one (${tierLabel(records)} records)`,
      measured: Number.isFinite(x) ? `${sig3(l!.duringP99!)} ms / ${sig3(l!.pacedP99)} ms = ${sig3(x)}× (${n(l!.duringN ?? 0)} puts during a ${sig3(l!.duringCompactMs ?? Number.NaN)} ms compaction)` : "–",
      status: verdict(x, (v) => v <= 5),
    });
  }
  return out;
}

const STATUS: Record<ScaleTarget["status"], string> = { met: "✅ met", "not met": "❌ **not met**", "not measured": "⚠️ not measured" };

export function renderScaleSection(r: ScaleResults, chartFile: string): string {
  const L: string[] = [];
  const labelOf = (id: string): string => r.systems.find((s) => s.id === id)?.label ?? id;
  const tiers = r.tiers;
  const when = `${r.startedAt.slice(0, 16).replace("T", " ")} UTC`;
  L.push(SCALE_BEGIN, "", `## Scale curves (issue 15): ${tiers.map(tierLabel).join(", ")} records`, "");
  L.push(
    `Run ${when} on code at ${r.revision}, ${n(Math.round(r.durationSeconds))} s, sizes ${tiers.map(n).join(" / ")} records, ` +
      `${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB, ${r.machine.fileSystem}, Node ${r.machine.node}; ` +
      `1-minute load average ${sig3(r.load[0])} at the start, ${sig3(r.load[1])} at the end (other work shared the machine: compare systems within a size, not with other sections).`,
    "",
    ...(r.parts
      ? [
          "Measured in " + r.parts.length + " runs, merged with `--scale --render a.json,b.json`: " +
            r.parts
              .map((p) => `${p.systems.map(labelOf).join(", ")} at ${p.startedAt.slice(0, 16).replace("T", " ")} UTC (${n(Math.round(p.durationSeconds))} s, code ${p.revision}, load ${sig3(p.load[0])} → ${sig3(p.load[1])})`)
              .join("; ") +
            ".",
          "",
        ]
      : []),
    "Command: `npm run bench -- --scale` (10k, 100k and 1M records; `--tiers 10000,100000` leaves out the 1M size, `--scale --quick` is the smoke test's tiny run). " +
      "One run, one repetition per size: the numbers are indicative, the ratios between sizes of one system are what the targets judge.",
    "",
    `![Scale curves](${chartFile})`,
    "",
    "### Targets (Cellar)",
    "",
    "| target | measured | verdict |",
    "|---|---|---|",
  );
  for (const t of evaluateScaleTargets(r)) L.push(`| ${t.target} | ${t.measured} | ${STATUS[t.status]} |`);
  L.push("", "### Per size", "", `| measure | system | ${tiers.map(tierLabel).join(" | ")} | ${tiers.length > 1 ? `${tierLabel(tiers[tiers.length - 1]!)} / ${tierLabel(tiers[tiers.length - 2]!)}` : ""} |`);
  L.push(`|---|---|${tiers.map(() => "---:").join("|")}|---:|`);
  for (const m of MEASURES) {
    for (const s of r.systems) {
      const vals = tiers.map((t) => {
        const row = rowOf(r, s.id, t);
        return row ? m.value(row) : undefined;
      });
      if (vals.every((v) => v === undefined)) continue;
      const last = vals[vals.length - 1];
      const prev = vals[vals.length - 2];
      const growth = last !== undefined && prev !== undefined && prev !== 0 ? `${sig3(last / prev)}×` : "";
      L.push(`| ${m.label} (${m.unit}) | ${s.label} | ${vals.map((v) => (v === undefined ? "–" : sig3(v))).join(" | ")} | ${growth} |`);
    }
  }
  L.push(
    "",
    "### Event-loop delay per step (p99 / max, ms; `perf_hooks.monitorEventLoopDelay`, bench/stall.ts)",
    "",
    "In brackets: the most CPU time the process used between two ticks of a 1 ms timer (`cpuGap`), the longest stall the code itself caused; on a loaded machine p99 and max also hold the time the OS ran other processes.",
    "",
  );
  L.push(`| step | system | ${tiers.map(tierLabel).join(" | ")} |`, `|---|---|${tiers.map(() => "---:").join("|")}|`);
  for (const step of LOOPS) {
    for (const s of r.systems) {
      const cells = tiers.map((t) => {
        const row = rowOf(r, s.id, t);
        const l = row ? step.get(row) : undefined;
        return l ? `${sig3(l.p99)} / ${sig3(l.max)}${l.cpuGap === undefined ? "" : ` (${sig3(l.cpuGap)})`}` : "–";
      });
      if (cells.every((c) => c === "–")) continue;
      L.push(`| ${step.label} | ${labelOf(s.id)} | ${cells.join(" | ")} |`);
    }
  }
  const errors = r.rows.filter((x) => x.error);
  if (errors.length > 0) {
    L.push("", "### Errors", "");
    for (const e of errors) L.push(`- ${labelOf(e.system)}, ${n(e.records)} records: ${e.error}`);
  }
  L.push(
    "",
    "### How it was measured",
    "",
    "Per system and size, in fresh child processes (bench/scale-child.ts):",
    "",
    "- **load**: a new store; records bulk-loaded in batches of 1,000, one durable commit each (records generated 10,000 at a time, outside the clock and outside the event-loop probes; records/s counts the commits only); the system's compaction (Cellar: `store.compact()`; better-sqlite3: `wal_checkpoint(TRUNCATE)`; lmdb has none); 300 durable puts one at a time (new keys); 300 puts paced every 2 ms; then the same paced puts while a second compaction runs (started, not awaited), counting the puts issued before it finished. Put latency is from the call to its resolution; the \"from when it was due\" row adds the wait for a loop that was busy when the put should have started. Bytes on disk after close (allocated blocks).",
    `- **read**: cold = ${r.cold}. Memory is resident set size after GC, as growth over the process with the library loaded and the store not yet open. Open → first record (the middle key); 300 random gets from that cold state; every record read and decoded (iterate); 20,000 random gets as a warm-up, then 20,000 timed (5 s budget per step).`,
    "- Cellar runs with its defaults (encryption, compression, `durability: \"full\"`, 64 MiB block cache + 64 MiB record cache); better-sqlite3 WAL `synchronous=FULL`; lmdb its defaults, each write awaiting `flushed`. The per-record index cost in the memory target is Cellar's resident-memory growth at open divided by the records, at the largest size of the run.",
    "",
    SCALE_END,
  );
  return L.join("\n");
}

/** Replace the scale section of `previous` (or append it) with `section`. */
export function spliceScaleSection(previous: string, section: string): string {
  const b = previous.indexOf(SCALE_BEGIN);
  const e = previous.indexOf(SCALE_END);
  if (b >= 0 && e > b) return previous.slice(0, b) + section + previous.slice(e + SCALE_END.length);
  return `${previous.trimEnd()}${previous ? "\n\n" : ""}${section}\n`;
}

// ---------------------------------------------------------------------------------------------------
// Chart

const PALETTE: Record<string, string> = { cellar: "#4e79a7", "sqlite-full": "#f28e2b", lmdb: "#59a14f", "cellar-plain": "#76b7b2", "sqlite-normal": "#e15759", level: "#b07aa1" };
const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Small multiples, one per charted measure: log-scale x (records), log-scale y, a line per system. */
export function renderScaleChart(r: ScaleResults): string {
  const panels = MEASURES.filter((m) => m.chart !== undefined);
  const cols = 3;
  const pw = 320;
  const ph = 200;
  const W = cols * pw + 20;
  const top = 56;
  const H = top + Math.ceil(panels.length / cols) * ph + 10;
  const tiers = [...r.tiers].sort((a, b) => a - b);
  const lx0 = Math.log10(tiers[0] ?? 1);
  const lx1 = Math.log10(tiers[tiers.length - 1] ?? 10);
  const out: string[] = [];
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">Scale curves: Cellar vs peers by store size (${esc(r.startedAt.slice(0, 10))}; both axes log-scale)</text>`);
  let lx = 20;
  for (const s of r.systems) {
    out.push(`<rect x="${lx}" y="32" width="12" height="12" fill="${PALETTE[s.id] ?? "#999"}"/><text x="${lx + 16}" y="42" font-size="12">${esc(s.label)}</text>`);
    lx += 30 + s.label.length * 7;
  }
  panels.forEach((m, i) => {
    const ox = 10 + (i % cols) * pw;
    const oy = top + Math.floor(i / cols) * ph;
    const x0 = ox + 52;
    const x1 = ox + pw - 16;
    const y0 = oy + 24;
    const y1 = oy + ph - 34;
    const values = r.rows.map(m.value).filter((v): v is number => v !== undefined && Number.isFinite(v) && v > 0);
    out.push(`<text x="${(x0 + x1) / 2}" y="${oy + 14}" text-anchor="middle" font-size="12" font-weight="bold">${esc(m.chart!)}</text>`);
    out.push(`<rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" fill="none" stroke="#bbb"/>`);
    if (values.length === 0) return;
    let ly0 = Math.floor(Math.log10(Math.min(...values)));
    let ly1 = Math.ceil(Math.log10(Math.max(...values)));
    if (ly1 === ly0) ly1 = ly0 + 1;
    if (ly1 - ly0 > 6) ly0 = ly1 - 6;
    const xOf = (t: number): number => (lx1 === lx0 ? (x0 + x1) / 2 : x0 + ((Math.log10(t) - lx0) / (lx1 - lx0)) * (x1 - x0));
    const yOf = (v: number): number => y1 - ((Math.max(ly0, Math.log10(v)) - ly0) / (ly1 - ly0)) * (y1 - y0);
    for (let d = ly0; d <= ly1; d++) {
      const y = yOf(10 ** d);
      out.push(`<line x1="${x0}" y1="${y.toFixed(1)}" x2="${x1}" y2="${y.toFixed(1)}" stroke="#eee"/>`);
      out.push(`<text x="${x0 - 4}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-size="10">${esc(sig3(10 ** d))}</text>`);
    }
    for (const t of tiers) {
      const x = xOf(t);
      out.push(`<line x1="${x.toFixed(1)}" y1="${y0}" x2="${x.toFixed(1)}" y2="${y1}" stroke="#eee"/>`);
      out.push(`<text x="${x.toFixed(1)}" y="${y1 + 14}" text-anchor="middle" font-size="10">${tierLabel(t)}</text>`);
    }
    out.push(`<text x="${(x0 + x1) / 2}" y="${y1 + 27}" text-anchor="middle" font-size="10" fill="#666">records</text>`);
    for (const s of r.systems) {
      const pts = tiers
        .map((t) => {
          const row = rowOf(r, s.id, t);
          const v = row ? m.value(row) : undefined;
          return v !== undefined && Number.isFinite(v) && v > 0 ? `${xOf(t).toFixed(1)},${yOf(v).toFixed(1)}` : undefined;
        })
        .filter((p): p is string => p !== undefined);
      const color = PALETTE[s.id] ?? "#999";
      if (pts.length > 1) out.push(`<polyline points="${pts.join(" ")}" fill="none" stroke="${color}" stroke-width="2"/>`);
      for (const p of pts) {
        const [cx, cy] = p.split(",");
        out.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`);
      }
    }
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${out.join("\n")}\n</svg>\n`;
}

/** Write the section into the report at `out` and the chart `scale.svg` next to it (and the JSON if asked). */
export function writeScaleOutputs(r: ScaleResults, out: string, json: string | undefined): string[] {
  const chart = join(dirname(out), "scale.svg");
  mkdirSync(dirname(out), { recursive: true });
  const previous = existsSync(out) ? readFileSync(out, "utf8") : "";
  writeFileSync(out, spliceScaleSection(previous, renderScaleSection(r, basename(chart))));
  writeFileSync(chart, renderScaleChart(r));
  if (json) writeFileSync(json, JSON.stringify(r, null, 2) + "\n");
  return [out, chart, ...(json ? [json] : [])];
}
