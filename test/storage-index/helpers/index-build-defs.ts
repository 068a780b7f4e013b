/**
 * Shared by the index build tests (test/query/index-build.test.ts) and their child process: `focus_sessions`
 * hand-defined twice, before and after two indexes were added to its schema (a timestamp index and a compound
 * one), the records they write, and the checks that a store's terms and ordered indexes match a model.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { expect } from "vitest";
import { FocusSessionEntity } from "../../../src/generated/examples/focus/v1/focus_cellar.js";
import type { FocusSession } from "../../../src/generated/examples/focus/v1/focus_pb.js";
import { compareUtf8 } from "../../../src/runtime/format/segment-index.js";
import type { Engine } from "../../../src/runtime/storage/engine.js";
import { defineCollection } from "../../../src/runtime/typed/entity.js";
import { encodeComponent, indexKeyers, indexTerms } from "../../../src/runtime/typed/index-keys.js";

export const KEY = new Uint8Array(32).map((_, i) => (i * 53 + 7) & 0xff);
export const ENTITY = "focus_sessions";

// Retention left out: the records' start times are made up (a cleanup at open must not delete them). The
// generated codec too: its fast path keeps, of a write's input, only the fields the schema's indexes name
// (`startedAt` is not one of them), so writes go the general way (zod, create).
const { kind: _kind, retention: _retention, codec: _codec, ...base } = FocusSessionEntity;
const TASK = { id: "5", fields: ["taskId"], name: "task_id" };
export const before = defineCollection({ ...base, indexes: ["taskId"], indexSpecs: [TASK] });
export const after = defineCollection({
  ...base,
  indexes: ["taskId", "startedAt", "kind"],
  indexSpecs: [TASK, { id: "2", fields: ["startedAt"], name: "started_at" }, { id: "6,2", fields: ["kind", "startedAt"], name: "kind,started_at" }],
});

const T0 = Date.UTC(2026, 0, 1);

/** Record i: start times scattered over a year (not in key order), four kinds, fifty tasks. */
export function record(i: number): { id: string; startedAt: ReturnType<typeof timestampFromMs>; taskId: string; kind: number; plannedSeconds: number } {
  return {
    id: `s${String(i).padStart(6, "0")}`,
    startedAt: timestampFromMs(T0 + ((i * 7919) % 100_003) * 313_000 + (i % 1000)),
    taskId: `t${i % 50}`,
    kind: i % 4,
    plannedSeconds: 1500,
  };
}

/** Every record's terms are exactly those `def` gives its record (index-keys.ts), and each ordered index walks as a sort of the model does. */
export function checkIndexes(engine: Engine, def: typeof after, records: readonly ReturnType<typeof record>[]): void {
  const zero = create(def.schema) as unknown as Record<string, unknown>;
  const msgs = records.map((r) => create(def.schema, r) as FocusSession);
  for (const m of msgs) {
    const want = indexTerms(def, m as unknown as Record<string, unknown>, zero);
    expect([...(engine.termsOf(ENTITY, m.id) ?? [])].sort(), m.id).toEqual([...want].sort());
  }
  const ms = (m: FocusSession) => Number(m.startedAt!.seconds) * 1000 + m.startedAt!.nanos / 1e6;
  const byTime = [...msgs].sort((a, b) => ms(a) - ms(b) || compareUtf8(a.id, b.id));
  for (const k of indexKeyers(def)) {
    const ix = engine.orderedIndex(ENTITY, k.prefix, compareUtf8);
    expect(ix.size).toBe(records.length);
    if (k.spec.id === "2") expect([...ix.walk({})].map((e) => e.key)).toEqual(byTime.map((m) => m.id));
    if (k.spec.id === "6,2") {
      // Kind 2 in the first half of the year, newest first: a range on the second component under an equality.
      const mid = timestampFromMs(T0 + 182 * 86_400_000);
      const lo = encodeComponent("int32", 2);
      const hi = lo + encodeComponent("timestamp", mid);
      const want = byTime.filter((m) => m.kind === 2 && ms(m) < T0 + 182 * 86_400_000).reverse().map((m) => m.id);
      expect([...ix.walk({ lo: { sk: lo }, hi: { sk: hi, exclusive: true } }, { reverse: true })].map((e) => e.key)).toEqual(want);
      expect(ix.count({ lo: { sk: lo }, hi: { sk: lo } })).toBe(msgs.filter((m) => m.kind === 2).length);
    }
  }
}
