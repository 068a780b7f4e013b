/**
 * A write of a store shared by several processes (share/sharing.ts): `RecordCodec.write` hands it here.
 * Read-modify-writes (a `rebuild` given: `update`, a singleton's update, a batch's singleton steps) and
 * writes that add record history carry preconditions: per key written, the seq of the live version the write
 * was made from (`Engine.locateSeq`, 0 = absent), which the writer checks. On `E_CONFLICT` (another process
 * changed one of them first), the follower refreshes and builds the write again from its input (`rebuild`,
 * or the same ops with their history entries made again), at most {@link CONFLICT_RETRIES} times.
 */
import { ConflictError } from "../errors.js";
import { HISTORY_ENTITY_PREFIX } from "../format/format.js";
import type { WriteOp } from "../storage/engine.js";
import type { BackupInfo } from "../storage/backup.js";
import type { SharedEngine } from "../share/engine-view.js";
import type { Sharing } from "../share/sharing.js";
import type { Precondition } from "../share/wire.js";

/** Retries of a write another process conflicted with, before `E_CONFLICT` reaches the app. */
export const CONFLICT_RETRIES = 8;

/**
 * Send `ops` (made again by `rebuild` after a conflict) through `send`, which adds the history entries and
 * hands the result to its `commit` (RecordCodec's path), with preconditions when they matter.
 */
export async function sharedWrite(
  sharing: Sharing,
  send: (ops: readonly WriteOp[], commit: (all: readonly WriteOp[]) => Promise<void>) => Promise<void>,
  ops: readonly WriteOp[],
  rebuild?: () => readonly WriteOp[],
): Promise<void> {
  const engine = sharing.engine;
  for (let attempt = 0; ; attempt++) {
    // The writer's own read-modify-write waits for followers' writes of its keys queued before it, and is
    // made again after them (it read the state before them).
    for (let w = rebuild && sharing.role === "writer" ? sharing.pending.settled(ops) : null; w; w = sharing.pending.settled(ops)) {
      await w;
      ops = rebuild!();
    }
    try {
      // The writer checks nothing of its own writes: they are ordered by its own reads and queue.
      const needed = (all: readonly WriteOp[]) => sharing.role === "follower" && (rebuild !== undefined || all.some((o) => o.entity.startsWith(HISTORY_ENTITY_PREFIX)));
      await send(ops, (all) => sharing.write(all, needed(all) ? preconditions(engine, all) : []));
      return;
    } catch (e) {
      if (!(e instanceof ConflictError) || attempt >= CONFLICT_RETRIES) throw e;
      if (sharing.role === "follower") await engine.refresh();
      if (rebuild) ops = rebuild();
    }
  }
}

function preconditions(engine: SharedEngine, ops: readonly WriteOp[]): Precondition[] {
  return ops.map((o) => ({ entity: o.entity, key: o.key, seq: engine.locateSeq(o.entity, o.key) }));
}

/** A backup's information as the writer sent it (JSON): `createdAt` a `Date` again. */
export function revivedInfo(json: unknown): BackupInfo {
  const info = json as BackupInfo & { createdAt: string };
  return { ...info, createdAt: new Date(info.createdAt) };
}
