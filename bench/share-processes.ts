/**
 * Issue 13's speed, several real processes on one store, in one run against the peer:
 *
 * - four processes each writing durable puts one at a time: their total rate vs one process alone
 *   (target ≥ 2.0×: group commit across processes), and vs better-sqlite3 with four processes on one WAL
 *   database at `synchronous = FULL`, one autocommit insert each (target ≥ 1.0×);
 * - change-event latency, from a put's acknowledgment in the writer process to the `change` callback in a
 *   follower process: p50 and p99 (target p99 ≤ 10 ms);
 * - a follower's warm `get` vs the writer's (target ≥ 0.5×);
 * - the CPU time of a put, all processes together (user + system over the puts, per put): what two cores
 *   allow (a 4-process rate needs 4 × CPU per put × rate ≤ 2 cores' time).
 *
 * `npx tsx bench/share-processes.ts [--n N] [--reps R]` ; a full `npm run bench` runs it too and logs it.
 * Each process is `bench/share-child.ts`; rates are records over the span from the first process's start to
 * the last one's end. Median of the repetitions.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import fs from "node:fs";
import { dirname, join } from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { makeRunDir, removeDir } from "./fsutil.js";
import { median, percentile } from "./stats.js";

const here = dirname(fileURLToPath(import.meta.url));

interface Child {
  proc: ChildProcessWithoutNullStreams;
  ready: Promise<string>;
  result: Promise<Record<string, unknown>>;
}

function child(job: string, system: string, dir: string, name: string, n: number, goFile: string): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", join(here, "share-child.ts"), job, system, dir, name, String(n), goFile], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, XDG_RUNTIME_DIR: join(dir, "..", "rt") },
  });
  let stderr = "";
  proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const lines = readline.createInterface({ input: proc.stdout });
  let readyResolve!: (s: string) => void;
  let resultResolve!: (r: Record<string, unknown>) => void;
  const ready = new Promise<string>((r) => (readyResolve = r));
  const result = new Promise<Record<string, unknown>>((resolve, reject) => {
    resultResolve = resolve;
    proc.on("exit", (code) => {
      if (code !== 0) reject(new Error(`bench/share-child ${job} ${system} ${name} exited ${code}: ${stderr.slice(-1500)}`));
    });
  });
  lines.on("line", (line) => {
    if (line.startsWith("ready ")) readyResolve(line.slice(6));
    else if (line.startsWith("{")) resultResolve(JSON.parse(line) as Record<string, unknown>);
  });
  return { proc, ready, result };
}

/** An empty store directory `<root>/<name>`, and its go file (not there yet). */
function freshDir(root: string, name: string): { dir: string; go: string } {
  const dir = join(root, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(join(root, "rt"), { recursive: true, mode: 0o700 });
  const go = join(root, `${name}.go`);
  fs.rmSync(go, { force: true });
  return { dir, go };
}

/**
 * A writer running `writerJob` and then a follower running `followerJob` on a fresh store `<root>/<name>`:
 * both started, checked for their roles, let go together; their results.
 */
async function writerAndFollower<W, F>(root: string, name: string, writerJob: string, followerJob: string, n: number): Promise<[W, F]> {
  const { dir, go } = freshDir(root, name);
  const writer = child(writerJob, "cellar", dir, "w", n, go);
  if ((await writer.ready) !== "writer") throw new Error("the first process is not the writer");
  const follower = child(followerJob, "cellar", dir, "f", n, go);
  if ((await follower.ready) !== "follower") throw new Error("the second process is not a follower");
  fs.writeFileSync(go, "");
  const results = await Promise.all([writer.result, follower.result]);
  fs.rmSync(dir, { recursive: true, force: true });
  return results as [W, F];
}

/**
 * Records per second of `procs` processes each putting `n` records one at a time into one store, and the
 * CPU time (ms) of all of them per record.
 */
async function putRate(root: string, system: "cellar" | "sqlite", procs: number, n: number): Promise<{ rate: number; cpu: number; roles: string[] }> {
  const { dir, go } = freshDir(root, `${system}-${procs}`);
  // The first creates the store alone (and is the writer); then the others join.
  const first = child("puts", system, dir, "p0", n, go);
  const roles = [await first.ready];
  const rest = Array.from({ length: procs - 1 }, (_, i) => child("puts", system, dir, `p${i + 1}`, n, go));
  roles.push(...(await Promise.all(rest.map((c) => c.ready))));
  fs.writeFileSync(go, "");
  const results = (await Promise.all([first, ...rest].map((c) => c.result))) as { start: number; end: number; n: number; cpu: number }[];
  const span = Math.max(...results.map((r) => r.end)) - Math.min(...results.map((r) => r.start));
  fs.rmSync(dir, { recursive: true, force: true });
  return { rate: (procs * n) / (span / 1000), cpu: results.reduce((a, r) => a + r.cpu, 0) / (procs * n), roles };
}

/** Latencies (ms) from each put's acknowledgment in the writer to its change event in a follower. */
async function eventLatency(root: string, n: number): Promise<number[]> {
  const [{ acks }, { seen }] = await writerAndFollower<{ acks: number[] }, { seen: number[] }>(root, "latency", "ack", "watch", n);
  return acks.map((a, i) => seen[i]! - a);
}

/** Warm gets per second in the writer and in a follower, at the same time. */
async function getRates(root: string, n: number): Promise<{ writer: number; follower: number }> {
  type Span = { start: number; end: number };
  const [rw, rf] = await writerAndFollower<Span, Span>(root, "gets", "gets", "gets", n);
  return { writer: n / ((rw.end - rw.start) / 1000), follower: n / ((rf.end - rf.start) / 1000) };
}

export interface ShareBench {
  n: number;
  reps: number;
  cellar1: number;
  cellar4: number;
  sqlite1: number;
  sqlite4: number;
  latencyP50: number;
  latencyP99: number;
  latencyMax: number;
  getWriter: number;
  getFollower: number;
  /** CPU ms per put, all processes together (median): Cellar and better-sqlite3, 1 and 4 processes. */
  cpu: { cellar1: number; cellar4: number; sqlite1: number; sqlite4: number };
}

export async function benchShare(n: number, reps: number, root: string, getCount = 200_000): Promise<ShareBench> {
  const samples: Record<"cellar1" | "cellar4" | "sqlite1" | "sqlite4" | "getW" | "getF", number[]> = { cellar1: [], cellar4: [], sqlite1: [], sqlite4: [], getW: [], getF: [] };
  const cpu: Record<"cellar1" | "cellar4" | "sqlite1" | "sqlite4", number[]> = { cellar1: [], cellar4: [], sqlite1: [], sqlite4: [] };
  const latencies: number[] = [];
  const sample = (k: keyof typeof cpu, r: { rate: number; cpu: number }) => {
    samples[k].push(r.rate);
    cpu[k].push(r.cpu);
  };
  for (let rep = 0; rep < reps; rep++) {
    sample("cellar1", await putRate(root, "cellar", 1, n));
    const four = await putRate(root, "cellar", 4, n);
    if (four.roles.filter((r) => r === "writer").length !== 1) throw new Error(`four processes, roles ${four.roles.join(", ")}: not one writer`);
    sample("cellar4", four);
    sample("sqlite1", await putRate(root, "sqlite", 1, n));
    sample("sqlite4", await putRate(root, "sqlite", 4, n));
    latencies.push(...(await eventLatency(root, Math.min(n, 500))));
    const g = await getRates(root, getCount);
    samples.getW.push(g.writer);
    samples.getF.push(g.follower);
  }
  return {
    n,
    reps,
    cellar1: median(samples.cellar1),
    cellar4: median(samples.cellar4),
    sqlite1: median(samples.sqlite1),
    sqlite4: median(samples.sqlite4),
    latencyP50: percentile(latencies, 50),
    latencyP99: percentile(latencies, 99),
    latencyMax: Math.max(...latencies),
    getWriter: median(samples.getW),
    getFollower: median(samples.getF),
    cpu: { cellar1: median(cpu.cellar1), cellar4: median(cpu.cellar4), sqlite1: median(cpu.sqlite1), sqlite4: median(cpu.sqlite4) },
  };
}

export function describeShareBench(b: ShareBench): string[] {
  const r = (x: number) => `${Math.round(x).toLocaleString("en-US")}/s`;
  const ms = (x: number) => `${x.toFixed(3)} ms`;
  const ratio = (x: number, target: string, ok: boolean) => `${x.toFixed(2)}× (target ${target}: ${ok ? "met" : "missed"})`;
  return [
    `several processes (issue 13): ${b.n} durable puts per process, one at a time, median of ${b.reps}`,
    `  Cellar: 1 process ${r(b.cellar1)}, 4 processes ${r(b.cellar4)} in total: ${ratio(b.cellar4 / b.cellar1, "≥ 2.0×", b.cellar4 / b.cellar1 >= 2)}`,
    `  better-sqlite3 FULL (WAL): 1 process ${r(b.sqlite1)}, 4 processes ${r(b.sqlite4)}; Cellar 4 vs it: ${ratio(b.cellar4 / b.sqlite4, "≥ 1.0×", b.cellar4 / b.sqlite4 >= 1)}`,
    `  change event, writer's ack → follower's callback: p50 ${b.latencyP50.toFixed(2)} ms, p99 ${b.latencyP99.toFixed(2)} ms (target ≤ 10 ms: ${b.latencyP99 <= 10 ? "met" : "missed"}), max ${b.latencyMax.toFixed(2)} ms`,
    `  warm get: writer ${r(b.getWriter)}, follower ${r(b.getFollower)}: ${ratio(b.getFollower / b.getWriter, "≥ 0.5×", b.getFollower / b.getWriter >= 0.5)}`,
    `  CPU per put, all processes (user + system): Cellar 1 process ${ms(b.cpu.cellar1)}, 4 processes ${ms(b.cpu.cellar4)}; better-sqlite3 ${ms(b.cpu.sqlite1)}, ${ms(b.cpu.sqlite4)}; ` +
      `two whole cores at Cellar's 4-process CPU per put: at most ${r(2000 / b.cpu.cellar4)} (the 2.0× target here: ${r(2 * b.cellar1)})`,
  ];
}

export async function run(sizes: { reps: number }): Promise<void> {
  const root = makeRunDir();
  try {
    for (const line of describeShareBench(await benchShare(2000, sizes.reps, root))) process.stdout.write(line + "\n");
  } finally {
    removeDir(root);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { n: { type: "string", default: "2000" }, reps: { type: "string", default: "3" } } });
  const root = makeRunDir();
  try {
    for (const line of describeShareBench(await benchShare(Number(values.n), Number(values.reps), root))) process.stdout.write(line + "\n");
  } finally {
    removeDir(root);
  }
}
