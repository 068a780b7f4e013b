/**
 * The audit log's chain over an engine (docs/FORMAT.md, "Audit log"): the writes that append entries (with
 * the new head in the same engine write), prune a prefix (deletes, the anchor, a `prune` entry), and the walk
 * that verifies the chain or lists entries a page at a time (an engine scan is consumed within one synchronous
 * step; the event loop gets a turn between pages). The typed layer (typed/audit.ts) decides what to record
 * and when; restore.ts records a restore in the store it unpacked.
 */
import os from "node:os";
import { AuditMac } from "../crypto/audit-mac.js";
import {
  anchorBody,
  AUDIT_ANCHOR_KEY,
  AUDIT_ENTITY,
  AUDIT_ENTRY_PREFIX,
  AUDIT_HEAD_KEY,
  AUDIT_LIMITS,
  type AuditAction,
  type AuditEntryBody,
  type AuditPoint,
  decodeAnchor,
  decodeEntry,
  decodeHead,
  encodeAnchor,
  encodeEntry,
  encodeEntryBody,
  encodeHead,
  entryKey,
  seqOfKey,
} from "../format/audit.js";
import type { WriteOp } from "../format/records.js";
import type { Engine, Loc } from "./engine.js";

/** Something to record: who is filled in from the process (pid, host) and the caller's actor. */
export interface AuditEvent {
  readonly action: AuditAction;
  readonly actor: string;
  readonly entity?: string;
  readonly count?: number;
  readonly keys?: readonly string[];
  /** Names, counts, file paths, key ids: never a stored value. */
  readonly detail?: Readonly<Record<string, unknown>>;
  /** The process that did it, when not this one (a follower's events appended by the writer). */
  readonly pid?: number;
  readonly host?: string;
}

/** An entry as `store.audit.list()` returns it. */
export interface AuditEntry {
  readonly seq: number;
  readonly at: Date;
  readonly action: AuditAction;
  readonly actor: string;
  readonly pid: number;
  readonly host: string;
  readonly entity: string | null;
  readonly count: number;
  readonly keys: readonly string[];
  readonly detail: Readonly<Record<string, unknown>>;
}

export type AuditProblemKind = "edited" | "missing" | "moved" | "unreadable" | "truncated" | "extra" | "head" | "anchor" | "resumed" | "rollback";

export interface AuditProblem {
  readonly kind: AuditProblemKind;
  readonly seq: number;
  readonly message: string;
}

/** What `store.audit.verify()` found. */
export interface AuditVerifyReport {
  readonly ok: boolean;
  /** Entries checked (present, after the anchor). */
  readonly entries: number;
  /** Seq of the first and last entry present (0 when none). */
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** The chain head as stored (seq 0: none). */
  readonly head: { readonly seq: number; readonly mac: string };
  /** Entries up to this seq were pruned (0: none). */
  readonly prunedThrough: number;
  readonly problems: readonly AuditProblem[];
}

const PAGE = 512;
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

function put(key: string, value: Uint8Array): WriteOp {
  return { op: "put", entity: AUDIT_ENTITY, key, version: 1, value, terms: [] };
}

function clip(s: string, max: number): string {
  return Buffer.byteLength(s, "utf8") <= max ? s : Buffer.from(s, "utf8").subarray(0, max).toString("utf8").replace(/\uFFFD$/, "");
}

/** An event's detail as the entry's JSON text (capped: a detail past the limit keeps only that it was cut). */
function detailText(detail: AuditEvent["detail"]): string {
  const text = JSON.stringify(detail ?? {});
  return Buffer.byteLength(text, "utf8") <= AUDIT_LIMITS.detail ? text : JSON.stringify({ truncated: true });
}

export class AuditLog {
  private readonly host = clip(os.hostname(), AUDIT_LIMITS.host);

  private constructor(
    private readonly engine: Engine,
    private readonly mac: AuditMac,
  ) {}

  /** The log of `engine`'s store; null when its keyring holds no audit root (plaintext, or never audited). */
  static of(engine: Engine): AuditLog | null {
    const mac = engine.keyring ? AuditMac.of(engine.keyring) : null;
    return mac ? new AuditLog(engine, mac) : null;
  }

  /** Whether the store holds any audit record. */
  get exists(): boolean {
    return this.engine.count(AUDIT_ENTITY) > 0;
  }

  head(): AuditPoint | null {
    const h = this.engine.get(AUDIT_ENTITY, AUDIT_HEAD_KEY);
    return h ? decodeHead(h.value) : null;
  }

  private anchor(): AuditPoint | null {
    const a = this.engine.get(AUDIT_ENTITY, AUDIT_ANCHOR_KEY);
    return a ? decodeAnchor(a.value).point : null;
  }

  /** Where the next entry chains from: the head, else (no entry yet) the anchor or the genesis value. */
  private tail(): { point: AuditPoint; resumed: string | null } {
    const h = this.head();
    if (h) return { point: h, resumed: null };
    const last = this.lastEntry();
    if (last) return { point: last, resumed: "the head was missing" };
    return { point: this.anchor() ?? { seq: 0, mac: this.mac.genesis(this.engine.storeId) }, resumed: null };
  }

  /** The last entry present (by key), read for its MAC; null when none. */
  private lastEntry(): AuditPoint | null {
    let last: [number, Loc] | null = null;
    for (const [key, loc] of this.engine.scan(AUDIT_ENTITY, AUDIT_ENTRY_PREFIX)) {
      const seq = seqOfKey(key);
      if (seq === null) break;
      last = [seq, loc];
    }
    return last && { seq: last[0], mac: decodeEntry(this.engine.read(AUDIT_ENTITY, last[1])).mac.slice() };
  }

  /**
   * The ops that append `events` (in order) and move the head, built from the engine's state now: commit
   * them before building the next (typed/audit.ts keeps one append in flight).
   */
  appendOps(events: readonly AuditEvent[], now = Date.now()): WriteOp[] {
    const { point, resumed } = this.tail();
    const all = resumed ? [{ action: "start" as const, actor: "", detail: { resumed } }, ...events] : events;
    const ops: WriteOp[] = [];
    let { seq, mac } = point;
    for (const e of all) {
      seq++;
      const body: AuditEntryBody = {
        seq,
        at: now,
        action: e.action,
        actor: clip(e.actor, AUDIT_LIMITS.actor),
        pid: e.pid ?? process.pid,
        host: e.host !== undefined ? clip(e.host, AUDIT_LIMITS.host) : this.host,
        entity: e.entity ?? "",
        count: e.count ?? 0,
        keys: (e.keys ?? []).slice(0, AUDIT_LIMITS.keys),
        detail: detailText(e.detail),
      };
      const bytes = encodeEntryBody(body);
      mac = this.mac.entry(mac, bytes);
      ops.push(put(entryKey(seq), encodeEntry(bytes, mac)));
    }
    if (ops.length) ops.push(put(AUDIT_HEAD_KEY, encodeHead({ seq, mac })));
    return ops;
  }

  /** Seq of the first entry kept (after the anchor) and the head's; null when the log is empty. */
  span(): { first: number; last: number } | null {
    const h = this.head();
    if (!h) return null;
    return { first: (this.anchor()?.seq ?? 0) + 1, last: h.seq };
  }

  /** The time of the entry at `seq` (null when absent or unreadable). */
  timeOf(seq: number): number | null {
    try {
      const v = this.engine.get(AUDIT_ENTITY, entryKey(seq));
      return v ? decodeEntry(v.value).body.at : null;
    } catch {
      return null;
    }
  }

  /**
   * The ops that prune entries `from..through` (at most `max`): their deletes, the anchor at the last one
   * pruned (with its MAC), and a `prune` entry recording it, appended with the head.
   */
  pruneOps(from: number, through: number, actor: string, now = Date.now()): WriteOp[] {
    const v = this.engine.get(AUDIT_ENTITY, entryKey(through));
    if (!v || through < from) return [];
    const point = { seq: through, mac: decodeEntry(v.value).mac.slice() };
    const ops: WriteOp[] = [];
    for (let s = from; s <= through; s++) ops.push({ op: "delete", entity: AUDIT_ENTITY, key: entryKey(s) });
    ops.push(put(AUDIT_ANCHOR_KEY, encodeAnchor(point, this.mac.anchor(anchorBody(point)))));
    return [...ops, ...this.appendOps([{ action: "prune", actor, count: through - from + 1, detail: { from, through } }], now)];
  }

  /** Entries in seq order (see {@link auditEntries}). */
  entries(afterSeq = 0): AsyncGenerator<{ seq: number; value: Uint8Array | Error }> {
    return auditEntries(this.engine, afterSeq);
  }

  /** Entries decoded (unreadable ones skipped), oldest first. */
  async list(options: { since?: Date | number; limit?: number } = {}): Promise<AuditEntry[]> {
    const since = options.since === undefined ? -Infinity : Number(options.since);
    const limit = options.limit ?? Infinity;
    const out: AuditEntry[] = [];
    for await (const { value } of this.entries()) {
      if (value instanceof Error || out.length >= limit) continue;
      let body: AuditEntryBody;
      try {
        body = decodeEntry(value).body;
      } catch {
        continue;
      }
      if (body.at >= since) out.push(toEntry(body));
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Check the chain (see {@link verifyChain}). */
  verify(expect?: AuditPoint): Promise<AuditVerifyReport> {
    return verifyChain(this.engine, this.mac, expect);
  }

  destroy(): void {
    this.mac.destroy();
  }
}

/** A store's audit entries in seq order, a page per event-loop turn, from the first after `afterSeq`; an unreadable one as its error. */
export async function* auditEntries(engine: Engine, afterSeq = 0): AsyncGenerator<{ seq: number; value: Uint8Array | Error }> {
  let after = afterSeq > 0 ? entryKey(afterSeq) : AUDIT_ENTRY_PREFIX;
  for (;;) {
    const page: { seq: number; value: Uint8Array | Error }[] = [];
    for (const [key, loc] of engine.scan(AUDIT_ENTITY, after)) {
      const seq = seqOfKey(key);
      if (seq === null) break;
      let value: Uint8Array | Error;
      try {
        value = engine.read(AUDIT_ENTITY, loc);
      } catch (e) {
        value = e instanceof Error ? e : new Error(String(e));
      }
      page.push({ seq, value });
      after = key;
      if (page.length >= PAGE) break;
    }
    yield* page;
    if (page.length < PAGE) return;
    await turn();
  }
}

/** Append a `restore` entry to the log of `engine`'s store (one being restored: restore.ts), when it keeps one. */
export async function recordRestore(engine: Engine, actor: string, detail: Record<string, unknown>): Promise<void> {
  const log = AuditLog.of(engine);
  if (!log) return;
  try {
    if (log.exists) await engine.write(log.appendOps([{ action: "restore", actor, detail }]));
  } finally {
    log.destroy();
  }
}

function toEntry(b: AuditEntryBody): AuditEntry {
  let detail: Record<string, unknown> = {};
  try {
    detail = JSON.parse(b.detail) as Record<string, unknown>;
  } catch {
    detail = { unparsed: true };
  }
  return Object.freeze({ seq: b.seq, at: new Date(b.at), action: b.action, actor: b.actor, pid: b.pid, host: b.host, entity: b.entity || null, count: b.count, keys: Object.freeze([...b.keys]), detail: Object.freeze(detail) });
}

/** The walk's state: where the chain is, and what was found. */
interface Walk {
  prev: Uint8Array | null;
  expect: number;
  first: number;
  last: number;
  lastMac: Uint8Array | null;
  entries: number;
  lastPrune: number | null;
  seen: Map<number, Uint8Array> | null;
  problems: AuditProblem[];
}

/**
 * Walk every entry after the anchor in seq order: each must sit under its own seq, follow the previous
 * without a gap, and carry MAC(previous MAC ‖ body); the last must be the head; the anchor must carry its
 * MAC and be the `through` of the newest `prune` entry. With `expect` (a head saved elsewhere), the entry at
 * its seq must carry its MAC.
 */
export async function verifyChain(engine: Engine, mac: AuditMac, expect?: AuditPoint): Promise<AuditVerifyReport> {
  const w: Walk = { prev: null, expect: 1, first: 0, last: 0, lastMac: null, entries: 0, lastPrune: null, seen: expect ? new Map() : null, problems: [] };
  const anchor = readAnchor(engine, mac, w);
  w.prev = anchor ? anchor.mac : mac.genesis(engine.storeId);
  w.expect = (anchor?.seq ?? 0) + 1;
  for await (const { seq, value } of auditEntries(engine)) {
    if (anchor && seq <= anchor.seq) {
      w.problems.push({ kind: "extra", seq, message: `entry ${seq} is still there after the prefix through ${anchor.seq} was pruned` });
      continue;
    }
    step(w, mac, seq, value);
  }
  const head = readHead(engine, w);
  checkEnds(w, head, anchor, expect);
  return {
    ok: w.problems.length === 0,
    entries: w.entries,
    firstSeq: w.first,
    lastSeq: w.last,
    head: { seq: head?.seq ?? 0, mac: head ? hex(head.mac) : "" },
    prunedThrough: anchor?.seq ?? 0,
    problems: w.problems,
  };
}

function readAnchor(engine: Engine, mac: AuditMac, w: Walk): AuditPoint | null {
  let raw;
  try {
    raw = engine.get(AUDIT_ENTITY, AUDIT_ANCHOR_KEY);
    if (!raw) return null;
    const a = decodeAnchor(raw.value);
    if (AuditMac.same(mac.anchor(a.body), a.mac)) return a.point;
    w.problems.push({ kind: "anchor", seq: a.point.seq, message: `the anchor (pruned through ${a.point.seq}) does not carry its MAC` });
    return a.point;
  } catch {
    w.problems.push({ kind: "anchor", seq: 0, message: "the anchor is unreadable" });
    return null;
  }
}

function readHead(engine: Engine, w: Walk): AuditPoint | null {
  try {
    const raw = engine.get(AUDIT_ENTITY, AUDIT_HEAD_KEY);
    return raw ? decodeHead(raw.value) : null;
  } catch {
    w.problems.push({ kind: "head", seq: 0, message: "the chain head is unreadable" });
    return null;
  }
}

/** One entry of the walk. */
function step(w: Walk, mac: AuditMac, seq: number, value: Uint8Array | Error): void {
  if (seq > w.expect) {
    w.problems.push({ kind: "missing", seq: w.expect, message: `entries ${w.expect}${seq - 1 > w.expect ? `–${seq - 1}` : ""} are missing` });
    w.prev = null; // the chain resumes unverified at the next entry
  }
  w.expect = seq + 1;
  w.last = seq;
  w.first ||= seq;
  w.entries++;
  if (value instanceof Error) {
    w.problems.push({ kind: "unreadable", seq, message: `entry ${seq} is unreadable (${value instanceof Error && "code" in value ? String(value.code) : "damaged"})` });
    w.prev = w.lastMac = null;
    return;
  }
  let d: ReturnType<typeof decodeEntry>;
  try {
    d = decodeEntry(value);
  } catch {
    w.problems.push({ kind: "edited", seq, message: `entry ${seq} does not decode` });
    w.prev = w.lastMac = null;
    return;
  }
  if (d.body.seq !== seq) w.problems.push({ kind: "moved", seq, message: `the entry stored as ${seq} is entry ${d.body.seq}` });
  else if (w.prev && !AuditMac.same(mac.entry(w.prev, d.bodyBytes), d.mac)) w.problems.push({ kind: "edited", seq, message: `entry ${seq} does not carry its MAC (edited, or its predecessor was)` });
  if (d.body.action === "prune") w.lastPrune = pruneThrough(d.body.detail);
  if (d.body.action === "start" && d.body.detail.includes("resumed")) w.problems.push({ kind: "resumed", seq, message: `the log was found without its head and resumed at entry ${seq}` });
  w.prev = w.lastMac = d.mac;
  w.seen?.set(seq, d.mac.slice());
}

function pruneThrough(detail: string): number | null {
  try {
    const t = (JSON.parse(detail) as { through?: unknown }).through;
    return typeof t === "number" ? t : null;
  } catch {
    return null;
  }
}

/** The head against the last entry, the anchor against the newest prune entry, and `expect`. */
function checkEnds(w: Walk, head: AuditPoint | null, anchor: AuditPoint | null, expect?: AuditPoint): void {
  const last = w.entries ? w.last : (anchor?.seq ?? 0);
  const lastMac = w.entries ? w.lastMac : (anchor?.mac ?? null);
  if (!head) {
    if (w.entries || anchor) w.problems.push({ kind: "head", seq: last, message: "the chain head is missing" });
  } else if (head.seq > last) {
    w.problems.push({ kind: "truncated", seq: last + 1, message: `the log ends at ${last}, its head says ${head.seq}: entries ${last + 1}–${head.seq} were cut` });
  } else if (head.seq < last) {
    w.problems.push({ kind: "extra", seq: head.seq + 1, message: `entries ${head.seq + 1}–${last} are past the head` });
  } else if (lastMac && !AuditMac.same(head.mac, lastMac)) {
    w.problems.push({ kind: "head", seq: head.seq, message: `the head's MAC is not entry ${head.seq}'s` });
  }
  if (anchor && w.lastPrune !== anchor.seq) {
    w.problems.push({ kind: "anchor", seq: anchor.seq, message: `no prune entry records the anchor at ${anchor.seq}` });
  }
  if (expect) checkExpected(w, expect, anchor);
}

function checkExpected(w: Walk, expect: AuditPoint, anchor: AuditPoint | null): void {
  const at = anchor && anchor.seq === expect.seq ? anchor.mac : w.seen!.get(expect.seq);
  if (at && AuditMac.same(at, expect.mac)) return;
  if (!at && anchor && expect.seq < anchor.seq) return; // pruned since: cannot be checked, not a finding
  w.problems.push({ kind: "rollback", seq: expect.seq, message: at ? `entry ${expect.seq} is not the one the expected head names` : `the log does not reach the expected head at ${expect.seq}` });
}
