/** Number formatting shared by the terminal table, the report and the chart. */
import type { Unit } from "./metrics.js";

/** `n` with three significant digits and thousands separators: 5,480 · 172,000 · 3.71 · 0.0420. */
export function sig3(n: number): string {
  if (!Number.isFinite(n)) return "–";
  const abs = Math.abs(n);
  if (abs >= 1000) return Math.round(Number(n.toPrecision(3))).toLocaleString("en-US");
  if (abs === 0) return "0";
  return Number(n.toPrecision(3)).toString();
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return "–";
  if (Math.abs(n) >= 1e6) return `${sig3(n / 1e6)} MB`;
  if (Math.abs(n) >= 1e3) return `${sig3(n / 1e3)} kB`;
  return `${sig3(n)} B`;
}

export function formatValue(n: number, unit: Unit): string {
  switch (unit) {
    case "bytes":
      return formatBytes(n);
    case "×JSON":
      return `${sig3(n)}×`;
    case "%":
      return Number.isFinite(n) ? `${Math.round(n * 100)} %` : "–";
    case "ops":
      return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–";
    default:
      return sig3(n);
  }
}

/** A ratio as `1.23×`. */
export function formatRatio(r: number): string {
  return Number.isFinite(r) ? `${sig3(r)}×` : "–";
}
