/**
 * An independent reading of the calendar for the time-bucket tests: an instant's local date and time in a
 * zone straight from `Intl.DateTimeFormat(...).formatToParts` (no offset arithmetic, no search), and a
 * week's label from a date by plain UTC date arithmetic.
 */
const formats = new Map<string, Intl.DateTimeFormat>();

function parts(zone: string, t: number): Record<string, string> {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    });
    formats.set(zone, f);
  }
  return Object.fromEntries(f.formatToParts(new Date(t)).map((p) => [p.type, p.value]));
}

/** The local date of instant `t` in `zone`: "2026-03-29". */
export function dayLabelIn(zone: string, t: number): string {
  const p = parts(zone, t);
  return `${p.year}-${p.month}-${p.day}`;
}

/** The local date and time of instant `t` in `zone`: "2026-03-29 01:00:00". */
export function localTimeIn(zone: string, t: number): string {
  const p = parts(zone, t);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** The first day ("YYYY-MM-DD") of the week holding date `day`, weeks starting on ISO weekday `weekStart`. */
export function weekLabel(day: string, weekStart: number): string {
  const d = new Date(`${day}T00:00:00Z`);
  const iso = d.getUTCDay() === 0 ? 7 : d.getUTCDay();
  d.setUTCDate(d.getUTCDate() - ((iso - weekStart + 7) % 7));
  return d.toISOString().slice(0, 10);
}
