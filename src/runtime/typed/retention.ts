/**
 * Retention: enforce each collection's `retention` rule (`CollectionDefinition.retention`, from the
 * `(cellar.v1.entity).retention` annotation; docs/SCHEMAS.md, "retention"). A cleanup
 *
 * 1. reads the timestamp field of every record of each entity with a rule, in slices of a few ms with an
 *    event-loop turn between (only the field is decoded: the record's public part is walked for one field
 *    number and the Timestamp's seconds and nanos; a `sensitive` timestamp field is read by a full decode);
 *    a rule with `maxCount` and no timestamp field reads nothing (key order decides);
 * 2. meanwhile remembers every key a commit touches (`committed`), and in one synchronous step at the end
 *    reads those again, decides what goes (older than `maxAgeMs`; beyond `maxCount`, the oldest by
 *    timestamp, ties and unset timestamps by key order, unset first), leaves out keys with a write of the
 *    app still in flight, and issues the deletes;
 * 3. writes the deletes of every entity in one engine write (one journal frame, atomic: after a crash all
 *    or none), through the normal write path: one `change` event per removed record. A cleanup whose deletes
 *    pass `CLEANUP_WRITE_BYTES` is split into writes of at most that size, oldest records first, each issued
 *    once the one before is durable and without the keys written since the decision; each is atomic, and a
 *    crash between two leaves a store that still breaks the rule, which the next cleanup (at the next open)
 *    finishes: the rules are decided from the records alone, so a cleanup is idempotent.
 *
 * Records with no value in the timestamp field are never removed by `maxAgeMs` (their age is unknown).
 * Owned by StoreImpl (store.ts): at open, on a timer (`cleanup.every`, unref'ed) and on `store.cleanup()`.
 */
import { type DescField } from "@bufbuild/protobuf";
import { isCellarError, StoreClosedError, UsageError } from "../errors.js";
import { opSize, type WriteOp } from "../format/records.js";
import { compareUtf8 } from "../format/segment-index.js";
import { ValueKind } from "../crypto/value.js";
import { DecodeError } from "../format/bytes.js";
import type { Engine } from "../storage/engine.js";
import type { CollectionDefinition, EntityDefinition, RetentionRule } from "./entity.js";
import { sortInSlices } from "../platform/turn.js";

/** What a cleanup removed: record counts per entity (storage names), never keys or values. */
export interface CleanupReport {
  /** Records removed, per entity with a retention rule (0 when none went). */
  removed: Record<string, number>;
  /** Sum of `removed`. */
  total: number;
  /** Engine writes the deletes took (0 when nothing went; more than 1 only for a very large cleanup). */
  writes: number;
  /** Wall time of the cleanup in ms (scanning included; the event loop is free most of it). */
  ms: number;
}

/** Bytes (as the engine counts them, `opSize`) of the deletes in one cleanup write: a single write may hold 32 MiB. */
export const CLEANUP_WRITE_BYTES = 8 * 1024 * 1024;
/** Longest synchronous slice of a cleanup's scan, in ms. */
const SLICE_MS = 4;
/** `cleanup.every` when not given. */
export const DEFAULT_CLEANUP_EVERY_MS = 60 * 60 * 1000;

/** What the cleanup needs of the store. */
export interface RetentionHost {
  readonly engine: Engine;
  readonly defs: ReadonlyMap<string, EntityDefinition>;
  /** Full decode of a record (a sensitive timestamp field), through the record cache. */
  read(def: CollectionDefinition, key: string): unknown;
  /** Whether the app has a write to this key in flight (its repository's `update` queue). */
  busy(def: CollectionDefinition, key: string): boolean;
  /** Tell the keys' repository about their deletes in flight, so that an `update` issued now waits for them. */
  track(def: CollectionDefinition, keys: readonly string[], write: Promise<void>): void;
  /** True once the store is closing: the scan stops, nothing is written. */
  closing(): boolean;
}

interface Rule {
  def: CollectionDefinition;
  rule: RetentionRule;
  /** Field number of the timestamp field; 0 when none. */
  fieldNo: number;
  sensitive: boolean;
}

/** Check the retention rules of `defs` (codegen checked them; hand-written definitions may not be). */
export function retentionRules(defs: ReadonlyMap<string, EntityDefinition>): Rule[] {
  const out: Rule[] = [];
  for (const def of defs.values()) {
    if (def.kind !== "collection" || !def.retention) continue;
    const r = def.retention;
    const bad = (why: string) => new UsageError(`retention of entity \`${def.name}\`: ${why}`);
    if (r.maxAgeMs !== undefined && !(typeof r.maxAgeMs === "number" && r.maxAgeMs > 0 && Number.isFinite(r.maxAgeMs))) throw bad("`maxAgeMs` must be a positive number");
    if (r.maxCount !== undefined && !(Number.isInteger(r.maxCount) && r.maxCount >= 0)) throw bad("`maxCount` must be a whole number ≥ 0");
    if (r.maxAgeMs === undefined && r.maxCount === undefined) throw bad("sets neither `maxAgeMs` nor `maxCount`");
    let fieldNo = 0;
    if (r.timestampField !== undefined) {
      fieldNo = timestampField(def, r.timestampField, (why) => bad(`\`timestampField\` ${why}`)).fieldNo;
    } else if (r.maxAgeMs !== undefined) throw bad("`maxAgeMs` needs a `timestampField`");
    out.push({ def, rule: r, fieldNo, sensitive: r.timestampField !== undefined && def.sensitive.includes(r.timestampField) });
  }
  return out;
}

/** How a record's time is read: by the Timestamp field `field` (number `fieldNo`; 0: none). */
export interface TimeField {
  def: CollectionDefinition;
  field: string | undefined;
  fieldNo: number;
  sensitive: boolean;
}

/** The Timestamp field `name` of `def` (a retention rule's `timestampField`, an archive's `field`); `bad(why)` is thrown when it is not one. */
export function timestampField(def: CollectionDefinition, name: unknown, bad: (why: string) => Error): TimeField {
  const f = typeof name === "string" ? def.schema.fields.find((x: DescField) => x.localName === name) : undefined;
  if (!f || f.fieldKind !== "message" || f.message.typeName !== "google.protobuf.Timestamp") {
    throw bad(`\`${String(name)}\` is not a google.protobuf.Timestamp field of \`${def.schema.typeName}\``);
  }
  return { def, field: f.localName, fieldNo: f.number, sensitive: def.sensitive.includes(f.localName) };
}

/**
 * A record's time by `tf` now (a cleanup's and an archive's reading): -Infinity when unset (or when there is no
 * time field), NaN when it cannot be read (a cleanup or archive leaves it alone), undefined when the record is gone.
 * Only the field is decoded (`timestampOf`), but a `sensitive` field is read by a full decode (`read`).
 */
export function recordTime(host: Pick<RetentionHost, "engine" | "read">, tf: TimeField, key: string): number | undefined {
  const { engine } = host;
  try {
    if (!tf.fieldNo) return engine.has(tf.def.name, key) ? -Infinity : undefined;
    if (tf.sensitive) {
      const rec = host.read(tf.def, key) as Record<string, { seconds: bigint; nanos: number } | undefined> | undefined;
      if (rec === undefined) return undefined;
      const ts = rec[tf.field!];
      return ts === undefined ? -Infinity : Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6);
    }
    const loc = engine.locate(tf.def.name, key);
    if (!loc) return undefined;
    return timestampOf(engine.read(tf.def.name, loc), tf.fieldNo) ?? -Infinity;
  } catch (e) {
    // Damage (reported through the `corruption` event by the read) or a record that does not decode:
    // never removed, the rest goes on.
    if (isCellarError(e, "E_CLOSED")) throw e;
    return Number.NaN;
  }
}

/**
 * Milliseconds since the epoch of the Timestamp in field `fieldNo` of a record value (its public part:
 * docs/FORMAT.md, "Record values"), or undefined when unset. Occurrences merge as protobuf does (the last
 * value of each of seconds and nanos wins). Walks the bytes in place: no reader, no copy (a cleanup calls it
 * once per record). Throws a DecodeError on bytes that are not a protobuf encoding.
 */
export function timestampOf(value: Uint8Array, fieldNo: number): number | undefined {
  const w = new Walker(value);
  let end = value.length;
  const kind = w.byte();
  if (kind === ValueKind.sensitive) {
    w.varint(); // key id
    end = w.varint() + w.pos;
    if (end > value.length) throw new DecodeError("public part runs past the value");
  } else if (kind !== ValueKind.plain) throw new DecodeError(`unknown record value kind ${kind}`);
  let seconds: number | undefined;
  let nanos = 0;
  while (w.pos < end) {
    const tag = w.varint();
    const no = Math.floor(tag / 8);
    const wt = tag & 7;
    if (no !== fieldNo || wt !== 2) {
      w.skip(wt, end);
      continue;
    }
    const subEnd = w.varint() + w.pos;
    if (subEnd > end) throw new DecodeError("field runs past the message");
    seconds ??= 0;
    while (w.pos < subEnd) {
      const t = w.varint();
      if (t === 8) seconds = w.int64();
      else if (t === 16) nanos = w.int64();
      else w.skip(t & 7, subEnd);
    }
  }
  return seconds === undefined ? undefined : seconds * 1000 + Math.floor(nanos / 1e6);
}

/** A cursor over protobuf bytes for {@link timestampOf}. */
class Walker {
  pos = 0;
  constructor(private readonly b: Uint8Array) {}
  byte(): number {
    if (this.pos >= this.b.length) throw new DecodeError("value ends early");
    return this.b[this.pos++]!;
  }
  /** An unsigned varint as a number (exact up to 2^53). */
  varint(): number {
    let v = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      const x = this.byte();
      v += (x & 0x7f) * 2 ** shift;
      if (x < 0x80) return v;
    }
    throw new DecodeError("varint too long");
  }
  /** An int64 varint (two's complement for negatives), as a number. */
  int64(): number {
    const start = this.pos;
    const v = this.varint();
    if (v < 2 ** 63) return v;
    // A negative value: 10 bytes, exact only through BigInt.
    let big = 0n;
    for (let i = this.pos - 1; i >= start; i--) big = (big << 7n) | BigInt(this.b[i]! & 0x7f);
    return Number(BigInt.asIntN(64, big));
  }
  skip(wireType: number, end: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) {
      const n = this.varint();
      this.pos += n;
    }
    else if (wireType === 5) this.pos += 4;
    else throw new DecodeError(`wire type ${wireType} cannot be skipped here`);
    if (this.pos > end) throw new DecodeError("field runs past the message");
  }
}

/**
 * Per entity being cleaned: its live records by age (`order`: oldest first, by time then key; an unset
 * timestamp, or no timestamp field at all, is -Infinity; unreadable records are left out), built and sorted
 * before the synchronous step, and the keys committed meanwhile (`dirty`), which that step reads again.
 */
interface Scan {
  rule: Rule;
  order: Aged[] | null;
  dirty: Set<string>;
}

interface Aged {
  k: string;
  t: number;
}

export class Retention {
  private readonly rules: Rule[];
  /** Scans of the cleanup running, by entity (null when none runs): commits mark their keys dirty. */
  private scans: Map<string, Scan> | null = null;
  private running: Promise<CleanupReport> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly host: RetentionHost) {
    this.rules = retentionRules(host.defs);
  }

  get active(): boolean {
    return this.rules.length > 0;
  }

  /** From the store's `onCommit`: keys written while a cleanup scans are read again before it decides. */
  committed(ops: readonly WriteOp[]): void {
    const scans = this.scans;
    if (!scans) return;
    for (const o of ops) scans.get(o.entity)?.dirty.add(o.key);
  }

  /** A cleanup now, after the one running (if any): its report covers a whole pass started after the call. */
  run(): Promise<CleanupReport> {
    const after = this.running ? this.running.catch(() => undefined) : Promise.resolve(undefined);
    const next: Promise<CleanupReport> = after.then(() => this.cleanup());
    const tracked = next.finally(() => {
      if (this.running === tracked) this.running = null;
    });
    tracked.catch(() => {});
    this.running = tracked;
    return next;
  }

  /** Background cleanups: one now (`atOpen`) and one every `everyMs` (unref'ed timer); failures go to `report`. */
  start(atOpen: boolean, everyMs: number | null, report: (e: unknown) => void): void {
    if (!this.active) return;
    const background = () => {
      if (this.running || this.host.closing()) return;
      this.run().catch((e: unknown) => {
        if (!isCellarError(e, "E_CLOSED")) report(e);
      });
    };
    if (atOpen) setImmediate(background);
    if (everyMs !== null) {
      this.timer = setInterval(background, everyMs);
      this.timer.unref();
    }
  }

  /** Stop the timer and wait for a cleanup running (it stops at its next slice, writing nothing). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.running) await this.running.catch(() => {});
  }

  private async cleanup(): Promise<CleanupReport> {
    const started = performance.now();
    const report: CleanupReport = { removed: {}, total: 0, writes: 0, ms: 0 };
    for (const r of this.rules) report.removed[r.def.name] = 0;
    if (this.host.closing()) throw new StoreClosedError();
    const scans = new Map<string, Scan>(this.rules.map((rule) => [rule.def.name, { rule, order: null, dirty: new Set() }]));
    this.scans = scans;
    try {
      for (const scan of scans.values()) if (this.needsOrder(scan.rule)) await this.order(scan);
      // One synchronous step from here to the first write: no commit lands between the decision and the deletes.
      const parts = split([...scans.values()].map((scan) => ({ def: scan.rule.def, keys: this.decide(scan) })));
      // From here on, `dirty` holds the keys written since the decision: a later part leaves them out.
      for (const scan of scans.values()) scan.dirty.clear();
      for (let i = 0; i < parts.length; i++) {
        let part = parts[i]!;
        if (i > 0 && this.host.closing()) throw new StoreClosedError(); // the rest: the next open's cleanup
        if (i > 0) part = part.filter(([def, key]) => !scans.get(def.name)!.dirty.has(key) && !this.host.busy(def, key) && this.host.engine.has(def.name, key));
        if (!part.length) continue;
        const ops: WriteOp[] = part.map(([def, key]) => ({ op: "delete", entity: def.name, key }));
        const w = this.host.engine.write(ops);
        const byEntity = new Map<CollectionDefinition, string[]>();
        for (const [def, key] of part) (byEntity.get(def) ?? byEntity.set(def, []).get(def)!).push(key);
        for (const [def, keys] of byEntity) this.host.track(def, keys, w);
        report.writes++;
        await w;
        for (const [def] of part) report.removed[def.name]!++;
        report.total += part.length;
      }
    } finally {
      this.scans = null;
    }
    report.ms = performance.now() - started;
    return report;
  }

  /** Whether step 1 has anything to do: a rule by age, or an entity over its `maxCount`. */
  private needsOrder(rule: Rule): boolean {
    return rule.rule.maxAgeMs !== undefined || this.host.engine.count(rule.def.name) > rule.rule.maxCount!;
  }

  /**
   * Step 1: every live record of the entity with its time (its timestamp field read a slice of a few ms at a
   * time; none to read for a rule by key order), sorted oldest first.
   */
  private async order(scan: Scan): Promise<void> {
    const { engine } = this.host;
    const { rule } = scan;
    // The keys in one synchronous step: the segment's in its order, then the journals' in write order, so
    // that reads visit each block or frame once, in file order.
    const keys = [...engine.keys(rule.def.name)];
    const order: Aged[] = [];
    let sliceStart = performance.now();
    for (let i = 0; i < keys.length; i++) {
      if (rule.fieldNo && performance.now() - sliceStart >= SLICE_MS) {
        await new Promise<void>((r) => setImmediate(r));
        if (this.host.closing()) throw new StoreClosedError();
        sliceStart = performance.now();
      }
      const k = keys[i]!;
      if (scan.dirty.has(k)) continue; // read again in step 2
      const t = rule.fieldNo ? this.timeOf(rule, k) : -Infinity;
      if (t !== undefined && !Number.isNaN(t)) order.push({ k, t });
    }
    // Sorted in slices (platform/turn.ts): a million records' sort held the loop ~2 s (issue 15).
    scan.order = await sortInSlices(order, (a, b) => this.compareAged(rule.def, a, b));
    await new Promise<void>((r) => setImmediate(r));
    if (this.host.closing()) throw new StoreClosedError();
  }

  /** The record's time now (see {@link recordTime}). */
  private timeOf(rule: Rule, key: string): number | undefined {
    return recordTime(this.host, { def: rule.def, field: rule.rule.timestampField, fieldNo: rule.fieldNo, sensitive: rule.sensitive }, key);
  }

  /**
   * Step 2, synchronous: the keys of the entity to delete now, oldest first. Linear in the entity's records:
   * the sorting was done in step 1; only the keys committed since are read and merged in here.
   */
  private decide(scan: Scan): string[] {
    const { rule } = scan;
    const { def } = rule;
    if (!scan.order && !this.needsOrder(rule)) return [];
    // Not ordered (under its count when the cleanup started) but over it now: every key is read here.
    if (!scan.order) for (const k of this.host.engine.keys(def.name)) scan.dirty.add(k);
    const fresh: Aged[] = [];
    for (const k of scan.dirty) {
      const t = this.timeOf(rule, k);
      if (t !== undefined && !Number.isNaN(t)) fresh.push({ k, t });
    }
    fresh.sort((a, b) => this.compareAged(def, a, b));
    const order = merge(scan.order?.filter((e) => !scan.dirty.has(e.k)) ?? [], fresh, (a, b) => this.compareAged(def, a, b));
    const out: string[] = [];
    const cutoff = rule.rule.maxAgeMs !== undefined ? Date.now() - rule.rule.maxAgeMs : -Infinity;
    // By age: timed records older than the cutoff (unset ones, at -Infinity, never).
    let i = 0;
    while (i < order.length && order[i]!.t === -Infinity) i++;
    const aged = new Set<number>();
    for (; i < order.length && order[i]!.t < cutoff; i++) {
      if (this.host.busy(def, order[i]!.k)) continue;
      out.push(order[i]!.k);
      aged.add(i);
    }
    // By count: the oldest of what is left (unreadable records count, and stay).
    const maxCount = rule.rule.maxCount;
    let extra = maxCount === undefined ? 0 : this.host.engine.count(def.name) - out.length - maxCount;
    for (let j = 0; j < order.length && extra > 0; j++) {
      if (aged.has(j) || this.host.busy(def, order[j]!.k)) continue;
      out.push(order[j]!.k);
      extra--;
    }
    return out;
  }

  private compareAged(def: CollectionDefinition, a: Aged, b: Aged): number {
    return a.t - b.t || this.compareKeys(def, a.k, b.k);
  }

  private compareKeys(def: CollectionDefinition, a: string, b: string): number {
    if (def.keyKind === "string") return compareUtf8(a, b);
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
}

/** Two sorted lists merged into one. */
function merge<T>(a: readonly T[], b: readonly T[], cmp: (x: T, y: T) => number): T[] {
  if (!b.length) return a as T[];
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(cmp(a[i]!, b[j]!) <= 0 ? a[i++]! : b[j++]!);
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}

/**
 * Step 3: the deletes of a cleanup in parts of at most `CLEANUP_WRITE_BYTES` each (one part, one engine write:
 * almost always a single one), in the order given (each entity's oldest records first).
 */
export function split(victims: readonly { def: CollectionDefinition; keys: string[] }[]): [CollectionDefinition, string][][] {
  const parts: [CollectionDefinition, string][][] = [];
  let part: [CollectionDefinition, string][] = [];
  let bytes = 0;
  for (const { def, keys } of victims) {
    for (const key of keys) {
      const size = opSize({ op: "delete", entity: def.name, key });
      if (bytes + size > CLEANUP_WRITE_BYTES && part.length) {
        parts.push(part);
        part = [];
        bytes = 0;
      }
      part.push([def, key]);
      bytes += size;
    }
  }
  if (part.length) parts.push(part);
  return parts;
}

/** `cleanup.every`: milliseconds, or a whole number and a unit as `max_age` takes (`ms`, `s`, `m`, `h`, `d`, `w`). */
export function parseEvery(every: number | string | undefined): number {
  if (every === undefined) return DEFAULT_CLEANUP_EVERY_MS;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  const m = typeof every === "string" ? /^(\d+)(ms|s|m|h|d|w)$/.exec(every) : null;
  const ms = typeof every === "number" ? every : m ? Number(m[1]) * units[m[2]!]! : Number.NaN;
  if (!(ms >= 1 && ms <= 2_147_483_647)) {
    throw new UsageError("`cleanup.every` must be milliseconds (1 to 2^31 - 1) or a whole number with a unit (`ms`, `s`, `m`, `h`, `d`, `w`), e.g. `\"1h\"`");
  }
  return ms;
}
