/**
 * time-buckets.ts against an independent reading of the calendar: each instant's local date from a plain
 * `Intl.DateTimeFormat(...).formatToParts` (no offsets, no search), for zones with 1-hour, 30-minute and
 * 45-minute-offset changes, a zone without DST, and changes at midnight (Santiago, Havana, Beirut).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Bucketer, type BucketBy } from "../../src/runtime/typed/time-buckets.js";
import { isCellarError } from "../../src/runtime/errors.js";
import { dayLabelIn, localTimeIn, weekLabel } from "../helpers/calendar.js";

const ZONES = [
  "Europe/Berlin",
  "America/New_York",
  "Australia/Lord_Howe",
  "Asia/Kolkata",
  "Pacific/Chatham",
  "America/Santiago",
  "UTC",
] as const;

const HOUR = 3_600_000;
/** Instants from 2024 to 2028 (several DST changes in every zone that has them). */
const instant = fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2028, 0, 1) });

function expectedLabel(by: BucketBy, zone: string, t: number, weekStart: number): string {
  const day = dayLabelIn(zone, t);
  if (by === "day") return day;
  if (by === "week") return weekLabel(day, weekStart);
  return day.slice(0, 7);
}

describe("time buckets against Intl's local dates", () => {
  it("an instant's bucket has the label of its local date, contains it, and starts on the first instant of that label", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.constantFrom<BucketBy>("day", "week", "month"),
        fc.integer({ min: 1, max: 7 }),
        instant,
        (zone, by, weekStart, t) => {
          const b = new Bucketer({ by, timeZone: zone, weekStart }).bucketOf(t);
          expect(b.label).toBe(expectedLabel(by, zone, t, weekStart));
          expect(b.start).toBeLessThanOrEqual(t);
          expect(t).toBeLessThan(b.end);
          // The start carries the label, the instant before it does not: start is the bucket's first instant.
          expect(expectedLabel(by, zone, b.start, weekStart)).toBe(b.label);
          expect(expectedLabel(by, zone, b.start - 1, weekStart)).not.toBe(b.label);
          expect(expectedLabel(by, zone, b.end - 1, weekStart)).toBe(b.label);
          expect(expectedLabel(by, zone, b.end, weekStart)).not.toBe(b.label);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("next and previous walk adjacent buckets", () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), fc.constantFrom<BucketBy>("day", "week", "month"), instant, (zone, by, t) => {
        const bucketer = new Bucketer({ by, timeZone: zone });
        const b = bucketer.bucketOf(t);
        const n = bucketer.next(b);
        const p = bucketer.previous(b);
        expect(n.start).toBe(b.end);
        expect(p.end).toBe(b.start);
        expect(bucketer.bucketOf(n.start)).toEqual(n);
        expect(bucketer.bucketOf(p.end - 1)).toEqual(p);
      }),
      { numRuns: 200 },
    );
  });

  it("walks a year of days, each day starting where the one before ended, labels consecutive", () => {
    for (const zone of ZONES) {
      const bucketer = new Bucketer({ by: "day", timeZone: zone });
      let b = bucketer.bucketOf(Date.UTC(2026, 0, 1, 12));
      const lengths = new Map<number, number>();
      for (let i = 0; i < 366; i++) {
        expect(dayLabelIn(zone, b.start)).toBe(b.label);
        expect(dayLabelIn(zone, b.start - 1)).not.toBe(b.label);
        const n = bucketer.next(b);
        expect(n.start).toBe(b.end);
        expect(Date.parse(n.label) - Date.parse(b.label)).toBe(24 * HOUR);
        lengths.set(b.end - b.start, (lengths.get(b.end - b.start) ?? 0) + 1);
        b = n;
      }
      const other = [...lengths].filter(([len]) => len !== 24 * HOUR);
      expect(other.map(([, n]) => n).every((n) => n === 1), zone).toBe(true);
      expect(other.length, zone).toBe(zone === "UTC" || zone === "Asia/Kolkata" ? 0 : 2);
    }
  });
});

describe("daylight-saving days", () => {
  const day = (zone: string, label: string) => {
    // An instant of that local date (local noon is within 14 hours of UTC noon).
    const noon = Date.parse(`${label}T12:00:00Z`);
    const t = [0, -1, 1, -2, 2].map((k) => noon + k * 6 * HOUR).find((x) => dayLabelIn(zone, x) === label)!;
    const b = new Bucketer({ by: "day", timeZone: zone }).bucketOf(t);
    expect(b.label).toBe(label);
    return b;
  };
  const hours = (zone: string, label: string) => {
    const b = day(zone, label);
    return (b.end - b.start) / HOUR;
  };

  it("23- and 25-hour days, 30-minute changes on Lord Howe Island, 45-minute offsets in the Chathams", () => {
    expect(hours("Europe/Berlin", "2026-03-29")).toBe(23);
    expect(hours("Europe/Berlin", "2026-10-25")).toBe(25);
    expect(hours("Europe/Berlin", "2026-10-26")).toBe(24);
    expect(hours("America/New_York", "2026-03-08")).toBe(23);
    expect(hours("America/New_York", "2026-11-01")).toBe(25);
    expect(hours("Australia/Lord_Howe", "2026-04-05")).toBe(24.5);
    expect(hours("Australia/Lord_Howe", "2026-10-04")).toBe(23.5);
    expect(hours("Pacific/Chatham", "2026-04-05")).toBe(25);
    expect(hours("Pacific/Chatham", "2026-09-27")).toBe(23);
    expect(hours("Asia/Kolkata", "2026-03-29")).toBe(24);
    // Santiago changes at midnight: Saturday 24:00 back to 23:00 (a 25-hour Saturday) …
    expect(hours("America/Santiago", "2026-04-04")).toBe(25);
    expect(hours("America/Santiago", "2026-04-05")).toBe(24);
  });

  it("a day whose midnight does not exist starts at its first instant", () => {
    // … and Saturday 24:00 forward to Sunday 01:00: Sunday has no midnight. Havana and Beirut likewise.
    for (const [zone, label] of [
      ["America/Santiago", "2026-09-06"],
      ["America/Havana", "2026-03-08"],
      ["Asia/Beirut", "2026-03-29"],
    ] as const) {
      const b = day(zone, label);
      expect(localTimeIn(zone, b.start), zone).toBe(`${label} 01:00:00`);
      expect(localTimeIn(zone, b.start - 1000), zone).toMatch(/ 23:59:59$/);
      expect((b.end - b.start) / HOUR, zone).toBe(23);
      expect(new Bucketer({ by: "day", timeZone: zone }).bucketOf(b.start - 1).end).toBe(b.start);
    }
  });

  it("weeks and months across a change: a 167-hour week, Berlin's March", () => {
    const w = new Bucketer({ by: "week", timeZone: "Europe/Berlin" }).bucketOf(Date.parse("2026-03-27T12:00:00Z"));
    expect(w.label).toBe("2026-03-23");
    expect((w.end - w.start) / HOUR).toBe(167);
    const sunday = new Bucketer({ by: "week", timeZone: "Europe/Berlin", weekStart: 7 }).bucketOf(Date.parse("2026-03-27T12:00:00Z"));
    expect(sunday.label).toBe("2026-03-22");
    expect(localTimeIn("Europe/Berlin", sunday.start)).toBe("2026-03-22 00:00:00");
    const m = new Bucketer({ by: "month", timeZone: "Europe/Berlin" }).bucketOf(Date.parse("2026-03-15T12:00:00Z"));
    expect(m.label).toBe("2026-03");
    expect((m.end - m.start) / HOUR).toBe(31 * 24 - 1);
  });
});

describe("bad options", () => {
  const usage = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      expect(isCellarError(e) && e.code).toBe("E_USAGE");
      return (e as Error).message;
    }
    throw new Error("did not throw");
  };

  it("an unknown time zone, a weekStart outside 1..7, an unknown period, an instant out of range: E_USAGE", () => {
    expect(usage(() => new Bucketer({ by: "day", timeZone: "Mars/Olympus_Mons" }))).not.toContain("Mars");
    usage(() => new Bucketer({ by: "day", timeZone: "" }));
    for (const weekStart of [0, 8, 1.5, Number.NaN]) usage(() => new Bucketer({ by: "week", weekStart }));
    usage(() => new Bucketer({ by: "year" as BucketBy }));
    const b = new Bucketer({ by: "day" });
    for (const t of [Number.NaN, Infinity, -8.64e15, Date.UTC(10000, 0, 1)]) usage(() => b.bucketOf(t));
  });

  it("zone names are canonicalized", () => {
    expect(new Bucketer({ by: "day", timeZone: "europe/berlin" }).timeZone).toBe("Europe/Berlin");
    expect(new Bucketer({ by: "day" }).timeZone).toBe("UTC");
  });
});
