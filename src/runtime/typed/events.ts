/**
 * The store's events (`StoreEvents`): listeners per event, delivery that isolates a listener's error (it
 * goes to the `error` listeners as a `ListenerError`, or to `process.emitWarning`, never into the store),
 * and the change events of a commit. Owned by StoreImpl (store.ts), which registers listeners through
 * `on()` and emits engine problems; record-codec.ts emits the corruption a read finds.
 */
import type { WriteOp } from "../storage/engine.js";
import { ListenerError } from "../errors.js";
import { INTERNAL_ENTITY_PREFIX } from "../format/format.js";
import type { EntityDefinition } from "./entity.js";
import type { StoreEvents } from "./types.js";
import { decodeKey } from "./values.js";

type AnyListener = (e: never) => void;

export class Listeners {
  private readonly listeners = new Map<keyof StoreEvents, Set<AnyListener>>();
  /** Told every event but `change` before the listeners (the store's telemetry: observe/telemetry.ts); not a listener. */
  observer: ((event: keyof StoreEvents, arg: unknown) => void) | null = null;

  /** Add `listener` to `event`; returns the function that removes it. */
  on<N extends keyof StoreEvents>(event: N, listener: StoreEvents[N]): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as AnyListener);
    return () => set.delete(listener as AnyListener);
  }

  /** Whether `event` has a listener. */
  listening(event: keyof StoreEvents): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }

  /** One `change` event per op of commit `seq`, in order (nothing to do without a `change` listener). */
  changed(ops: readonly WriteOp[], defs: ReadonlyMap<string, EntityDefinition>, seq: number): void {
    if ((this.listeners.get("change")?.size ?? 0) === 0) return;
    for (const o of ops) {
      if (o.entity.startsWith(INTERNAL_ENTITY_PREFIX)) continue; // Cellar's own records (record history): not the app's changes
      const def = defs.get(o.entity);
      this.emit("change", {
        entity: o.entity,
        op: o.op,
        key: def?.kind === "collection" ? decodeKey(o.key, def.keyKind) : undefined,
        seq,
      });
    }
  }

  /**
   * Call every listener of `event`. A listener that throws changes nothing in the store and keeps no other
   * listener from the event: its error goes to the `error` listeners as a `ListenerError` (E_LISTENER), or,
   * with none (or from an `error` listener), to `process.emitWarning`.
   */
  emit<N extends keyof StoreEvents>(event: N, arg: Parameters<StoreEvents[N]>[0]): void {
    if (event !== "change") this.observer?.(event, arg);
    const set = this.listeners.get(event);
    if (!set?.size) return;
    for (const l of [...set]) {
      try {
        (l as (a: unknown) => void)(arg);
      } catch (e) {
        this.listenerFailed(event, e);
      }
    }
  }

  /** Report that a listener of `event` (or a `watch` subscriber, watch.ts) threw: see `emit`. */
  listenerFailed(event: keyof StoreEvents | "watch", e: unknown): void {
    const err = new ListenerError(event, e);
    const errorListeners = event === "error" ? undefined : this.listeners.get("error");
    if (errorListeners?.size) {
      for (const l of [...errorListeners]) {
        try {
          (l as (a: unknown) => void)(err);
        } catch (e2) {
          process.emitWarning(new ListenerError("error", e2));
        }
      }
    } else {
      process.emitWarning(err);
    }
  }
}
