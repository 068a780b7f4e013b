/**
 * A schema migration at open (issue 15 asks for its event-loop stalls): a store holding `records`
 * `focus_sessions` written at schema version 1 (the historical entity of test/fixtures/focus-history.ts,
 * bulk-loaded in batches of 1,000 and compacted), opened by today's generated code, which migrates them
 * v1 → v2 → v3 at open (pre-migration backup, verify, rewrite, switch: docs/FORMAT.md). Timed and watched
 * for stalls from `openStore` to its return. Cellar only: no peer migrates records at open.
 *
 * `npx tsx bench/lifecycle-migration.ts [--records 100000]`; `npm run bench` runs it after the workloads
 * (same record count as the bulk load).
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { FIXTURE_KEY, FocusSessionV1Entity } from "../test/fixtures/focus-history.js";
import { makeRunDir, removeDir } from "./fsutil.js";
import { StallMonitor, type StallSample } from "./stall.js";

export interface MigrationBench {
  records: number;
  ms: number;
  loop: StallSample;
}

function recordV1(i: number) {
  return {
    id: `fs-${String(i).padStart(8, "0")}`,
    startedAt: timestampFromDate(new Date(Date.UTC(2026, 0, 5, 8) + i * 37_000)),
    durationSeconds: 300 + ((i * 97) % 3000),
    plannedSeconds: [1500, 300, 900][i % 3],
    taskId: i % 4 === 0 ? "" : `task-${i % 97}`,
    kind: i % 4,
    completed: i % 3 !== 0,
    interruptions: i % 5,
    note: i % 6 === 0 ? "" : `session ${i}, deep work on the quarterly plan`,
  };
}

/** Measure one migration at open; `root` is a scratch directory (removed by the caller). */
export async function benchMigration(records: number, root: string): Promise<MigrationBench> {
  const { openStore: openRuntime } = await import("../src/runtime/typed/store.js");
  const { openStore } = await import("../src/generated/index.js");
  const dir = join(root, "store");
  const old = await openRuntime({ focusSessions: FocusSessionV1Entity }, { dir, key: FIXTURE_KEY });
  for (let i = 0; i < records; i += 1000) {
    await old.batch((tx) => {
      for (let j = i; j < Math.min(records, i + 1000); j++) tx.focusSessions.put(recordV1(j));
    });
  }
  await old.compact();
  await old.close();
  const monitor = await StallMonitor.start();
  const t = performance.now();
  const store = await openStore({ dir, key: FIXTURE_KEY });
  const ms = performance.now() - t;
  const loop = await monitor.stop();
  const n = await store.focusSessions.count();
  await store.close();
  if (n !== records) throw new Error(`migrated store holds ${n} focus sessions, expected ${records}`);
  return { records, ms, loop };
}

export function describeMigrationBench(r: MigrationBench): string {
  return (
    `migration at open of ${r.records} focus_sessions (v1 → v3, with its pre-migration backup): ${r.ms.toFixed(0)} ms; ` +
    `event loop delay p99 ${r.loop.p99.toFixed(1)} ms, max ${r.loop.max.toFixed(1)} ms, timer gap ${r.loop.gap.toFixed(1)} ms`
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { records: { type: "string", default: "100000" } } });
  const root = makeRunDir();
  try {
    process.stdout.write(`${describeMigrationBench(await benchMigration(Number(values.records), root))}\n`);
  } finally {
    removeDir(root);
  }
}
