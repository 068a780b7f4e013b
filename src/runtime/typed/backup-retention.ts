/**
 * Which backups to keep: the retention of automatic backups (`openStore({ backups: { keep } })`) and of the
 * backups taken before migrations. Pure functions over backup times: no file is read or removed here.
 *
 * The policy is the one restic's `forget` and most backup tools use ("grandfather-father-son"): `last: n`
 * keeps the n newest backups; `daily: n` keeps, for each of the n most recent days that have a backup, the
 * newest backup of that day; `weekly` and `monthly` the same by ISO week and by month. A backup kept by any
 * rule is kept. Days, weeks and months are those of the local time zone: "the backup of each of the last 7
 * days" means the user's days. Damaged backups never count toward a rule (they are kept aside from it, and
 * whether they are deleted is the caller's choice).
 */
import { UsageError } from "../errors.js";

export interface BackupKeep {
  /** The n newest backups. */
  readonly last?: number;
  /** The newest backup of each of the n most recent days that have one. */
  readonly daily?: number;
  /** The newest backup of each of the n most recent ISO weeks that have one. */
  readonly weekly?: number;
  /** The newest backup of each of the n most recent months that have one. */
  readonly monthly?: number;
}

export interface DatedBackup {
  readonly createdAt: Date;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * A duration such as `"90s"`, `"15m"`, `"6h"`, `"1d"` or `"2w"` (the units of the schema annotations), or a
 * number of milliseconds, to milliseconds. Throws `E_USAGE` naming `what` for anything else.
 */
export function parseDuration(value: string | number, what: string): number {
  if (typeof value === "number") {
    if (Number.isSafeInteger(value) && value > 0) return value;
  } else {
    const m = /^([1-9][0-9]{0,12})(ms|s|m|h|d|w)$/.exec(value);
    if (m) return Number(m[1]) * UNITS[m[2]!]!;
  }
  throw new UsageError(`\`${what}\` must be a positive whole number of milliseconds or a duration such as "6h", "1d" or "2w" (units ms, s, m, h, d, w)`);
}

/** Check a `keep` policy: each count a whole number ≥ 0, at least one of them ≥ 1. */
export function checkKeep(keep: BackupKeep, what: string): void {
  let any = false;
  for (const name of ["last", "daily", "weekly", "monthly"] as const) {
    const n = keep[name];
    if (n === undefined) continue;
    if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`\`${what}.${name}\` must be a whole number ≥ 0`);
    if (n > 0) any = true;
  }
  for (const name of Object.keys(keep)) {
    if (!["last", "daily", "weekly", "monthly"].includes(name)) throw new UsageError(`unknown \`${what}.${name}\` (expected \`last\`, \`daily\`, \`weekly\` or \`monthly\`)`);
  }
  if (!any) throw new UsageError(`\`${what}\` keeps no backup: give at least one of \`last\`, \`daily\`, \`weekly\`, \`monthly\` ≥ 1`);
}

function dayKey(d: Date): string {
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

function monthKey(d: Date): string {
  return `${d.getFullYear()}-${d.getMonth() + 1}`;
}

/** ISO 8601 week of the local date: weeks start on Monday; week 1 holds the year's first Thursday. */
export function isoWeekKey(d: Date): string {
  const day = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  const weekday = (day.getDay() + 6) % 7; // Monday 0 … Sunday 6
  day.setDate(day.getDate() - weekday + 3); // the Thursday of this week decides the year
  const year = day.getFullYear();
  const firstThursday = new Date(year, 0, 4);
  firstThursday.setDate(firstThursday.getDate() - ((firstThursday.getDay() + 6) % 7) + 3);
  const week = 1 + Math.round((day.getTime() - firstThursday.getTime()) / 604_800_000);
  return `${year}-W${week}`;
}

/**
 * The backups `keep` retains, as a set of the given objects. `backups` may be in any order; ties in time
 * keep the one listed first.
 */
export function backupsToKeep<B extends DatedBackup>(backups: readonly B[], keep: BackupKeep): Set<B> {
  const newestFirst = backups
    .map((b, i) => ({ b, i }))
    .sort((x, y) => y.b.createdAt.getTime() - x.b.createdAt.getTime() || x.i - y.i)
    .map((x) => x.b);
  const kept = new Set<B>();
  newestFirst.slice(0, keep.last ?? 0).forEach((b) => kept.add(b));
  const byPeriod = (n: number | undefined, key: (d: Date) => string) => {
    if (!n) return;
    const seen = new Set<string>();
    for (const b of newestFirst) {
      const k = key(b.createdAt);
      if (seen.has(k)) continue;
      if (seen.size === n) break;
      seen.add(k);
      kept.add(b);
    }
  };
  byPeriod(keep.daily, dayKey);
  byPeriod(keep.weekly, isoWeekKey);
  byPeriod(keep.monthly, monthKey);
  return kept;
}
