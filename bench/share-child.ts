/**
 * One process of the several-processes benchmark (bench/share-processes.ts). Opens the store, says
 * `ready <role>` on stdout, waits for the go file, runs its job, prints one JSON line of results, exits.
 *
 *   tsx bench/share-child.ts <job> <system> <dir> <name> <n> <goFile>
 *
 * jobs:
 * - `puts`: n durable puts of task records, one at a time, keys `<name>-<i>` (`cellar` or `sqlite`: one
 *   better-sqlite3 WAL database shared by every process, `synchronous = FULL`, one autocommit insert each).
 * - `ack`: Cellar, n puts one at a time, each acknowledgment's time (ms since the epoch, sub-ms) recorded.
 * - `watch`: Cellar, the time each change event of those n puts reaches this process.
 * - `gets`: Cellar, n warm `get`s of the 1,000 `warm-*` records (each read once before the clock starts).
 * Times are `performance.timeOrigin + performance.now()`, comparable between processes of one machine; `cpu`
 * is the process's CPU time (user + system, ms, `process.cpuUsage`) over its puts.
 */
import fs from "node:fs";
import { join } from "node:path";
import { makeTasks } from "./records.js";

const [job, system, dir, name, nArg, goFile] = process.argv.slice(2) as [string, string, string, string, string, string];
const n = Number(nArg);
const KEY = new Uint8Array(32).fill(13);
const now = () => performance.timeOrigin + performance.now();
const say = (s: string) => process.stdout.write(s + "\n");

/** CPU time (user + system, ms) since `from`. */
function cpuMs(from: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1000;
}

async function waitForGo(): Promise<void> {
  while (!fs.existsSync(goFile)) await new Promise((r) => setTimeout(r, 2));
}

async function openCellar() {
  const generated = await import("../src/generated/index.js");
  return generated.openStore({ dir, key: KEY, cleanup: false });
}

async function sqlitePuts(): Promise<void> {
  const Database = (await import("better-sqlite3")).default;
  const db = new Database(join(dir, "bench.sqlite"));
  db.pragma("busy_timeout = 30000");
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, v TEXT NOT NULL)");
  const insert = db.prepare("INSERT OR REPLACE INTO tasks (id, v) VALUES (?, ?)");
  const records = makeTasks(0, n);
  say("ready sqlite");
  await waitForGo();
  const cpu0 = process.cpuUsage();
  const start = now();
  for (let i = 0; i < n; i++) insert.run(`${name}-${i}`, JSON.stringify(records[i]!.json));
  const end = now();
  const cpu = cpuMs(cpu0);
  db.close();
  say(JSON.stringify({ start, end, n, cpu }));
}

async function cellarPuts(): Promise<void> {
  const store = await openCellar();
  const records = makeTasks(0, n);
  say(`ready ${store.role}`);
  await waitForGo();
  const cpu0 = process.cpuUsage();
  const start = now();
  for (let i = 0; i < n; i++) await store.tasks.put({ ...records[i]!.input, id: `${name}-${i}` });
  const end = now();
  const cpu = cpuMs(cpu0);
  say(JSON.stringify({ start, end, n, cpu, role: store.role }));
  await store.close();
}

async function ack(): Promise<void> {
  const store = await openCellar();
  say(`ready ${store.role}`);
  await waitForGo();
  const acks: number[] = [];
  for (let i = 0; i < n; i++) {
    await store.tasks.put({ id: `lat-${i}`, title: "latency" });
    acks.push(now());
    await new Promise((r) => setTimeout(r, 2)); // one write at a time, apart: latency, not queueing
  }
  say(JSON.stringify({ acks, role: store.role }));
  await store.close();
}

async function watch(): Promise<void> {
  const store = await openCellar();
  const seen: number[] = new Array<number>(n).fill(NaN);
  let count = 0;
  const done = new Promise<void>((resolve) => {
    store.on("change", (e) => {
      const m = /^lat-(\d+)$/.exec(String(e.key));
      if (!m || e.entity !== "tasks") return;
      const i = Number(m[1]);
      if (Number.isNaN(seen[i]!)) {
        seen[i] = now();
        if (++count === n) resolve();
      }
    });
  });
  say(`ready ${store.role}`);
  // A store's channel does not keep a process alive (like an unref'd socket): this one only waits for events.
  const alive = setInterval(() => {}, 1000);
  await done;
  clearInterval(alive);
  say(JSON.stringify({ seen, role: store.role }));
  await store.close();
}

async function gets(): Promise<void> {
  const store = await openCellar();
  if (store.role === "writer" && (await store.tasks.count()) === 0) {
    await store.batch((tx) => {
      for (let i = 0; i < 1000; i++) tx.tasks.put({ id: `warm-${i}`, title: `warm ${i}` });
    });
  }
  say(`ready ${store.role}`);
  await waitForGo();
  for (let i = 0; i < 1000; i++) if (!(await store.tasks.get(`warm-${i}`))) throw new Error(`warm-${i} missing in the ${store.role}`);
  const start = now();
  for (let i = 0; i < n; i++) await store.tasks.get(`warm-${(i * 7919) % 1000}`);
  const end = now();
  say(JSON.stringify({ start, end, n, role: store.role }));
  await store.close();
}

const jobs: Record<string, () => Promise<void>> = { puts: system === "sqlite" ? sqlitePuts : cellarPuts, ack, watch, gets };
const run = jobs[job];
if (!run) throw new Error(`unknown job ${job}`);
await run();
