/**
 * `StoreTelemetry`: one store's metrics, spans and log records (docs/OBSERVABILITY.md). Made at open
 * (`openStore`), before the engine, whose hooks (storage/hooks.ts) and file I/O (fsync timing) it is given;
 * the typed layer wraps the repositories' calls with `timed` (instrument.ts) and hands over the store's
 * events (`event`). With no api installed, or no SDK registered (the meter is the api's no-op), it makes no
 * instrument, wraps nothing and hooks nothing per operation: only the log records of rare events remain.
 */
import path from "node:path";
import { isCellarError } from "../errors.js";
import type { FileIO } from "../platform/io.js";
import type { EngineHooks, HookEnd } from "../storage/hooks.js";
import { Instruments, ATTR, DB_SYSTEM } from "./metrics.js";
import { type Log, type Logger, toLog } from "./logger.js";
import { type Api, type Attributes, meterIsLive, type MeterProvider, otelApi, otelRegistered, type Span, type Tracer, type TracerProvider } from "./otel.js";
import { Observers, type ObservedStore } from "./observers.js";

/** `openStore({ telemetry })`: where metrics and spans go. */
export interface TelemetryOptions {
  /** Default: the globally registered one (`metrics.setGlobalMeterProvider`, an SDK's `start()`). */
  meterProvider?: unknown;
  /** Default: the globally registered one. */
  tracerProvider?: unknown;
  /** `db.namespace` of every metric and span. Default: the store directory's name (its basename, never the full path). */
  namespace?: string;
}

/** The options of `openStore` this layer reads (`StoreOptions` extends them). */
export interface ObserveOptions {
  /**
   * Where the store logs what an operator needs (open, recovery, migration, compaction, backup, damage,
   * errors, promotion): pino, `console`, or any object with `debug`, `info`, `warn` and `error`, called as
   * `logger.info({ event: "compaction", store, kind, ms, … }, "cellar: compaction")`. Never a stored or
   * submitted value, a key or a full path (docs/OBSERVABILITY.md). Default: no logging.
   * Example: `logger: pino()`.
   */
  logger?: Logger;
  /**
   * Metrics and spans through `@opentelemetry/api` (an optional peer dependency: without it, or without an SDK
   * registered before open, nothing is recorded and operations are not wrapped). Default: the global meter
   * and tracer providers, `db.namespace` the store directory's name. `false`: none.
   * Example: `telemetry: { meterProvider, namespace: "notes" }` (docs/OBSERVABILITY.md).
   */
  telemetry?: TelemetryOptions | false;
}

/** `io`'s methods bound to it, in an object of their own (a class-based `FileIO` keeps its `this`). */
function bound(io: FileIO): FileIO {
  const out: Record<string, unknown> = {};
  for (let o: object | null = io; o && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const k of Object.getOwnPropertyNames(o)) {
      const v = (io as unknown as Record<string, unknown>)[k];
      if (k !== "constructor" && !(k in out) && typeof v === "function") out[k] = v.bind(io);
    }
  }
  return out as unknown as FileIO;
}

/** An error's `error.type`: a Cellar error's code, else `_OTHER` (the conventions' fallback). */
export function errorType(e: unknown): string {
  return isCellarError(e) ? e.code : "_OTHER";
}

export class StoreTelemetry {
  readonly log: Log;
  /** Null: metrics off (no api, no SDK, or `telemetry: false`). */
  readonly instruments: Instruments | null;
  readonly base: Attributes;
  private readonly tracer: Tracer | null;
  private readonly api: Api | null;
  private observers: Observers | null = null;
  private readonly opAttrs = new Map<string, Attributes>();

  constructor(dir: string, logger: Logger | undefined, options: TelemetryOptions | false | undefined) {
    const o = options || {};
    const namespace = o.namespace || path.basename(path.resolve(dir));
    this.log = toLog(logger, namespace);
    this.base = Object.freeze({ [ATTR.system]: DB_SYSTEM, [ATTR.namespace]: namespace });
    // The api is loaded only when something could record: a provider given here, or one registered globally.
    const wanted = options !== false && (o.meterProvider !== undefined || o.tracerProvider !== undefined || otelRegistered());
    const api = wanted ? otelApi() : null;
    this.api = api;
    const meter = api ? ((o.meterProvider as MeterProvider | undefined) ?? api.metrics.getMeterProvider()).getMeter("cellar") : null;
    this.instruments = api && meter && meterIsLive(api, meter) ? new Instruments(meter) : null;
    this.tracer = api ? ((o.tracerProvider as TracerProvider | undefined) ?? api.trace.getTracerProvider()).getTracer("cellar") : null;
  }

  /** The attributes of `operation` on `collection` (null: a store-wide call such as `batch`), made once. */
  operationAttributes(collection: string | null, operation: string): Attributes {
    const id = `${collection ?? ""}\u0000${operation}`;
    let a = this.opAttrs.get(id);
    if (!a) {
      a = Object.freeze({ ...this.base, [ATTR.operation]: operation, ...(collection !== null ? { [ATTR.collection]: collection } : {}) });
      this.opAttrs.set(id, a);
    }
    return a;
  }

  /** Record one operation's duration since `start` (`performance.now()`), with `error.type` when it failed. */
  recordOperation(attrs: Attributes, start: number, error: unknown, failed: boolean): void {
    const s = (performance.now() - start) / 1000;
    this.instruments!.operationDuration.record(s, failed ? { ...attrs, [ATTR.errorType]: errorType(error) } : attrs);
  }

  /** The engine's hooks: group sizes (metrics on), compactions and backups (always: spans and logs). */
  hooks(backupKind: (label: string) => string): EngineHooks {
    const group = this.instruments?.commitGroupSize;
    const base = this.base;
    return {
      ...(group ? { committed: (writes: number) => group.record(writes, base) } : {}),
      compaction: (start) => this.compactionStarted(start.kind, start.bytesBefore),
      backup: (label) => this.backupStarted(backupKind(label)),
    };
  }

  /** `io` with every fsync and fdatasync timed into `cellar.fsync.duration` (metrics on), else `io` itself. */
  timedIO(io: FileIO): FileIO {
    const h = this.instruments?.fsyncDuration;
    if (!h) return io;
    const base = this.base;
    const timed = bound(io);
    const wrap = (f: (fd: number) => void) => (fd: number) => {
      const t = performance.now();
      try {
        f.call(io, fd);
      } finally {
        h.record((performance.now() - t) / 1000, base);
      }
    };
    timed.datasync = wrap(io.datasync);
    timed.fsync = wrap(io.fsync);
    // The thread pool's (a large commit's fdatasync, a segment's fsync): timed from the call to its settling.
    const wrapAsync = (f: (fd: number) => Promise<void>) => (fd: number) => {
      const t = performance.now();
      return f.call(io, fd).finally(() => h.record((performance.now() - t) / 1000, base));
    };
    if (io.datasyncAsync) timed.datasyncAsync = wrapAsync(io.datasyncAsync);
    if (io.fsyncAsync) timed.fsyncAsync = wrapAsync(io.fsyncAsync);
    return timed;
  }

  /** Run `fn` in a span `name` (ended, its error recorded, when `fn` settles). */
  async span<T>(name: string, attrs: Attributes, fn: (span: Span | null) => Promise<T>): Promise<T> {
    const span = this.startSpan(name, attrs);
    try {
      const out = await fn(span);
      span?.end();
      return out;
    } catch (e) {
      this.endSpan(span, e);
      throw e;
    }
  }

  startSpan(name: string, attrs: Attributes): Span | null {
    return this.tracer ? this.tracer.startSpan(name, { attributes: { ...this.base, ...attrs } }) : null;
  }

  /** End `span`; with `error`, its status ERROR and `error.type` (a Cellar error's message: never a value; another error's: withheld). */
  endSpan(span: Span | null, error?: unknown): void {
    if (!span) return;
    if (error !== undefined && error !== null) {
      const type = errorType(error);
      span.setAttribute(ATTR.errorType, type);
      span.recordException({ name: type, message: isCellarError(error) ? error.message : "(not a Cellar error: message withheld)" });
      span.setStatus({ code: this.api!.SpanStatusCode.ERROR, message: type });
    }
    span.end();
  }

  private compactionStarted(kind: string, bytesBefore: number): HookEnd<{ bytesAfter: number }> {
    const t = performance.now();
    const span = this.startSpan("cellar.compaction", { [ATTR.compactionKind]: kind, "cellar.compaction.bytes_before": bytesBefore });
    return ({ error, result }) => {
      const ms = performance.now() - t;
      const failed = error !== null && error !== undefined;
      if (this.instruments) {
        const a = { ...this.base, [ATTR.compactionKind]: kind, ...(failed ? { [ATTR.errorType]: errorType(error) } : {}) };
        this.instruments.compactions.add(1, a);
        this.instruments.compactionDuration.record(ms / 1000, a);
      }
      if (result) span?.setAttribute("cellar.compaction.bytes_after", result.bytesAfter);
      this.endSpan(span, failed ? error : undefined);
      if (failed) this.log("error", { event: "compaction", kind, ms: Math.round(ms), code: errorType(error) });
      else this.log("info", { event: "compaction", kind, ms: Math.round(ms), bytesBefore, bytesAfter: result?.bytesAfter });
    };
  }

  private backupStarted(kind: string): HookEnd<{ file: string; bytes: number; createdAt: Date; entities: readonly { records: number }[] }> {
    const t = performance.now();
    const span = this.startSpan("cellar.backup", { [ATTR.backupKind]: kind });
    return ({ error, result }) => {
      const ms = performance.now() - t;
      const failed = error !== null && error !== undefined;
      this.instruments?.backupDuration.record(ms / 1000, { ...this.base, [ATTR.backupKind]: kind, ...(failed ? { [ATTR.errorType]: errorType(error) } : {}) });
      if (result) {
        span?.setAttributes({ "cellar.backup.bytes": result.bytes, "cellar.backup.records": result.entities.reduce((n, e) => n + e.records, 0) });
        if (kind === "automatic") this.observers?.backupTaken(result.createdAt.getTime());
      }
      this.endSpan(span, failed ? error : undefined);
      if (failed) this.log("error", { event: "backup", kind, ms: Math.round(ms), code: errorType(error) });
      // A manual backup's or an archive's file name is the app's (it may name a person): only Cellar's own names are logged.
      else this.log("info", { event: "backup", kind, ms: Math.round(ms), bytes: result?.bytes, ...(result && (kind === "automatic" || kind === "pre-migration") ? { file: path.basename(result.file) } : {}) });
    };
  }

  /** Once the store is open: the observable gauges and counters (metrics on). */
  observe(store: ObservedStore): void {
    if (this.instruments) this.observers = new Observers(this.instruments, this.base, store);
  }

  /** A store event (typed/events.ts): damage counted and logged, errors and promotions logged. */
  event(name: string, arg: unknown): void {
    if (name === "corruption") this.corruption(arg);
    else if (name === "error") this.log("warn", { event: "error", code: errorType(arg) });
    else if (name === "role") this.log("info", { event: "promotion", role: arg });
  }

  private corruption(arg: unknown): void {
    if (isCellarError(arg)) {
      const e = arg as { file?: unknown; offset?: unknown; reason?: unknown };
      this.instruments?.corruptions.add(1, { ...this.base, [ATTR.corruptionPhase]: "after_open" });
      this.log("error", { event: "corruption", code: arg.code, file: e.file, offset: e.offset, reason: e.reason });
      return;
    }
    const damaged = (arg as { damaged?: readonly unknown[] }).damaged ?? [];
    if (damaged.length) this.instruments?.corruptions.add(damaged.length, { ...this.base, [ATTR.corruptionPhase]: "open" });
  }

  /** The store closed (or its open failed: `logged` false): its observable callbacks go. */
  close(logged = true): void {
    this.observers?.close();
    this.observers = null;
    if (logged) this.log("info", { event: "close" });
  }
}
