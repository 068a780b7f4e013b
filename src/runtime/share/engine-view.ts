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

/** A write tracked by {@link PendingKeys}: its ops, and (a large one) the set of its keys, made on first need. */
interface Tracked {
  readonly ops: readonly WriteOp[];
  readonly write: Promise<unknown>;
  keys: Set<string> | null;
}

/** A write of more ops than this is looked up through a set of its keys (made once), not op by op. */
const SCAN_OPS = 16;

export class PendingKeys {
  /**
   * The writes not settled yet. `track` runs for every write of the writer (one durable put: issue 15's
   * hot path), so it only adds the write here; `settled` (a precondition, a read-modify-write: rare) looks
   * through them.
   */
  private readonly writes = new Set<Tracked>();

  /** Count `ops`' keys as pending until `write` settles. */
  track(ops: readonly WriteOp[], write: Promise<unknown>): void {
    const t: Tracked = { ops, write, keys: null };
    this.writes.add(t);
    write.then(
      () => this.writes.delete(t),
      () => this.writes.delete(t),
    );
  }

  /** Resolves when no write of these keys queued before the call is pending; null when none is now. */
  settled(keys: readonly { entity: string; key: string }[]): Promise<void> | null {
    if (this.writes.size === 0 || keys.length === 0) return null;
    const waits: Promise<unknown>[] = [];
    for (const t of this.writes) if (writes(t, keys)) waits.push(t.write);
    return waits.length ? Promise.allSettled(waits).then(() => {}) : null;
  }
}

/** Whether tracked write `t` writes one of `keys`. */
function writes(t: Tracked, keys: readonly { entity: string; key: string }[]): boolean {
  if (t.ops.length > SCAN_OPS) {
    const set = (t.keys ??= new Set(t.ops.map((o) => `${o.entity}\u0000${o.key}`)));
    for (const { entity, key } of keys) if (set.has(`${entity}\u0000${key}`)) return true;
    return false;
  }
  for (const o of t.ops) for (const k of keys) if (o.key === k.key && o.entity === k.entity) return true;
  return false;
}
