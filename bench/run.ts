/**
 * `npm run bench [-- --quick] [--out docs/BENCHMARKS.md] [--json results.json] [--only a,b] [--reps n] [--keep]`
 * `npm run bench -- --lifecycle export [--quick] [--reps n]`: only issue 12's workload `bench/lifecycle-<name>.ts`.
 * `--stalls`: only what issue 15's event-loop table needs (workloads 1–6 and the migration at open; no
 * backup, retention, several-processes or queries runs), e.g. `--stalls --only cellar --reps 1 --out /tmp/s.md`.
 * `npm run bench -- --render results.json [--out …]`: rewrite the report and chart from a saved run's
 * `--json` file, measuring nothing (for changes to the report's wording or layout).
 * `npm run bench -- --scale [--tiers 10000,100000,1000000] [--only cellar,sqlite-full,lmdb] [--quick]`: only
 * issue 15's scale curves (bench/scale.ts), written into their own section of the report and `scale.svg`;
 * with `--render s.json[,t.json]`, rewritten from the saved `--json` of such runs (merged: systems measured apart).
 *
 * Runs the raw limits and the seven workloads of issue 6 for Cellar and every peer in one process
 * (plus one child process per cold-open / warm-get measurement), shows a live table, then writes the
 * report (default docs/BENCHMARKS.md) and the chart (benchmarks.svg next to the report).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { SystemSpec } from "./adapter.js";
import { renderChart } from "./chart.js";
import { runChild } from "./child-protocol.js";
import { formatValue, sig3 } from "./format.js";
import { makeRunDir, REPO_ROOT, removeDir } from "./fsutil.js";
import { benchBackup, describeBackupBench } from "./lifecycle-backup.js";
import { LiveTable } from "./live.js";
import { codeRevision, machineInfo, packageVersion } from "./machine.js";
import { metricDef, type Sample } from "./metrics.js";
import { ensurePeers } from "./peers.js";
import { measureFlate, measureSeal, measureSyncs, RAW_METRICS } from "./raw.js";
import { jsonBytes } from "./records.js";
import { renderReport } from "./report.js";
import type { BenchResults, SystemInfo } from "./results.js";
import { FULL, QUICK, type Sizes } from "./sizes.js";
import { StallMonitor } from "./stall.js";
import { SYSTEMS } from "./systems.js";
import { bulkLoad, putOneAtATime, putsInFlight, settingsUpdates, smallStore } from "./workloads.js";

interface Options {
  sizes: Sizes;
  out: string;
  chart: string;
  json: string | undefined;
  only: string[] | undefined;
  keep: boolean;
  render: string | undefined;
  /** `--lifecycle <name>`: run only issue 12's workload bench/lifecycle-<name>.ts (its own table, no report). */
  lifecycle: string | undefined;
  /** `--stalls`: workloads 1–6 and the migration at open only (issue 15's event-loop table). */
  stalls: boolean;
  /** `--scale`: only the scale curves (bench/scale.ts), at `tiers` record counts. */
  scale: boolean;
  tiers: number[] | undefined;
  /** `--scale --skip-compaction`: the scale run without its two compactions per size. */
  skipCompaction: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      out: { type: "string" },
      json: { type: "string" },
      only: { type: "string" },
      reps: { type: "string" },
      keep: { type: "boolean", default: false },
      render: { type: "string" },
      lifecycle: { type: "string" },
      stalls: { type: "boolean", default: false },
      scale: { type: "boolean", default: false },
      tiers: { type: "string" },
      "skip-compaction": { type: "boolean", default: false },
    },
    strict: true,
  });
  let sizes = values.quick ? QUICK : FULL;
  if (values.reps !== undefined) {
    const reps = Number(values.reps);
    if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps expects a positive integer, got \`${values.reps}\``);
    sizes = { ...sizes, reps };
  }
  const out = resolve(values.out ?? join(REPO_ROOT, "docs", "BENCHMARKS.md"));
  return {
    sizes,
    out,
    chart: join(dirname(out), "benchmarks.svg"),
    json: values.json === undefined ? undefined : resolve(values.json),
    only: values.only?.split(",").map((s) => s.trim()).filter(Boolean),
    keep: values.keep,
    render: values.render === undefined ? undefined : values.render.split(",").map((f) => resolve(f)).join(","),
    lifecycle: values.lifecycle,
    stalls: values.stalls,
    scale: values.scale,
    skipCompaction: values["skip-compaction"],
    tiers: values.tiers?.split(",").map((t) => {
      const x = Number(t.trim().replace(/_/g, ""));
      if (!Number.isInteger(x) || x < 100) throw new Error(`--tiers expects record counts of at least 100, got \`${t}\``);
      return x;
    }),
  };
}

async function probe(spec: SystemSpec): Promise<SystemInfo> {
  const info: SystemInfo = {
    id: spec.id,
    label: spec.label,
    kind: spec.kind,
    durability: spec.durability,
    available: false,
  };
  if (spec.packageName !== undefined) {
    info.packageName = spec.packageName;
    const v = packageVersion(spec.packageName);
    if (v !== undefined) info.version = v;
  }
  try {
    await spec.create();
    info.available = true;
  } catch (e) {
    info.error = e instanceof Error ? e.message.split("\n")[0] : String(e);
  }
  return info;
}

/** One workload: a name for progress and a function measuring one repetition of one system. */
interface Workload {
  name: string;
  /** A scratch directory name for one repetition, removed after it (absent: the workload keeps no store of its own). */
  scratch?: string;
  run(spec: SystemSpec, rep: number, dir: string): Promise<Sample>;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.scale) {
    const scale = await import("./scale.js");
    const results = opts.render
      ? scale.mergeScaleResults(opts.render.split(",").map((f) => JSON.parse(readFileSync(resolve(f), "utf8")) as import("./scale.js").ScaleResults))
      : await scale.runScale(
          {
            tiers: opts.tiers ?? (opts.sizes.name === "quick" ? scale.QUICK_TIERS : scale.SCALE_TIERS),
            systems: opts.only ?? scale.SCALE_SYSTEMS,
            quick: opts.sizes.name === "quick",
            skipCompaction: opts.skipCompaction,
            out: opts.out,
            json: opts.json,
          },
          (line) => process.stdout.write(`${line}\n`),
        );
    const written = scale.writeScaleOutputs(results, opts.out, opts.render ? undefined : opts.json);
    process.stdout.write(`wrote ${written.join(" and ")}\n`);
    if (results.rows.some((r) => r.error !== undefined)) process.exitCode = 1;
    return;
  }
  if (opts.render) {
    writeOutputs(JSON.parse(readFileSync(opts.render, "utf8")) as BenchResults, opts);
    return;
  }
  const { sizes } = opts;
  if (opts.lifecycle !== undefined) {
    if (!/^[a-z]+$/.test(opts.lifecycle)) throw new Error(`--lifecycle expects a workload name, got \`${opts.lifecycle}\``);
    ensurePeers();
    await ((await import(`./lifecycle-${opts.lifecycle}.js`)) as { run(s: typeof sizes): Promise<void> }).run(sizes);
    return;
  }
  const runDir = makeRunDir();
  const startedAt = new Date();
  const specs = SYSTEMS.filter((s) => !opts.only || opts.only.includes(s.id));
  if (specs.length === 0) throw new Error(`--only matched no system (known: ${SYSTEMS.map((s) => s.id).join(", ")})`);
  // Only a run that measures a peer needs them installed (`--only cellar,cellar-plain` never does).
  if (specs.some((s) => s.kind === "peer")) ensurePeers();

  const results: BenchResults = {
    sizes,
    machine: machineInfo(runDir),
    startedAt: startedAt.toISOString(),
    durationSeconds: 0,
    revision: codeRevision(),
    jsonBytes: jsonBytes(sizes.bulk),
    systems: await Promise.all(specs.map(probe)),
    samples: {},
    raw: [],
    errors: [],
  };
  const live = new LiveTable(results);
  live.log(`cellar bench (${sizes.name}): ${sizes.reps} repetition(s); stores in ${runDir} (${results.machine.fileSystem})`);
  for (const s of results.systems) if (!s.available) live.log(`  ${s.label}: not run (${s.error})`);
  const runnable = specs.filter((s) => results.systems.find((i) => i.id === s.id)?.available);

  try {
    // Raw limits first, before this run has created any store.
    for (let rep = 0; rep < sizes.reps; rep++) {
      live.status(`raw limits · rep ${rep + 1}/${sizes.reps}`);
      const dir = join(runDir, `raw-${rep}`);
      mkdirSync(dir, { recursive: true });
      results.raw.push({ ...(await measureSyncs(dir, sizes)), ...measureSeal(sizes), ...measureFlate(sizes) });
      removeDir(dir);
    }
    // The idle event loop of this process (issue 15): the floor under every stall measured below.
    results.loopIdleMs = sizes.name === "quick" ? 200 : 1000;
    results.loopIdle = [];
    for (let rep = 0; rep < sizes.reps; rep++) {
      live.status(`idle event loop · rep ${rep + 1}/${sizes.reps}`);
      const monitor = await StallMonitor.start();
      await new Promise((r) => setTimeout(r, results.loopIdleMs));
      results.loopIdle.push(await monitor.stop());
    }
    const last = results.raw[results.raw.length - 1] ?? {};
    live.log("raw limits (last repetition):");
    for (const d of RAW_METRICS) live.log(`  ${d.label}: ${sig3(last[d.id] ?? Number.NaN)} ${d.unit}`);

    const bulkDirs = new Map<string, string>();
    const workloads: Workload[] = [
      { name: "1: one put at a time", scratch: "put1", run: (s, _rep, dir) => putOneAtATime(s, sizes, dir) },
      { name: "2: puts in flight", scratch: "put64", run: (s, _rep, dir) => putsInFlight(s, sizes, dir) },
      { name: "4: settings updates", scratch: "settings", run: (s, _rep, dir) => settingsUpdates(s, sizes, dir) },
      { name: "7: a store of 100 small records", scratch: "small", run: (s, _rep, dir) => smallStore(s, dir) },
      {
        name: "3+7: bulk load, bytes on disk",
        // No scratch: the last repetition's store stays for workloads 5 and 6.
        run: async (s, _rep, dir) => {
          const previous = bulkDirs.get(s.id);
          if (previous) removeDir(previous);
          bulkDirs.delete(s.id);
          const sample = await bulkLoad(s, sizes, dir, results.jsonBytes);
          bulkDirs.set(s.id, dir); // kept for workloads 5 and 6
          return sample;
        },
      },
      {
        name: "5: cold open (child process)",
        run: (s) => {
          const dir = bulkDirs.get(s.id);
          if (!dir) throw new Error("no bulk-loaded store (workload 3 failed)");
          return runChild({ mode: "cold", system: s.id, dir, records: sizes.bulk, gets: 0, budgetMs: sizes.budgetMs });
        },
      },
      {
        name: "6: warm gets + memory (child process)",
        run: (s) => {
          const dir = bulkDirs.get(s.id);
          if (!dir) throw new Error("no bulk-loaded store (workload 3 failed)");
          return runChild({ mode: "warm", system: s.id, dir, records: sizes.bulk, gets: sizes.gets, budgetMs: sizes.budgetMs });
        },
      },
    ];

    for (const w of workloads) {
      for (let rep = 0; rep < sizes.reps; rep++) {
        for (const spec of runnable) {
          live.status(`workload ${w.name} · ${spec.label} · rep ${rep + 1}/${sizes.reps}`);
          const dir = join(runDir, spec.id, `${w.scratch ?? "bulk"}-${rep}`);
          try {
            const sample = await w.run(spec, rep, dir);
            const reps = (results.samples[spec.id] ??= []);
            reps[rep] = { ...reps[rep], ...sample };
            if (!process.stdout.isTTY) {
              const parts = Object.entries(sample)
                .filter(([k]) => !k.startsWith("loop."))
                .map(([k, v]) => {
                  const d = metricDef(k as keyof Sample);
                  return `${d.short} ${formatValue(v as number, d.unit)}`;
                });
              // Event-loop stalls, one group per operation: `put1 loop p99/max 0.1/12 ms, gap 14 ms`.
              for (const key of Object.keys(sample).filter((k) => k.endsWith(".p99") && k.startsWith("loop."))) {
                const op = key.slice(5, -4);
                const v = (stat: string): string => sig3(sample[`loop.${op}.${stat}` as keyof Sample] ?? Number.NaN);
                parts.push(`${op} loop p99/max ${v("p99")}/${v("max")} ms, gap ${v("gap")} ms`);
              }
              live.log(`  ${spec.label} rep ${rep + 1}: ${parts.join(", ")}`);
            }
          } catch (e) {
            const message = e instanceof Error ? e.message : String(e);
            results.errors.push({ system: spec.id, workload: w.name, message });
            live.log(`  ${spec.label}, workload ${w.name}, rep ${rep + 1}: error: ${message}`);
          } finally {
            if (w.scratch !== undefined) removeDir(dir);
          }
        }
      }
    }
    // Lifecycle (issue 12), Cellar only; logged, not in the report's table.
    if (runnable.some((s) => s.id === "cellar") && !opts.stalls) {
      live.status("lifecycle: retention cleanup vs compaction");
      const { formatRetention, retentionBench } = await import("./lifecycle-retention.js");
      live.log(formatRetention(await retentionBench(sizes.bulk, join(runDir, "lifecycle-retention"))));
    }
    // Data lifecycle (issue 12): backup and restore, logged (bench/lifecycle-backup.ts).
    if (runnable.some((s) => s.id === "cellar")) {
      results.lifecycleLoop = [];
      if (!opts.stalls) {
        live.status("lifecycle: backup and restore");
        const dir = join(runDir, "lifecycle-backup");
        const b = await benchBackup(sizes.bulk, dir, sizes.reps);
        for (const line of describeBackupBench(b)) live.log(line);
        results.lifecycleLoop.push(
          { op: "backup (`store.backup`)", system: "cellar", stalls: b.backupLoop },
          { op: "restore (`restoreBackup`: verify + switch)", system: "cellar", stalls: b.restoreLoop },
          ...(b.sqliteBackupLoop ? [{ op: "backup (`db.backup`)", system: "sqlite-full", stalls: b.sqliteBackupLoop }] : []),
        );
        removeDir(dir);
      }
      // A schema migration at open (issue 15), logged and in the report's event-loop section.
      live.status("lifecycle: migration at open");
      const mdir = join(runDir, "lifecycle-migration");
      const { benchMigration, describeMigrationBench } = await import("./lifecycle-migration.js");
      const mig = await benchMigration(sizes.bulk, mdir);
      live.log(describeMigrationBench(mig));
      results.lifecycleLoop.push({ op: `migration at open (\`focus_sessions\` v1 → v3, ${mig.ms.toFixed(0)} ms)`, system: "cellar", stalls: mig.loop });
      removeDir(mdir);
    }
    // Several processes on one store (issue 13), against better-sqlite3 with as many processes; logged
    // (bench/share-processes.ts).
    if (runnable.some((s) => s.id === "cellar") && specs.some((s) => s.id.startsWith("sqlite")) && !opts.stalls) {
      live.status("several processes: four writers, change events, a follower's reads");
      const dir = join(runDir, "share");
      const { benchShare, describeShareBench } = await import("./share-processes.js");
      for (const line of describeShareBench(await benchShare(sizes.name === "quick" ? 150 : 2000, sizes.reps, dir, sizes.name === "quick" ? 20_000 : 200_000))) live.log(line);
      removeDir(dir);
    }
    // Queries (issue 14): ranges, count(where), daily buckets against better-sqlite3 with the same indexes,
    // and index upkeep (Cellar vs Cellar); logged (bench/queries.ts).
    if (runnable.some((s) => s.id === "cellar") && specs.some((s) => s.id.startsWith("sqlite")) && !opts.stalls) {
      live.status("queries: ranges, count(where), daily buckets, index upkeep");
      const { benchQueries, describeQueryBench } = await import("./queries.js");
      const quick = sizes.name === "quick";
      for (const line of describeQueryBench(await benchQueries(quick ? 3000 : sizes.bulk, sizes.reps, join(runDir, "queries"), quick ? 5 : 50))) live.log(line);
    }
  } finally {
    results.durationSeconds = (Date.now() - startedAt.getTime()) / 1000;
    if (!opts.keep) removeDir(runDir);
  }

  live.finish();
  writeOutputs(results, opts);
}

/**
 * The report's sections measured by their own scripts (lifecycle, several processes, queries) follow this
 * line in docs/BENCHMARKS.md; a run rewrites what is above it and keeps them.
 */
const KEPT_SECTIONS = "<!-- Sections below are written by hand from their own scripts: `npm run bench` keeps them. -->";

function writeOutputs(results: BenchResults, opts: Options): void {
  mkdirSync(dirname(opts.out), { recursive: true });
  const previous = existsSync(opts.out) ? readFileSync(opts.out, "utf8") : "";
  const kept = previous.indexOf(KEPT_SECTIONS);
  writeFileSync(opts.out, renderReport(results, basename(opts.chart)) + (kept >= 0 ? `\n${previous.slice(kept)}` : ""));
  writeFileSync(opts.chart, renderChart(results));
  if (opts.json) writeFileSync(opts.json, JSON.stringify(results, null, 2) + "\n");
  process.stdout.write(`wrote ${opts.out} and ${opts.chart}${opts.json ? ` and ${opts.json}` : ""}\n`);
  if (results.errors.length > 0) {
    process.stdout.write(`${results.errors.length} measurement(s) failed; see the Errors section of the report.\n`);
    process.exitCode = 1;
  }
}

await main();
