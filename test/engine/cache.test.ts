import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LruCache } from "../../src/runtime/cache.js";

describe("LruCache", () => {
  it("keeps the most recently used entries within its byte budget (model check)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom("get", "set", "delete"), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1, max: 40 }))),
        (ops) => {
          const budget = 100;
          const c = new LruCache<number, string>(budget);
          let model: { key: number; size: number }[] = []; // oldest first
          for (const [op, key, size] of ops) {
            const at = model.findIndex((e) => e.key === key);
            if (op === "get") {
              expect(c.get(key)).toBe(at >= 0 ? `v${key}` : undefined);
              if (at >= 0) model.push(...model.splice(at, 1));
            } else if (op === "set") {
              c.set(key, `v${key}`, size);
              if (at >= 0) model.splice(at, 1);
              model.push({ key, size });
              let used = model.reduce((a, e) => a + e.size, 0);
              while (used > budget) used -= model.shift()!.size;
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

  it("an entry larger than the whole budget is not kept and evicts nothing", () => {
    const c = new LruCache<string, number>(10);
    c.set("a", 1, 5);
    c.set("huge", 2, 11);
    expect(c.get("huge")).toBeUndefined();
    expect(c.get("a")).toBe(1);
  });
});
