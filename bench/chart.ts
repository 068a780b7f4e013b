/**
 * The chart next to BENCHMARKS.md: for each Cellar configuration, per workload, how many times better
 * Cellar is than each peer (throughput ratio, or the inverse ratio for times, memory and bytes), on a
 * log scale with bars growing right of 1× when Cellar is ahead and left when it is behind.
 * Plain SVG written by hand: no dependency, no network.
 */
import { formatRatio } from "./format.js";
import { metricDef, type MetricId } from "./metrics.js";
import { advantage, availableSystems, type BenchResults } from "./results.js";

/** The workloads shown, one group each. */
export const CHART_METRICS: readonly MetricId[] = [
  "put1.ops",
  "put64.ops",
  "bulk.rps",
  "settings.full.ops",
  "cold.first",
  "cold.all",
  "warm.gets",
  "mem.rss",
  "disk.bytes",
];

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948"];

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function renderChart(results: BenchResults): string {
  const cellars = availableSystems(results, "cellar");
  const peers = availableSystems(results, "peer");
  const W = 980;
  const labelW = 250;
  const x0 = labelW + 10;
  const x1 = W - 70;
  const bar = 11;
  const gap = 3;
  const groupGap = 14;
  const groupH = Math.max(1, peers.length) * (bar + gap) - gap;

  // Log-scale domain covering every value, at least 0.1×–10×, at most 1e-3×–1e3×.
  const values: number[] = [];
  for (const c of cellars)
    for (const p of peers)
      for (const m of CHART_METRICS) {
        const v = advantage(results, c.id, p.id, m);
        if (Number.isFinite(v) && v > 0) values.push(v);
      }
  const lo = Math.max(-3, Math.min(-1, Math.floor(Math.log10(Math.min(1, ...values)))));
  const hi = Math.min(3, Math.max(1, Math.ceil(Math.log10(Math.max(1, ...values)))));
  const xOf = (v: number): number => {
    const l = Math.min(hi, Math.max(lo, Math.log10(v)));
    return x0 + ((l - lo) / (hi - lo)) * (x1 - x0);
  };

  const out: string[] = [];
  let y = 20;
  out.push(
    `<text x="${W / 2}" y="${y}" text-anchor="middle" font-size="16" font-weight="bold">Cellar vs peers, per workload (${esc(results.sizes.name)} run, ${esc(results.startedAt.slice(0, 10))})</text>`,
  );
  y += 18;
  out.push(
    `<text x="${W / 2}" y="${y}" text-anchor="middle" font-size="12" fill="#555">×: how many times better Cellar is (throughput ratio; inverse ratio for latency, memory and bytes). Right of 1× = Cellar ahead. Log scale.</text>`,
  );
  y += 22;
  // Legend.
  let lx = x0;
  peers.forEach((p, i) => {
    out.push(`<rect x="${lx}" y="${y - 10}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`);
    out.push(`<text x="${lx + 16}" y="${y}" font-size="12">vs ${esc(p.label)}</text>`);
    lx += 24 + p.label.length * 7 + 24;
  });
  y += 16;

  for (const c of cellars) {
    y += 16;
    out.push(`<text x="10" y="${y}" font-size="14" font-weight="bold">${esc(c.label)}: ${esc(c.durability.replace(/`/g, ""))}</text>`);
    y += 10;
    const top = y;
    const height = CHART_METRICS.length * (groupH + groupGap);
    // Grid and axis.
    for (let e = lo; e <= hi; e++) {
      const gx = xOf(10 ** e);
      out.push(
        `<line x1="${gx}" y1="${top}" x2="${gx}" y2="${top + height}" stroke="${e === 0 ? "#333" : "#ddd"}" stroke-width="${e === 0 ? 1.5 : 1}"/>`,
      );
      out.push(`<text x="${gx}" y="${top + height + 14}" text-anchor="middle" font-size="11" fill="#555">${formatRatio(10 ** e)}</text>`);
    }
    CHART_METRICS.forEach((m, gi) => {
      const gy = top + gi * (groupH + groupGap) + groupGap / 2;
      out.push(
        `<text x="${labelW}" y="${gy + groupH / 2 + 4}" text-anchor="end" font-size="12">${esc(metricDef(m).label)}</text>`,
      );
      peers.forEach((p, pi) => {
        const by = gy + pi * (bar + gap);
        const v = advantage(results, c.id, p.id, m);
        if (!Number.isFinite(v) || v <= 0) {
          out.push(`<text x="${xOf(1) + 4}" y="${by + bar - 2}" font-size="10" fill="#999">n/a</text>`);
          return;
        }
        const a = xOf(1);
        const b = xOf(v);
        const color = PALETTE[pi % PALETTE.length];
        out.push(
          `<rect x="${Math.min(a, b)}" y="${by}" width="${Math.max(1, Math.abs(b - a))}" height="${bar}" fill="${color}"><title>${esc(`${c.label} vs ${p.label}, ${metricDef(m).label}: ${formatRatio(v)}`)}</title></rect>`,
        );
        const right = v >= 1;
        out.push(
          `<text x="${right ? b + 3 : b - 3}" y="${by + bar - 2}" text-anchor="${right ? "start" : "end"}" font-size="10">${formatRatio(v)}</text>`,
        );
      });
    });
    y = top + height + 24;
  }
  if (cellars.length === 0) {
    y += 24;
    out.push(`<text x="${W / 2}" y="${y}" text-anchor="middle" font-size="14" fill="#a00">Cellar did not run: no ratios to show (see BENCHMARKS.md, Systems).</text>`);
    y += 20;
  }
  const H = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    ...out,
    `</svg>`,
    "",
  ].join("\n");
}
