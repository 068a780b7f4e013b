import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type WriteOp } from "../../src/runtime/storage/engine.js";
import { TEST_KEY } from "./helpers/model.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-model-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

type Cmd =
  | { t: "put"; entity: string; key: string; value: string }
  | { t: "delete"; entity: string; key: string }
  | { t: "batch"; ops: ({ entity: string; key: string; value: string | null })[] }
  | { t: "compact" }
  | { t: "compactInBackground" }
  | { t: "reopen" };

const entity = fc.constantFrom("tasks", "notes");
// few keys, so that puts, deletes and overwrites of one key meet (also across a running compaction)
const key = fc.constantFrom("a", "b", "c", "d", "e", "f", "g", "\u00e9t\u00e9", "\u{1F600}", "\uE000");
const value = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ minLength: 3000, maxLength: 6000 }));
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ t: fc.constant("put" as const), entity, key, value }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("delete" as const), entity, key }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("batch" as const),
      ops: fc.array(fc.record({ entity, key, value: fc.option(value, { nil: null }) }), { minLength: 1, maxLength: 6 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: "compact" as const }) },
  // a compaction left running while the next commands write, delete and compact again
  { weight: 2, arbitrary: fc.constant({ t: "compactInBackground" as const }) },
  { weight: 1, arbitrary: fc.constant({ t: "reopen" as const }) },
);

const enc = (s: string) => new TextEncoder().encode(s);

describe("operation sequences against a Map model (fast-check)", () => {
  it("random put/delete/batch/compact/reopen sequences read back exactly like a Map", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 40 }), fc.boolean(), fc.boolean(), async (cmds, encrypted, auto) => {
        const dir = path.join(tmp, `run-${run++}`);
        const opts = encrypted ? { dir, key: TEST_KEY } : { dir, encryption: "none" as const };
        const model = new Map<string, string>();
        let e = await Engine.open({ ...opts, compaction: { auto, minDeadBytes: 8 * 1024 } });
        let background: Promise<void> = Promise.resolve();
        try {
          for (const c of cmds) {
            if (c.t === "put") {
              await e.write([{ op: "put", entity: c.entity, key: c.key, version: 1, value: enc(c.value), terms: [] }]);
              model.set(`${c.entity}/${c.key}`, c.value);
            } else if (c.t === "delete") {
              await e.write([{ op: "delete", entity: c.entity, key: c.key }]);
              model.delete(`${c.entity}/${c.key}`);
            } else if (c.t === "batch") {
              const ops: WriteOp[] = c.ops.map((o) =>
                o.value === null
                  ? { op: "delete", entity: o.entity, key: o.key }
                  : { op: "put", entity: o.entity, key: o.key, version: 1, value: enc(o.value), terms: [] },
              );
              await e.write(ops);
              for (const o of c.ops) {
                if (o.value === null) model.delete(`${o.entity}/${o.key}`);
                else model.set(`${o.entity}/${o.key}`, o.value);
              }
            } else if (c.t === "compact") {
              await e.compact();
            } else if (c.t === "compactInBackground") {
              background = e.compact();
            } else {
              await background;
              await e.close();
              e = await Engine.open(opts);
              expect(e.recovery.damaged).toEqual([]);
            }
          }
          await background;
          const seen = new Map<string, string>();
          for (const ent of ["tasks", "notes"]) {
            for (const k of e.keys(ent)) seen.set(`${ent}/${k}`, new TextDecoder().decode(e.get(ent, k)!.value));
          }
          expect(seen).toEqual(model);
          await e.close();
          const r = await Engine.open(opts);
          const after = new Map<string, string>();
          for (const ent of ["tasks", "notes"]) {
            for (const k of r.keys(ent)) after.set(`${ent}/${k}`, new TextDecoder().decode(r.get(ent, k)!.value));
          }
          await r.close();
          expect(after).toEqual(model);
        } finally {
          await e.close();
        }
      }),
      {
        numRuns: 150,
        seed: 20261122,
        // regression: a delete landing while a compaction copies the key's journal record into the new segment
        examples: [[[{ t: "put", entity: "tasks", key: "a", value: "x" }, { t: "compactInBackground" }, { t: "delete", entity: "tasks", key: "a" }], false, false]],
      },
    );
  });

  it("concurrent writes issued in one tick commit in issue order (group commit)", async () => {
    const dir = path.join(tmp, "group");
    const e = await Engine.open({ dir, key: TEST_KEY });
    const ps: Promise<void>[] = [];
    for (let i = 0; i < 500; i++) {
      ps.push(e.write([{ op: "put", entity: "x", key: `k${i % 7}`, version: 1, value: enc(String(i)), terms: [] }]));
    }
    await Promise.all(ps);
    for (let j = 0; j < 7; j++) {
      const last = [...Array(500).keys()].filter((i) => i % 7 === j).pop()!;
      expect(new TextDecoder().decode(e.get("x", `k${j}`)!.value)).toBe(String(last));
    }
    // far fewer frames than writes: the writes were grouped
    expect(e.stats().journalBytes).toBeLessThan(500 * 60);
    await e.close();
  });
});

describe("encryption at rest", () => {
  it("no string value or key of any record appears in any file's bytes", async () => {
    const dir = path.join(tmp, "grep");
    const e = await Engine.open({ dir, key: TEST_KEY });
    const secrets: string[] = [];
    for (let i = 0; i < 300; i++) {
      const v = `secret-value-${i}-sk-live-${(i * 7919).toString(36)}`;
      secrets.push(v);
      await e.write([{ op: "put", entity: "profiles", key: `user-${i}@example.com`, version: 1, value: enc(v.repeat(i % 3 === 0 ? 200 : 1)), terms: [`email\u0000user-${i}@example.com`] }]);
    }
    await e.compact();
    await e.write([{ op: "put", entity: "profiles", key: "late@example.com", version: 1, value: enc("secret-late-token"), terms: [] }]);
    await e.close();
    const needles = [...secrets, "secret-late-token", "user-1@example.com", "late@example.com", "profiles", "email"];
    const files: string[] = [];
    const walk = (d: string) => {
      for (const n of fs.readdirSync(d)) {
        const p = path.join(d, n);
        if (fs.statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(dir);
    expect(files.length).toBeGreaterThan(2);
    for (const f of files) {
      const bytes = fs.readFileSync(f);
      for (const needle of needles) expect(bytes.includes(Buffer.from(needle)), `${needle} in ${path.basename(f)}`).toBe(false);
    }
  });
});
