/**
 * What `openStore` does differently in a store shared by several processes (share/sharing.ts): open through
 * the election (writer or follower), refuse a follower whose schema versions differ from the store's
 * (`E_VERSION_SKEW`), and start the writer's own work (history sweeps, retention, automatic backups) when a
 * follower is promoted, then announce it (`role` event).
 */
import { SchemaVersionSkewError } from "../errors.js";
import { Engine, type EngineOptions } from "../storage/engine.js";
import { Sharing } from "../share/sharing.js";
import type { EntityDefinition } from "./entity.js";
import { StoreImpl } from "./store.js";

// The public types of sharing, merged into those of types.ts (at its 500-line limit) by declaration merging.
declare module "./types.js" {
  interface StoreOptions {
    /**
     * Several processes on one store (README, "Several processes"). `true` (default): a process that finds the
     * store open in another opens it as a follower (reads local, writes sent to the writer process over a local
     * channel) and becomes the writer if that process exits. `false`: a second process gets `E_LOCKED`.
     * Example: `sharing: false`.
     */
    sharing?: boolean;
    /**
     * A follower's write that no writer acknowledged within this many ms rejects `E_UNAVAILABLE` (retryable).
     * Default 30 000. Example: `writeTimeoutMs: 5000`.
     */
    writeTimeoutMs?: number;
  }
  interface StoreEvents {
    /** This process became the store's writer (`store.role`), the writer process having exited or died. */
    role: (role: "writer" | "follower") => void;
  }
  interface StoreHandle<E extends Record<string, EntityDefinition>> {
    /**
     * `"writer"`: this process holds the store's lock and commits every process's writes; `"follower"`: it
     * sends its writes to the writer process (README, "Several processes"). Changes on promotion (`role` event).
     */
    readonly role: "writer" | "follower";
  }
}

/** The engine of a new store handle, and its sharing (null with `sharing: false` or a read-only open). */
export async function openShared(
  options: EngineOptions,
  share: boolean,
  writeTimeoutMs: number | undefined,
): Promise<{ engine: Engine; sharing: Sharing | null }> {
  if (!share || options.readOnly) return { engine: await Engine.open(options), sharing: null };
  const sharing = await Sharing.open(options, writeTimeoutMs !== undefined ? { writeTimeoutMs } : {});
  return { engine: sharing.engine, sharing };
}

/** A follower refuses to run with other schema versions than the store records (the writer's). */
export function checkSkew(engine: Engine, defs: ReadonlyMap<string, EntityDefinition>, sharing: Sharing): void {
  for (const def of defs.values()) {
    const stored = engine.storedVersions.get(def.name);
    if (stored !== undefined && stored !== def.version) throw new SchemaVersionSkewError(def.name, sharing.writerPid, stored, def.version);
  }
}

/** When this follower becomes the writer: `start` (the writer's work), then the `role` event. */
export function onPromotion(store: StoreImpl, sharing: Sharing, start: () => Promise<void>): void {
  sharing.onPromoted = () => {
    start().then(
      () => StoreImpl.roleChanged(store),
      (e) => {
        sharing.onError?.(e);
        StoreImpl.roleChanged(store);
      },
    );
  };
}
