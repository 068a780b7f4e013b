/**
 * Issue 14's speed, queries on indexes, in one run against better-sqlite3 with the same indexes:
 *
 * - (a) range: a query returning 1% of N focus sessions (a 3.65-day window of a year) by the timestamp
 *   index, in index order, records decoded (Cellar: frozen messages; better-sqlite3: row objects of a table
 *   with one column per field). Target: ≥ 1.0× (time ratio better-sqlite3 / Cellar).
 * - (b) count(where) on an index: `count({ outcome })` (a third of the records) and `count({ startedAt: a
 *   month })`, vs `SELECT count(*) … WHERE` on the same indexes. Target: ≥ 1.0×.
 * - (c) daily buckets over the year: `aggregate({ bucket: { field: "startedAt", by: "day" }, count, sum:
 *   ["duration"] })` (UTC, as strftime) vs `SELECT strftime('%Y-%m-%d', …), count(*), sum(duration) … GROUP
 *   BY 1`. The two results are compared, day by day. Target: ≥ 1.0×.
 * - (d) index maintenance: puts into a store of N sessions whose entity has three indexes (started_at,
 *   task_id, outcome; their ordered indexes built by a query first) vs the same puts with none (Cellar vs
 *   Cellar), relaxed durability (no fsync in the measure: the index work is CPU), in batches of 500 (the two
 *   stores taking turns batch by batch) and one at a time. Target: ≤ 1.2×. Also reported: the batches with the
 *   first query after them (a count on each index), which pays what the puts left to an index's next read (adds not yet placed, leaves not yet sorted).
 *
 * Indexes on both sides: `started_at`, `started_at,duration` (compound), `task_id`, `kind`, `outcome` (the
 * compound index alone cannot serve a query on `started_at`: a record without a duration is not in it, so
 * `started_at` has an index of its own, on both sides alike). Both stores are
 * settled before anything is timed (the SQLite WAL checkpointed, Cellar's bulk load compacted) and warmed by
 * one untimed pass of each query. Median of the repetitions; (d) also prints the spread (min / median / max) of
 * the repetitions' ratios, the ratio of their sums (pooled), and the CPU time of its batches (steadier than wall
 * time on a shared machine).
 *
 * `npx tsx bench/queries.ts [--n N] [--reps R] [--ops K] [--only a,b,c,d] [--puts P]` (`--only d`: the put costs
 * alone; `--puts`: (d)'s puts per repetition and store, default N / 10, at least 1,000). Until the query API of issue 14 (`query` with ranges,
 * `count(where)`, `aggregate`) is in the runtime, the Cellar side reports "not available" and only the
 * better-sqlite3 side is measured.
 */
import fs from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { makeRunDir, removeDir } from "./fsutil.js";
import { BENCH_SEED, createRng } from "./prng.js";
import { median } from "./stats.js";
import { type CollectionDefinition, defineCollection, openStore } from "../src/runtime/index.js";
import { FocusSessionSchema } from "../src/generated/examples/focus/v1/focus_pb.js";
import { FocusSessionInputSchema } from "../src/generated/examples/focus/v1/focus_zod.js";
import { FocusSessionCodec } from "../src/generated/examples/focus/v1/focus_codec.js";

const KEY = new Uint8Array(32).fill(14);
const YEAR_START = Date.UTC(2026, 0, 1);
const DAY_MS = 86_400_000;
const YEAR_MS = 365 * DAY_MS;

/** One focus session, as both sides store it. */
export interface Session {
  id: string;
  startedMs: number;
  /** Seconds, whole or half. */
  duration: number;
  plannedSeconds: number;
  taskId: string;
  kind: number;
  interruptions: number;
  note: string;
  outcome: number;
}

/** `n` sessions over 2026, the same every run. */
export function makeSessions(n: number, seed = BENCH_SEED): Session[] {
  const rng = createRng(seed ^ 0x14);
  const out: Session[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      id: `s${String(i).padStart(7, "0")}`,
      startedMs: YEAR_START + rng.int(YEAR_MS / 1000) * 1000 + rng.int(1000),
      duration: 60 + rng.int(5400) + (rng.int(2) ? 0.5 : 0),
      plannedSeconds: rng.pick([900, 1500, 3000]),
      taskId: rng.int(10) === 0 ? "" : `t${rng.int(2000)}`,
      kind: 1 + rng.int(3),
      interruptions: rng.int(4),
      note: rng.int(4) === 0 ? "worked on the report, then reviewed two pull requests" : "",
      outcome: 1 + rng.int(3),
    });
  }
  return out;
}

export function sessionInput(s: Session) {
  const seconds = Math.floor(s.duration);
  return {
    id: s.id,
    startedAt: { seconds: BigInt(Math.floor(s.startedMs / 1000)), nanos: (s.startedMs % 1000) * 1_000_000 },
    plannedSeconds: s.plannedSeconds,
    taskId: s.taskId,
    kind: s.kind,
    interruptions: s.interruptions,
    note: s.note,
    duration: { seconds: BigInt(seconds), nanos: Math.round((s.duration - seconds) * 1e9) },
    outcome: s.outcome,
  };
}

type Field = "startedAt" | "duration" | "taskId" | "kind" | "outcome";
// The generated codec (the fast write path) hands the runtime the values of the fields the generated entity
// indexes (`task_id`, `kind`, `outcome`, `started_at`, `duration`): every field the definitions below index.
const common = {
  name: "focus_sessions",
  version: 3,
  schema: FocusSessionSchema,
  validator: FocusSessionInputSchema,
  codec: FocusSessionCodec,
  key: "id",
  keyKind: "string" as const,
  sensitive: [],
};
/**
 * The generated FocusSession entity's indexes plus `started_at` alone: the generated `started_at,duration`
 * leaves out sessions without a duration, so it cannot serve a range on `started_at` or buckets by it.
 */
export const queried = defineCollection<typeof FocusSessionSchema, string, Field>({
  ...common,
  indexes: ["startedAt", "duration", "taskId", "kind", "outcome"],
  indexSpecs: [
    { id: "2", fields: ["startedAt"], name: "started_at" },
    { id: "2,10", fields: ["startedAt", "duration"], name: "started_at,duration" },
    { id: "5", fields: ["taskId"], name: "task_id" },
    { id: "6", fields: ["kind"], name: "kind" },
    { id: "11", fields: ["outcome"], name: "outcome" },
  ],
});
export const threeIndexes = defineCollection<typeof FocusSessionSchema, string, "startedAt" | "taskId" | "outcome">({
  ...common,
  indexes: ["startedAt", "taskId", "outcome"],
  indexSpecs: [
    { id: "2", fields: ["startedAt"], name: "started_at" },
    { id: "5", fields: ["taskId"], name: "task_id" },
    { id: "11", fields: ["outcome"], name: "outcome" },
  ],
});
export const noIndex = defineCollection<typeof FocusSessionSchema, string, never>({ ...common, indexes: [], indexSpecs: [] });

/** The query API of issue 14 as docs/DESIGN (DESIGN14.md) fixes it: what this bench calls. */
interface QueryApi {
  query(where: Record<string, unknown>, options?: { orderBy?: string }): Promise<readonly unknown[]>;
  count(where?: Record<string, unknown>): Promise<number>;
  explain(where: Record<string, unknown>): unknown;
  /** Wired on the repository by the lead; (c) is "not available" until then. */
  aggregate?(options: {
    bucket: { field: string; by: "day"; timeZone?: string };
    count: true;
    sum: readonly string[];
  }): Promise<readonly { label: string; count: number; sum: Record<string, number> }[]>;
}

/** Whether the runtime has issue 14's query API (ranges, `count(where)`, `explain`). */
function hasQueryApi(repo: unknown): repo is QueryApi {
  return typeof (repo as { explain?: unknown }).explain === "function";
}

/** The query windows every side runs: `count` ranges of 1% of the year, months, outcomes. */
function windows(n: number) {
  const rng = createRng(BENCH_SEED ^ 0x1401);
  const span = YEAR_MS / 100;
  const ranges = Array.from({ length: n }, () => {
    const from = YEAR_START + rng.int(YEAR_MS - span);
    return { from, to: from + span };
  });
  const months = Array.from({ length: 12 }, (_, m) => ({ from: Date.UTC(2026, m, 1), to: Date.UTC(2026, m + 1, 1) }));
  return { ranges, months, outcomes: [1, 2, 3] };
}

interface Times {
  range: number[];
  rangeRows: number;
  countEq: number[];
  countRange: number[];
  daily: number[];
  days: { label: string; count: number; sum: number }[];
  /** Cellar only: the same daily buckets in Europe/Berlin (local midnights, a 23- and a 25-hour day). */
  dailyBerlin: number[];
}

function timeEach(times: number[], ops: number, f: (i: number) => unknown): void {
  const start = performance.now();
  for (let i = 0; i < ops; i++) f(i);
  times.push((performance.now() - start) / ops);
}

async function timeEachAsync(times: number[], ops: number, f: (i: number) => Promise<unknown>): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < ops; i++) await f(i);
  times.push((performance.now() - start) / ops);
}

/** better-sqlite3: one table, a column per field, the same four indexes; timings per operation. */
async function sqliteSide(dir: string, sessions: readonly Session[], reps: number, ops: number): Promise<Times> {
  const Database = (await import("better-sqlite3")).default;
  fs.mkdirSync(dir, { recursive: true });
  const db = new Database(join(dir, "store.sqlite"));
  try {
    db.pragma("journal_mode = WAL");
    db.exec(`CREATE TABLE focus_sessions (id TEXT PRIMARY KEY, started_at INTEGER NOT NULL, duration REAL, planned_seconds INTEGER,
      task_id TEXT, kind INTEGER, interruptions INTEGER, note TEXT, outcome INTEGER)`);
    db.exec("CREATE INDEX fs_started ON focus_sessions (started_at)");
    db.exec("CREATE INDEX fs_started_duration ON focus_sessions (started_at, duration)");
    db.exec("CREATE INDEX fs_task ON focus_sessions (task_id)");
    db.exec("CREATE INDEX fs_kind ON focus_sessions (kind)");
    db.exec("CREATE INDEX fs_outcome ON focus_sessions (outcome)");
    const put = db.prepare("INSERT INTO focus_sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    db.transaction(() => {
      for (const s of sessions) put.run(s.id, s.startedMs, s.duration, s.plannedSeconds, s.taskId, s.kind, s.interruptions, s.note, s.outcome);
    })();
    db.exec("ANALYZE");
    db.pragma("wal_checkpoint(TRUNCATE)");
    const range = db.prepare<[number, number]>("SELECT * FROM focus_sessions WHERE started_at >= ? AND started_at < ? ORDER BY started_at");
    const countEq = db.prepare<[number], number>("SELECT count(*) FROM focus_sessions WHERE outcome = ?").pluck();
    const countRange = db.prepare<[number, number], number>("SELECT count(*) FROM focus_sessions WHERE started_at >= ? AND started_at < ?").pluck();
    const daily = db.prepare<[], { day: string; n: number; total: number }>(
      "SELECT strftime('%Y-%m-%d', started_at / 1000, 'unixepoch') AS day, count(*) AS n, sum(duration) AS total FROM focus_sessions GROUP BY day ORDER BY day",
    );
    const w = windows(ops);
    const t: Times = { range: [], rangeRows: 0, countEq: [], countRange: [], daily: [], days: [], dailyBerlin: [] };
    for (let rep = 0; rep <= reps; rep++) {
      // Rep 0 warms the caches and is dropped.
      const sink = rep === 0 ? ([] as number[]) : undefined;
      let rows = 0;
      timeEach(sink ?? t.range, ops, (i) => (rows += range.all(w.ranges[i]!.from, w.ranges[i]!.to).length));
      t.rangeRows = rows / ops;
      timeEach(sink ?? t.countEq, ops, (i) => countEq.get(w.outcomes[i % 3]!));
      timeEach(sink ?? t.countRange, ops, (i) => countRange.get(w.months[i % 12]!.from, w.months[i % 12]!.to));
      timeEach(sink ?? t.daily, 5, () => {
        t.days = daily.all().map((r) => ({ label: r.day, count: r.n, sum: r.total }));
      });
    }
    return t;
  } finally {
    db.close();
  }
}

async function loadCellar(
  dir: string,
  def: CollectionDefinition<typeof FocusSessionSchema, string, string>,
  sessions: readonly Session[],
  durability: "full" | "relaxed" = "full",
) {
  const store = await openStore({ sessions: def }, { dir, key: KEY, durability });
  for (let i = 0; i < sessions.length; i += 1000) {
    await store.batch((tx) => {
      for (let j = i; j < Math.min(sessions.length, i + 1000); j++) tx.sessions.put(sessionInput(sessions[j]!));
    });
  }
  await store.compact();
  return store;
}

/** Cellar with the same indexes; undefined when the runtime has no query API yet. */
async function cellarSide(dir: string, sessions: readonly Session[], reps: number, ops: number): Promise<Times | undefined> {
  const store = await loadCellar(dir, queried, sessions);
  try {
    const repo = store.sessions as unknown;
    if (!hasQueryApi(repo)) return undefined;
    const w = windows(ops);
    const t: Times = { range: [], rangeRows: 0, countEq: [], countRange: [], daily: [], days: [], dailyBerlin: [] };
    for (let rep = 0; rep <= reps; rep++) {
      const sink = rep === 0 ? ([] as number[]) : undefined;
      let rows = 0;
      await timeEachAsync(sink ?? t.range, ops, async (i) => {
        const r = w.ranges[i]!;
        rows += (await repo.query({ startedAt: { gte: new Date(r.from), lt: new Date(r.to) } }, { orderBy: "startedAt" })).length;
      });
      t.rangeRows = rows / ops;
      await timeEachAsync(sink ?? t.countEq, ops, (i) => repo.count({ outcome: w.outcomes[i % 3] }));
      await timeEachAsync(sink ?? t.countRange, ops, (i) => {
        const m = w.months[i % 12]!;
        return repo.count({ startedAt: { gte: new Date(m.from), lt: new Date(m.to) } });
      });
      const aggregate = repo.aggregate?.bind(repo);
      if (!aggregate) continue;
      await timeEachAsync(sink ?? t.daily, 5, async () => {
        const buckets = await aggregate({ bucket: { field: "startedAt", by: "day", timeZone: "UTC" }, count: true, sum: ["duration"] });
        t.days = buckets.map((b) => ({ label: b.label, count: b.count, sum: b.sum.duration! }));
      });
      await timeEachAsync(sink ?? t.dailyBerlin, 5, () => aggregate({ bucket: { field: "startedAt", by: "day", timeZone: "Europe/Berlin" }, count: true, sum: ["duration"] }));
    }
    return t;
  } finally {
    await store.close();
  }
}

interface PutTimes {
  batch: number[];
  /** `batch` plus the first query after the batches (a count on each index; the store without: a `count()`), per put. */
  settled: number[];
  single: number[];
  /** CPU time (`process.cpuUsage`, every thread of the process) per put of `batch` and of `settled`: steadier than wall time on a loaded machine. */
  batchCpu: number[];
  settledCpu: number[];
}

/** Puts per repetition and store for (d) when not given (`--puts`): ~0.2-0.5 s per measure at `n` = 100,000. */
export function defaultPuts(n: number): number {
  return Math.max(1000, Math.floor(n / 10));
}

const cpuNow = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

/**
 * (d): ms per put into two stores of `sessions`, one whose entity has three indexes and one with none,
 * relaxed durability, measured in turns (neither gets a warmer JIT or a quieter machine): `batch`, `puts` puts
 * in batches of 500 (the CPU of a put: encoding, terms, index upkeep), the stores taking turns batch by batch;
 * `single`, `puts / 2` puts issued one at a time, each awaited (a put as an app writes one, without its fsync),
 * a repetition on one store then on the other. The indexed store's ordered indexes are built first (by a count on each), as a query would. Both
 * stores get the same new records (`extra`, at least `reps × 1.5 × puts` of them).
 */
async function putCosts(root: string, sessions: readonly Session[], extra: readonly Session[], reps: number, puts: number): Promise<{ put3: PutTimes; put0: PutTimes } | undefined> {
  const three = await loadCellar(join(root, "put3"), threeIndexes, sessions, "relaxed");
  const none = await loadCellar(join(root, "put0"), noIndex, sessions, "relaxed");
  try {
    const repo = three.sessions as unknown;
    if (!hasQueryApi(repo)) return undefined;
    await repo.count({ startedAt: { gte: new Date(YEAR_START) } });
    await repo.count({ taskId: "t1" });
    await repo.count({ outcome: 1 });
    const times = (): PutTimes => ({ batch: [], settled: [], single: [], batchCpu: [], settledCpu: [] });
    const out = { put3: times(), put0: times() };
    const singles = Math.max(1, Math.floor(puts / 2));
    let at = 0;
    const stores = [[three, out.put3], [none, out.put0]] as const;
    for (let rep = 0; rep < reps; rep++) {
      const part = extra.slice(at, (at += puts));
      const one = extra.slice(at, (at += singles));
      // The batches: the two stores take turns batch by batch (which goes first alternates), so both meet the
      // same seconds of a loaded machine (turns of a whole repetition, ~0.1-0.3 s each, did not). Each batch's
      // wall and CPU time are summed per store.
      const wall = [0, 0];
      const used = [0, 0];
      for (let i = 0, b = 0; i < part.length; i += 500, b++) {
        for (let x = 0; x < 2; x++) {
          const s = (b + rep + x) % 2;
          const store = stores[s]![0];
          const start = performance.now();
          const cpu = cpuNow();
          await store.batch((tx) => {
            for (let j = i; j < Math.min(part.length, i + 500); j++) tx.sessions.put(sessionInput(part[j]!));
          });
          used[s]! += cpuNow() - cpu;
          wall[s]! += performance.now() - start;
        }
      }
      // Which store goes first alternates too: the second of a turn runs on a heap the first one grew.
      const order = rep % 2 === 0 ? [0, 1] : [1, 0];
      for (const s of order) {
        const [store, times] = stores[s]!;
        times.batch.push(wall[s]! / part.length);
        times.batchCpu.push(used[s]! / part.length);
        // The first read after: an index places and sorts what the puts left for it (pending adds, unsorted
        // leaves) when next read, so what a put defers is paid here; the store without indexes counts its records.
        let start = performance.now();
        const cpu = cpuNow();
        if (store === three) {
          await repo.count({ startedAt: { gte: new Date(YEAR_START) } });
          await repo.count({ taskId: "t1" });
          await repo.count({ outcome: 1 });
        } else await (store.sessions as unknown as { count(): Promise<number> }).count();
        times.settled.push((wall[s]! + performance.now() - start) / part.length);
        times.settledCpu.push((used[s]! + cpuNow() - cpu) / part.length);
        start = performance.now();
        for (const o of one) await store.sessions.put(sessionInput(o));
        times.single.push((performance.now() - start) / one.length);
      }
    }
    return out;
  } finally {
    await three.close();
    await none.close();
  }
}

export interface QueryBenchResult {
  n: number;
  reps: number;
  /** (d): puts per repetition and store in batches (half as many one at a time). */
  puts: number;
  /** Undefined when (a)-(c) were not run (`--only d`). */
  sqlite: Times | undefined;
  cellar: Times | undefined;
  put3: PutTimes | undefined;
  put0: PutTimes | undefined;
  /** Days whose count or sum differ between the two sides' daily buckets (must be 0). */
  dailyMismatches: number;
}

/** Run the four measures: `n` sessions, `reps` repetitions, `ops` operations per timed measure. */
export async function benchQueries(n: number, reps: number, root: string, ops = 50, only?: ReadonlySet<string>, puts = defaultPuts(n)): Promise<QueryBenchResult> {
  const sessions = makeSessions(n);
  const runD = !only || only.has("d");
  const extra = runD ? makeSessions(reps * (puts + Math.max(1, Math.floor(puts / 2))), BENCH_SEED + 1).map((s, i) => ({ ...s, id: `x${String(i).padStart(7, "0")}` })) : [];
  fs.mkdirSync(root, { recursive: true });
  try {
    // `only` (--only): the workloads to run; (a)-(c) run together (one store each side), (d) alone.
    const reads = !only || ["a", "b", "c"].some((w) => only.has(w));
    const sqlite = reads ? await sqliteSide(join(root, "sqlite"), sessions, reps, ops) : undefined;
    removeDir(join(root, "sqlite"));
    const cellar = reads ? await cellarSide(join(root, "cellar"), sessions, reps, ops) : undefined;
    removeDir(join(root, "cellar"));
    const costs = runD ? await putCosts(root, sessions, extra, reps, puts) : undefined;
    const put3 = costs?.put3;
    const put0 = costs?.put0;
    let dailyMismatches = 0;
    if (sqlite && cellar?.daily.length) {
      const theirs = new Map(sqlite.days.map((d) => [d.label, d]));
      if (cellar.days.length !== sqlite.days.length) dailyMismatches += Math.abs(cellar.days.length - sqlite.days.length);
      for (const d of cellar.days) {
        const s = theirs.get(d.label);
        if (!s || s.count !== d.count || Math.abs(s.sum - d.sum) > 1e-6 * Math.max(1, s.sum)) dailyMismatches++;
      }
    }
    return { n, reps, puts, sqlite, cellar, put3, put0, dailyMismatches };
  } finally {
    removeDir(root);
  }
}

/** The result as lines: one per measure, both sides' median ms per operation and the ratio. */
export function describeQueryBench(r: QueryBenchResult): string[] {
  const ms = (xs: number[]) => median(xs);
  const fmt = (x: number) => (x < 1 ? x.toFixed(3) : x.toFixed(1)).padStart(8);
  const lines = [`queries (issue 14): ${r.n} focus sessions over a year, median of ${r.reps}; ms per operation, ratio = better-sqlite3 / Cellar (≥ 1.0: Cellar as fast or faster)`];
  const row = (label: string, target: string, sq: number[], ce: number[] | undefined) => {
    const has = ce !== undefined && ce.length > 0;
    const c = has ? ms(ce) : Number.NaN;
    lines.push(`  ${label.padEnd(58)} sqlite ${fmt(ms(sq))} ms  cellar ${has ? fmt(c) : "     n/a"} ms  ${has ? `${(ms(sq) / c).toFixed(2)}x` : "not available"} (target ${target})`);
  };
  const sq = r.sqlite;
  if (sq) {
    row(`(a) range query, 1% (~${Math.round(sq.rangeRows)} records), timestamp index`, ">= 1.0", sq.range, r.cellar?.range);
    row("(b) count(where outcome = x) on an index (1/3 of records)", ">= 1.0", sq.countEq, r.cellar?.countEq);
    row("(b) count(where startedAt in a month) on an index", ">= 1.0", sq.countRange, r.cellar?.countRange);
    row("(c) daily buckets over the year, count + sum(duration)", ">= 1.0", sq.daily, r.cellar?.daily);
    if (r.cellar?.daily.length) {
      lines.push(`      daily buckets: ${r.cellar.days.length} days (sqlite ${sq.days.length}), ${r.dailyMismatches} differing; in Europe/Berlin: ${fmt(ms(r.cellar.dailyBerlin))} ms`);
    }
  }
  if (r.put3 && r.put0) {
    const { put3, put0 } = r;
    // The ratio of the medians, then the spread (min / median / max) of the repetitions' own ratios (the two
    // stores measured in the same minutes): one median alone hid how far they swing.
    const spread = (a: number[], b: number[]) => {
      const ratios = a.map((x, i) => x / b[i]!).sort((x, y) => x - y);
      // Pooled: the ratio of the sums over every repetition (each the same puts): a garbage collection lands
      // in one repetition or another, and the pooled figure counts each once at its share.
      const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
      return `${(median(a) / median(b)).toFixed(2)}x (per repetition min ${ratios[0]!.toFixed(2)} / median ${median(ratios).toFixed(2)} / max ${ratios[ratios.length - 1]!.toFixed(2)}; pooled ${(sum(a) / sum(b)).toFixed(2)}x)`;
    };
    const us = (xs: number[]) => `${(median(xs) * 1000).toFixed(1)} µs`;
    lines.push(
      `  (d) put, three indexes vs none, ${r.puts} puts per repetition and store in batches of 500: ${us(put3.batch)} vs ${us(put0.batch)} per put: ${spread(put3.batch, put0.batch)} (target <= 1.2); CPU time ${us(put3.batchCpu)} vs ${us(put0.batchCpu)}: ${spread(put3.batchCpu, put0.batchCpu)}`,
      `      the same batches and the first query after them (deferred index work included): ${us(put3.settled)} vs ${us(put0.settled)}: ${spread(put3.settled, put0.settled)}; CPU ${spread(put3.settledCpu, put0.settledCpu)}`,
      `      ${Math.max(1, Math.floor(r.puts / 2))} one at a time, each awaited: ${us(put3.single)} vs ${us(put0.single)}: ${spread(put3.single, put0.single)} (target <= 1.2)`,
    );
  } else lines.push("  (d) put with three indexes vs none: not measured (left out by --only, or no query API in the runtime yet)");
  return lines;
}

if (process.argv[1]?.endsWith("queries.ts")) {
  const { values } = parseArgs({
    options: { n: { type: "string", default: "100000" }, reps: { type: "string", default: "3" }, ops: { type: "string", default: "50" }, only: { type: "string" }, puts: { type: "string" } },
    strict: true,
  });
  const only = values.only === undefined ? undefined : new Set(values.only.split(",").map((w) => w.trim()));
  const root = join(makeRunDir(), "queries");
  const n = Number(values.n);
  const puts = values.puts === undefined ? defaultPuts(n) : Number(values.puts);
  if (!Number.isInteger(puts) || puts < 1) throw new Error(`--puts expects a positive integer, got \`${values.puts}\``);
  for (const line of describeQueryBench(await benchQueries(n, Number(values.reps), root, Number(values.ops), only, puts))) console.log(line);
}
