/**
 * The engine as the share layer opens it (writer or follower), and the keys
 * with writes queued but not yet committed (`PendingKeys`): a precondition on such a key is checked only
 * once they settle, so two read-modify-writes of one key never both pass.
 */
import { Engine, type EngineOptions, type WriteOp } from "../storage/engine.js";

/** The engine, writer or follower (storage/follower.ts: `openFollower`, `refresh`, `promote`, `locateSeq`, `lastSeq`, `role`). */
export type SharedEngine = Engine;

export const openFollower = (options: EngineOptions): Promise<Engine> => Engine.openFollower(options);
export const openWriter = (options: EngineOptions): Promise<Engine> => Engine.open(options);

export class PendingKeys {
  private readonly pending = new Map<string, Set<Promise<unknown>>>();

  /** Count `ops`' keys as pending until `write` settles. */
  track(ops: readonly WriteOp[], write: Promise<unknown>): void {
    const keys = ops.map((o) => `${o.entity}\u0000${o.key}`);
    for (const k of keys) {
      let s = this.pending.get(k);
      if (!s) this.pending.set(k, (s = new Set()));
      s.add(write);
    }
    const done = () => {
      for (const k of keys) {
        const s = this.pending.get(k);
        s?.delete(write);
        if (s?.size === 0) this.pending.delete(k);
      }
    };
    write.then(done, done);
  }

  /** Resolves when no write of these keys queued before the call is pending; null when none is now. */
  settled(keys: readonly { entity: string; key: string }[]): Promise<void> | null {
    const waits: Promise<unknown>[] = [];
    for (const { entity, key } of keys) for (const p of this.pending.get(`${entity}\u0000${key}`) ?? []) waits.push(p);
    return waits.length ? Promise.allSettled(waits).then(() => {}) : null;
  }
}
