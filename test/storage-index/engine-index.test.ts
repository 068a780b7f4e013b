/**
 * `engine.orderedIndex` and `engine.termsOf` on a real store (files in a temp dir): random puts, deletes,
 * compactions, migrations (terms rewritten by a compaction), imports (records merged in), reopens, and a
 * follower that refreshes, all checked against a Map model of each record's terms. Terms use the index term
 * format of docs/FORMAT.md ("\u0001" + id + "\u0000" + sk); old-format terms and other entities' terms must
 * stay out.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type IndexEntry, type SkRange, type WriteOp } from "../../src/runtime/storage/engine.js";
import { TEST_KEY } from "../engine/helpers/model.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-index-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Integer keys: ties by number, not by string. */
const byNumber = (a: string, b: string): number => Number(a) - Number(b);
const PREFIXES = ["\u00011\u0000", "\u00015,2\u0000"];
const term = (prefix: string, sk: string): string => prefix + sk;

type Model = Map<string, string[]>;

function expected(model: Model, prefix: string, range: SkRange = {}): IndexEntry[] {
  const out: IndexEntry[] = [];
  for (const [key, terms] of model) for (const t of new Set(terms)) if (t.startsWith(prefix)) out.push({ sk: t.slice(prefix.length), key });
  const inRange = (sk: string): boolean =>
    (!range.lo || (range.lo.exclusive ? sk.slice(0, range.lo.sk.length) > range.lo.sk : sk.slice(0, range.lo.sk.length) >= range.lo.sk)) &&
    (!range.hi || (range.hi.exclusive ? sk.slice(0, range.hi.sk.length) < range.hi.sk : sk.slice(0, range.hi.sk.length) <= range.hi.sk));
  return out.filter((e) => inRange(e.sk)).sort((a, b) => (a.sk < b.sk ? -1 : a.sk > b.sk ? 1 : byNumber(a.key, b.key)));
}

function checkEngine(engine: Engine, model: Model, ranges: readonly SkRange[]): void {
  for (const prefix of PREFIXES) {
    const ix = engine.orderedIndex("e", prefix, byNumber);
    expect([...ix.walk({})]).toEqual(expected(model, prefix));
    expect(ix.size).toBe(expected(model, prefix).length);
    for (const r of ranges) {
      expect(ix.count(r)).toBe(expected(model, prefix, r).length);
      expect([...ix.walk(r, { reverse: true })]).toEqual(expected(model, prefix, r).reverse());
    }
    // The other entity's records carry the same terms: never in `e`'s index.
    expect([...engine.orderedIndex("other", prefix, byNumber).walk({})].map((e) => e.key)).toEqual(engine.termsOf("other", "1")?.some((t) => t.startsWith(prefix)) ? ["1"] : []);
  }
  for (const [key, terms] of model) expect([...engine.termsOf("e", key)!].sort()).toEqual([...terms].sort());
  expect(engine.termsOf("e", "999999")).toBeUndefined();
  expect([...engine.orderedIndex("none", PREFIXES[0]!, byNumber).walk({})]).toEqual([]);
}

const sk = fc.string({ unit: fc.constantFrom("a", "b", "c", "\u0000"), minLength: 1, maxLength: 3 });
const terms = fc
  .record({ one: fc.uniqueArray(sk, { maxLength: 3 }), two: fc.option(sk, { nil: undefined }), old: fc.boolean() })
  .map((t) => [...t.one.map((s) => term(PREFIXES[0]!, s)), ...(t.two !== undefined ? [term(PREFIXES[1]!, t.two)] : []), ...(t.old ? [`status\u0000${t.one[0] ?? "x"}`] : [])]);
const key = fc.integer({ min: 1, max: 60 }).map(String);
const range: fc.Arbitrary<SkRange> = fc
  .record({ lo: fc.option(fc.record({ sk, exclusive: fc.boolean() }), { nil: undefined }), hi: fc.option(fc.record({ sk, exclusive: fc.boolean() }), { nil: undefined }) })
  .map((r) => ({ ...(r.lo ? { lo: r.lo } : {}), ...(r.hi ? { hi: r.hi } : {}) }));

type Step =
  | { t: "put"; puts: { key: string; terms: string[] }[] }
  | { t: "delete"; keys: string[] }
  | { t: "compact" | "reopen" | "refresh" }
  | { t: "migrate"; salt: string }
  | { t: "import"; puts: { key: string; terms: string[] }[] }
  | { t: "check"; ranges: SkRange[] };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ t: fc.constant("put" as const), puts: fc.array(fc.record({ key, terms }), { minLength: 1, maxLength: 8 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("delete" as const), keys: fc.array(key, { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constantFrom("compact" as const, "reopen" as const, "refresh" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("migrate" as const), salt: sk }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("import" as const), puts: fc.uniqueArray(fc.record({ key, terms }), { selector: (p) => p.key, minLength: 1, maxLength: 5 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("check" as const), ranges: fc.array(range, { maxLength: 3 }) }) },
);

const value = (key: string): Uint8Array => Buffer.from(`value of ${key}`);
const putOp = (entity: string, key: string, terms: readonly string[]): WriteOp => ({ op: "put", entity, key, version: 1, value: value(key), terms });

describe("engine.orderedIndex and engine.termsOf", () => {
  it("match a model of every record's terms across puts, deletes, compactions, migrations, imports, reopens and a follower's refreshes", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 10, maxLength: 45 }), async (steps) => {
        const dir = path.join(tmp, `model-${run++}`);
        const opts = { dir, key: TEST_KEY, compaction: { auto: false } };
        let engine = await Engine.open(opts);
        await engine.write([putOp("other", "1", [term(PREFIXES[0]!, "a")])]);
        const follower = await Engine.openFollower(opts);
        const model: Model = new Map();
        let version = 1;
        try {
          for (const s of steps) {
            if (s.t === "put") {
              await engine.write(s.puts.map((p) => putOp("e", p.key, p.terms)));
              for (const p of s.puts) model.set(p.key, p.terms);
            } else if (s.t === "delete") {
              await engine.write(s.keys.map((k) => ({ op: "delete", entity: "e", key: k })));
              for (const k of s.keys) model.delete(k);
            } else if (s.t === "compact") {
              await engine.compact();
            } else if (s.t === "reopen") {
              await engine.close();
              engine = await Engine.open(opts);
            } else if (s.t === "refresh") {
              await follower.refresh();
              checkEngine(follower, model, []);
            } else if (s.t === "migrate") {
              // A migration's compaction gives every record new terms: the built indexes must not keep the old ones.
              version++;
              const next = (terms: readonly string[]): string[] => terms.map((t) => (t.startsWith(PREFIXES[0]!) ? t + s.salt : t));
              await engine.rewrite({
                versions: new Map([["e", version]]),
                transform: async (_e, k, _v, v) => ({ version, value: v, terms: next(engine.termsOf("e", k)!) }),
              });
              for (const [k, t] of model) model.set(k, next(t));
            } else if (s.t === "import") {
              await engine.rewrite({
                versions: new Map(),
                transform: () => Promise.reject(new Error("no record is migrated")),
                extra: new Map([
                  [
                    "e",
                    async () =>
                      [...s.puts]
                        .sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)))
                        .map((p) => ({ key: p.key, version, value: value(p.key), terms: p.terms })),
                  ],
                ]),
              });
              for (const p of s.puts) model.set(p.key, p.terms);
            } else if (s.t === "check") {
              checkEngine(engine, model, s.ranges);
            }
          }
          checkEngine(engine, model, [{ lo: { sk: "b" } }, { lo: { sk: "a" }, hi: { sk: "a" } }]);
          await follower.refresh();
          checkEngine(follower, model, [{ hi: { sk: "b", exclusive: true } }]);
          await engine.close();
          engine = await Engine.open(opts);
          checkEngine(engine, model, []);
        } finally {
          await follower.close();
          await engine.close();
        }
      }),
      { numRuns: 15 },
    );
  });

  it("an index built before a compaction that loses nothing stays the same object and up to date; a write is seen at once", async () => {
    const dir = path.join(tmp, "same");
    const engine = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
    try {
      await engine.write(Array.from({ length: 50 }, (_, i) => putOp("e", String(i), [term(PREFIXES[0]!, String.fromCharCode(97 + (i % 5)))])));
      const ix = engine.orderedIndex("e", PREFIXES[0]!, byNumber);
      expect(ix.count({ lo: { sk: "a" }, hi: { sk: "a" } })).toBe(10);
      await engine.compact();
      expect(engine.orderedIndex("e", PREFIXES[0]!, byNumber)).toBe(ix);
      await engine.write([putOp("e", "0", [term(PREFIXES[0]!, "b")]), { op: "delete", entity: "e", key: "5" }]);
      expect(ix.count({ lo: { sk: "a" }, hi: { sk: "a" } })).toBe(8);
      expect([...ix.walk({ lo: { sk: "b" }, hi: { sk: "b" } })].map((e) => e.key).slice(0, 3)).toEqual(["0", "1", "6"]);
    } finally {
      await engine.close();
    }
  });
});
