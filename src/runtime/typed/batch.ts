/**
 * `batch()`: one atomic commit of writes to several entities. Builds the transaction object (a `put` and
 * `delete` per collection, an `update` and `reset` per singleton), encodes collection writes as they are
 * made, and composes each singleton's staged steps in order once the callback returns, holding the
 * singletons' update queues. StoreImpl.batch (store.ts) calls it.
 */
import type { WriteOp } from "../storage/engine.js";
import { UsageError, ValidationError } from "../errors.js";
import { ProtoWriter } from "../format/protowire.js";
import { CollectionImpl } from "./collection.js";
import type { KeyValue } from "./entity.js";
import type { RecordCodec } from "./record-codec.js";
import { type BatchStep, SingletonImpl } from "./singleton.js";
import type { StoreImpl } from "./store.js";
import { encodeKey, keyOf } from "./values.js";

/**
 * Collection writes are validated and encoded as the callback makes them. Singleton updates and resets
 * are kept in order and applied when the callback returns, one after another on the singleton's value
 * at that moment, queued with the singleton's other updates (`Singleton.update` runs one at a time):
 * no update in or out of a batch is lost.
 */
export async function runBatch(store: StoreImpl, codec: RecordCodec, fn: (tx: Record<string, unknown>) => void | Promise<void>): Promise<void> {
  store.checkWritable();
  /** The batch's ops in call order; a singleton's place holds its repository until its value is known. */
  const ops: (WriteOp | SingletonImpl)[] = [];
  /** Per singleton touched: its updates (a patch or an updater) and resets (`null`), in order. */
  const staged = new Map<SingletonImpl, BatchStep[]>();
  /** Collection writes, with their keys, for `update` to wait for (CollectionImpl.track). */
  const written: [CollectionImpl, string][] = [];
  /** Writes made so far (the position of the next one, for a validation error to name). */
  let n = 0;
  const stage = (repo: SingletonImpl, step: BatchStep) => {
    let steps = staged.get(repo);
    if (!steps) {
      staged.set(repo, (steps = []));
      ops.push(repo);
    }
    steps.push(step);
  };
  const tx: Record<string, unknown> = {};
  let open = true;
  let arena: ProtoWriter | undefined;
  const guard = () => {
    if (!open) throw new UsageError("a batch transaction was used after its callback returned");
  };
  for (const prop of Object.keys(store)) {
    const repo = (store as unknown as Record<string, unknown>)[prop];
    if (repo instanceof CollectionImpl) {
      const push = (op: WriteOp) => {
        ops.push(op);
        written.push([repo, op.key]);
      };
      tx[prop] = {
        put: (v: unknown) => {
          guard();
          const index = n++;
          try {
            push(codec.encodePut(repo.def, v, false, (arena ??= new ProtoWriter(64 * 1024))).op);
          } catch (e) {
            // Say which write failed: its position, and its key (a property only, never in the message).
            if (e instanceof ValidationError) throw new ValidationError(e.entity, e.issues, { batch: { index, key: keyOf(repo.def, v) } });
            throw e;
          }
        },
        delete: (k: KeyValue) => (guard(), n++, push({ op: "delete", entity: repo.def.name, key: encodeKey(k, repo.def.keyKind) })),
      };
    } else if (repo instanceof SingletonImpl) {
      tx[prop] = {
        update: (p: unknown) => {
          guard();
          const index = n++;
          try {
            repo.checkPatch(p);
          } catch (e) {
            if (e instanceof ValidationError) throw new ValidationError(e.entity, e.issues, { batch: { index } });
            throw e;
          }
          stage(repo, { patch: p, index });
        },
        reset: () => (guard(), stage(repo, { patch: null, index: n++ })),
      };
    }
  }
  try {
    await fn(tx);
  } finally {
    open = false;
  }
  // The batch's collection writes count as issued when the callback has returned (an `update` made inside
  // the callback does not wait for the batch, which could not commit before it): `update`s of their keys
  // issued from now on wait for the commit.
  const commit = (all: readonly WriteOp[], rebuild?: () => readonly WriteOp[]) => {
    const w = codec.write(all, rebuild);
    // One settlement per repository, not per key (a batch of 1,000 puts: 1,000 promise reactions fewer when it commits).
    const keys = new Map<CollectionImpl, string[]>();
    for (const [repo, key] of written) {
      const list = keys.get(repo);
      if (list) list.push(key);
      else keys.set(repo, [key]);
    }
    for (const [repo, list] of keys) repo.trackMany(list, w);
    return w;
  };
  if (staged.size === 0) {
    await commit(ops as WriteOp[]);
    return;
  }
  await SingletonImpl.exclusive([...staged.keys()], async () => {
    // The singletons' steps applied to their values now, and again on newer values after a conflict (shared stores).
    const build = () => {
      const resolved = new Map<SingletonImpl, WriteOp>();
      for (const [repo, steps] of staged) resolved.set(repo, repo.resolve(steps));
      return ops.map((o) => (o instanceof SingletonImpl ? resolved.get(o)! : o));
    };
    await commit(build(), build);
  });
}
