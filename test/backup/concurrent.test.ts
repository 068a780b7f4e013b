/**
 * A backup taken while writes (and a compaction) go on equals the model at the backup's point: every write
 * acknowledged before the call is in it, none issued after the call is, and of the writes in flight at the
 * call a prefix in issue order (group commit keeps that order). Writes are never held up by the copy: a write
 * issued after the call completes before the backup does.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { restoreBackup } from "../../src/runtime/index.js";
import { KEY, tempRoot, text, val } from "./helpers.js";

const { root, cleanup } = tempRoot("cellar-backup-conc-");
afterAll(cleanup);

type Op = { key: string; value: string | null };
const opArb = fc.record({ key: fc.constantFrom(...Array.from({ length: 12 }, (_, i) => `k${i}`)), value: fc.option(fc.string({ maxLength: 40 }), { nil: null, freq: 5 }) });
const toWrite = (o: Op): WriteOp[] =>
  o.value === null ? [{ op: "delete", entity: "e", key: o.key }] : [{ op: "put", entity: "e", key: o.key, version: 1, value: val(o.value), terms: [] }];

function apply(model: Map<string, string>, ops: readonly Op[]): Map<string, string> {
  const m = new Map(model);
  for (const o of ops) {
    if (o.value === null) m.delete(o.key);
    else m.set(o.key, o.value);
  }
  return m;
}

async function contents(file: string, dir: string): Promise<Map<string, string>> {
  await restoreBackup(file, { dir, key: KEY });
  const e = await Engine.open({ dir, key: KEY });
  try {
    const m = new Map<string, string>();
    for (const [k, loc] of [...e.scan("e")]) m.set(k, text(e.read("e", loc)));
    return m;
  } finally {
    await e.close();
  }
}

let run = 0;
describe("a backup during concurrent writes", () => {
  it("equals the model at its point (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { maxLength: 30 }),
        fc.array(opArb, { maxLength: 8 }),
        fc.array(opArb, { maxLength: 30 }),
        fc.constantFrom("none", "before", "after"),
        async (acked, inFlight, after, compact) => {
          const dir = path.join(root, `s${++run}`);
          const engine = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
          try {
            for (const o of acked) await engine.write(toWrite(o));
            const pending = inFlight.map((o) => engine.write(toWrite(o)));
            const compacting = compact === "before" ? engine.compact() : null;
            const file = path.join(root, `b${run}.cellarbackup`);
            const backup = engine.backup({ to: file });
            const later = after.map((o) => engine.write(toWrite(o)));
            const compacting2 = compact === "after" ? engine.compact() : null;
            await Promise.all([backup, ...pending, ...later, compacting, compacting2]);
            const got = await contents(file, path.join(root, `r${run}`));
            const base = apply(new Map(), acked);
            const allowed = Array.from({ length: inFlight.length + 1 }, (_, j) => apply(base, inFlight.slice(0, j)));
            expect(allowed.some((m) => JSON.stringify([...m].sort()) === JSON.stringify([...got].sort()))).toBe(true);
          } finally {
            await engine.close();
          }
        },
      ),
      { numRuns: 20 },
    );
  });

  it("writes issued after the call complete before the backup does, and a compaction retiring the files does not disturb the copy", async () => {
    const dir = path.join(root, "big");
    const engine = await Engine.open({ dir, key: KEY, compaction: { auto: false } });
    try {
      for (let i = 0; i < 40; i++) {
        const ops: WriteOp[] = [];
        // Incompressible values: the segment stays several MiB.
        for (let j = 0; j < 100; j++) ops.push({ op: "put", entity: "e", key: `k${i}-${j}`, version: 1, value: val(randomBytes(750).toString("base64")), terms: [] });
        await engine.write(ops);
      }
      await engine.compact();
      for (let i = 0; i < 300; i++) await engine.write([{ op: "put", entity: "e", key: `j${i}`, version: 1, value: val("x".repeat(120)), terms: [] }]);
      const size = fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
      expect(size).toBeGreaterThan(3 * 1024 * 1024); // several chunks: the copy spans event-loop turns
      const order: string[] = [];
      const file = path.join(root, "big.cellarbackup");
      let chunks = 0;
      const backup = engine.backup({ to: file, onProgress: () => chunks++ }).then(() => order.push("backup"));
      const writes = Array.from({ length: 5 }, (_, i) =>
        engine.write([{ op: "put", entity: "e", key: `after${i}`, version: 1, value: val("late"), terms: [] }]).then(() => order.push(`w${i}`)),
      );
      const compaction = engine.compact().then(() => order.push("compaction"));
      await Promise.all([backup, ...writes, compaction]);
      expect(chunks).toBeGreaterThan(2);
      for (let i = 0; i < 5; i++) expect(order.indexOf(`w${i}`)).toBeLessThan(order.indexOf("backup"));
      const got = await contents(file, path.join(root, "big-restored"));
      expect(got.size).toBe(4000 + 300);
      expect(got.has("after0")).toBe(false);
    } finally {
      await engine.close();
    }
  });
});
