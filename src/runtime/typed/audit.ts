/**
 * The store's audit log as the app sees it (`openStore({ audit })`, `store.audit`; docs/SECURITY.md, "Audit
 * log"): what is recorded and when. Reads and writes of the audited entities (by default those with sensitive
 * fields) are counted per actor, action and entity, with up to 32 record keys each, and appended together at
 * most every `flushMs` (one engine write); the store's operations (export, import, backup, key changes,
 * recovery) are appended when they end, after what was counted before them. Only the writer appends, one
 * append at a time; a follower sends its events to the writer (an `audit` request over the channel), which
 * appends them with the follower's pid and host. The chain itself is storage/audit-log.ts.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { hostname } from "node:os";
import { AuditTamperedError, CellarError, KeyError, UsageError } from "../errors.js";
import type { Engine, WriteOp } from "../storage/engine.js";
import { AuditLog, type AuditEntry, type AuditEvent, type AuditVerifyReport } from "../storage/audit-log.js";
import { AUDIT_ACTIONS, AUDIT_LIMITS, type AuditAction } from "../format/audit.js";
import type { Sharing } from "../share/sharing.js";
import type { EntityDefinition } from "./entity.js";

export type { AuditEntry, AuditVerifyReport, AuditProblem } from "../storage/audit-log.js";

/** `openStore({ audit })`: `true` for the defaults. */
export interface AuditOptions {
  /** Storage names of the entities whose reads and writes are recorded (default: every entity with sensitive fields). */
  readonly entities?: readonly string[];
  /** Who this process acts for (`"user:42"`), unless `store.audit.withActor` says otherwise for a call. Default `""`. */
  readonly actor?: string;
  /** Record keys in read and write entries (up to 32 per entry; keys are not sensitive fields). Default true. */
  readonly keys?: boolean;
  /** How long reads and writes are counted before they are appended (ms, default 1000). */
  readonly flushMs?: number;
  /** Retention of the log itself: entries older than `days`, and beyond the newest `entries`, are pruned. */
  readonly keep?: { readonly days?: number; readonly entries?: number };
}

/** `store.audit`. */
export interface StoreAuditApi {
  /** Check the chain; `expect`: a head saved earlier (`head()`), which the log must still contain. `strict`: throw `E_AUDIT_TAMPERED`. */
  verify(options?: { expect?: { seq: number; mac: string }; strict?: boolean }): Promise<AuditVerifyReport>;
  /** Entries oldest first, from `since` (a time), at most `limit`. Appends what is counted first. */
  list(options?: { since?: Date | number; limit?: number }): Promise<AuditEntry[]>;
  /** The chain head (seq and MAC, hex) to keep outside the store: a later `verify({ expect })` detects a rollback past it. */
  head(): Promise<{ seq: number; mac: string } | null>;
  /** Append what is counted now. */
  flush(): Promise<void>;
  /** Run `fn` with `actor` as the actor of what it does (AsyncLocalStorage). */
  withActor<T>(actor: string, fn: () => T): T;
  /**
   * Record that a person was shown one sensitive field of one record (`entity`: its storage name; `key`: the
   * record's, omitted for a singleton and left out with `audit.keys: false`; `field`: its path, never the
   * value), appended now (a `reveal` entry): resolves `true` once it is in the log, `false` when this store
   * records nothing; a failed append rejects, so the caller shows nothing.
   */
  reveal(event: { entity: string; key?: string; field: string }): Promise<boolean>;
}

interface Bucket {
  action: AuditAction;
  actor: string;
  entity: string;
  count: number;
  keys: Set<string>;
}

const MAX_KEYS = 32;
const PRUNE_BATCH = 10_000;
const PRUNE_EVERY_MS = 60_000;
const DAY_MS = 86_400_000;

export type AuditSettings = Required<Omit<AuditOptions, "keep">> & Pick<AuditOptions, "keep">;

/** Checked `audit` options with their defaults; null when off. */
export function checkAuditOptions(audit: unknown, defs: ReadonlyMap<string, EntityDefinition>, encrypted: boolean): AuditSettings | null {
  if (audit === undefined || audit === false) return null;
  if (audit !== true && (typeof audit !== "object" || audit === null)) throw new UsageError("`audit` must be true, false or an object");
  if (!encrypted) throw new KeyError("the audit log's MACs need the store's master key: pass `key` (a plaintext store cannot keep an audit log)");
  const o = (audit === true ? {} : audit) as AuditOptions;
  const entities = o.entities ?? [...defs.values()].filter((d) => d.sensitive.length > 0).map((d) => d.name);
  for (const e of entities) if (!defs.has(e)) throw new UsageError(`\`audit.entities\`: no entity \`${e}\` in this store`);
  if (o.actor !== undefined && typeof o.actor !== "string") throw new UsageError("`audit.actor` must be a string");
  const flushMs = o.flushMs ?? 1000;
  if (!Number.isFinite(flushMs) || flushMs < 0) throw new UsageError("`audit.flushMs` must be a number of milliseconds ≥ 0");
  for (const [k, v] of Object.entries(o.keep ?? {})) {
    if (!(k === "days" || k === "entries") || !(typeof v === "number" && v > 0)) throw new UsageError("`audit.keep` takes `days` and `entries`, numbers > 0");
  }
  return { entities, actor: o.actor ?? "", keys: o.keys ?? true, flushMs, ...(o.keep ? { keep: o.keep } : {}) };
}

/** The first events of `all` whose JSON fits well inside a channel request (1 MiB): at least one. */
function requestChunk(all: readonly AuditEvent[]): readonly AuditEvent[] {
  let bytes = 0;
  let n = 0;
  while (n < all.length && (n === 0 || bytes < 256 * 1024)) bytes += JSON.stringify(all[n++]).length;
  return all.slice(0, n);
}

/** A follower's events as its `audit` request carries them (JSON from an authenticated peer, checked all the same). */
function checkRemoteEvents(args: unknown): AuditEvent[] {
  const bad = () => new UsageError("an `audit` request carries an array of audit events");
  if (!Array.isArray(args) || args.length > 100_000) throw bad();
  return args.map((e: unknown): AuditEvent => {
    const o = e as Record<string, unknown> | null;
    if (!o || typeof o !== "object" || !(AUDIT_ACTIONS as readonly unknown[]).includes(o.action) || typeof o.actor !== "string") throw bad();
    const keys = o.keys ?? [];
    if (!Array.isArray(keys) || keys.length > AUDIT_LIMITS.keys || !keys.every((k) => typeof k === "string")) throw bad();
    if (!Number.isSafeInteger(o.pid ?? 0) || !Number.isSafeInteger(o.count ?? 0) || typeof (o.host ?? "") !== "string" || typeof (o.entity ?? "") !== "string") throw bad();
    if (o.detail !== undefined && (typeof o.detail !== "object" || o.detail === null || Array.isArray(o.detail))) throw bad();
    return {
      action: o.action as AuditAction,
      actor: o.actor,
      keys: keys as string[],
      ...(o.entity !== undefined ? { entity: o.entity as string } : {}),
      ...(o.count !== undefined ? { count: o.count as number } : {}),
      ...(o.pid !== undefined ? { pid: o.pid as number } : {}),
      ...(o.host !== undefined ? { host: o.host as string } : {}),
      ...(o.detail !== undefined ? { detail: o.detail as Record<string, unknown> } : {}),
    };
  });
}

export class StoreAudit {
  private readonly audited: ReadonlySet<string>;
  /** Counted reads and writes: per action, entity and actor (nested maps: no string built per read). */
  private readonly buckets = { read: new Map<string, Map<string, Bucket>>(), write: new Map<string, Map<string, Bucket>>() };
  private readonly actorScope = new AsyncLocalStorage<string>();
  /** Whether `withActor` was ever called (until then no read asks the AsyncLocalStorage). */
  private scoped = false;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private prunedAt = 0;
  /** A follower's events the writer did not take (no connection): sent with the next append. */
  private readonly retry: AuditEvent[] = [];
  private readonly host = hostname();
  sharing: Sharing | null = null;
  /** Where a background append's failure goes (the store's `error` event). */
  onError: (e: CellarError) => void = () => {};

  private constructor(
    private readonly engine: Engine,
    private readonly log: AuditLog | null,
    /** Null: this store records nothing (`audit` off, or `redactSensitive`); `store.audit` still reads and verifies a log. */
    private readonly options: AuditSettings | null,
  ) {
    this.audited = new Set(options?.entities ?? []);
  }

  /**
   * The log of `engine`'s store. Recording (`options`), the writer creates the audit root when missing (the
   * keyring rewritten once); a follower whose writer keeps no log (no root) cannot keep one: E_USAGE.
   */
  static open(engine: Engine, options: AuditSettings | null): StoreAudit {
    const ring = engine.keyring;
    if (options && ring && !ring.hasAuditRoot && engine.role === "writer") ring.createAuditRoot();
    const log = AuditLog.of(engine);
    if (options && !log) throw new UsageError("this store keeps no audit log yet: open it with `audit` in the writer process first");
    return new StoreAudit(engine, log, options);
  }

  /** Whether reads, writes and operations are recorded. */
  get recording(): boolean {
    return this.options !== null;
  }

  private need(): AuditLog {
    if (!this.log) throw new UsageError("this store keeps no audit log (open it with `audit` to start one)");
    return this.log;
  }

  private get actor(): string {
    return (this.scoped ? this.actorScope.getStore() : undefined) ?? this.options?.actor ?? "";
  }

  /** A read of `entity`'s record `key` (record-codec.ts): counted when the entity is audited. */
  read(entity: string, key: string): void {
    if (this.audited.has(entity)) this.count("read", entity, key);
  }

  /** Ops committed (record-codec.ts): those of audited entities counted as writes. */
  wrote(ops: readonly WriteOp[]): void {
    for (const o of ops) if (this.audited.has(o.entity)) this.count("write", o.entity, o.key);
  }

  private count(action: "read" | "write", entity: string, key: string): void {
    const actor = this.actor;
    const byEntity = this.buckets[action];
    let byActor = byEntity.get(entity);
    if (!byActor) byEntity.set(entity, (byActor = new Map()));
    let b = byActor.get(actor);
    if (!b) byActor.set(actor, (b = { action, actor, entity, count: 0, keys: new Set() }));
    b.count++;
    if (this.options?.keys && b.keys.size < MAX_KEYS) b.keys.add(key);
    this.timer ??= setTimeout(() => void this.flush().catch((e: unknown) => this.failed(e)), this.options?.flushMs ?? 0).unref();
  }

  private failed(e: unknown): void {
    if (e instanceof CellarError) this.onError(e);
    else process.emitWarning(e instanceof Error ? e : new Error(String(e)));
  }

  /** Append what is counted, then `events` (after what was counted before them), one append at a time. */
  flush(events: readonly Omit<AuditEvent, "actor">[] = []): Promise<void> {
    if (!this.options) return Promise.resolve();
    const actor = this.actor;
    const run = this.chain.then(() => this.append(events.map((e) => ({ ...e, actor }))));
    this.chain = run.catch(() => {});
    return run;
  }

  /** Record an operation of the store (its entry after what was counted before it). A failure goes to the `error` event. */
  async record(event: Omit<AuditEvent, "actor">): Promise<void> {
    await this.flush([event]).catch((e: unknown) => this.failed(e));
  }

  private drain(): AuditEvent[] {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const out: AuditEvent[] = [];
    for (const byEntity of [this.buckets.write, this.buckets.read]) {
      for (const byActor of byEntity.values()) for (const b of byActor.values()) out.push({ action: b.action, actor: b.actor, entity: b.entity, count: b.count, keys: [...b.keys] });
      byEntity.clear();
    }
    return out;
  }

  /**
   * Append what is counted and `events`: the writer commits them (the ops built from the state now: appends
   * run one at a time, and only the writer appends); a follower hands them, with its pid and host, to the
   * writer (`audit` request, `fromFollower`), and keeps them for the next append when that fails.
   */
  private async append(events: readonly AuditEvent[]): Promise<void> {
    const all = [...this.retry.splice(0), ...this.drain(), ...events];
    if (this.sharing?.role === "follower") {
      if (!all.length) return;
      // The channel's socket does not keep the process alive: a timer does until the writer answers (at close
      // too: a process whose last step is `close()` would otherwise exit with the events unsent).
      const alive = setInterval(() => {}, 60_000);
      try {
        while (all.length) {
          const chunk = requestChunk(all);
          await this.sharing.request("audit", chunk.map((e) => ({ ...e, pid: process.pid, host: this.host })));
          all.splice(0, chunk.length);
        }
      } catch (e) {
        this.retry.unshift(...all); // what the writer did not take
        throw e;
      } finally {
        clearInterval(alive);
      }
      return;
    }
    if (all.length) await this.commit(() => this.need().appendOps(all));
    if (this.options?.keep && Date.now() - this.prunedAt >= PRUNE_EVERY_MS) await this.prune();
  }

  /** The writer: append a follower's events (its `audit` request: StoreImpl.audit), after what was queued before. */
  fromFollower(args: unknown): Promise<null> {
    const events = checkRemoteEvents(args);
    const run = this.chain.then(() => this.commit(() => this.need().appendOps(events)));
    this.chain = run.catch(() => {});
    return run.then(() => null);
  }

  private commit(build: () => WriteOp[]): Promise<void> {
    return this.engine.write(build());
  }

  /** Prune by `keep` (a batch of at most 10 000 entries per call). */
  private async prune(): Promise<void> {
    this.prunedAt = Date.now();
    const through = this.pruneThrough();
    if (through === null) return;
    await this.commit(() => {
      const span = this.need().span();
      return span ? this.need().pruneOps(span.first, Math.min(through, span.first + PRUNE_BATCH - 1), this.actor) : [];
    });
  }

  /** The last seq `keep` prunes; null when none. */
  private pruneThrough(): number | null {
    const keep = this.options!.keep!;
    const log = this.need();
    const span = log.span();
    if (!span) return null;
    let through = keep.entries !== undefined ? span.last - keep.entries : 0;
    if (keep.days !== undefined) {
      const cutoff = Date.now() - keep.days * DAY_MS;
      // Entries are in time order: step from the first while older than the cutoff (bounded by a batch).
      for (let s = span.first; s <= span.last && s < span.first + PRUNE_BATCH; s++) {
        const at = log.timeOf(s);
        if (at === null || at >= cutoff) break;
        through = Math.max(through, s);
      }
    }
    return through >= span.first ? through : null;
  }

  /** A reveal (`store.audit.reveal`): appended now, after what was counted; false when not recording. */
  async reveal(event: { entity: string; key?: string; field: string }): Promise<boolean> {
    const o = event as { entity?: unknown; key?: unknown; field?: unknown } | null;
    if (!o || typeof o.entity !== "string" || typeof o.field !== "string" || !o.field || (o.key !== undefined && typeof o.key !== "string")) {
      throw new UsageError("`reveal` takes { entity, key?, field } as strings");
    }
    const long = (s: string, max: number) => Buffer.byteLength(s, "utf8") > max;
    if (long(o.entity, AUDIT_LIMITS.entity) || (o.key !== undefined && long(o.key, AUDIT_LIMITS.key)) || long(o.field, 1024)) throw new UsageError("`reveal`: an entity, key or field name too long for an audit entry");
    if (!this.options) return false;
    const keys = o.key !== undefined && this.options.keys ? [o.key] : [];
    await this.flush([{ action: "reveal", entity: o.entity, count: 1, keys, detail: { field: o.field } }]);
    return true;
  }

  /** The first entry of a log just created, and pruning by `keep`, at open. */
  async started(): Promise<void> {
    if (!this.options) return;
    if (!this.need().exists) await this.flush([{ action: "start", detail: { entities: [...this.audited] } }]);
    else if (this.options.keep) await this.flush();
  }

  api(checkOpen: () => void): StoreAuditApi {
    return Object.freeze({
      verify: async (o?: { expect?: { seq: number; mac: string }; strict?: boolean }) => {
        checkOpen();
        await this.flush().catch((e: unknown) => this.failed(e));
        const report = await this.need().verify(o?.expect ? { seq: o.expect.seq, mac: Buffer.from(o.expect.mac, "hex") } : undefined);
        if (o?.strict && !report.ok) throw new AuditTamperedError(report.problems);
        return report;
      },
      list: async (o?: { since?: Date | number; limit?: number }) => {
        checkOpen();
        await this.flush().catch((e: unknown) => this.failed(e));
        return this.need().list(o);
      },
      head: async () => {
        checkOpen();
        await this.flush();
        const h = this.need().head();
        return h && { seq: h.seq, mac: Buffer.from(h.mac).toString("hex") };
      },
      flush: () => {
        checkOpen();
        return this.flush();
      },
      reveal: (e: { entity: string; key?: string; field: string }) => {
        checkOpen();
        return this.reveal(e);
      },
      withActor: <T>(actor: string, fn: () => T): T => {
        if (typeof actor !== "string") throw new UsageError("`withActor` takes the actor as a string");
        this.scoped = true;
        return this.actorScope.run(actor, fn);
      },
    });
  }

  /** Append what is counted and stop (close). */
  async close(): Promise<void> {
    await this.flush().catch((e: unknown) => this.failed(e));
    this.log?.destroy();
  }
}
