/**
 * `@opentelemetry/api`, loaded once and only if installed: an optional peer dependency, the app brings it
 * with its SDK. Loaded with `require` from this module's place (the api ships CommonJS; its registered
 * providers live on `globalThis`, so an app importing the api's ES build registers where this copy looks).
 * Without it, or with it and no SDK registered, telemetry.ts does nothing per operation.
 */
import { createRequire } from "node:module";
import type * as OtelApi from "@opentelemetry/api";

export type Api = typeof OtelApi;
export type { Attributes, Histogram, Meter, MeterProvider, ObservableResult, Span, Tracer, TracerProvider } from "@opentelemetry/api";

let loaded: Api | null | undefined;

/** The api, or null when it is not installed (or fails to load: a bundle without it). */
export function otelApi(): Api | null {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)("@opentelemetry/api") as Api;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

/**
 * Whether any copy of the api has set up its global registry (`globalThis[Symbol.for("opentelemetry.js.api.<major>")]`,
 * made by the first `metrics.setGlobalMeterProvider`, `trace.setGlobalTracerProvider`, `context` or `diag`
 * registration). Without it no provider is registered, the meter and tracer would be the api's no-ops, and
 * the api need not be loaded at all: `require("@opentelemetry/api")` was 39 ms of a 160 ms CPU profile of a
 * cold open of 100,000 records (issue 15, load ~15). A symbol lookup, no module loaded.
 */
export function otelRegistered(): boolean {
  for (const s of Object.getOwnPropertySymbols(globalThis)) {
    if (s.description?.startsWith("opentelemetry.js.api.")) return true;
  }
  return false;
}

/** Whether `meter` records anything: false for the api's no-op meter (no SDK registered, or no api). */
export function meterIsLive(api: Api, meter: OtelApi.Meter): boolean {
  return !(meter instanceof (api.createNoopMeter().constructor as new () => OtelApi.Meter));
}
