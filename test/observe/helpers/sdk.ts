/** The real OpenTelemetry SDK, in memory: a meter provider read on demand, a tracer provider, a logger that keeps every call. */
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, type MetricData, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

export interface Sdk {
  meterProvider: MeterProvider;
  tracerProvider: BasicTracerProvider;
  /** Export now; every metric by name (the last export's cumulative values). */
  collect(): Promise<Map<string, MetricData>>;
  spans(): ReadableSpan[];
  /** Everything exported so far (metrics and spans) as JSON text, for scans. */
  dump(): string;
  shutdown(): Promise<void>;
}

export function sdk(): Sdk {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  return {
    meterProvider,
    tracerProvider,
    async collect() {
      await reader.forceFlush();
      const out = new Map<string, MetricData>();
      const all = exporter.getMetrics();
      const last = all[all.length - 1];
      for (const sm of last?.scopeMetrics ?? []) for (const m of sm.metrics) out.set(m.descriptor.name, m);
      return out;
    },
    spans: () => spanExporter.getFinishedSpans(),
    dump: () =>
      JSON.stringify({
        metrics: exporter.getMetrics().map((rm) => rm.scopeMetrics),
        spans: spanExporter.getFinishedSpans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status })),
      }),
    shutdown: async () => {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}

export type LogCall = { level: string; args: unknown[] };

/** A logger with pino's level methods that keeps every call. */
export function memoryLogger(): { logger: Record<"debug" | "info" | "warn" | "error", (...a: unknown[]) => void>; calls: LogCall[]; events(): Record<string, unknown>[] } {
  const calls: LogCall[] = [];
  const at = (level: string) => (...args: unknown[]) => void calls.push({ level, args });
  return {
    logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") },
    calls,
    events: () => calls.map((c) => ({ level: c.level, ...(c.args[0] as Record<string, unknown>) })),
  };
}
