/**
 * Property: whatever a writer process does (random puts, deletes, batches, compactions, key rotations), a
 * follower that refreshes at random moments meanwhile ends with the writer's records, and its commit events
 * rebuild the same records (storage/follower.ts).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/runtime/storage/engine.js";
import { TEST_KEY, valueFor } from "../engine/helpers/model.js";
import { startChild } from "../engine/helpers/spawn.js";
import { mirror, view } from "./helpers/follower-engine.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-follower-model-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

type Step = ["put", string, number] | ["del", string] | ["batch", [string, number][]] | ["compact"] | ["rotate"];

const key = fc.integer({ min: 0, max: 9 }).map((i) => `k${i}`);
const n = fc.integer({ min: 0, max: 1_000_000 });
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: fc.tuple(fc.constant("put" as const), key, n) },
  { weight: 4, arbitrary: fc.tuple(fc.constant("del" as const), key) },
  { weight: 3, arbitrary: fc.tuple(fc.constant("batch" as const), fc.array(fc.tuple(key, n), { minLength: 1, maxLength: 4 })) },
  { weight: 1, arbitrary: fc.constant(["compact"] as Step) },
  { weight: 1, arbitrary: fc.constant(["rotate"] as Step) },
);

/** The records a plan leaves (the writer awaits each step before the next). */
function model(plan: readonly Step[]): Map<string, string> {
  const out = new Map<string, string>();
  const text = (k: string, v: number) => Buffer.from(valueFor(k, v)).toString();
  for (const s of plan) {
    if (s[0] === "put") out.set(s[1], text(s[1], s[2]));
    else if (s[0] === "del") out.delete(s[1]);
    else if (s[0] === "batch") for (const [k, v] of s[1]) out.set(k, text(k, v));
  }
  return out;
}

describe("a follower's view equals the writer's", () => {
  it("after random writes, compactions and key rotations in a writer process, refreshed at random moments", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 10, maxLength: 60 }), fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 1, maxLength: 20 }), async (plan, pauses) => {
        const dir = path.join(tmp, `run${++run}`);
        const planFile = `${dir}.plan.json`;
        fs.writeFileSync(planFile, JSON.stringify(plan));
        const { exited } = startChild("../../share/helpers/follower-engine-writer.ts", [dir, `${dir}.log`, "1", "1", planFile]);
        const f = await Engine.openFollower({ dir, key: TEST_KEY });
        const events = mirror(f);
        let done = false;
        void exited.then(() => (done = true));
        for (let i = 0; !done; i++) {
          await f.refresh();
          expect(events.records).toEqual(view(f));
          await new Promise((r) => setTimeout(r, pauses[i % pauses.length]));
        }
        const { code, stderr } = await exited;
        expect(code, stderr).toBe(0);
        await f.refresh();
        const want = model(plan);
        expect(view(f)).toEqual(want);
        expect(events.records).toEqual(want);
        expect(events.problems).toEqual([]);
        await f.close();
        const writer = await Engine.open({ dir, key: TEST_KEY });
        expect(view(writer)).toEqual(want);
        await writer.close();
      }),
      { numRuns: 3 },
    );
  }, 90_000);
});
