/**
 * The engine's ordered indexes (storage/ordered-index.ts) at size, not part of `npm run bench`'s full run:
 * the synchronous build of an index on its first use (records in the segment, and in the journal), `count`,
 * a walk of 1%, and what a put costs with three built indexes against none (same records, same terms); then
 * the index build at open (typed/index-build.ts): two indexes added to `focus_sessions` with N records, its
 * time, slices and the longest the event loop waited meanwhile.
 *
 *   cd bench && npx tsx index-storage.ts [records=100000]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Engine, type WriteOp } from "../src/runtime/storage/engine.js";
import { defineCollection } from "../src/runtime/typed/entity.js";
import { openStore } from "../src/runtime/typed/store.js";
import { FocusSessionEntity } from "../src/generated/examples/focus/v1/focus_cellar.js";

const N = Number(process.argv[2] ?? 100_000);
const PREFIXES = ["\u00012\u0000", "\u00013\u0000", "\u00015,2\u0000"];
const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const KEY = new Uint8Array(32).fill(7);
const hex = (v: number, w: number): string => v.toString(16).padStart(w, "0");

/** Three terms like a timestamp index, an enum index and a compound (string, timestamp) one. */
function terms(i: number): string[] {
  const t = hex(1_700_000_000 + ((i * 7919) % N) * 300, 16) + hex(0, 8);
  return [PREFIXES[0] + t, PREFIXES[1] + hex((i % 5) ^ 0x80000000, 8), PREFIXES[2] + `p${i % 97}\u0000` + t];
}
const put = (i: number, withTerms: boolean): WriteOp => ({ op: "put", entity: "e", key: `k${hex(i, 8)}`, version: 1, value: Buffer.alloc(120, i % 251), terms: withTerms ? terms(i) : [] });

function ms(f: () => unknown): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}

async function fill(dir: string, withTerms: boolean, compact: boolean): Promise<Engine> {
  const e = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
  for (let i = 0; i < N; i += 1000) await e.write(Array.from({ length: Math.min(1000, N - i) }, (_, j) => put(i + j, withTerms)));
  if (compact) await e.compact();
  return e;
}

/** Puts of existing keys one write at a time (new terms on each), as an app updating records does: µs per put. */
async function putCost(e: Engine, withTerms: boolean, rounds: number): Promise<number> {
  const t = performance.now();
  for (let r = 0; r < rounds; r++) await e.write([put((r * 31) % N, withTerms && true)].map((o) => ({ ...o, terms: withTerms ? terms(r + N) : [] })));
  return ((performance.now() - t) * 1000) / rounds;
}

/** `focus_sessions` without retention (made-up dates), before and after indexes on `started_at` and `kind,started_at`. */
const { kind: _k, retention: _r, ...focus } = FocusSessionEntity;
const TASK = { id: "5", fields: ["taskId"], name: "task_id" };
const before = defineCollection({ ...focus, indexes: ["taskId"], indexSpecs: [TASK] });
const after = defineCollection({
  ...focus,
  codec: undefined, // its fast path keeps only the schema's index fields of an input (started_at is not one)
  indexes: ["taskId", "kind", "startedAt"],
  indexSpecs: [
    TASK,
    { id: "2", fields: ["startedAt"], name: "started_at" },
    { id: "6,2", fields: ["kind", "startedAt"], name: "kind,started_at" },
  ],
});

async function buildAtOpen(dir: string): Promise<void> {
  let store = await openStore({ focus: before }, { dir, key: KEY, sharing: false });
  for (let i = 0; i < N; i += 1000) {
    await store.batch((tx) => {
      for (let j = i; j < Math.min(N, i + 1000); j++) {
        (tx.focus as { put(v: unknown): void }).put({ id: `s${hex(j, 8)}`, startedAt: timestampFromMs(1_767_225_600_000 + ((j * 7919) % N) * 300_000), taskId: `t${j % 50}`, kind: j % 4, plannedSeconds: 1500 });
      }
    });
  }
  await store.compact();
  await store.close();
  let slices = 0;
  let gap = 0;
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
  }, 1);
  const t = performance.now();
  store = await openStore({ focus: after }, { dir, key: KEY, sharing: false, onIndexProgress: (p) => void (p.index === "started_at" && slices++) });
  const took = performance.now() - t;
  clearInterval(tick);
  await store.close();
  console.log(`index build at open, 2 indexes added to ${N} records: ${took.toFixed(0)} ms (${slices} writes), longest event-loop wait ${gap.toFixed(0)} ms (engine open included)`);
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-bench-index-"));
  try {
    for (const compact of [true, false]) {
      const e = await fill(path.join(tmp, `s${compact}`), true, compact);
      const build = PREFIXES.map((p) => ms(() => e.orderedIndex("e", p, byKey)));
      const ix = e.orderedIndex("e", PREFIXES[0]!, byKey);
      const lo = hex(1_700_000_000 + Math.floor(N / 2) * 300, 16);
      const hi = hex(1_700_000_000 + Math.floor(N / 2 + N / 100) * 300, 16);
      let n = 0;
      const count = ms(() => (n = ix.count({ lo: { sk: lo }, hi: { sk: hi, exclusive: true } })));
      let walked = 0;
      const walk = ms(() => {
        for (const _ of ix.walk({ lo: { sk: lo }, hi: { sk: hi, exclusive: true } })) walked++;
      });
      console.log(`${N} records in the ${compact ? "segment" : "journal"}: build ${build.map((b) => b.toFixed(1)).join(" / ")} ms (three indexes); count of 1% ${count.toFixed(3)} ms (${n}); walk of 1% ${walk.toFixed(2)} ms (${walked})`);
      await e.close();
    }
    // A put with three built indexes against none: full durability off, so the indexes' share is visible.
    const rounds = Math.min(20_000, N);
    const plain = await Engine.open({ dir: path.join(tmp, "plain"), key: KEY, compaction: { auto: false }, durability: "relaxed" });
    const indexed = await Engine.open({ dir: path.join(tmp, "indexed"), key: KEY, compaction: { auto: false }, durability: "relaxed" });
    for (let i = 0; i < N; i += 1000) {
      await plain.write(Array.from({ length: Math.min(1000, N - i) }, (_, j) => put(i + j, false)));
      await indexed.write(Array.from({ length: Math.min(1000, N - i) }, (_, j) => put(i + j, true)));
    }
    await putCost(plain, false, 2000);
    await putCost(indexed, true, 2000);
    const a = await putCost(plain, false, rounds);
    const b = await putCost(indexed, true, rounds);
    for (const p of PREFIXES) indexed.orderedIndex("e", p, byKey);
    const c = await putCost(indexed, true, rounds);
    console.log(
      `put (relaxed durability, ${rounds} single-record writes, each changing all three terms): no terms ${a.toFixed(1)} µs; three terms, indexes not built ${b.toFixed(1)} µs; built ${c.toFixed(1)} µs (maintenance ${(c - b).toFixed(1)} µs, ${(c / b).toFixed(2)}×)`,
    );
    await plain.close();
    await indexed.close();
    await buildAtOpen(path.join(tmp, "build"));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
