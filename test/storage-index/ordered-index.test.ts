/**
 * OrderedIndex against a plain model: a sorted array of (sk, key) filtered by the range's prefix comparison,
 * written from DESIGN's words ("an entry is ≥ lo when sk.slice(0, lo.sk.length) ≥ lo.sk …"). Random adds,
 * removes (present and absent), counts and walks with random ranges, `reverse` and `after`
 * (small alphabets make equal sks, shared prefixes and re-adds of removed entries common), across leaf splits
 * and leaves emptied.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type IndexEntry, OrderedIndex, pack, type SkRange } from "../../src/runtime/storage/ordered-index.js";
import { compareUtf8 } from "../../src/runtime/format/segment-index.js";
import { setSliceBudget } from "../../src/runtime/platform/turn.js";

/** Integer keys compared as numbers (not as strings): ties must follow `compareKeys`, not string order. */
const byNumber = (a: string, b: string): number => Number(a) - Number(b);

class Model {
  entries: IndexEntry[] = [];
  constructor(private readonly compareKeys: (a: string, b: string) => number = byNumber) {}
  private cmp = (a: IndexEntry, b: IndexEntry): number => (a.sk < b.sk ? -1 : a.sk > b.sk ? 1 : this.compareKeys(a.key, b.key));
  add(sk: string, key: string): void {
    this.addAll([{ sk, key }]);
  }
  addAll(es: readonly IndexEntry[]): void {
    const there = new Set(this.entries.map((e) => `${e.sk}\u0000${e.key}`));
    for (const e of es) if (!there.has(`${e.sk}\u0000${e.key}`)) there.add(`${e.sk}\u0000${e.key}`) && this.entries.push(e);
    this.entries.sort(this.cmp);
  }
  remove(sk: string, key: string): void {
    this.entries = this.entries.filter((e) => !(e.sk === sk && e.key === key));
  }
  inRange(sk: string, r: SkRange): boolean {
    if (r.lo) {
      const p = sk.slice(0, r.lo.sk.length);
      if (r.lo.exclusive ? !(p > r.lo.sk) : !(p >= r.lo.sk)) return false;
    }
    if (r.hi) {
      const p = sk.slice(0, r.hi.sk.length);
      if (r.hi.exclusive ? !(p < r.hi.sk) : !(p <= r.hi.sk)) return false;
    }
    return true;
  }
  walk(r: SkRange, reverse: boolean, after?: IndexEntry): IndexEntry[] {
    let out = this.entries.filter((e) => this.inRange(e.sk, r));
    if (reverse) out = out.reverse();
    if (after) out = out.filter((e) => (reverse ? this.cmp(e, after) < 0 : this.cmp(e, after) > 0));
    return out;
  }
}

const sk = fc.string({ unit: fc.constantFrom("a", "b", "c", "\u0000", "\u0001", "\uffff"), maxLength: 4 });
const key = fc.integer({ min: 0, max: 40 }).map(String);
const bound = fc.option(fc.record({ sk, exclusive: fc.boolean() }), { nil: undefined });
const range: fc.Arbitrary<SkRange> = fc.record({ lo: bound, hi: bound }).map((r) => ({ ...(r.lo ? { lo: r.lo } : {}), ...(r.hi ? { hi: r.hi } : {}) }));
/** A prefix range (lo = hi = p), which queries on equal leading components use. */
const prefixRange: fc.Arbitrary<SkRange> = sk.map((p) => ({ lo: { sk: p }, hi: { sk: p } }));

type Op =
  | { t: "add"; sk: string; key: string }
  | { t: "remove"; sk: string; key: string }
  | { t: "removeSome"; i: number }
  | { t: "check"; range: SkRange; reverse: boolean; after: number | null; afterAbsent: IndexEntry | null };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant("add" as const), sk, key }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("remove" as const), sk, key }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("removeSome" as const), i: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("check" as const),
      range: fc.oneof(range, prefixRange),
      reverse: fc.boolean(),
      after: fc.option(fc.nat(), { nil: null }),
      afterAbsent: fc.option(fc.record({ sk, key }), { nil: null }),
    }),
  },
);

function check(ix: OrderedIndex, model: Model, o: Extract<Op, { t: "check" }>): void {
  expect(ix.size).toBe(model.entries.length);
  expect(ix.count(o.range)).toBe(model.walk(o.range, false).length);
  expect([...ix.walk(o.range, { reverse: o.reverse })]).toEqual(model.walk(o.range, o.reverse));
  // `after`: an entry of the index (a cursor from a previous page), or one that is not (deleted since).
  const after = o.after !== null && model.entries.length ? model.entries[o.after % model.entries.length]! : o.afterAbsent;
  if (after) expect([...ix.walk(o.range, { reverse: o.reverse, after })]).toEqual(model.walk(o.range, o.reverse, after));
  // visitTerms: the same entries in order, as whole terms.
  const terms: string[] = [];
  ix.visitTerms(o.range, (t) => terms.push(t));
  expect(terms).toEqual(model.walk(o.range, false).map((e) => ix.prefix + e.sk));
  // visitNumbers: a number of each term, kept per leaf across checks (a change in between must drop it).
  const xs: number[] = [];
  ix.visitNumbers(o.range, "codes", codeSum, (x) => xs.push(x));
  expect(xs).toEqual(terms.map(codeSum));
}

/** The leaves' layout after a read: each holds 1 to its room entries, sorted, fenced at its last, slots past its entries empty. */
function leavesWellFormed(ix: OrderedIndex): void {
  void ix.size; // a read: the pending adds placed
  const leaves = (ix as unknown as { leaves: { n: number; sks: string[]; keys: string[]; nums: Float64Array; fSk: string; fKey: string }[] }).leaves;
  let prev: IndexEntry | undefined;
  let fence: IndexEntry | undefined;
  for (const l of leaves) {
    expect(l.n).toBeGreaterThan(0);
    expect(l.n).toBeLessThanOrEqual(Math.min(l.sks.length, 128));
    expect(l.keys.length).toBe(l.sks.length);
    expect(l.nums.length).toBe(l.sks.length);
    for (let i = l.n; i < l.sks.length; i++) expect(l.sks[i] === "" && l.keys[i] === "").toBe(true);
    for (let i = 0; i < l.n; i++) {
      const e = { sk: l.sks[i]!, key: l.keys[i]! };
      if (prev) expect(prev.sk < e.sk || (prev.sk === e.sk && byNumber(prev.key, e.key) < 0)).toBe(true);
      prev = e;
    }
    // The fence: at or past the leaf's last entry (a remove leaves it), before the next leaf's first.
    const last = { sk: l.sks[l.n - 1]!, key: l.keys[l.n - 1]! };
    expect(last.sk < l.fSk || (last.sk === l.fSk && byNumber(last.key, l.fKey) <= 0)).toBe(true);
    if (fence) expect(fence.sk < l.sks[0]! || (fence.sk === l.sks[0]! && byNumber(fence.key, l.keys[0]!) < 0)).toBe(true);
    fence = { sk: l.fSk, key: l.fKey };
  }
}

/** A number that differs for most terms: the sum of their code units weighted by position. */
function codeSum(t: string): number {
  let v = 0;
  for (let i = 0; i < t.length; i++) v += t.charCodeAt(i) * (i + 1);
  return v;
}

function run(ix: OrderedIndex, model: Model, ops: readonly Op[], each?: () => void): void {
  for (const o of ops) {
    each?.();
    if (o.t === "add") {
      ix.add(o.sk, o.key);
      model.add(o.sk, o.key);
    } else if (o.t === "remove") {
      ix.remove(o.sk, o.key);
      model.remove(o.sk, o.key);
    } else if (o.t === "removeSome") {
      const e = model.entries[o.i % Math.max(1, model.entries.length)];
      if (e) {
        ix.remove(e.sk, e.key);
        model.remove(e.sk, e.key);
      }
    } else check(ix, model, o);
  }
  check(ix, model, { t: "check", range: {}, reverse: false, after: null, afterAbsent: null });
}

describe("OrderedIndex", () => {
  it("adds, removes, counts and walks as a sorted array does (leaves split and emptied), with or without a term prefix", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), fc.constantFrom("", "\u00017\u0000", "\u00015,2\u0000"), (ops, prefix) => {
        run(new OrderedIndex(byNumber, prefix), new Model(), ops);
      }),
      { numRuns: 300 },
    );
  });

  it("an index built in one go (from) then changed at random matches the model", () => {
    const entry = fc.record({ sk, key });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 3000 }), fc.array(op, { minLength: 1500, maxLength: 2600 }), (initial, ops) => {
        const model = new Model();
        for (const e of initial) model.add(e.sk, e.key);
        // Built from whole terms (the prefix, then the sk), as the keyspace builds it.
        const prefix = "\u00012\u0000";
        const ix = OrderedIndex.from(
          byNumber,
          initial.map((e) => prefix + e.sk),
          initial.map((e) => e.key),
          prefix,
        );
        run(ix, model, ops);
      }),
      { numRuns: 12 },
    );
  });

  it("pending adds (bursts past the flush bound, removes of pending and placed entries, re-adds) match the model, built or empty", () => {
    // Long runs without a read: adds wait unplaced and are flushed in sorted batches (at the bound, by a remove
    // of a key with a pending add, or by the next read), into an index built in one go or empty at first.
    const burst: fc.Arbitrary<Op> = fc.oneof(
      { weight: 60, arbitrary: fc.record({ t: fc.constant("add" as const), sk, key }) },
      { weight: 6, arbitrary: fc.record({ t: fc.constant("remove" as const), sk, key }) },
      { weight: 6, arbitrary: fc.record({ t: fc.constant("removeSome" as const), i: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant("check" as const), range: fc.oneof(range, prefixRange), reverse: fc.boolean(), after: fc.option(fc.nat(), { nil: null }), afterAbsent: fc.constant(null) }) },
    );
    let sawPending = 0;
    fc.assert(
      fc.property(fc.array(fc.record({ sk, key }), { maxLength: 2500 }), fc.array(burst, { minLength: 300, maxLength: 3000 }), fc.boolean(), (initial, ops, built) => {
        const model = new Model();
        const prefix = "\u00013\u0000";
        let ix: OrderedIndex;
        if (built) {
          for (const e of initial) model.add(e.sk, e.key);
          ix = OrderedIndex.from(byNumber, initial.map((e) => prefix + e.sk), initial.map((e) => e.key), prefix);
        } else ix = new OrderedIndex(byNumber, prefix);
        run(ix, model, ops, () => (sawPending = Math.max(sawPending, ix.pending)));
      }),
      { numRuns: 15 },
    );
    // The bursts did leave adds pending (the path under test was taken), up to the bound.
    expect(sawPending).toBeGreaterThan(1);
  });

  it("splits keep every entry in order: 5000 adds in random order, then removing every other one, then re-adding", () => {
    const ix = new OrderedIndex(byNumber);
    const n = 5000;
    const order = Array.from({ length: n }, (_, i) => (i * 7919) % n);
    for (const i of order) ix.add(String(i % 97).padStart(2, "0"), String(i));
    expect(ix.size).toBe(n);
    const all = [...ix.walk({})];
    for (let i = 1; i < all.length; i++) {
      const a = all[i - 1]!;
      const b = all[i]!;
      expect(a.sk < b.sk || (a.sk === b.sk && Number(a.key) < Number(b.key))).toBe(true);
    }
    for (let i = 0; i < n; i += 2) ix.remove(String(i % 97).padStart(2, "0"), String(i));
    expect(ix.size).toBe(n / 2);
    expect(ix.count({ lo: { sk: "05" }, hi: { sk: "05" } })).toBe([...all].filter((e) => e.sk === "05" && Number(e.key) % 2 === 1).length);
    for (let i = 0; i < n; i += 2) ix.add(String(i % 97).padStart(2, "0"), String(i));
    expect([...ix.walk({})]).toEqual(all);
    expect([...ix.walk({}, { reverse: true })]).toEqual([...all].reverse());
  });
  it("leaves of fixed room: bursts into one leaf (split into several at once), re-adds of placed and pending entries, removes; every leaf sorted, within its room, its free slots empty", () => {
    // Each burst adds `count` entries around one sk without a read between (placed together by the next flush):
    // with `count` past 2 × LEAF (64) a leaf's merge writes into it and into several new leaves at once. Some of
    // a burst's entries are already placed (`again`: an exact duplicate of a leaf's entry) or repeated in the burst.
    type Step =
      | { t: "burst"; sk: string; from: number; count: number; again: number; twice: boolean }
      | { t: "removeSome"; i: number; n: number }
      | { t: "check"; range: SkRange; reverse: boolean };
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 4, arbitrary: fc.record({ t: fc.constant("burst" as const), sk, from: fc.nat({ max: 400 }), count: fc.integer({ min: 1, max: 400 }), again: fc.nat({ max: 50 }), twice: fc.boolean() }) },
      { weight: 2, arbitrary: fc.record({ t: fc.constant("removeSome" as const), i: fc.nat(), n: fc.integer({ min: 1, max: 150 }) }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant("check" as const), range: fc.oneof(range, prefixRange), reverse: fc.boolean() }) },
    );
    fc.assert(
      fc.property(fc.array(fc.record({ sk, key: fc.nat({ max: 2000 }).map(String) }), { maxLength: 1500 }), fc.array(step, { minLength: 1, maxLength: 40 }), fc.boolean(), (initial, steps, built) => {
        const model = new Model();
        const prefix = "\u00014\u0000";
        let ix: OrderedIndex;
        if (built) {
          for (const e of initial) model.add(e.sk, e.key);
          ix = OrderedIndex.from(byNumber, initial.map((e) => prefix + e.sk), initial.map((e) => e.key), prefix);
        } else ix = new OrderedIndex(byNumber, prefix);
        for (const st of steps) {
          if (st.t === "burst") {
            const adds: IndexEntry[] = [];
            for (let k = 0; k < st.count; k++) adds.push({ sk: st.sk + (k % 3 === 0 ? "" : "a"), key: String(st.from + k) });
            for (let k = 0; k < Math.min(st.again, model.entries.length); k++) adds.push(model.entries[(k * 7919) % model.entries.length]!);
            if (st.twice) adds.push(...adds.slice(0, 20));
            for (const e of adds) {
              ix.add(e.sk, e.key);
              model.add(e.sk, e.key);
            }
          } else if (st.t === "removeSome") {
            for (let k = 0; k < st.n && model.entries.length; k++) {
              const e = model.entries[(st.i + k * 31) % model.entries.length]!;
              ix.remove(e.sk, e.key);
              model.remove(e.sk, e.key);
            }
          } else check(ix, model, { t: "check", range: st.range, reverse: st.reverse, after: null, afterAbsent: null });
          leavesWellFormed(ix);
        }
        check(ix, model, { t: "check", range: {}, reverse: false, after: null, afterAbsent: null });
        leavesWellFormed(ix);
      }),
      { numRuns: 20 },
    );
  });

  it("placing in slices: adds past the bound are placed over later turns, reads and removes between the slices see every add, and placeSliced yields", async () => {
    const old = setSliceBudget(0); // every check after a slice's first says overdue: a slice routes 256 adds or merges one leaf
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.record({ sk, key: fc.nat({ max: 3000 }).map(String) }), { minLength: 1, maxLength: 2500 }), fc.array(op, { minLength: 20, maxLength: 100 }), fc.nat({ max: 5 }), async (initial, ops, turns) => {
          const model = new Model();
          const prefix = "\u00015\u0000";
          model.addAll(initial);
          const ix = OrderedIndex.from(byNumber, initial.map((e) => prefix + e.sk), initial.map((e) => e.key), prefix);
          // Past the bound (a quarter of the index): a placing begins; the adds stay pending until slices place them.
          const burst = Array.from({ length: ix.pendingMax + 40 }, (_, i) => ({ sk: ["a", "b", "c"][i % 3]! + String(i % 7), key: String(3001 + i) }));
          for (const e of burst) ix.add(e.sk, e.key);
          model.addAll(burst);
          expect(ix.pending).toBe(burst.length);
          for (let k = 0; k < turns; k++) await new Promise((r) => setImmediate(r));
          if (turns > 0) expect(ix.pending).toBeLessThan(burst.length); // slices ran
          // Reads, removes and more adds with the placing part done: each one sees every add.
          run(ix, model, ops);
          // placeSliced: the next burst placed over several turns, none holding all of it.
          for (const e of burst) ix.add(e.sk + "z", e.key);
          model.addAll(burst.map((e) => ({ sk: e.sk + "z", key: e.key })));
          // Other work gets turns meanwhile: a loop of setImmediate callbacks runs between its slices.
          let turnsSeen = 0;
          let placed = false;
          const other = (): void => {
            turnsSeen++;
            if (!placed) setImmediate(other);
          };
          setImmediate(other);
          await ix.placeSliced();
          placed = true;
          expect(ix.pending).toBe(0);
          expect(turnsSeen).toBeGreaterThan(0);
          check(ix, model, { t: "check", range: {}, reverse: false, after: null, afterAbsent: null });
        }),
        { numRuns: 20 },
      );
    } finally {
      setSliceBudget(old);
    }
  });

  it("packed numbers: string keys in UTF-8 order (packKeys) and long sks sharing leading digits, across rebuilds of the common prefix", () => {
    // Characters in and out of the packed range (digits, hex, letters; space, \u0000, é, \uffff, a surrogate
    // pair), sks and keys longer than the 8 packed characters, most sks sharing a long prefix as timestamps do.
    const unit = fc.constantFrom("0", "1", "9", "a", "f", "z", " ", "\u0000", "\u00e9", "\uffff", "\ud83d\ude00");
    const longSk = fc.oneof(
      { weight: 5, arbitrary: fc.tuple(fc.constantFrom("8000000069", "800000006a", "80000000"), fc.string({ unit, maxLength: 12 })).map(([a, b]) => a + b) },
      { weight: 1, arbitrary: fc.string({ unit, maxLength: 12 }) },
    );
    const strKey = fc.string({ unit, minLength: 1, maxLength: 12 });
    const ops: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ t: fc.constant("add" as const), sk: longSk, key: strKey }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant("remove" as const), sk: longSk, key: strKey }) },
      { weight: 4, arbitrary: fc.record({ t: fc.constant("removeSome" as const), i: fc.nat() }) },
      {
        weight: 1,
        arbitrary: fc.record({
          t: fc.constant("check" as const),
          range: fc.oneof(fc.record({ lo: fc.record({ sk: longSk, exclusive: fc.boolean() }), hi: fc.record({ sk: longSk, exclusive: fc.boolean() }) }), longSk.map((p) => ({ lo: { sk: p }, hi: { sk: p } }))),
          reverse: fc.boolean(),
          after: fc.option(fc.nat(), { nil: null }),
          afterAbsent: fc.constant(null),
        }),
      },
    );
    fc.assert(
      fc.property(fc.array(fc.record({ sk: longSk, key: strKey }), { maxLength: 600 }), fc.array(ops, { minLength: 200, maxLength: 1500 }), fc.boolean(), (initial, changes, built) => {
        const model = new Model(compareUtf8);
        const prefix = "\u00012\u0000";
        let ix: OrderedIndex;
        if (built) {
          for (const e of initial) model.add(e.sk, e.key);
          ix = OrderedIndex.from(compareUtf8, initial.map((e) => prefix + e.sk), initial.map((e) => e.key), prefix, true);
        } else ix = new OrderedIndex(compareUtf8, prefix, true);
        run(ix, model, changes);
      }),
      { numRuns: 25 },
    );
  });

  /** No lone surrogate (UTF-8 order is defined on code points). */
  const wellFormed = (x: string): boolean => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(x);

  it("pack never orders two strings against their UTF-16 or UTF-8 order", () => {
    const unit = fc.constantFrom("0", "5", "9", "a", "f", "z", "/", ".", "\u007f", "\u0080", " ", "\u0000", "\u0001", "\u00e9", "\uffff", "\ud83d", "\ude00", "\ue000");
    const str = fc.string({ unit, maxLength: 12 });
    fc.assert(
      fc.property(str, str, str, (common, a, b) => {
        const [s, t] = [common + a, common + b].sort(); // UTF-16 order
        expect(pack(s!, common.length)).toBeLessThanOrEqual(pack(t!, common.length));
        // Keys compare in UTF-8 byte order (compareUtf8): packed keys must agree with it too (well-formed strings).
        const [u, v] = [common + a, common + b].sort(compareUtf8);
        if (wellFormed(u!) && wellFormed(v!)) expect(pack(u!, common.length)).toBeLessThanOrEqual(pack(v!, common.length));
      }),
      { numRuns: 3000 },
    );
  });
});
