/**
 * Record history (`(cellar.v1.entity).history`): every write of a record of an entity with a history rule
 * also writes the version it replaced as a record of the hidden engine entity `~history:E`, in the same
 * engine write (one commit frame: both or neither survive a crash). Entries beyond `keep` and older than
 * `maxAgeMs` are deleted in that same write; expired entries of records that are not written again are
 * swept at open (`sweep`), and never listed. Layout of the entries: docs/FORMAT.md, "Record history".
 *
 * RecordCodec (record-codec.ts) holds the store's one `History` and passes every write through `augment`;
 * the repositories list (`entries`) and pick (`pick`) entries for `history()` and `revert()`.
 */
import type { Engine, Loc, WriteOp } from "../storage/engine.js";
import { HistoryEntryNotFoundError, isCellarError, LimitError, UsageError } from "../errors.js";
import { HISTORY_ENTITY_PREFIX, INTERNAL_ENTITY_PREFIX, MAX_KEY_BYTES } from "../format/format.js";
import { moveValue, type SensitiveKeys } from "../crypto/value.js";
import type { EntityDefinition, HistoryRule } from "./entity.js";

/** Engine entity names Cellar uses for itself start with this character (app names never do). */
export const INTERNAL_PREFIX = INTERNAL_ENTITY_PREFIX;
const PREFIX = HISTORY_ENTITY_PREFIX;
/** Between a record's key and an entry id in an entry's key. */
const SEP = "\u0000";
/** Entry ids: 12 hex digits of the change time in ms since the epoch, 4 of a counter within that ms. */
const ID_LENGTH = 16;
const EMPTY = new Uint8Array(0);
/** Bytes an entry key adds to its record's key: the separator and the id. */
const ENTRY_SUFFIX = 1 + ID_LENGTH;

/** The engine entity holding the history of `entity`. */
export function historyEntityName(entity: string): string {
  return PREFIX + entity;
}

/** The id of the entry of a change at `ms` (the `n`th in that ms of one record): fixed width, ordered as the changes. */
export function entryId(ms: number, n: number): string {
  return ms.toString(16).padStart(12, "0") + n.toString(16).padStart(4, "0");
}

/** When the change an entry id names happened, in ms since the epoch. */
export function entryTime(id: string): number {
  return parseInt(id.slice(0, 12), 16);
}

/** The record key of an entry key (see {@link entryKey}). */
export function recordKeyOfEntry(entryKey: string): string {
  return entryKey.slice(0, entryKey.length - ID_LENGTH - 1);
}

/** The engine key of the entry `id` of record `key`. */
export function entryKey(key: string, id: string): string {
  return key + SEP + id;
}

const ID_RE = /^[0-9a-f]{16}$/;

/** The state of a record: its stored value and version, or null when there is none. */
type State = { value: Uint8Array; version: number } | null;

/** One entry as stored: its id, when the change happened, and where its value is. */
export interface RawEntry {
  readonly id: string;
  readonly changedAt: number;
  readonly loc: Loc;
}

/** Checks a hand-written `history` rule (generated ones are checked by codegen). */
export function checkHistoryRule(def: EntityDefinition): void {
  const r = def.history;
  if (r === undefined) return;
  const bad = (what: string) => new UsageError(`entity \`${def.name}\`: \`history.${what}\``);
  if (typeof r !== "object" || r === null) throw new UsageError(`entity \`${def.name}\`: \`history\` must be an object`);
  if (r.keep !== undefined && (!Number.isSafeInteger(r.keep) || r.keep < 1)) throw bad("keep` must be a whole number ≥ 1");
  if (r.maxAgeMs !== undefined && (!Number.isSafeInteger(r.maxAgeMs) || r.maxAgeMs < 1)) throw bad("maxAgeMs` must be a whole number of milliseconds ≥ 1");
  if (r.keep === undefined && r.maxAgeMs === undefined) throw new UsageError(`entity \`${def.name}\`: \`history\` sets neither \`keep\` nor \`maxAgeMs\``);
}

/** The history of one entity. */
class EntityHistory {
  readonly name: string;
  /** Per record key, the ids of its entries in order (oldest first); built from the engine's keys on first use. */
  private ids: Map<string, string[]> | null = null;
  /** Per record key written by a write not yet settled: the state that write leaves (the engine shows it only once committed). */
  readonly pending = new Map<string, { state: State; token: object }>();
  /**
   * The last put of a record of this entity a commit applied, and where the engine put it: while the engine
   * still locates the record there, its state is that put's (no read, no opening of a sealed value).
   */
  private last: { loc: Loc; op: WriteOp & { op: "put" } } | null = null;

  constructor(
    readonly def: EntityDefinition,
    readonly rule: HistoryRule,
    private readonly engine: Engine,
  ) {
    this.name = historyEntityName(def.name);
  }

  index(): Map<string, string[]> {
    if (this.ids) return this.ids;
    const ids = new Map<string, string[]>();
    for (const hk of this.engine.keys(this.name)) {
      const at = hk.length - ID_LENGTH - 1;
      const id = hk.slice(at + 1);
      if (at < 0 || hk[at] !== SEP || !ID_RE.test(id)) continue; // not an entry key: never written by this code
      const key = hk.slice(0, at);
      let list = ids.get(key);
      if (!list) ids.set(key, (list = []));
      list.push(id);
    }
    for (const list of ids.values()) list.sort();
    return (this.ids = ids);
  }

  /** The state of `key` before a write issued now: that of the last write in flight, else the stored one; undefined when unreadable. */
  stateOf(key: string): State | undefined {
    const p = this.pending.get(key);
    if (p) return p.state;
    const loc = this.engine.locate(this.def.name, key);
    if (!loc) return null;
    const last = this.last;
    if (last?.loc === loc) return { value: last.op.value, version: last.op.version };
    try {
      return { value: this.engine.read(this.def.name, loc), version: loc.version };
    } catch (e) {
      // A damaged record can still be overwritten (that is how it is repaired); its version is not kept.
      if (isCellarError(e, "E_CORRUPT")) return undefined;
      throw e;
    }
  }

  /** Live entries of `key`, oldest first, expired ones left out. */
  entries(key: string, now: number): RawEntry[] {
    const out: RawEntry[] = [];
    const oldest = this.rule.maxAgeMs !== undefined ? now - this.rule.maxAgeMs : -Infinity;
    for (const id of this.index().get(key) ?? []) {
      const changedAt = entryTime(id);
      if (changedAt < oldest) continue;
      const loc = this.engine.locate(this.name, entryKey(key, id));
      if (loc) out.push({ id, changedAt, loc });
    }
    return out;
  }

  /**
   * Push onto `out` the entry of a write of `key` that replaces `prev` at `now`, and the deletes of the
   * entries it pushes past `keep` or that are older than `maxAgeMs`. Returns the new entry's id and the
   * ids it prunes (taken out of the index now; {@link undo} puts them back if the write fails).
   */
  record(out: WriteOp[], key: string, prev: State, now: number, keys: SensitiveKeys | null): { id: string; pruned: string[] } {
    const index = this.index();
    let ids = index.get(key);
    if (!ids) index.set(key, (ids = []));
    // Ids only grow, even if the clock goes back: the newest entry is always the last.
    let ms = Math.max(0, Math.floor(now));
    let n = 0;
    const last = ids[ids.length - 1];
    if (last !== undefined && entryTime(last) >= ms) {
      ms = entryTime(last);
      n = parseInt(last.slice(12), 16) + 1;
      if (n > 0xffff) (ms += 1), (n = 0);
    }
    const id = entryId(ms, n);
    const hk = entryKey(key, id);
    const value = prev ? moveValue(prev.value, { entity: this.def.name, key }, { entity: this.name, key: hk }, prev.version, keys) : EMPTY;
    out.push({ op: "put", entity: this.name, key: hk, version: prev?.version ?? this.def.version, value, terms: [] });
    ids.push(id);
    let drop = this.rule.keep !== undefined ? Math.max(0, ids.length - this.rule.keep) : 0;
    if (this.rule.maxAgeMs !== undefined) {
      const oldest = now - this.rule.maxAgeMs;
      while (drop < ids.length - 1 && entryTime(ids[drop]!) < oldest) drop++;
    }
    const pruned = ids.splice(0, drop);
    for (const old of pruned) out.push({ op: "delete", entity: this.name, key: entryKey(key, old) });
    return { id, pruned };
  }

  /** A commit applied `op` to a record of this entity (see {@link last}); `own`: its value is the bytes written. */
  wrote(op: WriteOp, own: boolean): void {
    const loc = own && op.op === "put" ? this.engine.locate(this.def.name, op.key) : undefined;
    if (loc && op.op === "put") this.last = { loc, op };
    else if (this.last?.loc.key === op.key) this.last = null;
  }

  /**
   * A commit put or deleted entry key `hk` of this entity's history: the index follows (idempotent: this
   * process's own writes are indexed already). Entries another process wrote (a store shared by several
   * processes) are indexed so, and a later id of the same record is never taken twice.
   */
  applied(op: WriteOp): void {
    const at = op.key.length - ID_LENGTH - 1;
    const id = op.key.slice(at + 1);
    const ids = this.ids;
    if (!ids || at < 0 || op.key[at] !== SEP || !ID_RE.test(id)) return;
    const key = op.key.slice(0, at);
    let list = ids.get(key);
    const i = list ? list.indexOf(id) : -1;
    if (op.op === "delete") {
      if (i >= 0) list!.splice(i, 1);
    } else if (i < 0) {
      if (!list) ids.set(key, (list = []));
      list.push(id);
      list.sort();
    }
  }

  /** A write that failed wrote nothing: forget the id it added, and index again the entries it would have pruned. */
  undo(key: string, id: string, pruned: readonly string[]): void {
    const ids = this.ids?.get(key);
    if (!ids) return;
    const i = ids.indexOf(id);
    if (i >= 0) ids.splice(i, 1);
    if (pruned.length) {
      ids.push(...pruned);
      ids.sort();
    }
  }

  /** Deletes of every entry older than `maxAgeMs`, for the sweep at open. */
  expired(now: number): WriteOp[] {
    const out: WriteOp[] = [];
    if (this.rule.maxAgeMs === undefined) return out;
    const oldest = now - this.rule.maxAgeMs;
    for (const [key, ids] of this.index()) {
      let drop = 0;
      while (drop < ids.length && entryTime(ids[drop]!) < oldest) drop++;
      for (const old of ids.splice(0, drop)) out.push({ op: "delete", entity: this.name, key: entryKey(key, old) });
    }
    return out;
  }
}

/** The history of every entity of a store that keeps one. */
export class History {
  private readonly byEntity = new Map<string, EntityHistory>();
  /** True when some entity keeps history (otherwise writes go straight to the engine). */
  readonly enabled: boolean;

  constructor(
    private readonly engine: Engine,
    defs: ReadonlyMap<string, EntityDefinition>,
    private readonly keys: SensitiveKeys | null,
  ) {
    for (const def of defs.values()) if (def.history) this.byEntity.set(def.name, new EntityHistory(def, def.history, engine));
    this.enabled = this.byEntity.size > 0;
  }

  /** Whether some op of `ops` writes a record of an entity that keeps history (else {@link augment} adds nothing). */
  keeps(ops: readonly WriteOp[]): boolean {
    if (!this.enabled) return false;
    for (const o of ops) if (this.byEntity.has(o.entity)) return true;
    return false;
  }

  /**
   * Keep the entries' indexes in step with a commit (RecordCodec.committed): see {@link EntityHistory.applied};
   * and each entity's last put, if `own` (this process made it, its value the bytes written: see {@link EntityHistory.wrote}).
   */
  committed(ops: readonly WriteOp[], own: (op: WriteOp) => boolean): void {
    for (const o of ops) {
      if (!o.entity.startsWith(HISTORY_ENTITY_PREFIX)) this.byEntity.get(o.entity)?.wrote(o, own(o));
      else this.byEntity.get(o.entity.slice(HISTORY_ENTITY_PREFIX.length))?.applied(o);
    }
  }

  private of(def: EntityDefinition): EntityHistory {
    const h = this.byEntity.get(def.name);
    if (!h) {
      throw new UsageError(`entity \`${def.name}\` keeps no history; annotate it with \`history\` in (cellar.v1.entity) (e.g. \`history: {keep: 20}\`)`);
    }
    return h;
  }

  /**
   * `ops` with the history entries of their writes and the deletes of entries they prune, for one engine
   * write; `settle` must be called once that write has settled (`failed`: it was rejected).
   */
  augment(ops: readonly WriteOp[], now: number = Date.now()): { ops: readonly WriteOp[]; settle: (failed: boolean) => void } {
    let out: WriteOp[] | null = null;
    const touched: { h: EntityHistory; key: string; token: object; made: { id: string; pruned: string[] } | undefined }[] = [];
    const settle = (failed: boolean) => {
      // Undone newest first: an entry a later write of the same key pruned is indexed again before its own undo.
      for (const t of touched.reverse()) {
        if (t.h.pending.get(t.key)?.token === t.token) t.h.pending.delete(t.key);
        if (failed && t.made) t.h.undo(t.key, t.made.id, t.made.pruned);
      }
    };
    try {
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        const h = this.byEntity.get(op.entity);
        if (!h) {
          out?.push(op);
          continue;
        }
        if (op.key.length * 3 > MAX_KEY_BYTES - ENTRY_SUFFIX && Buffer.byteLength(op.key, "utf8") > MAX_KEY_BYTES - ENTRY_SUFFIX) {
          throw new LimitError(`a key of \`${op.entity}\` may be at most ${MAX_KEY_BYTES - ENTRY_SUFFIX} bytes: the entity keeps history, whose entry keys add ${ENTRY_SUFFIX}`);
        }
        out ??= ops.slice(0, i);
        out.push(op);
        const prev = h.stateOf(op.key);
        const token = {};
        const t: (typeof touched)[number] = { h, key: op.key, token, made: undefined };
        touched.push(t);
        h.pending.set(op.key, { state: op.op === "put" ? { value: op.value, version: op.version } : null, token });
        // No entry for a delete of a missing record (nothing changes), or when the replaced version is unreadable.
        if (prev !== undefined && !(prev === null && op.op === "delete")) t.made = h.record(out, op.key, prev, now, this.keys);
      }
    } catch (e) {
      settle(true); // nothing of this write is issued
      throw e;
    }
    return { ops: out ?? ops, settle };
  }

  /** Live entries of record `key` of `def`, oldest first (E_USAGE when the entity keeps no history). */
  entries(def: EntityDefinition, key: string, now: number = Date.now()): { name: string; entries: RawEntry[] } {
    const h = this.of(def);
    return { name: h.name, entries: h.entries(key, now) };
  }

  /**
   * The entry `at` names among record `key`'s: an entry id (`history()`'s `id`), or a time: the entry
   * holding the version the record had then (the oldest entry changed after it). `null` when no change
   * was recorded after that time (the record is as it was then). Throws E_NOT_FOUND for an unknown id or
   * a time older than the history reaches back to.
   */
  pick(def: EntityDefinition, key: string, at: string | Date): { name: string; entry: RawEntry | null } {
    const { name, entries } = this.entries(def, key);
    if (typeof at === "string") {
      const entry = entries.find((e) => e.id === at);
      if (!entry) throw new HistoryEntryNotFoundError(def.name, "no history entry with this id (see the error's `at`)", at);
      return { name, entry };
    }
    if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new UsageError("`revert` takes an entry id from `history()` or a valid `Date`");
    const i = entries.findIndex((e) => e.changedAt > at.getTime());
    if (i < 0) return { name, entry: null };
    // The oldest entry's version was current since a change whose entry is gone (pruned), or since before
    // history was kept: it is the version at `at` only if `at` is after that change, which is unknown.
    if (i === 0) throw new HistoryEntryNotFoundError(def.name, "the history of this record does not reach back to that time", at);
    return { name, entry: entries[i]! };
  }

  /** Delete every expired entry (at open): one engine write per 1,000 entries. Resolves with the count. */
  async sweep(now: number = Date.now()): Promise<number> {
    let n = 0;
    for (const h of this.byEntity.values()) {
      const ops = h.expired(now);
      for (let i = 0; i < ops.length; i += 1000) await this.engine.write(ops.slice(i, i + 1000));
      n += ops.length;
    }
    return n;
  }
}
