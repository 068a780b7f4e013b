/**
 * Smoke check of the benchmark harness (issue 6): `npm run bench -- --quick` runs end to end and writes a
 * report, a chart and its raw results to a temporary directory (never docs/). It asserts the structure of
 * what was written, never a speed.
 *
 * In `npm test` it runs Cellar's two systems only (`--only cellar,cellar-plain`): the peers are not part of
 * the SDK's install (issue 11) and this run must not install them. `npm run test:bench` (a step of
 * .ci/run) sets CELLAR_BENCH_PEERS=1: then every system runs, peers installed on first use into
 * bench/node_modules, and every peer must have loaded and measured.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { create, toJson, type MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserSettingsSchema } from "../src/generated/examples/settings/v1/settings_pb.js";
import { TaskSchema } from "../src/generated/examples/tasks/v1/tasks_pb.js";
import { jsonBytes, makeSettingsPatch, makeTask, makeTasks, taskKey } from "../bench/records.js";
import { LOOP_OPS, METRICS } from "../bench/metrics.js";
import { RAW_METRICS } from "../bench/raw.js";
import type { BenchResults } from "../bench/results.js";
import { evaluateScaleTargets, evictFromPageCache, MEASURES, SCALE_BEGIN, SCALE_END, SCALE_SYSTEMS, spliceScaleSection, type ScaleResults } from "../bench/scale.js";
import { StallMonitor } from "../bench/stall.js";
import { SYSTEMS } from "../bench/systems.js";
import { evaluateTargets } from "../bench/targets.js";

const run = promisify(execFile);
const withPeers = process.env.CELLAR_BENCH_PEERS === "1";
const systems = withPeers ? SYSTEMS : SYSTEMS.filter((s) => s.kind === "cellar");

describe(`npm run bench -- --quick${withPeers ? " (every peer)" : " --only cellar,cellar-plain"}`, () => {
  let dir: string;
  let report: string;
  let chart: string;
  let results: BenchResults;
  let stdout: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cellar-bench-smoke-"));
    const out = join(dir, "BENCHMARKS.md");
    const only = withPeers ? [] : ["--only", systems.map((s) => s.id).join(",")];
    const res = await run("npm", ["run", "--silent", "bench", "--", "--quick", ...only, "--out", out, "--json", join(dir, "results.json")], {
      cwd: join(import.meta.dirname, ".."),
      env: { ...process.env, CI: "1" },
      maxBuffer: 16 << 20,
    });
    stdout = res.stdout;
    report = readFileSync(out, "utf8");
    chart = readFileSync(join(dir, "benchmarks.svg"), "utf8");
    results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as BenchResults;
  }, withPeers ? 600_000 : 240_000); // with peers: their first install (~80 s here) comes first

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("lists every system it was asked for, and every one (Cellar and each peer) could be loaded and ran", () => {
    expect(results.systems.map((s) => s.id)).toEqual(systems.map((s) => s.id));
    if (withPeers) expect(results.systems.filter((s) => s.kind === "peer")).toHaveLength(5);
    for (const s of results.systems) {
      expect({ id: s.id, available: s.available, error: s.error }).toEqual({ id: s.id, available: true, error: undefined });
      if (s.kind === "peer") expect(s.version).toMatch(/^\d+\.\d+\.\d+/);
    }
    expect(results.systems.filter((s) => s.kind === "cellar").map((s) => s.id)).toEqual(["cellar", "cellar-plain"]);
  });

  it("measured every metric of every workload for every system that ran, without errors", () => {
    expect(results.errors).toEqual([]);
    for (const s of results.systems.filter((x) => x.available)) {
      const samples = results.samples[s.id];
      expect(samples, s.id).toHaveLength(results.sizes.reps);
      for (const sample of samples ?? []) {
        for (const m of METRICS) {
          expect(Number.isFinite(sample[m.id]), `${s.id} ${m.id} = ${sample[m.id]}`).toBe(true);
        }
        expect(sample["put1.n"]).toBeGreaterThan(0);
        expect(sample["disk.bytes"]).toBeGreaterThan(0);
      }
    }
    for (const r of results.raw) for (const d of RAW_METRICS) expect(r[d.id], d.id).toBeGreaterThan(0);
  });

  it("writes a report with machine info, every target with a verdict, per-workload tables and the chart link", () => {
    expect(results.sizes.name).toBe("quick");
    for (const heading of ["## Machine", "## Targets (issue 3, Speed)", "## Cellar / peer ratios", "## Results per workload", "## Raw limits of this machine", "## Systems"]) {
      expect(report).toContain(heading);
    }
    expect(report).toContain(results.machine.node);
    expect(results.revision).not.toBe("");
    expect(report).toContain(`on code at ${results.revision}`);
    expect(results.machine.fileSystem).not.toBe("unknown");
    const verdicts = report.match(/^\| .+ \| (✅ met|❌ \*\*not met\*\*|⚠️ not measured) \|$/gm) ?? [];
    expect(verdicts).toHaveLength(14); // issue 3's nine and issue 15's five gaps (bench/targets.ts)
    for (let w = 1; w <= 7; w++) expect(report).toMatch(new RegExp(`^### ${w}\\. `, "m"));
    expect(report).toContain("](benchmarks.svg)");
    for (const s of results.systems) expect(report).toContain(`| ${s.label} |`);
  });

  it("reports the event-loop stalls of every operation for every system, with the targets of issue 15", () => {
    const section = report.slice(report.indexOf("## Event-loop stalls (issue 15)"));
    expect(report).toContain("## Event-loop stalls (issue 15)");
    expect(section).toContain("### Targets (issue 15): Cellar, p99 ≤ 2 ms and max ≤ 10 ms");
    expect(results.loopIdle?.length).toBe(results.sizes.reps);
    for (const { label } of LOOP_OPS) {
      expect(section).toMatch(new RegExp(`^\\| \\*\\*${label.replace(/[()]/g, "\\$&")}\\*\\* \\(workload \\d\\) \\| \\*target\\* \\| ≤ 2 \\| ≤ 10 \\|`, "m"));
    }
    // One row per operation and system, each with a verdict against the targets (✅, or ❌ naming what missed).
    const rows = section.match(/^\|  \| .+ \| (✅|❌ [a-z0-9, ]+) \| .+ \| .+ \|$/gm) ?? [];
    expect(rows).toHaveLength(LOOP_OPS.length * results.systems.filter((s) => s.available).length);
    expect(results.lifecycleLoop?.map((l) => l.system)).toContain("cellar");
  });

  it("computes a verdict for every target of issue 3 (without peers: for every target that needs none)", () => {
    const targets = evaluateTargets(results);
    expect(targets).toHaveLength(14);
    for (const t of targets) {
      const needsPeer = /better-sqlite3|lmdb|classic-level/.test(t.target);
      if (needsPeer && !withPeers) expect(t.status, t.target).toBe("not measured");
      else expect(["met", "not met"], t.target).toContain(t.status);
    }
    if (!withPeers) expect(targets.filter((t) => t.status === "not measured").length).toBeGreaterThan(0);
  });

  it("writes an SVG chart", () => {
    expect(chart.startsWith("<svg ")).toBe(true);
    expect(chart.trimEnd().endsWith("</svg>")).toBe(true);
    expect(chart).toContain("Cellar vs peers");
  });

  it("--render rewrites the same report and chart from the saved results, measuring nothing", async () => {
    const again = join(dir, "again", "BENCHMARKS.md");
    await run("npm", ["run", "--silent", "bench", "--", "--render", join(dir, "results.json"), "--out", again], {
      cwd: join(import.meta.dirname, ".."),
      env: { ...process.env, CI: "1" },
    });
    expect(readFileSync(again, "utf8")).toBe(report);
    expect(readFileSync(join(dir, "again", "benchmarks.svg"), "utf8")).toBe(chart);
  });

  it.runIf(withPeers)("runs issue 14's query measures against better-sqlite3 (bench/queries.ts), both sides' daily buckets equal", () => {
    expect(stdout).toContain("queries (issue 14)");
    const lines = stdout.split("\n");
    for (const m of ["(a) range query", "(b) count(where outcome", "(b) count(where startedAt", "(d) put"]) {
      const line = lines.find((l) => l.includes(m));
      expect(line, m).toMatch(/\d+\.\d+x/);
    }
    // (c) runs once the repository has `aggregate`; then both sides' buckets must agree day by day.
    if (!lines.find((l) => l.includes("(c) daily buckets"))?.includes("not available")) {
      expect(stdout).toMatch(/daily buckets: 365 days \(sqlite 365\), 0 differing/);
    }
  });

  it("prints the final table on the terminal", () => {
    for (const s of results.systems.filter((x) => x.available)) expect(stdout).toContain(s.label);
    expect(stdout).toMatch(/wrote .*BENCHMARKS\.md/);
  });
});

describe("the stall monitor (bench/stall.ts)", () => {
  const block = (ms: number): void => {
    const t = performance.now();
    while (performance.now() - t < ms);
  };

  it("sees a loop blocked for the whole operation, from its first instruction to its last, as one stall", async () => {
    block(30); // the loop's cached time is stale when the monitor starts, as after a long open
    const m = await StallMonitor.start();
    block(40);
    const s = await m.stop();
    expect(s.max).toBeGreaterThanOrEqual(38);
    expect(s.p99).toBeGreaterThanOrEqual(38);
    expect(s.gap).toBeGreaterThanOrEqual(40);
    expect(s.ticks).toBe(0);
  });

  it("sees the timer keep firing through an operation that yields to the loop between short steps", async () => {
    const m = await StallMonitor.start();
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 2));
    block(25);
    const s = await m.stop();
    expect(s.ticks).toBeGreaterThan(0.1);
    expect(s.max).toBeGreaterThanOrEqual(23);
  });
});

describe("benchmark records", () => {
  it("give peers the same Task as Cellar: `json` is protobuf's canonical JSON of `input`", () => {
    for (let i = 0; i < 500; i++) {
      const r = makeTask(i);
      expect(r.json).toEqual(toJson(TaskSchema, create(TaskSchema, r.input)));
      expect(r.id).toBe(r.input.id);
      expect(r.id).toBe(taskKey(i));
    }
  });

  it("are about 500 bytes as JSON, and the same on every call (fixed seed)", () => {
    const avg = jsonBytes(2000) / 2000;
    expect(avg).toBeGreaterThan(400);
    expect(avg).toBeLessThan(650);
    expect(makeTasks(10, 3)).toEqual([makeTask(10), makeTask(11), makeTask(12)]);
    expect(new Set(makeTasks(0, 5000).map((r) => r.id)).size).toBe(5000);
  });

  it("give peers the same settings patch as Cellar", () => {
    for (let i = 0; i < 200; i++) {
      const p = makeSettingsPatch(i);
      const full = toJson(UserSettingsSchema, create(UserSettingsSchema, p.input as MessageInitShape<typeof UserSettingsSchema>), { alwaysEmitImplicit: true }) as Record<string, unknown>;
      expect(p.json).toEqual(Object.fromEntries(Object.keys(p.input).map((k) => [k, full[k]])));
    }
  });
});

describe(`npm run bench -- --scale --quick (issue 15's scale curves, tiny sizes${withPeers ? ", every scale system" : ", Cellar only"})`, () => {
  const scaleSystems = withPeers ? SCALE_SYSTEMS : ["cellar"];
  const tiers = [200, 800];
  let dir: string;
  let report: string;
  let chart: string;
  let results: ScaleResults;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cellar-bench-scale-"));
    // A report with a section of its own before the scale section: the run must keep it and append.
    writeFileSync(join(dir, "BENCHMARKS.md"), "# Benchmarks\n\nkept text\n");
    await run("npm", ["run", "--silent", "bench", "--", "--scale", "--quick", "--tiers", tiers.join(","), "--only", scaleSystems.join(","), "--out", join(dir, "BENCHMARKS.md"), "--json", join(dir, "scale.json")], {
      cwd: join(import.meta.dirname, ".."),
      env: { ...process.env, CI: "1" },
      maxBuffer: 16 << 20,
    });
    report = readFileSync(join(dir, "BENCHMARKS.md"), "utf8");
    chart = readFileSync(join(dir, "scale.svg"), "utf8");
    results = JSON.parse(readFileSync(join(dir, "scale.json"), "utf8")) as ScaleResults;
  }, 420_000); // four fresh processes per size; minutes on a loaded 2-core machine

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("measured every size of every system in fresh processes, cold reads after the store's files left the page cache", () => {
    expect(results.tiers).toEqual(tiers);
    expect(results.rows.map((r) => [r.system, r.records])).toEqual(tiers.flatMap((t) => scaleSystems.map((s) => [s, t])));
    for (const row of results.rows) {
      expect(row.error, `${row.system} ${row.records}`).toBeUndefined();
      for (const m of MEASURES) {
        const v = m.value(row);
        if (v === undefined) expect(row.system, `${row.system} ${m.label}`).toBe("lmdb"); // lmdb has no compaction
        else expect(Number.isFinite(v), `${row.system} ${row.records} ${m.label} = ${v}`).toBe(true);
      }
      expect(row.load!.bulkRps).toBeGreaterThan(0);
      expect(row.load!.diskBytes).toBeGreaterThan(0);
      expect(row.read!.openLoop.max).toBeGreaterThanOrEqual(0);
      if (row.system === "cellar") expect(row.load!.duringN).toBeGreaterThan(0);
      // fincore: the eviction left (next to) nothing of the store in the page cache.
      expect(row.cachedBefore).toBeLessThan(row.load!.diskApparent / 10 + 64 * 1024);
    }
  });

  it("appends its own section to the report, keeps what was there, and judges every target", () => {
    expect(report.startsWith("# Benchmarks\n\nkept text\n")).toBe(true);
    expect(report).toContain(SCALE_BEGIN);
    expect(report).toContain(SCALE_END);
    expect(report).toContain("](scale.svg)");
    const targets = evaluateScaleTargets(results);
    expect(targets).toHaveLength(6);
    // No 100k / 1M size in this run: the growth targets are "not measured", the memory bound is judged.
    expect(targets.filter((t) => t.status === "not measured")).toHaveLength(5);
    for (const t of targets) expect(report).toContain(`| ${t.target} |`);
    for (const m of MEASURES) expect(report).toContain(`| ${m.label} (${m.unit}) | Cellar |`);
    expect(spliceScaleSection(report, `${SCALE_BEGIN}\nnew\n${SCALE_END}`)).toBe(`# Benchmarks\n\nkept text\n\n${SCALE_BEGIN}\nnew\n${SCALE_END}\n`);
  });

  it("draws the curves as an SVG with log-scale axes, a line per system", () => {
    expect(chart.startsWith("<svg ")).toBe(true);
    expect(chart.trimEnd().endsWith("</svg>")).toBe(true);
    expect(chart).toContain("log-scale");
    expect((chart.match(/<polyline /g) ?? []).length).toBeGreaterThanOrEqual(6); // a tiny store's RSS growth can be ≤ 0: not drawn on a log scale
    expect(chart).toContain(">bulk load (records/s)</text>");
  });

  it("--scale --render rewrites the same section and chart from the saved results", async () => {
    const again = join(dir, "again", "BENCHMARKS.md");
    mkdirSync(join(dir, "again"));
    writeFileSync(again, "# Benchmarks\n\nkept text\n");
    await run("npm", ["run", "--silent", "bench", "--", "--scale", "--render", join(dir, "scale.json"), "--out", again], { cwd: join(import.meta.dirname, ".."), env: { ...process.env, CI: "1" } });
    expect(readFileSync(again, "utf8")).toBe(report);
    expect(readFileSync(join(dir, "again", "scale.svg"), "utf8")).toBe(chart);
  });
});

describe("evictFromPageCache (bench/scale.ts)", () => {
  it("writes a store's files back and leaves none of their pages in the OS page cache", () => {
    const dir = mkdtempSync(join(tmpdir(), "cellar-bench-evict-"));
    try {
      mkdirSync(join(dir, "sub"));
      writeFileSync(join(dir, "a.bin"), Buffer.alloc(4 << 20, 7));
      writeFileSync(join(dir, "sub", "b.bin"), Buffer.alloc(1 << 20, 9));
      readFileSync(join(dir, "a.bin"));
      const cached = evictFromPageCache(dir);
      if (cached === undefined) return; // no dd / fincore on this machine: the report says "not evicted"
      expect(cached).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
