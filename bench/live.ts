/**
 * The terminal view while the benchmark runs: a table of medians so far (one row per system) and a
 * progress line. On a TTY the table is redrawn in place; otherwise (CI, a log file) each finished
 * measurement is printed as a line and the table is printed once at the end.
 */
import { formatValue } from "./format.js";
import { metricDef, type MetricId } from "./metrics.js";
import { metricSummary, type BenchResults } from "./results.js";

const COLUMNS: readonly { id: MetricId; title: string }[] = [
  { id: "put1.ops", title: "1 put/s" },
  { id: "put1.p99", title: "p99 ms" },
  { id: "put64.ops", title: "64∥ put/s" },
  { id: "settings.full.ops", title: "set/s full" },
  { id: "settings.empty.ops", title: "set/s empty" },
  { id: "bulk.rps", title: "bulk rec/s" },
  { id: "disk.ratio", title: "disk ×JSON" },
  { id: "cold.first", title: "1st read ms" },
  { id: "cold.all", title: "read all ms" },
  { id: "warm.gets", title: "get/s" },
  { id: "mem.rss", title: "RSS B/rec" },
];

export class LiveTable {
  readonly #tty: boolean;
  #drawn = 0;
  #status = "";
  readonly #started = Date.now();
  #ticker: NodeJS.Timeout | undefined;

  constructor(
    private readonly results: BenchResults,
    private readonly out: NodeJS.WriteStream = process.stdout,
  ) {
    this.#tty = Boolean(out.isTTY) && process.env.CI === undefined;
    if (this.#tty) {
      // Keep the elapsed time moving during long measurements (conf's bulk load takes minutes).
      this.#ticker = setInterval(() => {
        this.#clear();
        this.#draw();
      }, 1000);
      this.#ticker.unref();
    }
  }

  render(): string[] {
    const systems = this.results.systems.filter((s) => s.available);
    const head = ["system", ...COLUMNS.map((c) => c.title)];
    const rows = systems.map((s) => [
      s.label,
      ...COLUMNS.map((c) => {
        const sum = metricSummary(this.results, s.id, c.id);
        return sum.n === 0 ? "·" : formatValue(sum.median, metricDef(c.id).unit);
      }),
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
    const line = (cells: string[]): string =>
      cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
    return [line(head), widths.map((w) => "─".repeat(w)).join("  "), ...rows.map(line)];
  }

  #elapsed(): string {
    const s = Math.round((Date.now() - this.#started) / 1000);
    return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  }

  #clear(): void {
    if (this.#tty && this.#drawn > 0) this.out.write(`\x1b[${this.#drawn}F\x1b[J`);
    this.#drawn = 0;
  }

  #draw(): void {
    if (!this.#tty) return;
    const lines = [...this.render(), "", `${this.#elapsed()}  ${this.#status}`];
    this.out.write(lines.join("\n") + "\n");
    this.#drawn = lines.length;
  }

  /** What is running now. */
  status(text: string): void {
    this.#status = text;
    if (this.#tty) {
      this.#clear();
      this.#draw();
    } else {
      this.out.write(`${this.#elapsed()}  ${text}\n`);
    }
  }

  /** A line of output that stays (raw limits, errors, a finished measurement). */
  log(text: string): void {
    this.#clear();
    this.out.write(text + "\n");
    this.#draw();
  }

  /** Final table, printed once, whether or not the terminal is a TTY. */
  finish(): void {
    clearInterval(this.#ticker);
    this.#clear();
    this.out.write(["", ...this.render(), ""].join("\n") + "\n");
  }
}
