/**
 * Issue 12's export/import speed, in one run against its peers:
 *
 * - export: `store.export()` of N task records to NDJSON, vs better-sqlite3 selecting all N rows of the
 *   same records (`tasks(id, v JSON)`) and writing each as one line with `JSON.stringify` through a file
 *   stream (same backpressure, same fsync at the end). Target: ≥ 1.0× (rate ratio). Both stores settled
 *   first, untimed: the peer's WAL checkpointed into its database file, Cellar's bulk load compacted into a
 *   segment; Cellar's export from an unsettled store (every record in the journal) is shown too.
 * - import: `store.import()` of that file into a fresh store, vs our own bulk load of the same records into a
 *   fresh store (`batch` of `sizes.batch` puts, awaited one after another, as bench workload 3). Target: ≥ 0.8×.
 *
 * `npm run bench -- --lifecycle export [--quick] [--reps n]` (or `npx tsx bench/lifecycle-export.ts [--n N] [--reps n]`).
 * Median of the repetitions; prints one table and the ratios.
 */
import fs from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { makeRunDir, removeDir } from "./fsutil.js";
import { makeTasks, type TaskRecord } from "./records.js";
import type { Sizes } from "./sizes.js";

const KEY = new Uint8Array(32).fill(11);

type Generated = typeof import("../src/generated/index.js");

async function openCellar(dir: string) {
  const generated: Generated = await import("../src/generated/index.js");
  return generated.openStore({ dir, key: KEY });
}

async function bulkLoad(dir: string, n: number, batch: number, settle: boolean): Promise<number> {
  const records = makeTasks(0, n); // made before the clock starts, and dropped after (no measurement runs beside them)
  const store = await openCellar(dir);
  try {
    const start = performance.now();
    for (let i = 0; i < records.length; i += batch) {
      await store.batch((tx) => {
        for (let j = i; j < Math.min(records.length, i + batch); j++) tx.tasks.put(records[j]!.input);
      });
    }
    const ms = performance.now() - start;
    // Settled, untimed, as the peer's WAL is checkpointed into its database file before its export: the
    // records in a segment (a compaction), not all in the journal the bulk load wrote.
    if (settle) await store.compact();
    return ms;
  } finally {
    await store.close();
  }
}

async function cellarExport(dir: string, file: string): Promise<number> {
  const store = await openCellar(dir);
  try {
    const start = performance.now();
    await store.export({ to: file, entities: ["tasks"] });
    return performance.now() - start;
  } finally {
    await store.close();
  }
}

async function cellarImport(dir: string, file: string, n: number): Promise<{ ms: number; staged: boolean }> {
  const store = await openCellar(dir);
  try {
    const start = performance.now();
    const res = await store.import(file);
    const ms = performance.now() - start;
    if (res.records.tasks !== n || (await store.tasks.count()) !== n) throw new Error("import lost records");
    return { ms, staged: res.staged };
  } finally {
    await store.close();
  }
}

async function sqliteExport(dir: string, n: number, file: string): Promise<number> {
  let records: TaskRecord[] | null = makeTasks(0, n);
  const Database = (await import("better-sqlite3")).default;
  const db = new Database(join(dir, "store.sqlite"));
  try {
    db.pragma("journal_mode = WAL");
    db.exec("CREATE TABLE tasks (id TEXT PRIMARY KEY, v TEXT NOT NULL)");
    const put = db.prepare("INSERT INTO tasks (id, v) VALUES (?, ?)");
    db.transaction(() => {
      for (const r of records!) put.run(r.id, JSON.stringify(r.json));
    })();
    db.pragma("wal_checkpoint(TRUNCATE)");
    records = null;
    const start = performance.now();
    const out = fs.createWriteStream(file, { mode: 0o600, highWaterMark: 1 << 20 }); // as store.export
    const rows = db.prepare<[], { id: string; v: string }>("SELECT id, v FROM tasks");
    let lines: string[] = [];
    for (const row of rows.iterate()) {
      lines.push(JSON.stringify({ entity: "tasks", version: 1, key: row.id, record: JSON.parse(row.v) }));
      if (lines.length === 256) {
        if (!out.write(lines.join("\n") + "\n")) await new Promise<void>((r) => out.once("drain", () => r()));
        lines = [];
      }
    }
    if (lines.length) out.write(lines.join("\n") + "\n");
    await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
    const fd = fs.openSync(file, "r+");
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    return performance.now() - start;
  } finally {
    db.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Run the export/import workload: `n` records, `reps` repetitions, `batch` puts per bulk-load batch. */
export async function runLifecycleExport(n: number, reps: number, batch = 1000): Promise<void> {
  const runDir = makeRunDir();
  const t = { load: [] as number[], exp: [] as number[], expJournal: [] as number[], sqlite: [] as number[], imp: [] as number[] };
  let staged = false;
  let bytes = 0;
  try {
    for (let rep = 0; rep < reps; rep++) {
      const d = join(runDir, `export-${rep}`);
      fs.mkdirSync(d, { recursive: true });
      t.load.push(await bulkLoad(join(d, "loaded"), n, batch, true));
      const file = join(d, "tasks.ndjson");
      t.exp.push(await cellarExport(join(d, "loaded"), file));
      // The same export from a store whose records are all still in the journal (as bulk-loaded, not settled).
      await bulkLoad(join(d, "unsettled"), n, batch, false);
      t.expJournal.push(await cellarExport(join(d, "unsettled"), join(d, "unsettled.ndjson")));
      removeDir(join(d, "unsettled"));
      bytes = fs.statSync(file).size;
      fs.mkdirSync(join(d, "sqlite"));
      t.sqlite.push(await sqliteExport(join(d, "sqlite"), n, join(d, "sqlite.ndjson")));
      const imp = await cellarImport(join(d, "imported"), file, n);
      t.imp.push(imp.ms);
      staged = imp.staged;
      removeDir(d);
    }
  } finally {
    removeDir(runDir);
  }
  const rate = (ms: number) => Math.round(n / (ms / 1000));
  const row = (label: string, xs: number[]) => console.log(`${label.padEnd(44)} ${median(xs).toFixed(0).padStart(7)} ms  ${String(rate(median(xs))).padStart(9)} rec/s`);
  console.log(`lifecycle export/import: ${n} task records, median of ${reps}; file ${(bytes / 1e6).toFixed(1)} MB${staged ? " (import staged)" : ""}`);
  row("cellar bulk load (batches of " + batch + ")", t.load);
  row("cellar export to NDJSON (settled store)", t.exp);
  row("cellar export, records all in the journal", t.expJournal);
  row("better-sqlite3 select all + JSON.stringify", t.sqlite);
  row("cellar import (merge, fresh store)", t.imp);
  console.log(`export vs better-sqlite3: ${(median(t.sqlite) / median(t.exp)).toFixed(2)}x (target >= 1.0; from the journal: ${(median(t.sqlite) / median(t.expJournal)).toFixed(2)}x)`);
  console.log(`import vs bulk load:      ${(median(t.load) / median(t.imp)).toFixed(2)}x (target >= 0.8)`);
}

/** `npm run bench -- --lifecycle export`: the full run's 100,000 records (`--quick`: its bulk size). */
export function run(sizes: Sizes): Promise<void> {
  return runLifecycleExport(sizes.bulk, sizes.reps, sizes.batch);
}

if (process.argv[1]?.endsWith("lifecycle-export.ts")) {
  const { values } = parseArgs({ options: { n: { type: "string", default: "100000" }, reps: { type: "string", default: "3" } }, strict: true });
  await runLifecycleExport(Number(values.n), Number(values.reps));
}
