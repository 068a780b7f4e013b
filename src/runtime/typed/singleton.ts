/**
 * A singleton's repository (`Singleton` in types.ts): get (the defaults when never set), update (a patch
 * or an updater merged over the current value) and reset, one after another on a queue per singleton.
 * StoreImpl (store.ts) makes one per singleton entity and waits for the queues at close; batch.ts stages a
 * transaction's updates and resolves them here, holding the queues with `exclusive`.
 */
import { create, type DescField, type DescMessage, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import type { WriteOp } from "../storage/engine.js";
import { UsageError, ValidationError } from "../errors.js";
import type { SingletonDefinition } from "./entity.js";
import type { RecordCodec } from "./record-codec.js";
import type { StoreImpl } from "./store.js";
import { deepFreeze } from "./values.js";
import { exportHeader, exportPage } from "./export.js";
import { sameRecord, type Watchers } from "./watch.js";
import { overdue, turn } from "../platform/turn.js";

/** A singleton write staged in a batch: an update (`patch`) or a reset (`null`), at its position in the batch. */
export interface BatchStep {
  patch: unknown;
  index: number;
}

export class SingletonImpl {
  /** Settles when every update, reset and batch queued on this singleton so far is done. */
  private chain: Promise<unknown> = Promise.resolve();
  constructor(
    private readonly store: StoreImpl,
    /** The store's RecordCodec, held here so a get or update reaches it in one step. */
    private readonly codec: RecordCodec,
    readonly def: SingletonDefinition,
    /** The store's live subscriptions (watch.ts). */
    private readonly watchers: Watchers,
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
    this.maps ??= this.def.schema.fields.filter((f) => f.fieldKind === "map").map((f) => f.localName);
    return { ...withoutEmptyMaps(cur, this.maps), ...(patch as object) };
  }

  /** Map fields of the entity (its generated codec takes no map property: a record holding one is encoded the general way). */
  private maps: string[] | undefined;

  /**
   * The one op a batch's steps on this singleton come to (`null` is a reset), each applied on the result of
   * the last, starting from the stored value. Each update is validated as `update()` validates it.
   */
  resolve(steps: readonly BatchStep[]): WriteOp {
    let cur: unknown = this.current();
    let op: WriteOp = { op: "delete", entity: this.def.name, key: "" };
    for (const step of steps) {
      if (step.patch === null) {
        cur = this.defaults();
        op = { op: "delete", entity: this.def.name, key: "" };
      } else {
        let put: ReturnType<RecordCodec["encodePut"]>;
        try {
          put = this.codec.encodePut(this.def, this.merge(step.patch, cur), true);
        } catch (e) {
          // Say which of the batch's writes failed.
          if (e instanceof ValidationError) throw new ValidationError(e.entity, e.issues, { batch: { index: step.index } });
          throw e;
        }
        cur = deepFreeze(put.msg);
        op = put.op;
      }
    }
    return op;
  }

  /** The live value (watch.ts): every commit to this singleton may change it. */
  watch(): unknown {
    this.store.checkOpen();
    return this.watchers.watch({ entity: this.def.name, mayChange: () => true, read: () => this.current(), same: sameRecord(this.def.schema) });
  }

  async get(path?: string): Promise<unknown> {
    this.store.checkOpen();
    if (overdue()) {
      // Served without I/O: after a burst, on the loop's next turn (collection.ts `get`, issue 15).
      await turn();
      this.store.checkOpen();
    }
    if (path === undefined) return this.current();
    let v: unknown = this.current();
    for (const part of this.fieldsOf(path)) v = v === undefined ? undefined : (v as Record<string, unknown>)[part.localName];
    return v;
  }

  /** Set the field at a dotted path (messages on the way created when unset), validated and queued like `update`. */
  set(path: string, value: unknown): Promise<unknown> {
    let fields: DescField[];
    try {
      this.store.checkWritable();
      fields = this.fieldsOf(path);
    } catch (e) {
      return Promise.reject(e);
    }
    return SingletonImpl.exclusive([this], async () => {
      let msg: unknown;
      const build = () => {
        // A copy of each message on the path (the stored ones are frozen), the field set on the last.
        const root: Record<string, unknown> = { ...this.current() };
        let at = root;
        for (const f of fields.slice(0, -1)) {
          const child = at[f.localName];
          at = at[f.localName] = child === undefined ? {} : { ...(child as object) };
        }
        at[fields[fields.length - 1]!.localName] = value;
        const put = this.codec.encodePut(this.def, root, true);
        msg = put.msg;
        return [put.op];
      };
      await this.codec.write(build(), build);
      return msg;
    });
  }

  /**
   * The fields a dotted path names, checked against the schema: every part a field (not a oneof member),
   * every part but the last a singular message field. E_USAGE otherwise (from JavaScript).
   */
  private fieldsOf(path: string): DescField[] {
    if (typeof path !== "string" || path === "") throw new UsageError(`a path of \`${this.def.name}\` is a non-empty string of dotted field names`);
    const out: DescField[] = [];
    let desc: DescMessage | undefined = this.def.schema;
    for (const part of path.split(".")) {
      const f: DescField | undefined = desc?.fields.find((x) => x.localName === part && !x.oneof);
      if (!desc || !f) {
        const where = out.length ? `\`${out.map((x) => x.localName).join(".")}\` of ` : "";
        throw new UsageError(`\`${path}\` is not a field path of ${where}\`${this.def.name}\`${desc ? ` (no field \`${part}\`)` : " (a path goes on only through message fields)"}`);
      }
      out.push(f);
      desc = f.fieldKind === "message" ? f.message : undefined;
    }
    return out;
  }

  toJson(record: unknown): JsonValue {
    this.store.checkOpen();
    return this.codec.toJson(this.def, record);
  }

  fromJson(json: unknown): unknown {
    this.store.checkOpen();
    return this.codec.fromJson(this.def, json);
  }

  update(patch: unknown): Promise<unknown> {
    try {
      this.store.checkWritable();
    } catch (e) {
      return Promise.reject(e);
    }
    // Updates are applied one after another, each on the result of the last: none is lost.
    return SingletonImpl.exclusive([this], async () => {
      let msg: unknown;
      // Made again on newer state when another process changed the value first (shared stores: E_CONFLICT).
      const build = () => {
        const put = this.codec.encodePut(this.def, this.merge(patch), true);
        msg = put.msg;
        return [put.op];
      };
      await this.codec.write(build(), build);
      return msg;
    });
  }

  /**
   * The value as the text of an export file (a header line and the value's line; docs/FORMAT.md, "Export
   * file (NDJSON)"), after every update queued before it; sensitive fields left out unless `includeSensitive`.
   */
  export(options?: { includeSensitive?: boolean }): Promise<string> {
    const includeSensitive = options?.includeSensitive === true;
    try {
      this.store.checkOpen();
      if (includeSensitive && this.store.redacted) throw new UsageError("a `redactSensitive` store has no sensitive values to export; leave out `includeSensitive`");
    } catch (e) {
      return Promise.reject(e);
    }
    return SingletonImpl.exclusive([this], async () => {
      const header = exportHeader(this.store.engine, [this.def], includeSensitive);
      const { lines } = exportPage(this.store.engine, this.codec, this.def, undefined, includeSensitive);
      return [JSON.stringify(header), ...lines].join("\n") + "\n";
    });
  }

  /**
   * Set the value to the one in `data` (the text `export()` returns, possibly from an older schema version):
   * validated and migrated like `store.import`, then stored (reset to the defaults when `data` holds no
   * value). Sensitive fields `data` leaves out keep their stored values.
   */
  async import(data: string): Promise<void> {
    this.store.checkWritable();
    if (typeof data !== "string") throw new UsageError("`import` takes the text `export()` returned");
    const lines = data.split("\n");
    await this.store.importFrom(
      (async function* () {
        yield lines;
      })(),
      { mode: "replace", allowRedacted: true },
      new Set([this.def.name]),
    );
  }

  reset(): Promise<void> {
    try {
      this.store.checkWritable();
    } catch (e) {
      return Promise.reject(e);
    }
    return SingletonImpl.exclusive([this], () => this.codec.write([{ op: "delete", entity: this.def.name, key: "" }]));
  }

  /**
   * Previous values, newest first (history.ts): `value` is the value a change replaced (the defaults when
   * it was never set). E_USAGE when the entity keeps no history.
   */
  async history(): Promise<unknown[]> {
    this.store.checkOpen();
    return this.codec.historyOf(this.def, "").map((e) => (e.value === undefined ? Object.freeze({ ...e, value: this.defaults() }) : e));
  }

  /**
   * Write back the value a history entry holds (`at`: its id, or a time), queued like `update`; an entry
   * of a never-set value resets. Resolves with the value now stored.
   */
  revert(at: string | Date): Promise<unknown> {
    try {
      this.store.checkWritable();
      this.codec.history.entries(this.def, ""); // E_USAGE at once when the entity keeps no history
    } catch (e) {
      return Promise.reject(e);
    }
    return SingletonImpl.exclusive([this], async () => {
      const { name, entry } = this.codec.history.pick(this.def, "", at);
      if (!entry) return this.current(); // no change since then
      const value = this.codec.historyValue(name, entry.loc);
      if (value === undefined) {
        await this.codec.write([{ op: "delete", entity: this.def.name, key: "" }]);
        return this.defaults();
      }
      const { op, msg } = this.codec.encodePut(this.def, value, true);
      await this.codec.write([op]);
      return msg;
    });
  }
}

/**
 * What a merge starts from: the current value (a message this store made, or the defaults), less its empty
 * maps, which store as nothing (protobuf has no empty map on the wire), so the merge can take the generated
 * codec's path. A patch's own map properties are kept as given. (A function, not a method: a singleton's
 * methods are its public API.)
 */
function withoutEmptyMaps(cur: unknown, maps: readonly string[]): object {
  const c = cur as Record<string, unknown>;
  let out: Record<string, unknown> | null = null;
  for (const name of maps) {
    const m = c[name];
    if (m && typeof m === "object" && Object.keys(m).length === 0) {
      out ??= { ...c };
      delete out[name];
    }
  }
  return out ?? c;
}
