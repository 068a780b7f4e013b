/**
 * `batch()`: one atomic commit of writes to several entities. Builds the transaction object (a `put` and
 * `delete` per collection, an `update` and `reset` per singleton), encodes collection writes as they are
 * made, and composes each singleton's staged steps in order once the callback returns, holding the
 * singletons' update queues. StoreImpl.batch (store.ts) calls it.
 */
import type { WriteOp } from "../storage/engine.js";
import { UsageError } from "../errors.js";
import { ProtoWriter } from "../format/protowire.js";
import { CollectionImpl } from "./collection.js";
import type { KeyValue } from "./entity.js";
import type { RecordCodec } from "./record-codec.js";
import { SingletonImpl } from "./singleton.js";
import type { StoreImpl } from "./store.js";
import { encodeKey } from "./values.js";

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
  const staged = new Map<SingletonImpl, ({ patch: unknown } | null)[]>();
  const stage = (repo: SingletonImpl, step: { patch: unknown } | null) => {
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
      tx[prop] = {
        put: (v: unknown) => (guard(), ops.push(codec.encodePut(repo.def, v, false, (arena ??= new ProtoWriter(64 * 1024))).op)),
        delete: (k: KeyValue) => (guard(), ops.push({ op: "delete", entity: repo.def.name, key: encodeKey(k, repo.def.keyKind) })),
      };
    } else if (repo instanceof SingletonImpl) {
      tx[prop] = {
        update: (p: unknown) => (guard(), repo.checkPatch(p), stage(repo, { patch: p })),
        reset: () => (guard(), stage(repo, null)),
      };
    }
  }
  try {
    await fn(tx);
  } finally {
    open = false;
  }
  if (staged.size === 0) {
    await store.engine.write(ops as WriteOp[]);
    return;
  }
  await SingletonImpl.exclusive([...staged.keys()], async () => {
    const resolved = new Map<SingletonImpl, WriteOp>();
    for (const [repo, steps] of staged) resolved.set(repo, repo.resolve(steps));
    await store.engine.write(ops.map((o) => (o instanceof SingletonImpl ? resolved.get(o)! : o)));
  });
}
