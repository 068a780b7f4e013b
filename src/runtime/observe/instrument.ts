/**
 * `db.client.operation.duration` for the repositories' calls: each method named here is replaced, on the
 * repository object itself (an own property shadowing the class's method), by one that times the call and
 * records it with the attributes made once per (entity, operation). Done only when metrics are on, so a
 * store without an SDK runs the class's methods untouched.
 */
import type { Attributes } from "./otel.js";
import type { StoreTelemetry } from "./telemetry.js";

/** The collection methods timed (`db.operation.name` is the method's name). */
export const COLLECTION_OPERATIONS = ["get", "getMany", "put", "putMany", "update", "delete", "has", "count", "keys", "list", "query", "queryPage", "aggregate", "history", "revert"] as const;
/** The singleton methods timed. */
export const SINGLETON_OPERATIONS = ["get", "set", "update", "reset", "history", "revert"] as const;
/** The store's own methods timed, with no `db.collection.name`. */
export const STORE_OPERATIONS = ["batch"] as const;

/** Replace `names` of `target` by timed calls of `collection`'s operations (null: store-wide). */
export function timeMethods(t: StoreTelemetry, target: object, names: readonly string[], collection: string | null): void {
  for (const name of names) {
    const f = (target as Record<string, unknown>)[name];
    if (typeof f !== "function") continue;
    Object.defineProperty(target, name, { value: timed(t, f as (...a: unknown[]) => unknown, t.operationAttributes(collection, name)), configurable: true, writable: true });
  }
}

function timed(t: StoreTelemetry, f: (...a: unknown[]) => unknown, attrs: Attributes): (...a: unknown[]) => unknown {
  return function (this: unknown, ...args: unknown[]): unknown {
    const start = performance.now();
    let out: unknown;
    try {
      out = f.apply(this, args);
    } catch (e) {
      t.recordOperation(attrs, start, e, true);
      throw e;
    }
    if (!(out instanceof Promise)) {
      t.recordOperation(attrs, start, null, false);
      return out;
    }
    return out.then(
      (v: unknown) => {
        t.recordOperation(attrs, start, null, false);
        return v;
      },
      (e: unknown) => {
        t.recordOperation(attrs, start, e, true);
        throw e;
      },
    );
  };
}
