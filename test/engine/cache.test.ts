import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LruCache } from "../../src/runtime/storage/cache.js";

describe("LruCache", () => {
  it("evicts by CLOCK (second chance) within its byte budget (model check)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom("get", "set", "delete"), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1, max: 40 }))),
        (ops) => {
          const budget = 100;
          const c = new LruCache<number, string>(budget);
          // oldest first; `ref`: used since last considered for eviction
          let model: { key: number; size: number; ref: boolean }[] = [];
          for (const [op, key, size] of ops) {
            const at = model.findIndex((e) => e.key === key);
            if (op === "get") {
              expect(c.get(key)).toBe(at >= 0 ? `v${key}` : undefined);
              if (at >= 0) model[at]!.ref = true;
            } else if (op === "set") {
              c.set(key, `v${key}`, size);
              if (at >= 0) model.splice(at, 1);
              const added = { key, size, ref: false };
              if (size <= budget) model.push(added);
              let used = model.reduce((a, e) => a + e.size, 0);
              while (used > budget) {
                const e = model.shift()!;
                if (e.ref || e === added) {
                  e.ref = false;
                  model.push(e);
                } else used -= e.size;
              }
            } else {
              c.delete(key);
              if (at >= 0) model.splice(at, 1);
            }
            expect(c.size).toBe(model.length);
            expect(c.bytes).toBe(model.reduce((a, e) => a + e.size, 0));
          }
          model = [];
        },
      ),
      { numRuns: 300, seed: 7 },
    );
  });

  it("an entry read between inserts survives a stream of one-time entries", () => {
    const c = new LruCache<string, number>(10);
    c.set("hot", 0, 1);
    for (let i = 0; i < 1000; i++) {
      c.set(`cold${i}`, i, 1);
      expect(c.get("hot")).toBe(0);
    }
    expect(c.size).toBe(10);
    expect(c.get("cold0")).toBeUndefined();
    expect(c.get("cold999")).toBe(999);
  });

  it("clearing the default space keeps the other spaces' entries and their bytes", () => {
    const c = new LruCache<string | number, string>(100);
    c.set(1, "block", 10);
    c.set(2, "block", 10);
    c.set("k", "record", 7, "tasks");
    expect(c.defaultSpaceBytes).toBe(20);
    c.clearDefaultSpace();
    expect(c.get(1)).toBeUndefined();
    expect(c.get("k", "tasks")).toBe("record");
    expect(c.bytes).toBe(7);
    expect(c.defaultSpaceBytes).toBe(0);
    expect(c.size).toBe(1);
  });

  it("an entry larger than the whole budget is not kept and evicts nothing", () => {
    const c = new LruCache<string, number>(10);
    c.set("a", 1, 5);
    c.set("huge", 2, 11);
    expect(c.get("huge")).toBeUndefined();
    expect(c.get("a")).toBe(1);
  });
});
