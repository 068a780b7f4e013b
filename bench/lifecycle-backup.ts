/**
 * Backup and restore (issue 12, "Speed"): a full online backup of a bulk-loaded Cellar store (encrypted,
 * compressed: the defaults) against copying the store's files with `cp` (alone, and followed by an fsync of
 * the copies, which a backup does), and against better-sqlite3's online `backup()` of the same records (WAL
 * table of JSON, as bench/adapters/sqlite.ts stores them); then Cellar's restore (verify every record +
 * atomic switch) against its backup. Targets: backup ≥ 0.5× the rate of `cp`, faster than better-sqlite3's
 * backup; restore ≤ 2× the backup's time.
 *
 * `npx tsx bench/lifecycle-backup.ts [--records 100000] [--reps 3]`; `npm run bench` runs it after the
 * workloads (same record count as the bulk load).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { makeRunDir, removeDir } from "./fsutil.js";
import { makeTasks } from "./records.js";
import { StallMonitor, type StallSample } from "./stall.js";

const BENCH_KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);

export interface BackupBench {
  records: number;
  storeBytes: number;
  backupBytes: number;
  cpMs: number;
  cpSyncMs: number;
  backupMs: number;
  sqliteBackupMs: number | null;
  restoreMs: number;
  /**
   * CPU time (user + system, every thread of the process: the fsyncs on the thread pool included) of the
   * backup and the restore, medians: steadier than wall time on a loaded machine, where the restore (mostly
   * CPU) is slowed far more than the backup (mostly disk waits).
   */
  backupCpuMs: number;
  restoreCpuMs: number;
  /** Event-loop stalls (issue 15; bench/stall.ts) of the repetition with the longest stall. */
  backupLoop: StallSample;
  restoreLoop: StallSample;
  sqliteBackupLoop: StallSample | null;
}

/** Of several repetitions' stalls, the one with the longest stall. */
function worst(samples: readonly StallSample[]): StallSample {
  return samples.reduce((a, b) => (b.max > a.max ? b : a));
}

/** Times `f` (ms) and records its event-loop stalls into `stalls` and, when given, its CPU time (ms) into `cpu`. */
async function timeWithStalls(f: () => Promise<unknown>, stalls: StallSample[], cpu?: number[]): Promise<number> {
  const monitor = await StallMonitor.start();
  const c = process.cpuUsage();
  const t = performance.now();
  try {
    await f();
    return performance.now() - t;
  } finally {
    const used = process.cpuUsage(c);
    cpu?.push((used.user + used.system) / 1000);
    stalls.push(await monitor.stop());
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function time(f: () => void): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}

function fsyncTree(dir: string): void {
  for (const n of fs.readdirSync(dir)) {
    const fd = fs.openSync(join(dir, n), "r");
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  }
}

async function sqliteBackup(records: number, dir: string, reps: number): Promise<{ ms: number; loop: StallSample } | null> {
  let Database: typeof import("better-sqlite3");
  try {
    Database = (await import("better-sqlite3")).default;
  } catch {
    return null;
  }
  fs.mkdirSync(dir, { recursive: true });
  const db = new Database(join(dir, "tasks.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("CREATE TABLE tasks(id TEXT PRIMARY KEY, v TEXT)");
  const insert = db.prepare("INSERT INTO tasks(id, v) VALUES (?, ?)");
  for (let i = 0; i < records; i += 1000) {
    const batch = makeTasks(i, Math.min(1000, records - i));
    db.transaction(() => {
      for (const r of batch) insert.run(r.id, JSON.stringify(r.json));
    })();
  }
  const ms: number[] = [];
  const loop: StallSample[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const to = join(dir, `backup-${rep}.db`);
    ms.push(await timeWithStalls(() => db.backup(to), loop));
    fs.rmSync(to, { force: true });
  }
  db.close();
  return { ms: median(ms), loop: worst(loop) };
}

/** Measure; `root` is a scratch directory (removed by the caller). */
export async function benchBackup(records: number, root: string, reps = 3): Promise<BackupBench> {
  const { openStore } = await import("../src/generated/index.js");
  const { restoreBackup } = await import("../src/runtime/index.js");
  const dir = join(root, "cellar");
  const store = await openStore({ dir, key: BENCH_KEY });
  for (let i = 0; i < records; i += 1000) {
    const batch = makeTasks(i, Math.min(1000, records - i));
    await store.batch((tx) => {
      for (const r of batch) tx.tasks.put(r.input);
    });
  }
  await store.compact(); // the bulk-loaded store as it settles: one segment and a fresh journal
  const storeBytes = fs.readdirSync(dir).reduce((n, f) => n + (fs.statSync(join(dir, f)).isFile() ? fs.statSync(join(dir, f)).size : 0), 0);
  const cp: number[] = [];
  const cpSync: number[] = [];
  const backup: number[] = [];
  const restore: number[] = [];
  const backupCpu: number[] = [];
  const restoreCpu: number[] = [];
  const backupLoop: StallSample[] = [];
  const restoreLoop: StallSample[] = [];
  let backupBytes = 0;
  for (let rep = 0; rep < reps; rep++) {
    const copy = join(root, `cp-${rep}`);
    cp.push(time(() => execFileSync("cp", ["-r", dir, copy])));
    removeDir(copy);
    cpSync.push(time(() => (execFileSync("cp", ["-r", dir, copy]), fsyncTree(copy))));
    removeDir(copy);
    const file = join(root, `backup-${rep}.cellarbackup`);
    backup.push(await timeWithStalls(async () => (backupBytes = (await store.backup({ to: file })).bytes), backupLoop, backupCpu));
  }
  // A restore replaces a store that is not open (E_LOCKED otherwise): the app has closed it.
  await store.close();
  for (let rep = 0; rep < reps; rep++) {
    const file = join(root, `backup-${rep}.cellarbackup`);
    const target = join(root, `restored-${rep}`);
    restore.push(await timeWithStalls(() => restoreBackup(file, { dir: target, key: BENCH_KEY }), restoreLoop, restoreCpu));
    removeDir(target);
    fs.rmSync(file);
  }
  const sqlite = await sqliteBackup(records, join(root, "sqlite"), reps);
  return {
    records,
    storeBytes,
    backupBytes,
    cpMs: median(cp),
    cpSyncMs: median(cpSync),
    backupMs: median(backup),
    sqliteBackupMs: sqlite?.ms ?? null,
    restoreMs: median(restore),
    backupCpuMs: median(backupCpu),
    restoreCpuMs: median(restoreCpu),
    backupLoop: worst(backupLoop),
    restoreLoop: worst(restoreLoop),
    sqliteBackupLoop: sqlite?.loop ?? null,
  };
}

export function describeBackupBench(r: BackupBench): string[] {
  const f = (ms: number) => `${ms.toFixed(0)} ms`;
  return [
    `backup of ${r.records} records (store files ${(r.storeBytes / 1e6).toFixed(1)} MB, backup file ${(r.backupBytes / 1e6).toFixed(1)} MB):`,
    `  cellar backup ${f(r.backupMs)}; cp ${f(r.cpMs)} (rate ratio backup/cp ${(r.cpMs / r.backupMs).toFixed(2)}×, target ≥ 0.5×); cp + fsync ${f(r.cpSyncMs)} (${(r.cpSyncMs / r.backupMs).toFixed(2)}×)`,
    r.sqliteBackupMs === null
      ? "  better-sqlite3 not installed (npm run bench:install)"
      : `  better-sqlite3 backup() ${f(r.sqliteBackupMs)} (cellar ${(r.sqliteBackupMs / r.backupMs).toFixed(2)}× as fast, target > 1×)`,
    `  cellar restore (verify every record + switch) ${f(r.restoreMs)} = ${(r.restoreMs / r.backupMs).toFixed(2)}× the backup (target ≤ 2×)`,
    `  CPU time (user + system, all threads): backup ${f(r.backupCpuMs)}, restore ${f(r.restoreCpuMs)} (${(r.restoreCpuMs / r.backupCpuMs).toFixed(2)}×)`,
    `  event loop (worst repetition): cellar backup ${loopText(r.backupLoop)}; restore ${loopText(r.restoreLoop)}` +
      (r.sqliteBackupLoop ? `; better-sqlite3 backup() ${loopText(r.sqliteBackupLoop)}` : ""),
  ];
}

function loopText(s: StallSample): string {
  return `delay p99 ${s.p99.toFixed(1)} ms, max ${s.max.toFixed(1)} ms, timer gap ${s.gap.toFixed(1)} ms`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { records: { type: "string", default: "100000" }, reps: { type: "string", default: "3" } } });
  const root = makeRunDir();
  try {
    const r = await benchBackup(Number(values.records), root, Number(values.reps));
    for (const line of describeBackupBench(r)) process.stdout.write(`${line}\n`);
  } finally {
    removeDir(root);
  }
}
