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

/** Whether `meter` records anything: false for the api's no-op meter (no SDK registered, or no api). */
export function meterIsLive(api: Api, meter: OtelApi.Meter): boolean {
  return !(meter instanceof (api.createNoopMeter().constructor as new () => OtelApi.Meter));
}
