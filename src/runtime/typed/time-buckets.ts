/**
 * Calendar buckets (day, week, month) in an IANA time zone, for `repo.aggregate` (aggregate.ts): pure, no
 * store. A bucket is the half-open interval of instants `[start, end)` between two local midnights:
 *
 * - a day is 24 hours, except across a daylight-saving change: 23 hours (spring forward), 25 (fall back),
 *   or whatever the zone's change is (30 minutes on Lord Howe Island);
 * - a day whose midnight does not exist (the clocks jump from 23:59:59 to 01:00, as in America/Santiago,
 *   America/Havana or Asia/Beirut some years) starts at its first instant, the moment of the change;
 * - a day whose midnight happens twice starts at the first one (as Temporal's `startOfDay`);
 * - a week starts on the local midnight of its `weekStart` day (ISO weekday, 1 = Monday … 7 = Sunday); a
 *   month on the local midnight of its 1st.
 *
 * Labels: a day `"2026-03-29"`, a week its first day's date, a month `"2026-03"`.
 *
 * Cost: boundaries come from `Intl.DateTimeFormat` (one formatter per zone, cached), a handful of
 * `formatToParts` calls per bucket (~4 µs each), never one per record: `bucketOf(t)` once for the first
 * record, then `next(bucket)` and comparisons with `bucket.end` (see aggregate.ts). Instants are epoch
 * milliseconds between years 0001 and 9999 (a protobuf Timestamp's range).
 */
import { UsageError } from "../errors.js";

export type BucketBy = "day" | "week" | "month";

export interface BucketOptions {
  readonly by: BucketBy;
  /** IANA time zone name (`"Europe/Berlin"`); default `"UTC"`. */
  readonly timeZone?: string | undefined;
  /** ISO weekday weeks start on (1 = Monday … 7 = Sunday); default 1. Only for `by: "week"`. */
  readonly weekStart?: number | undefined;
}

/** One bucket: instants `start <= t < end` (epoch ms). */
export interface TimeBucket {
  readonly start: number;
  readonly end: number;
  readonly label: string;
  /** The local calendar date the bucket starts on, as days since 1970-01-01 (internal: `next` walks from it). */
  readonly day: number;
}

const DAY_MS = 86_400_000;
/** Instants the buckets cover: 0001-01-01 to 9999-12-31 (UTC), with a day of margin for offsets. */
const MIN_INSTANT = -62_135_596_800_000 + DAY_MS;
const MAX_INSTANT = 253_402_300_799_999 - DAY_MS;

const formatters = new Map<string, Intl.DateTimeFormat>();
/**
 * Per zone (canonical name), the instant each local day computed so far starts: zone rules do not change
 * while a process runs, so repeated aggregates (a dashboard's) compute each midnight once. Bounded: a zone's
 * map is cleared past `DAY_STARTS_PER_ZONE` entries.
 */
const dayStarts = new Map<string, Map<number, number>>();
const DAY_STARTS_PER_ZONE = 20_000;

/** The canonical name of a time zone and its cached formatter; `UsageError` for a name Intl does not know. */
function formatterOf(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f) return f;
  if (typeof timeZone !== "string" || timeZone.length === 0 || timeZone.length > 64) throw badZone();
  try {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      era: "short",
    });
  } catch {
    throw badZone();
  }
  if (formatters.size > 256) formatters.clear();
  formatters.set(timeZone, f);
  return f;
}

function badZone(): UsageError {
  return new UsageError('aggregate: `bucket.timeZone` must be an IANA time zone name such as "Europe/Berlin" or "UTC"');
}

/**
 * The local wall time of instant `t` in the formatter's zone, as epoch ms of that wall time read as UTC
 * (whole seconds: Intl does not format milliseconds).
 */
function wallOf(f: Intl.DateTimeFormat, t: number): number {
  let y = 0;
  let mo = 0;
  let d = 0;
  let h = 0;
  let mi = 0;
  let s = 0;
  let bc = false;
  for (const p of f.formatToParts(t)) {
    switch (p.type) {
      case "year": y = Number(p.value); break;
      case "month": mo = Number(p.value); break;
      case "day": d = Number(p.value); break;
      case "hour": h = Number(p.value) % 24; break;
      case "minute": mi = Number(p.value); break;
      case "second": s = Number(p.value); break;
      case "era": bc = p.value === "BC" || p.value === "B"; break;
    }
  }
  const date = new Date(0);
  date.setUTCFullYear(bc ? 1 - y : y, mo - 1, d);
  date.setUTCHours(h, mi, s, 0);
  return date.getTime();
}

/** The zone's offset at instant `t` in ms (wall time − UTC), whole seconds. */
function offsetAt(f: Intl.DateTimeFormat, t: number): number {
  const whole = Math.floor(t / 1000) * 1000;
  return wallOf(f, whole) - whole;
}

/** Days since 1970-01-01 of a civil date (y, month 1..12, d). */
function civilDay(y: number, m: number, d: number): number {
  const date = new Date(0);
  date.setUTCFullYear(y, m - 1, d);
  return Math.round(date.getTime() / DAY_MS);
}

function pad(n: number, w: number): string {
  return String(n).padStart(w, "0");
}

/** "2026-03-29" for a civil day number. */
export function dayLabel(day: number): string {
  const d = new Date(day * DAY_MS);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`;
}

/**
 * Bucket boundaries for one zone, kind and week start. The start of each local day computed is kept per
 * zone (`dayStarts`), so walking buckets costs at most one midnight per bucket.
 */
export class Bucketer {
  readonly by: BucketBy;
  /** The zone's canonical name (`Intl`'s `resolvedOptions().timeZone`). */
  readonly timeZone: string;
  readonly weekStart: number;
  readonly #f: Intl.DateTimeFormat | undefined; // undefined: UTC, no Intl needed
  readonly #starts: Map<number, number>;

  constructor(options: BucketOptions) {
    const by = options.by;
    if (by !== "day" && by !== "week" && by !== "month") {
      throw new UsageError('aggregate: `bucket.by` must be "day", "week" or "month"');
    }
    const weekStart = options.weekStart ?? 1;
    if (!Number.isInteger(weekStart) || weekStart < 1 || weekStart > 7) {
      throw new UsageError("aggregate: `bucket.weekStart` must be an ISO weekday, an integer from 1 (Monday) to 7 (Sunday)");
    }
    const f = formatterOf(options.timeZone ?? "UTC");
    this.by = by;
    this.weekStart = weekStart;
    this.timeZone = f.resolvedOptions().timeZone;
    this.#f = this.timeZone === "UTC" || this.timeZone === "Etc/UTC" ? undefined : f;
    let starts = dayStarts.get(this.timeZone);
    if (!starts) {
      if (dayStarts.size >= 64) dayStarts.clear();
      dayStarts.set(this.timeZone, (starts = new Map()));
    }
    this.#starts = starts;
  }

  /** The bucket holding instant `t` (epoch ms). */
  bucketOf(t: number): TimeBucket {
    checkInstant(t);
    const day = this.#bucketDay(this.#localDay(t));
    let b = this.#make(day);
    // A local date that runs backwards (a fall-back change across midnight) may place t outside the bucket
    // of its own date: the boundaries decide.
    while (t >= b.end) b = this.next(b);
    while (t < b.start) b = this.previous(b);
    return b;
  }

  /** The bucket right after `b` (its `start` is `b.end`). */
  next(b: TimeBucket): TimeBucket {
    return this.#make(this.#step(b.day, 1));
  }

  /** The bucket right before `b` (its `end` is `b.start`). */
  previous(b: TimeBucket): TimeBucket {
    return this.#make(this.#step(b.day, -1));
  }

  /** The instant local day `day` (days since 1970-01-01) starts: its midnight, or its first instant. */
  dayStart(day: number): number {
    let s = this.#starts.get(day);
    if (s === undefined) {
      s = this.#f ? startOfDay(this.#f, day * DAY_MS) : day * DAY_MS;
      if (this.#starts.size >= DAY_STARTS_PER_ZONE) this.#starts.clear();
      this.#starts.set(day, s);
    }
    return s;
  }

  #make(day: number): TimeBucket {
    const next = this.#step(day, 1);
    return { start: this.dayStart(day), end: this.dayStart(next), label: this.#label(day), day };
  }

  #label(day: number): string {
    const l = dayLabel(day);
    return this.by === "month" ? l.slice(0, l.length - 3) : l;
  }

  /** The local calendar day of instant t. */
  #localDay(t: number): number {
    const wall = this.#f ? wallOf(this.#f, Math.floor(t / 1000) * 1000) : t;
    return Math.floor(wall / DAY_MS);
  }

  /** The first day of the bucket holding local day `day`. */
  #bucketDay(day: number): number {
    if (this.by === "day") return day;
    if (this.by === "week") {
      const iso = ((((day + 3) % 7) + 7) % 7) + 1; // 1970-01-01 was a Thursday (ISO 4)
      return day - ((iso - this.weekStart + 7) % 7);
    }
    const d = new Date(day * DAY_MS);
    return civilDay(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  }

  /** The first day of the bucket `n` (±1) after the one starting on `day`. */
  #step(day: number, n: 1 | -1): number {
    if (this.by === "day") return day + n;
    if (this.by === "week") return day + 7 * n;
    const d = new Date(day * DAY_MS);
    return civilDay(d.getUTCFullYear(), d.getUTCMonth() + 1 + n, 1);
  }
}

function checkInstant(t: number): void {
  if (typeof t !== "number" || !Number.isFinite(t) || t < MIN_INSTANT || t > MAX_INSTANT) {
    throw new UsageError("aggregate: a bucket's instant must be a finite epoch-ms time between the years 0001 and 9999");
  }
}

/**
 * The first instant whose local wall time is at or after `wall` (a local midnight as UTC ms): the earliest
 * instant showing that wall time, or, when the wall time does not exist (skipped by a change), the moment
 * of the change.
 */
function startOfDay(f: Intl.DateTimeFormat, wall: number): number {
  const before = offsetAt(f, wall - DAY_MS);
  const after = offsetAt(f, wall + DAY_MS);
  let best: number | undefined;
  for (const o of before === after ? [before] : [before, after]) {
    const t = wall - o;
    if (wallOf(f, t) === wall && (best === undefined || t < best)) best = t;
  }
  if (best !== undefined) return best;
  // The wall time does not exist: search the first instant (whole seconds) whose wall time passes it,
  // between the two offsets' readings (the change lies between them).
  let lo = wall - Math.max(before, after) - DAY_MS / 2; // wall time < `wall` here
  let hi = wall - Math.min(before, after) + DAY_MS / 2; // wall time ≥ `wall` here
  if (wallOf(f, lo) >= wall) return lo;
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2000) * 1000;
    if (mid <= lo) break;
    if (wallOf(f, mid) >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}
