/**
 * A singleton's repository (`Singleton` in types.ts): get (the defaults when never set), update (a patch
 * or an updater merged over the current value) and reset, one after another on a queue per singleton.
 * StoreImpl (store.ts) makes one per singleton entity and waits for the queues at close; batch.ts stages a
 * transaction's updates and resolves them here, holding the queues with `exclusive`.
 */
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import type { WriteOp } from "../storage/engine.js";
import { ValidationError } from "../errors.js";
import type { SingletonDefinition } from "./entity.js";
import type { RecordCodec } from "./record-codec.js";
import type { StoreImpl } from "./store.js";
import { deepFreeze } from "./values.js";

export class SingletonImpl {
  /** Settles when every update, reset and batch queued on this singleton so far is done. */
  private chain: Promise<unknown> = Promise.resolve();
  constructor(
    private readonly store: StoreImpl,
    /** The store's RecordCodec, held here so a get or update reaches it in one step. */
    private readonly codec: RecordCodec,
    readonly def: SingletonDefinition,
  ) {}

  /**
   * Run `task` once every update, reset and batch queued before it on each of `repos` is done, and hold
   * them until it settles. All queues are joined in one synchronous step, so two batches cannot wait on
   * each other.
   */
  static exclusive<T>(repos: readonly SingletonImpl[], task: () => Promise<T>): Promise<T> {
    const before = repos.map((r) => r.chain);
    const run = Promise.all(before).then(task);
    const done = run.catch(() => {});
    for (const r of repos) r.chain = done;
    return run;
  }

  idle(): Promise<unknown> {
    return this.chain;
  }

  private defaults(): unknown {
    return deepFreeze(create(this.def.schema, (this.def.defaults ?? {}) as MessageInitShape<DescMessage>));
  }

  current(): Record<string, unknown> {
    return (this.codec.read(this.def, "") ?? this.defaults()) as Record<string, unknown>;
  }

  checkPatch(patch: unknown): void {
    if (typeof patch !== "function" && (typeof patch !== "object" || patch === null)) {
      throw new ValidationError(this.def.name, [{ path: [], message: "expected an object or an updater function", code: "invalid_type" }]);
    }
  }

  merge(patch: unknown, cur: unknown = this.current()): unknown {
    this.checkPatch(patch);
    if (typeof patch === "function") patch = (patch as (c: unknown) => unknown)(cur);
    if (typeof patch !== "object" || patch === null) {
      throw new ValidationError(this.def.name, [{ path: [], message: "expected an object or an updater function", code: "invalid_type" }]);
    }
    return { ...(cur as object), ...(patch as object) };
  }

  /**
   * The one op a batch's steps on this singleton come to (`null` is a reset), each applied on the result of
   * the last, starting from the stored value. Each update is validated as `update()` validates it.
   */
  resolve(steps: readonly ({ patch: unknown } | null)[]): WriteOp {
    let cur: unknown = this.current();
    let op: WriteOp = { op: "delete", entity: this.def.name, key: "" };
    for (const step of steps) {
      if (step === null) {
        cur = this.defaults();
        op = { op: "delete", entity: this.def.name, key: "" };
      } else {
        const put = this.codec.encodePut(this.def, this.merge(step.patch, cur), true);
        cur = deepFreeze(put.msg);
        op = put.op;
      }
    }
    return op;
  }

  async get(): Promise<unknown> {
    this.store.checkOpen();
    return this.current();
  }

  update(patch: unknown): Promise<unknown> {
    try {
      this.store.checkWritable();
    } catch (e) {
      return Promise.reject(e);
    }
    // Updates are applied one after another, each on the result of the last: none is lost.
    return SingletonImpl.exclusive([this], async () => {
      const { op, msg } = this.codec.encodePut(this.def, this.merge(patch), true);
      await this.store.engine.write([op]);
      return msg;
    });
  }

  reset(): Promise<void> {
    try {
      this.store.checkWritable();
    } catch (e) {
      return Promise.reject(e);
    }
    return SingletonImpl.exclusive([this], () => this.store.engine.write([{ op: "delete", entity: this.def.name, key: "" }]));
  }
}
