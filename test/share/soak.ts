/**
 * The soak of several processes on one store (issue 13), beyond npm test's time budget (test/share/*.test.ts
 * run the same checks smaller). Real processes (test/share/helpers/share-child.ts), one store:
 *
 * 1. Four processes write `--records` records each at the same time (one put at a time, one in ten a batch of
 *    2–5 puts). Then in every process's view every acknowledged write is present exactly once (the same
 *    records, each with its value), and every process saw exactly one change event per record.
 * 2. `--kills` times, the writer is SIGKILLed at a random moment while every process writes (puts, and
 *    updates of a counter record per process, so a write applied twice shows); a new process replaces it.
 *    Each time a new writer must be in place within 10 s (the failover times are printed). At the end every
 *    process exits when told (no deadlock), no write of a living process failed, every acknowledged put is
 *    present, the counter of each process that lived equals its acknowledged updates, and that of each
 *    killed one is its acknowledged updates or one more (the update in flight when it died). Every other
 *    replacement is lazy (`SHARE_CHILD_LAZY=1`: no change listener, so as a follower it applies the others'
 *    commits only when it reads, share/sharing.ts); once every process stopped writing, each living one's view
 *    (lazy or not) is exactly the store's as a fresh open reads it after they all closed.
 *
 *   npm run soak:share [-- --records 10000 --kills 100 --seed 1]
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { entities } from "../../src/generated/index.js";
import { openStore } from "../../src/runtime/index.js";
import { Proc, start } from "./helpers/procs.js";

const { values } = parseArgs({ options: { records: { type: "string", default: "10000" }, kills: { type: "string", default: "100" }, seed: { type: "string", default: "1" } } });
const RECORDS = Number(values.records);
const KILLS = Number(values.kills);
let seed = Number(values.seed) >>> 0;
const rand = () => {
  seed = (seed * 1664525 + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const KEY = "5a".repeat(32);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-share-soak-"));
const runtime = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-rt-"));
fs.chmodSync(runtime, 0o700);
const env = { XDG_RUNTIME_DIR: runtime, SHARE_CHILD_QUIET: "1" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const live = new Set<Proc>();

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`soak failed: ${what}`);
}

function expectedView(names: string[], n: number): string {
  const lines: string[] = [];
  for (const name of names) for (let i = 0; i < n; i++) lines.push(`${name}-${i}:v${i}`);
  return `${lines.length} ${crypto.createHash("sha256").update(lines.sort().join("\n")).digest("hex")}`;
}

async function concurrentLoad(): Promise<void> {
  const dir = path.join(tmp, "load");
  const { procs, opens } = await start(4, dir, KEY, env);
  for (const p of procs) live.add(p);
  check(opens.filter((o) => o.startsWith("open writer")).length === 1, `one writer among ${opens.join(", ")}`);
  const names = procs.map((_, i) => `p${i}`);
  const t0 = performance.now();
  const loaded = await Promise.all(procs.map((p, i) => p.send(`load ${names[i]} ${RECORDS} ${i + 1}`)));
  const seconds = (performance.now() - t0) / 1000;
  for (const l of loaded) check(l === `loaded ${RECORDS} 0`, `every write acknowledged (got "${l}")`);
  const want = expectedView(names, RECORDS);
  for (const [i, p] of procs.entries()) {
    // A follower's view and events follow the writer's pushes: give them a moment to arrive.
    let events = "";
    for (let t = 0; t < 300 && events !== `${RECORDS * 4} 0`; t++) {
      events = await p.send("events");
      if (events !== `${RECORDS * 4} 0`) await sleep(100);
    }
    check(events === `${RECORDS * 4} 0`, `process ${i}: one change event per record (keys with events, keys with more than one: ${events})`);
    check((await p.send("view")) === want, `process ${i}: its view holds every record once, with its value`);
  }
  for (const p of procs.slice(1)) check((await p.send("close")) === "closed", "a follower closes");
  check((await procs[0]!.send("close")) === "closed", "the writer closes");
  for (const p of procs) live.delete(p);
  process.stdout.write(`load: 4 processes × ${RECORDS} records in ${seconds.toFixed(1)} s (${Math.round((4 * RECORDS) / seconds)}/s); every view and every process's events exact\n`);
}

interface Member {
  proc: Proc;
  name: string;
  killed: boolean;
  /** Started with `SHARE_CHILD_LAZY=1`. */
  lazy?: boolean;
}

async function killLoop(): Promise<void> {
  const dir = path.join(tmp, "kills");
  const { procs, opens } = await start(3, dir, KEY, env);
  let serial = 0;
  const members: Member[] = procs.map((proc) => ({ proc, name: `k${serial++}`, killed: false }));
  for (const m of members) live.add(m.proc);
  let writer = members[opens.findIndex((o) => o.startsWith("open writer"))]!;
  for (const m of members) check((await m.proc.send(`run ${m.name}`)) === "running", "run starts");
  const failovers: number[] = [];
  for (let k = 0; k < KILLS; k++) {
    await sleep(100 + rand() * 300);
    const victim = writer;
    victim.proc.kill("SIGKILL");
    victim.killed = true;
    const killedAt = performance.now();
    await victim.proc.exited;
    live.delete(victim.proc);
    const survivors = members.filter((m) => !m.killed);
    // A replacement joins at once (it may find the lock free and open as the writer itself).
    const lazy = serial % 2 === 1;
    const fresh: Member = { proc: new Proc(dir, KEY, { ...env, SHARE_CHILD_LAZY: lazy ? "1" : "0" }), name: `k${serial++}`, killed: false, lazy };
    live.add(fresh.proc);
    const promoted = Promise.race(survivors.map((m) => m.proc.waitFor(/^role writer$/, 10_000).then(() => m)));
    promoted.catch(() => {}); // awaited below unless the new process is the writer
    const opened = fresh.proc.next().then((o) => {
      check(o.startsWith("open "), `a new process opens (got "${o}")`);
      return o.startsWith("open writer") ? fresh : promoted;
    });
    writer = await Promise.race([promoted, opened]);
    failovers.push(performance.now() - killedAt);
    await opened;
    members.push(fresh);
    check((await fresh.proc.send(`run ${fresh.name}`)) === "running", "run starts");
  }
  const survivors = members.filter((m) => !m.killed);
  const stops = new Map<Member, number[]>();
  for (const m of survivors) {
    const s = await m.proc.send("stop");
    check(/^stopped \d+ \d+ 0$/.test(s), `no write of a living process failed (${m.name}: ${s})`);
    stops.set(m, s.split(" ").slice(1).map(Number));
  }
  // Nothing is written any more: every living process's view, once the last pushes arrived (a lazy one's read
  // catches up by itself), is the same.
  const views = new Map<Member, string>();
  for (const m of survivors) views.set(m, await m.proc.send("view"));
  for (let t = 0; t < 100 && new Set(views.values()).size > 1; t++) {
    await sleep(100);
    for (const m of survivors) views.set(m, await m.proc.send("view"));
  }
  for (const m of [...survivors.filter((x) => x !== writer), writer]) check((await m.proc.send("close")) === "closed", `${m.name} closes`);
  const exits = await Promise.race([Promise.all(survivors.map((m) => m.proc.exited)), sleep(30_000).then(() => null)]);
  check(exits !== null && exits.every((c) => c === 0), "every process exits when told");
  for (const m of survivors) live.delete(m.proc);

  const store = await openStore({ tasks: entities.tasks }, { dir, key: Buffer.from(KEY, "hex"), sharing: false, cleanup: false });
  let puts = 0;
  try {
    const lines = (await store.tasks.list()).map((t) => `${t.id}:${t.title}`);
    const stored = `${lines.length} ${crypto.createHash("sha256").update(lines.sort().join("\n")).digest("hex")}`;
    for (const [m, v] of views) check(v === stored, `${m.name}${m.lazy ? " (lazy)" : ""}: its view before closing (${v}) is the store's (${stored})`);
    for (const m of members) {
      const acked = m.proc.events.filter((e) => e.startsWith(`ack put ${m.name}-`)).map((e) => e.slice(8));
      const updates = m.proc.events.filter((e) => e === `ack update ctr-${m.name}`).length;
      puts += acked.length;
      for (const id of acked) check((await store.tasks.get(id))?.title === `v${id.slice(m.name.length + 1)}`, `acknowledged put ${id} present`);
      const counter = Number((await store.tasks.get(`ctr-${m.name}`))?.title ?? 0);
      if (m.killed) check(counter === updates || counter === updates + 1, `${m.name} (killed): counter ${counter}, ${updates} acknowledged updates`);
      else check(counter === updates && counter === stops.get(m)![1], `${m.name}: counter ${counter} = ${updates} acknowledged updates, none applied twice`);
    }
  } finally {
    await store.close();
  }
  const sorted = [...failovers].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(0);
  const lazies = members.filter((m) => m.lazy).length;
  process.stdout.write(`kills: ${KILLS} SIGKILLs of the writer, ${members.length} processes (${lazies} lazy), ${puts} acknowledged puts all present, ${views.size} living views exact; new writer after p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${sorted.at(-1)!.toFixed(0)} ms\n`);
}

try {
  await concurrentLoad();
  await killLoop();
  process.stdout.write("soak passed\n");
} catch (e) {
  process.exitCode = 1;
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
} finally {
  for (const p of live) p.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(runtime, { recursive: true, force: true });
}
