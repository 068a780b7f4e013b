/** docs/BENCHMARKS.md, rewritten from one run's results. */
import { formatBytes, formatRatio, formatValue, sig3 } from "./format.js";
import { metricDef, type MetricId } from "./metrics.js";
import { RAW_METRICS, type RawId } from "./raw.js";
import { availableSystems, metricSummary, rawSummary, ratio, type BenchResults } from "./results.js";
import type { Summary } from "./stats.js";
import { renderLoopSection } from "./loop-report.js";
import { evaluateTargets } from "./targets.js";

const n = (v: number): string => v.toLocaleString("en-US");

function cell(s: Summary, format: (v: number) => string): string {
  if (s.n === 0) return "–";
  const [median, min, max] = [format(s.median), format(s.min), format(s.max)];
  return min === max ? median : `${median} (${min} to ${max})`;
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

interface WorkloadSection {
  title: string;
  intro: string;
  metrics: MetricId[];
}

function workloadSections(r: BenchResults): WorkloadSection[] {
  const s = r.sizes;
  return [
    {
      title: `1. One durable put at a time (${n(s.putOne)} puts)`,
      intro: "Each put is awaited before the next is issued; p50/p99 are per-put latencies.",
      metrics: ["put1.ops", "put1.p50", "put1.p99", "put1.n"],
    },
    {
      title: `2. ${s.inFlight} durable puts in flight (${n(s.putInFlight)} puts)`,
      intro: `${s.inFlight} writers each await their own put, then issue the next. better-sqlite3 and conf have synchronous APIs, so for them this is the same as one at a time.`,
      metrics: ["put64.ops", "put64.n"],
    },
    {
      title: `3. Bulk load (${n(s.bulk)} records in batches of ${n(s.batch)}, one durable commit per batch)`,
      intro: "Records/s counts the batches' commits only. The system's own compaction runs after the last batch (see workload 7) and is timed separately.",
      metrics: ["bulk.rps", "bulk.compact"],
    },
    {
      title: `4. One settings update, ${n(s.settingsUpdates)} times, in a store of ${n(s.settingsStore)} records and in an empty store`,
      intro: "Each update merges a 3-field patch into the settings value and commits it durably (read-merge-write for the key-value peers; `store.settings.update(patch)` for Cellar; `conf.set({ 'settings.x': … })` for conf).",
      metrics: ["settings.full.ops", "settings.empty.ops", "settings.full.n", "settings.empty.n"],
    },
    {
      title: `5. Cold open of the ${n(s.bulk)}-record store in a fresh process`,
      intro: "A new Node process per repetition loads the library (not timed), then times open → first `get`, and open → every record read and decoded (iterated one at a time), then, timed alone, every record read and decoded into one array (Cellar's `list()`; for the peers their own all-rows call: better-sqlite3 `.all()`, lmdb `getRange().asArray`, classic-level `values().all()`, conf's `get('tasks')`). The OS page cache is not dropped (that needs root and would affect other work on the machine): \"cold\" means a new process, not a cold disk.",
      metrics: ["cold.first", "cold.all", "list.all"],
    },
    {
      title: `6. Warm random gets (${n(s.gets)}) and memory`,
      intro: "In a fresh process: memory measured (after GC), store opened, a warm-up pass getting every key once in random order (so each system's caches hold what their default budgets allow), then the timed random gets (uniform over all keys), then memory measured again. Memory per record is the growth of resident set size (and of V8 heap + external memory) divided by the records in the store; lmdb's RSS includes the pages of its memory-mapped file it touched.",
      metrics: ["warm.gets", "warm.n", "mem.rss", "mem.heap"],
    },
    {
      title: `7. Bytes on disk (${n(s.bulk)} records; ${formatBytes(r.jsonBytes)} as JSON)`,
      intro: "After the bulk load, each system's own compaction (Cellar `store.compact()`, LevelDB `compactRange`, SQLite `wal_checkpoint(TRUNCATE)`; lmdb and conf have none) and close: bytes allocated on disk (`du`, which counts preallocated space) for every file of the store, and the sum of the files' lengths. The ratio to JSON uses the allocated bytes. \"100 small\": a fresh store given 100 small records (id, a short title, a status; ~80 bytes as JSON), each put durably on its own, then closed: the same two measures of every file it left.",
      metrics: ["disk.bytes", "disk.apparent", "disk.ratio", "small.bytes", "small.apparent"],
    },
  ];
}

function metricHeader(id: MetricId): string {
  return metricDef(id).short;
}

export function renderReport(r: BenchResults, chartFile: string): string {
  const out: string[] = [];
  const systems = r.systems.filter((s) => s.available);
  const cellars = availableSystems(r, "cellar");
  const peers = availableSystems(r, "peer");
  const m = r.machine;
  const date = r.startedAt.replace("T", " ").replace(/\.\d+Z$/, " UTC");

  out.push("# Benchmarks", "");
  out.push("<!-- Generated by `npm run bench` (bench/run.ts) from one run. Do not edit by hand: rerun it. -->", "");
  out.push(
    `Measured ${date} in one run of \`npm run bench${r.sizes.name === "quick" ? " -- --quick" : ""}\` (${Math.round(r.durationSeconds)} s) on code at ${r.revision}. ` +
      `Every number is the median of ${r.sizes.reps} repetition${r.sizes.reps === 1 ? "" : "s"}, with min to max in parentheses; ` +
      "repetitions of each workload are interleaved across systems so that machine noise spreads over all of them.",
    "",
  );
  if (r.sizes.name === "quick") {
    out.push("> **Quick run** (`--quick`): sizes are reduced and there is one repetition. It checks that the harness works; its numbers are not the benchmark.", "");
  }

  out.push("## Machine", "");
  out.push(
    table(
      ["CPU", "Cores", "Memory", "OS", "Kernel", "Node", "File system of the stores"],
      [[m.cpu, String(m.cores), `${m.memoryGiB} GiB`, m.os, m.kernel, m.node, `${m.fileSystem} (\`bench/.work/\`)`]],
    ),
    "",
  );

  out.push("## Targets (issue 3, Speed)", "");
  out.push("Cellar with encryption, compression and validation on, against the peers in this same run (medians).", "");
  const targets = evaluateTargets(r);
  out.push(
    table(
      ["Target", "Measured", "Verdict"],
      targets.map((t) => [t.target, t.measured, t.status === "met" ? "✅ met" : t.status === "not met" ? "❌ **not met**" : "⚠️ not measured"]),
    ),
    "",
  );
  const count = (status: string): number => targets.filter((t) => t.status === status).length;
  out.push(
    `${count("met")} of ${targets.length} targets met, ${count("not met")} not met, ${count("not measured")} not measured.`,
    "",
  );

  out.push(...renderLoopSection(r));

  out.push("## Cellar / peer ratios", "");
  out.push(`![Cellar vs peers per workload](${chartFile})`, "");
  out.push(
    "Cellar's median divided by the peer's median. For throughput (ops/s, records/s) above 1× means Cellar is faster; " +
      "for times, memory and bytes below 1× means Cellar is better. The chart shows the same ratios oriented so that right of 1× is always better for Cellar.",
    "",
  );
  const ratioMetrics = (["put1.ops", "put1.p99", "put64.ops", "bulk.rps", "settings.full.ops", "settings.empty.ops", "cold.first", "cold.all", "warm.gets", "mem.rss", "disk.bytes", "small.bytes"] as MetricId[]);
  for (const c of cellars) {
    out.push(`### ${c.label} (${c.durability})`, "");
    out.push(
      table(
        ["Workload", ...peers.map((p) => `/ ${p.label}`)],
        ratioMetrics.map((id) => [
          `${metricDef(id).label} (${metricDef(id).better === "higher" ? "higher" : "lower"} is better)`,
          ...peers.map((p) => formatRatio(ratio(r, c.id, p.id, id))),
        ]),
      ),
      "",
    );
  }
  const sealed = cellars.find((c) => c.id === "cellar");
  const plain = cellars.find((c) => c.id === "cellar-plain");
  if (sealed && plain) {
    out.push("### Cost of encryption + compression", "");
    out.push(`${sealed.label} / ${plain.label}, same run (validation is on in both: it has no switch):`, "");
    out.push(
      table(
        ["Workload", `${sealed.label}`, `${plain.label}`, "Ratio"],
        ratioMetrics.map((id) => {
          const d = metricDef(id);
          return [
            `${d.label} (${d.unit})`,
            formatValue(metricSummary(r, sealed.id, id).median, d.unit),
            formatValue(metricSummary(r, plain.id, id).median, d.unit),
            formatRatio(ratio(r, sealed.id, plain.id, id)),
          ];
        }),
      ),
      "",
    );
  }

  out.push("## Results per workload", "");
  for (const w of workloadSections(r)) {
    out.push(`### ${w.title}`, "");
    if (w.intro) out.push(w.intro, "");
    out.push(
      table(
        ["System", ...w.metrics.map(metricHeader)],
        systems.map((s) => [
          s.label,
          ...w.metrics.map((id) => cell(metricSummary(r, s.id, id), (v) => formatValue(v, metricDef(id).unit))),
        ]),
      ),
      "",
    );
  }
  out.push(
    `Operations measured below the requested count mean the system hit the ${n(r.sizes.budgetMs / 1000)} s time budget of one measurement ` +
      "(conf reads and parses its whole file on every get and rewrites it on every set); its rate is over the operations it did.",
    "",
  );

  out.push("## Raw limits of this machine", "");
  out.push("Same run, same file system. A durable store's single-put rate is bounded by the fsync'd write rows.", "");
  const base = rawSummary(r, "append.fdatasync").median;
  const rel: Partial<Record<RawId, string>> = {};
  for (const id of ["append.async", "append.odsync", "prealloc.pwrite"] as RawId[]) {
    rel[id] = `${formatRatio(rawSummary(r, id).median / base)} of append + fdatasync`;
  }
  out.push(
    table(
      ["Measurement", "Median (min to max)", "Unit", ""],
      RAW_METRICS.map((d) => [d.label, cell(rawSummary(r, d.id), sig3), d.unit, rel[d.id] ?? ""]),
    ),
    "",
  );

  out.push("## Systems", "");
  out.push(
    table(
      ["System", "Package", "Durability", "Status"],
      r.systems.map((s) => [
        s.label,
        s.packageName ? `${s.packageName}@${s.version ?? "?"}` : "this repository",
        s.durability,
        s.available ? "ran" : `**not run**: ${s.error ?? "unknown error"}`,
      ]),
    ),
    "",
  );

  out.push("## How it was measured", "");
  out.push(
    [
      `- Records: ~${Math.round(r.jsonBytes / r.sizes.bulk)}-byte task records (as JSON) generated from a fixed seed by \`bench/records.ts\`; every system stores the same records under the same keys (random UUIDs, so inserts land in random key order). Each record is a generated \`examples.tasks.v1.Task\`: Cellar stores its init object through the generated \`tasks\` repository (protobuf binary) and decodes it on read; peers store \`JSON.stringify\` of the same Task in protobuf's canonical JSON mapping (enum names, RFC 3339 timestamps) and \`JSON.parse\` it on read.`,
      "- One adapter per system (`bench/adapters/`) behind one interface (`bench/adapter.ts`); the workloads (`bench/workloads.ts`) are written once against it.",
      "- Stores live in a fresh directory under the checkout's `bench/.work/` (gitignored), on the file system named under Machine; every repetition of workloads 1–4 starts from an empty store.",
      "- Workloads 5 and 6 run in a fresh child process per system and repetition (`bench/child.ts`, `node --expose-gc`), against the store left by the last bulk load.",
      "- Durability is matched: a put counts only once the system reports it synced to disk, except better-sqlite3 `synchronous=NORMAL`, listed because apps often use it (see Systems).",
      "- Nothing is hard-coded: every number above, including the targets' verdicts, is computed from this run.",
    ].join("\n"),
    "",
  );

  if (r.errors.length > 0) {
    out.push("## Errors", "");
    out.push(table(["System", "Workload", "Error"], r.errors.map((e) => [e.system, e.workload, e.message.replace(/\|/g, "\\|").replace(/\n/g, " ")])), "");
  }
  return out.join("\n");
}
