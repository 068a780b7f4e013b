import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { backupsToKeep, checkKeep, isoWeekKey, parseDuration } from "../../src/runtime/typed/backup-retention.js";

const at = (y: number, m: number, d: number, h = 12) => ({ createdAt: new Date(y, m - 1, d, h) });

describe("backup retention", () => {
  it("keeps the n newest with `last`", () => {
    const bs = [at(2026, 1, 1), at(2026, 1, 3), at(2026, 1, 2)];
    expect([...backupsToKeep(bs, { last: 2 })]).toEqual([bs[1], bs[2]]);
  });

  it("keeps the newest backup of each of the n most recent days that have one", () => {
    const bs = [at(2026, 3, 1, 9), at(2026, 3, 1, 18), at(2026, 3, 2, 8), at(2026, 3, 5, 7), at(2026, 3, 5, 23)];
    const kept = backupsToKeep(bs, { daily: 2 });
    expect([...kept].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())).toEqual([bs[2], bs[4]]);
  });

  it("counts weeks by ISO 8601 (Monday first, the Thursday decides the year)", () => {
    expect(isoWeekKey(new Date(2026, 0, 1))).toBe("2026-W1"); // a Thursday
    expect(isoWeekKey(new Date(2027, 0, 1))).toBe("2026-W53"); // a Friday: the last week of 2026
    expect(isoWeekKey(new Date(2024, 11, 30))).toBe("2025-W1"); // a Monday
    expect(isoWeekKey(new Date(2026, 2, 8))).toBe("2026-W10"); // a Sunday
    expect(isoWeekKey(new Date(2026, 2, 9))).toBe("2026-W11"); // the Monday after
  });

  it("keeps what any rule keeps, and monthly reaches back past the daily window", () => {
    const bs = [at(2025, 11, 30), at(2025, 12, 31), at(2026, 1, 30), at(2026, 1, 31)];
    const kept = backupsToKeep(bs, { daily: 1, monthly: 3 });
    expect(kept.size).toBe(3);
    expect(kept.has(bs[2]!)).toBe(false);
  });

  it("matches a brute-force model of the policy", () => {
    const arbKeep = fc.record({ last: fc.nat(4), daily: fc.nat(4), weekly: fc.nat(3), monthly: fc.nat(3) });
    const arbTimes = fc.array(fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2027, 0, 1) }), { maxLength: 40 });
    fc.assert(
      fc.property(arbTimes, arbKeep, (times, keep) => {
        const bs = times.map((t) => ({ createdAt: new Date(t) }));
        const kept = backupsToKeep(bs, keep);
        // Model: sort newest first; a backup is kept by a period rule when it is the newest of its period and
        // fewer than n newer periods have backups.
        const sorted = bs.map((b, i) => ({ b, i })).sort((x, y) => y.b.createdAt.getTime() - x.b.createdAt.getTime() || x.i - y.i);
        const keys: Array<[number, (d: Date) => string]> = [
          [keep.daily, (d) => d.toDateString()],
          [keep.weekly, isoWeekKey],
          [keep.monthly, (d) => `${d.getFullYear()}/${d.getMonth()}`],
        ];
        const expected = new Set(sorted.slice(0, keep.last).map((x) => x.b));
        for (const [n, key] of keys) {
          const periods: string[] = [];
          for (const { b } of sorted) {
            const k = key(b.createdAt);
            if (periods.includes(k)) continue;
            periods.push(k);
            if (periods.length <= n) expected.add(b);
          }
        }
        expect(kept).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it("parses durations and checks policies with typed errors", () => {
    expect(parseDuration("1d", "every")).toBe(86_400_000);
    expect(parseDuration("90s", "every")).toBe(90_000);
    expect(parseDuration(5000, "every")).toBe(5000);
    for (const bad of ["0d", "1y", "1.5h", "", "-1d", 0, -5, 1.5]) {
      expect(() => parseDuration(bad, "backups.every")).toThrow(expect.objectContaining({ code: "E_USAGE" }));
    }
    expect(() => checkKeep({}, "backups.keep")).toThrow(expect.objectContaining({ code: "E_USAGE" }));
    expect(() => checkKeep({ last: 0 }, "backups.keep")).toThrow(/keeps no backup/);
    expect(() => checkKeep({ last: -1 }, "backups.keep")).toThrow(/whole number/);
    expect(() => checkKeep({ yearly: 2 } as never, "backups.keep")).toThrow(/unknown/);
    expect(() => checkKeep({ daily: 7, weekly: 4 }, "backups.keep")).not.toThrow();
  });
});
