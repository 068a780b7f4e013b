/**
 * Records as the typed layer reads and writes them: the decoded-record cache (the engine's cache, a key
 * space per entity), each entity's value codec, and the sorted key lists. `read` and `scan` decode (or take
 * from cache) what the engine stores; `encodePut` validates and encodes a write. The repositories
 * (collection.ts, singleton.ts), batch.ts and store.ts (inspect, upgrade) call it; StoreImpl holds the one
 * instance and calls `committed` for every commit.
 */
import { create, type DescMessage, fromJson, isMessage, type JsonValue, type MessageInitShape, type MessageShape, toJson } from "@bufbuild/protobuf";
import type { LruCache } from "../storage/cache.js";
import type { Engine, Loc, WriteOp } from "../storage/engine.js";
import { checkWrite } from "../storage/check-write.js";
import { compareUtf8 } from "../format/segment-index.js";
import { CellarError, CorruptionError, SchemaMismatchError, SchemaNewerError, UsageError, ValidationError, type ValidationIssue } from "../errors.js";
import { DecodeError } from "../format/bytes.js";
import { PayloadDecodeError, type SensitiveKeys, ValueCodec, ValueKind } from "../crypto/value.js";
import { ProtoWriter } from "../format/protowire.js";
import type { CollectionDefinition, EntityDefinition } from "./entity.js";
import type { Listeners } from "./events.js";
import { InputIssue, messageDepthIssue, snapshotInput } from "./snapshot.js";
import type { ListOptions } from "./types.js";
import { deepFreeze, encodeKey, fieldOf, toInit } from "./values.js";
import { indexTerms } from "./index-keys.js";
import { History, historyEntityName, recordKeyOfEntry } from "./history.js";
import type { Sharing } from "../share/sharing.js";
import { sharedWrite } from "./shared-write.js";
import { HISTORY_ENTITY_PREFIX } from "../format/format.js";
import { overdue, sortInSlices, turn } from "../platform/turn.js";

export class RecordCodec {
  /** Decoded records, one key space per entity. */
  readonly cache: LruCache<string, unknown>;
  private readonly sorted = new Map<string, string[]>();
  /** Bumped whenever a sorted key list is dropped: a list built across turns is kept only if none was meanwhile. */
  private sortedDropped = 0;
  readonly codecs = new Map<string, ValueCodec>();
  /** The keyring is what the value codec needs: store id, active key id, sensitive subkeys. */
  readonly keys: SensitiveKeys | null;
  private readonly zeros = new Map<string, Record<string, unknown>>();
  /** Output buffer of the generated encoders (writes are encoded one at a time, synchronously). */
  private readonly writer = new ProtoWriter();
  /** Record history of the entities that keep one (history.ts); every write goes through `write`. */
  readonly history: History;
  /** Several processes on the store (share/sharing.ts), set by StoreImpl.share; null: this process alone. */
  sharing: Sharing | null = null;
  /** The audit log's counter of reads and writes (typed/audit.ts), set by StoreImpl.audit when it records. */
  audit: { read(entity: string, key: string): void; wrote(ops: readonly WriteOp[]): void } | null = null;
  /**
   * The record each put made here stores, exactly as a read decodes it: a commit of the put caches it in place
   * of the key's cached older version (`committed`), so the next read of a key read before needs no decode.
   */
  private readonly made = new WeakMap<WriteOp, unknown>();
  /** Per `~history:E` engine entity, E's definition under that name (what its entries decode with). */
  private readonly historyDefs = new Map<string, EntityDefinition>();

  constructor(
    private readonly engine: Engine,
    defs: ReadonlyMap<string, EntityDefinition>,
    private readonly redacted: boolean,
    private readonly listeners: Listeners,
  ) {
    // The engine's cache, in a key space per entity (its blocks use the default space).
    this.cache = engine.cache as LruCache<string, unknown>;
    for (const def of defs.values()) this.codecs.set(def.name, new ValueCodec(def.name, def.schema, def.sensitive, def.codec));
    this.keys = engine.keyring;
    this.history = new History(engine, defs, this.keys);
    for (const def of defs.values()) {
      if (!def.history) continue;
      const name = historyEntityName(def.name);
      this.codecs.set(name, new ValueCodec(name, def.schema, def.sensitive, def.codec));
      const { history: _, ...rest } = def;
      this.historyDefs.set(name, Object.freeze({ ...rest, name }));
    }
  }

  /**
   * Commit `ops` in one engine write, with the history entries they make (history.ts). In a store shared by
   * several processes the write goes through `sharing` (shared-write.ts); `rebuild` makes a read-modify-write
   * again on newer state when another process changed what it read (`E_CONFLICT`, retried).
   */
  write(ops: readonly WriteOp[], rebuild?: () => readonly WriteOp[]): Promise<void> {
    const sharing = this.sharing;
    // The writer process checks nothing of its own writes and never meets a conflict: a plain write goes
    // straight to the channel's write (shared-write.ts would add only its retry loop).
    const w = !sharing
      ? this.send(ops, (all) => this.engine.write(all))
      : sharing.role === "writer" && !rebuild
        ? this.send(ops, (all) => sharing.write(all, []))
        : sharedWrite(sharing, (o, commit) => this.send(o, commit), ops, rebuild);
    const audit = this.audit;
    // Counted once committed (a rebuilt write's ops are those of the same keys).
    return audit ? w.then(() => audit.wrote(ops)) : w;
  }

  /** `ops` and their history entries, checked, handed to `commit`. */
  private send(ops: readonly WriteOp[], commit: (all: readonly WriteOp[]) => Promise<void>): Promise<void> {
    if (!this.history.keeps(ops)) return commit(ops);
    let augmented: ReturnType<History["augment"]>;
    try {
      augmented = this.history.augment(ops);
    } catch (e) {
      return Promise.reject(e);
    }
    const { ops: all, settle } = augmented;
    try {
      // What the engine would refuse, refused now: a later write issued before that refusal settles must not
      // see this one's state as in flight.
      checkWrite(all);
    } catch (e) {
      settle(true);
      return Promise.reject(e);
    }
    const w = commit(all);
    w.then(
      () => settle(false),
      () => settle(true),
    );
    return w;
  }

  /**
   * The entries of record `key`'s history, newest first: `value` is the version a change replaced (decoded,
   * frozen), `undefined` when the change created the record.
   */
  historyOf(def: EntityDefinition, key: string): { id: string; changedAt: Date; value: unknown }[] {
    const { name, entries } = this.history.entries(def, key);
    return entries.reverse().map((e) => Object.freeze({ id: e.id, changedAt: new Date(e.changedAt), value: this.historyValue(name, e.loc) }));
  }

  /** The version a history entry holds (`undefined`: the record did not exist). */
  historyValue(name: string, loc: Loc): unknown {
    if (this.engine.read(name, loc).length === 0) return undefined;
    this.audit?.read(name.slice(HISTORY_ENTITY_PREFIX.length), recordKeyOfEntry(loc.key));
    return this.decode(this.historyDefs.get(name)!, loc, false);
  }

  /** Forget what a commit changed, for every op: cached records of its keys, and sorted key lists it changes. */
  committed(ops: readonly WriteOp[]): void {
    if (this.history.enabled) this.history.committed(ops, (o) => this.made.has(o));
    for (const o of ops) {
      const made = o.op === "put" ? this.made.get(o) : undefined;
      if (made !== undefined && o.op === "put" && this.cache.has(o.key, o.entity)) this.cache.set(o.key, made, o.value.length * 3 + 128, o.entity);
      else this.cache.delete(o.key, o.entity);
      // A put of an existing key keeps the key set (and its order); anything else invalidates it.
      if (o.op === "delete" || this.sorted.get(o.entity)?.length !== this.engine.count(o.entity)) {
        this.sorted.delete(o.entity);
        this.sortedDropped++;
      }
    }
  }

  /** Forget every cached record and sorted key list (an import merged records in by compaction). */
  forgetAll(): void {
    this.sorted.clear();
    this.sortedDropped++;
    this.cache.clear();
  }

  /** Sorted keys of an entity, cached until a commit adds or removes one. */
  sortedKeys(def: CollectionDefinition): string[] {
    this.sharing?.catchUp();
    let keys = this.sorted.get(def.name);
    if (!keys) {
      keys = [...this.engine.keys(def.name)];
      keys.sort(def.keyKind === "string" ? compareUtf8 : compareIntKeys);
      this.sorted.set(def.name, keys);
    }
    return keys;
  }

  /**
   * {@link sortedKeys} without holding the event loop: the keys gathered from the engine's scan a slice at a
   * time, and (integer keys) sorted in slices. Keys written meanwhile may or may not be in it (a key deleted
   * meanwhile may be: readers skip what is gone); kept as the cached list only when no commit changed the
   * key set while it was built.
   */
  async sortedKeysSliced(def: CollectionDefinition): Promise<string[]> {
    this.sharing?.catchUp();
    const hit = this.sorted.get(def.name);
    if (hit) return hit;
    const dropped = this.sortedDropped;
    const keys: string[] = [];
    let after: string | undefined;
    for (let more = true; more; ) {
      if (overdue()) await turn();
      more = false;
      for (const [k] of this.engine.scan(def.name, after)) {
        keys.push(k);
        after = k;
        if ((keys.length & 63) === 0 && overdue()) {
          more = true;
          break;
        }
      }
    }
    const sorted = def.keyKind === "string" ? keys : await sortInSlices(keys, compareIntKeys);
    if (this.sortedDropped === dropped && !this.sorted.has(def.name)) this.sorted.set(def.name, sorted);
    return sorted;
  }

  /**
   * Decode (or take from cache) the record under `key`. A cached record stays valid until a commit
   * touches its key (compaction and re-encryption move bytes, never values): see `committed`.
   */
  read(def: EntityDefinition, key: string): unknown {
    this.audit?.read(def.name, key);
    this.sharing?.catchUp(); // a lazy follower: the commits it was told of, before the cache answers
    const hit = this.cache.get(key, def.name);
    if (hit !== undefined) return hit;
    const loc = this.engine.locate(def.name, key);
    if (!loc) return undefined;
    return this.decode(def, loc, true);
  }

  /**
   * Records in key order straight from the engine's scan (keys only, each with `undefined`, when `values` is
   * false); a scan does not fill the cache (it would evict the working set).
   */
  *scan(def: CollectionDefinition, options?: ListOptions, after?: string, values = true): Generator<[string, unknown]> {
    let skip = options?.offset ?? 0;
    let left = options?.limit ?? Infinity;
    if (skip < 0 || left < 0 || !Number.isFinite(skip)) throw new UsageError("`offset` and `limit` must be ≥ 0");
    if (left === 0) return;
    for (const [key, loc] of this.engine.scan(def.name, after, false)) {
      if (skip > 0) {
        skip--;
        continue;
      }
      if (values) this.audit?.read(def.name, key);
      yield [key, values ? (this.cache.get(key, def.name) ?? this.decode(def, loc, false)) : undefined];
      if (--left === 0) return;
    }
  }

  private decode(def: EntityDefinition, loc: Loc, cache: boolean): unknown {
    if (loc.version > def.version) throw new SchemaNewerError(def.name, loc.version, def.version);
    const bytes = this.engine.read(def.name, loc);
    let msg: unknown;
    try {
      msg = this.codecs.get(def.name)!.decode(bytes, loc.key, loc.version, this.keys, this.redacted).msg;
    } catch (e) {
      if (e instanceof CellarError) throw e;
      const { file, offset } = this.engine.where(loc);
      if (e instanceof PayloadDecodeError) {
        // The frame's checksum (and authentication) passed: these are the bytes that were written, and the
        // entity's message type changed under them. Not damage: no event, nothing quarantined.
        throw new SchemaMismatchError(def.name, { key: loc.key, stored: loc.version, expected: def.version, file, offset }, { cause: e.cause });
      }
      // A sensitive part that fails authentication (moved or edited), or an envelope that does not parse:
      // never shown as data.
      const why = e instanceof DecodeError ? e.message : "the record does not decode";
      const err = new CorruptionError(file, offset, `bad payload (a \`${def.name}\` record: ${why})`, { entity: def.name, key: loc.key });
      this.listeners.emit("corruption", err);
      throw err;
    }
    // A generated codec returns its messages frozen already (field by field, without a generic walk).
    const obj = Object.isFrozen(msg) ? msg : deepFreeze(msg);
    if (cache) this.cache.set(loc.key, obj, bytes.length * 3 + 128, def.name);
    return obj;
  }

  /**
   * Validate `value` against `def` and encode it as a put. Throws ValidationError; touches nothing.
   * With `wantMessage`, also returns the message as stored (what `put` resolves with).
   */
  encodePut(
    def: EntityDefinition,
    value: unknown,
    wantMessage: boolean,
    /** A batch's own writer: values become views of it instead of copies. */
    arena?: ProtoWriter,
  ): { op: WriteOp; msg: MessageShape<DescMessage> | undefined } {
    if (this.redacted) throw readOnlyError();
    const codec = this.codecs.get(def.name)!;
    // The generated codec checks and encodes the input in one walk, reading each property once; what it does
    // not take goes through zod. Either way the input is read once for what is stored: the key and index
    // values come from what the codec read (`writer.top`) or from the snapshot the general path validated.
    const writer = arena ?? this.writer;
    let bytes = codec.encodeInput(value, writer, arena !== undefined);
    let msg: MessageShape<DescMessage> | undefined;
    let source: Record<string, unknown>;
    if (bytes) {
      source = writer.top;
    } else {
      let snapshot: unknown;
      try {
        snapshot = snapshotInput(value);
      } catch (e) {
        if (e instanceof InputIssue) throw new ValidationError(def.name, [e.issue]);
        throw e;
      }
      const parsed = def.validator.safeParse(snapshot);
      if (!parsed.success) {
        throw new ValidationError(
          def.name,
          parsed.error.issues.map(
            (i): ValidationIssue => ({ path: i.path.map((p) => (typeof p === "symbol" ? String(p) : p)), message: i.message, code: i.code }),
          ),
        );
      }
      // Rebuild from a plain copy: `create()` takes any object with a `$typeName` as a finished message, so a
      // spread of a message with a plain object inside (`{ ...settings, ui: { ...} }`) would reach toBinary unconverted.
      msg = create(def.schema, toInit(snapshot) as MessageInitShape<DescMessage>);
      const deep = messageDepthIssue(def.schema, msg);
      if (deep) throw new ValidationError(def.name, [deep]);
      source = msg as Record<string, unknown>;
    }
    const zero = this.zero(def);
    let key = "";
    let terms: string[] = [];
    if (def.kind === "collection") {
      key = encodeKey(fieldOf(source, zero, def.key), def.keyKind);
      if (def.keyKind === "string" && key === "") {
        throw new ValidationError(def.name, [{ path: [def.key], message: "the key field must not be empty", code: "too_small" }]);
      }
      terms = indexTerms(def, source, zero);
    }
    // The fast path of an entity with sensitive fields encoded the whole message: split and sealed now that
    // the key is known (`whole` is that plain value while it differs from what is stored).
    let whole: Uint8Array | undefined;
    if (bytes && codec.hasSensitive) {
      whole = bytes;
      bytes = codec.sealSensitive(whole, key, def.version, this.keys);
      if (bytes === whole) whole = undefined;
    }
    bytes ??= codec.encode(msg!, key, def.version, this.keys);
    // `put` resolves with what a later `get` returns: the stored bytes decoded (the fast path has no message,
    // and normalizes like the bytes do: -0 is 0). A value with a sealed part keeps the message it was made
    // from, or on the fast path is its whole plain value decoded (what a `get` decodes: public ‖ sensitive).
    const exact = whole !== undefined || bytes[0] === ValueKind.plain;
    if (wantMessage) {
      const stored = exact ? codec.decode(whole ?? bytes, key, def.version, null).msg : msg!;
      msg = (Object.isFrozen(stored) ? stored : deepFreeze(stored)) as MessageShape<DescMessage>;
    } else whole?.fill(0); // (kept when decoded: the message's bytes fields are views of it)
    const op: WriteOp = { op: "put", entity: def.name, key, version: def.version, value: bytes, terms };
    if (wantMessage && exact) this.made.set(op, msg); // the stored bytes decoded and frozen, what a read returns
    return { op, msg };
  }

  /** A record as protobuf JSON (`toJson` of a repository). */
  toJson(def: EntityDefinition, record: unknown): JsonValue {
    if (!isMessage(record, def.schema)) {
      throw new UsageError(`\`toJson\` of \`${def.name}\` takes a \`${def.schema.typeName}\` record as the store returns it`);
    }
    return toJson(def.schema, record);
  }

  /** A record from protobuf JSON, validated like a write input and frozen (`fromJson` of a repository). */
  fromJson(def: EntityDefinition, json: unknown): unknown {
    let msg: MessageShape<DescMessage>;
    try {
      msg = fromJson(def.schema, json as JsonValue);
    } catch (e) {
      const issue = { path: [], message: `does not parse as the protobuf JSON of \`${def.schema.typeName}\``, code: "invalid_json" };
      throw new ValidationError(def.name, [issue], { cause: e });
    }
    // A read-only store cannot encode (no keys for sensitive fields): the parsed message, frozen.
    if (this.redacted) return deepFreeze(msg);
    return this.encodePut(def, msg, true).msg;
  }

  /** The zero message of an entity (defaults of fields a write input leaves out). */
  private zero(def: EntityDefinition): Record<string, unknown> {
    let z = this.zeros.get(def.name);
    if (!z) this.zeros.set(def.name, (z = create(def.schema) as Record<string, unknown>));
    return z;
  }

}

export function readOnlyError(): UsageError {
  return new UsageError("this store was opened with `redactSensitive`: it is read-only");
}

/** Integer keys' stored text (canonical decimal, `-` for negatives) in numeric order, without BigInt. */
export function compareIntKeys(a: string, b: string): number {
  const na = a.charCodeAt(0) === 45;
  const nb = b.charCodeAt(0) === 45;
  if (na !== nb) return na ? -1 : 1;
  const d = a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  return na ? -d : d;
}
