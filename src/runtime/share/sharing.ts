/**
 * Several processes on one store (docs/ARCHITECTURE.md, "share/"; README, "Several processes"): the writer
 * is the process holding the store's kernel lock, the others are followers that tail its journal and send
 * their writes over the channel. `Sharing.open` elects: the lock → writer (and listen); else a follower
 * engine that connects, with backoff. When the channel closes, a follower tries the lock: with it, it
 * promotes (its engine becomes the writer, it listens, and applies its own pending writes with their ids);
 * without it, it reconnects and re-sends them in order.
 *
 * A follower applies the writer's commits lazily when nothing in it listens for them (no `change` listener,
 * no watch: `eager`): a `COMMITTED` or `ACK` whose position is the journal this follower reads is only
 * recorded (`due`), and applied by the next read (`catchUp`, called by the typed layer's reads) or once
 * {@link MAX_LAG} commits are due; a follower that only writes reads none of the others' commits. Its own
 * write then resolves on the writer's `ACK`, and its next read applies the commit first (read-your-writes).
 * A position it cannot apply synchronously (another journal or generation, a key not known yet) is applied
 * at once, as with listeners, and its own write waits for that.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import { ChannelAuthError, isCellarError, StoreClosedError, StoreLockedError, WriterUnavailableError } from "../errors.js";
import { channelPath, ensureChannelDir } from "../platform/channel-path.js";
import { ChannelKey } from "../crypto/channel-key.js";
import type { EngineOptions, WriteOp } from "../storage/engine.js";
import type { RefreshHint } from "../storage/follower.js";
import { ChannelClient, type PendingWrite } from "./client.js";
import { openFollower, openWriter, PendingKeys, type SharedEngine } from "./engine-view.js";
import { ChannelServer, type WriteOutcome } from "./server.js";
import { CLIENT_ID_BYTES, type Precondition, remoteError } from "./wire.js";

export type Role = "writer" | "follower";

export interface SharingOptions {
  /** A write a follower cannot deliver within this many ms rejects `E_UNAVAILABLE`. Default 30 000. */
  writeTimeoutMs?: number;
  /** Where the channel's directory goes (default `$XDG_RUNTIME_DIR`, else the OS temp directory). */
  runtimeDir?: string;
}

/** Stores open through `Sharing` in this process, by real path, with when: a second open here is refused. */
const openHere = new Map<string, string>();

function lockedHere(dir: string, real: string): StoreLockedError {
  return new StoreLockedError(dir, { pid: process.pid, hostname: os.hostname(), since: openHere.get(real) ?? "" });
}

/** Commits a lazy follower leaves unapplied at most: the next read's catch-up stays short. */
export const MAX_LAG = 128;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** A reconnection's wait: it never keeps the process alive by itself. */
const backoff = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export class Sharing {
  role: Role;
  private server: ChannelServer | null = null;
  private client: ChannelClient | null = null;
  readonly pending = new PendingKeys();
  private readonly clientId = crypto.randomBytes(CLIENT_ID_BYTES);
  private closed = false;
  private following: Promise<void> | null = null;
  /** Called once this process became the writer by promotion (the typed layer starts the writer's work). */
  onPromoted: (() => void) | null = null;
  /** A failure in the background (a reconnection refused, a refresh that failed). */
  onError: ((e: unknown) => void) | null = null;
  /** Whether something here listens for commits (the typed layer: `change` listeners, watches): then none waits for a read. */
  eager: () => boolean = () => true;
  /** A follower's newest commit announced but not applied yet (lazy), and where the writer said it is. */
  private due: { seq: number; hint: RefreshHint } | null = null;
  /** The last position a refresh applied synchronously up to the announced seq: where a lazy catch-up will work. */
  private synced: RefreshHint | null = null;

  private constructor(
    readonly engine: SharedEngine,
    private readonly realDir: string,
    private readonly socket: string,
    private readonly key: ChannelKey | null,
    private readonly writeTimeoutMs: number,
    /** The pid the `LOCK` file named when this process became a follower. */
    readonly writerPidAtOpen: number | null,
  ) {
    this.role = engine.role;
  }

  /**
   * Open the store in `options.dir` as its writer when the lock is free, else as a follower connected to
   * the writer (or promoted, if the writer went away meanwhile).
   */
  static async open(options: EngineOptions, sharing: SharingOptions = {}): Promise<Sharing> {
    const real = realpathOrNull(options.dir);
    if (real && openHere.has(real)) throw lockedHere(options.dir, real);
    let engine: SharedEngine;
    let holder: number | null = null;
    try {
      engine = await openWriter(options);
    } catch (e) {
      if (!isCellarError(e, "E_LOCKED") || (e as StoreLockedError).holder?.pid === process.pid) throw e;
      holder = (e as StoreLockedError).holder?.pid ?? null;
      engine = await openFollower(options);
    }
    let s: Sharing | undefined;
    try {
      const realDir = fs.realpathSync(engine.dir);
      if (openHere.has(realDir)) throw lockedHere(options.dir, realDir);
      const socket = channelPath(realDir, sharing.runtimeDir);
      ensureChannelDir(socket);
      const key = engine.keyring ? ChannelKey.of(engine.keyring) : null;
      s = new Sharing(engine, realDir, socket, key, sharing.writeTimeoutMs ?? 30_000, holder);
      if (s.role === "follower") engine.shareWrites({ beforeRead: () => s?.catchUp() });
      openHere.set(realDir, new Date().toISOString());
      // A writer listens once the store's open is done (`start`): no follower write meets a migration.
      if (s.role === "follower") await s.followAtOpen();
      return s;
    } catch (e) {
      await s?.close().catch(() => {});
      await engine.close().catch(() => {});
      throw e;
    }
  }

  /** The writer's pid as last known (a follower: from the writer's challenge; the writer: this process). */
  get writerPid(): number | null {
    return this.role === "writer" ? process.pid : (this.client?.writerPid ?? this.writerPidAtOpen);
  }

  /**
   * Commit `ops`: the writer writes them itself; a follower sends them with `pre` (the seq of each key's
   * live version the write was made from) and resolves once its engine has applied the commit.
   */
  async write(ops: readonly WriteOp[], pre: readonly Precondition[]): Promise<void> {
    if (this.closed) throw new StoreClosedError();
    if (this.role === "writer") {
      const w = this.engine.write(ops);
      this.pending.track(ops, w);
      return w;
    }
    return this.send(ops, pre);
  }

  /** A follower's write: sent to the writer, resolved once applied here (or recorded as due: see `write`). */
  private async send(ops: readonly WriteOp[], pre: readonly Precondition[]): Promise<void> {
    const seq = await this.client!.send(pre, ops);
    // Deferred (its ACK was recorded in `due`): the next read applies it first, synchronously. Else applied now
    // (so is one the writer sealed under a keyring newer than this follower's: `defer` did not record it).
    const due = this.due;
    if (!due || due.seq < seq) await this.refreshTo(seq);
  }

  /**
   * A follower: apply now the commits announced and deferred (a read is about to look at the store's state).
   * Synchronous when they are in the journal it reads (always, unless a compaction, a journal rotation or a
   * key rotation came in between: then the refresh goes on in the background, as an announcement's does).
   */
  catchUp(): void {
    const d = this.due;
    if (!d) return;
    this.due = null;
    if (!this.closed && this.role === "follower" && this.engine.lastSeq < d.seq) this.refreshTo(d.seq, d.hint).catch((e) => this.onError?.(e));
  }

  /**
   * A follower: run `op` (`compact`, `backup`) in the writer process; resolves with its result (JSON). Waits
   * for a connection being made; `E_UNAVAILABLE` without one.
   */
  async request(op: string, args: unknown): Promise<unknown> {
    if (this.closed) throw new StoreClosedError();
    if (this.following) await this.following.catch(() => {});
    if (this.role === "writer") return this.onRequest!(op, args);
    return this.client!.request(op, args);
  }

  /** Runs a request in the writer (set by the typed layer: StoreImpl.share). */
  set onRequest(f: ((op: string, args: unknown) => Promise<unknown>) | null) {
    this.handler = f;
    if (this.server) this.server.onRequest = f;
  }
  get onRequest(): ((op: string, args: unknown) => Promise<unknown>) | null {
    return this.handler;
  }
  private handler: ((op: string, args: unknown) => Promise<unknown>) | null = null;

  /**
   * A follower: apply every commit up to `seq` (at least), one refresh at a time. `hint`: where the writer
   * said it writes (the refresh then reads only the new frames of its journal, when that is the one it reads).
   */
  async refreshTo(seq: number, hint?: RefreshHint): Promise<void> {
    let idle = 0;
    while (!this.closed && this.role === "follower" && this.engine.lastSeq < seq) {
      const before = this.engine.lastSeq;
      // With a hint, the refresh applies what the journal it reads holds before it returns (storage/follower.ts).
      const run = this.engine.refresh(hint);
      if (hint) this.synced = this.engine.lastSeq >= seq ? hint : null;
      if (this.engine.lastSeq >= seq) return void run.catch(() => {}); // done; a run queued behind finds nothing new
      await run;
      if (this.engine.lastSeq !== before) continue;
      // An acknowledged commit is on disk: a refresh told where found nothing, the next looks everywhere;
      // one that looked everywhere and found nothing new waits a little before the next.
      if (hint) hint = undefined;
      else await sleep(Math.min(50, ++idle));
    }
  }

  /** Tell followers of a commit (the typed layer calls it from the engine's `onCommit`). */
  committed(): void {
    this.server?.committed();
  }

  /** A writer: start taking followers' writes (after the open's migrations). Nothing to do in a follower. */
  async start(): Promise<void> {
    if (this.role === "writer" && !this.server && !this.closed) await this.serve();
  }

  /** Writer: listen, and delete the `~clients` records of clients silent for 7 days. */
  private async serve(): Promise<void> {
    this.server = new ChannelServer(this.engine, this.key, this.pending);
    this.server.onRequest = this.handler;
    await this.server.listen(this.socket);
    const stale = this.server.clients.staleOps();
    if (stale.length) await this.engine.write(stale);
  }

  /** Follower: connect (promoting instead when the lock is free), then re-send what is pending. */
  private follow(): Promise<void> {
    this.following ??= (async () => {
      let delay = 5;
      try {
        while (!this.closed && this.role === "follower") {
          if (await this.tryPromote()) return;
          this.client ??= new ChannelClient(this.clientId, this.key, this.writeTimeoutMs, (seq, hint, keys) => this.announced(seq, hint, keys), () => this.channelClosed());
          try {
            const seq = await this.client.connect(this.socket);
            this.client.resend();
            this.announced(seq);
            return;
          } catch (e) {
            if (e instanceof ChannelAuthError) throw e;
            await backoff(delay);
            delay = Math.min(200, delay * 2);
          }
        }
      } finally {
        this.following = null;
      }
    })();
    return this.following;
  }

  /** {@link follow}, at most `writeTimeoutMs`: a follower that reaches no writer (nor the lock) refuses to open. */
  private async followAtOpen(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new WriterUnavailableError(this.writeTimeoutMs, false)), this.writeTimeoutMs);
    });
    try {
      await Promise.race([this.follow(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private channelClosed(): void {
    if (this.closed) return;
    this.follow().catch((e) => {
      this.client?.failPending(e);
      this.onError?.(e);
    });
  }

  private announced(seq: number, hint?: RefreshHint, keys = 0): void {
    if (hint && this.defer(seq, hint, keys)) return;
    // Applied now, past what was due: a write resolving on `due` must not count on a catch-up in an old journal.
    if (this.due && seq >= this.due.seq) this.due = null;
    this.refreshTo(seq, hint).catch((e) => this.onError?.(e));
  }

  /**
   * Record `seq` as due instead of applying it, when nothing listens and a read can apply it synchronously: in
   * the journal this follower reads, sealed under keys it has (`keys`, the writer's keyring generation, not newer
   * than its own: after a rotation the keyring must be read again, which is asynchronous).
   */
  private defer(seq: number, hint: RefreshHint, keys: number): boolean {
    const s = this.synced;
    if (this.role !== "follower" || !s || s.generation !== hint.generation || s.journal !== hint.journal || this.eager()) return false;
    if (keys > (this.engine.keyring?.generation ?? 0)) return false;
    if (!this.due || this.due.seq < seq) this.due = { seq, hint };
    if (seq - this.engine.lastSeq >= MAX_LAG) this.catchUp();
    return true;
  }

  /** Take the lock and become the writer, if it is free. */
  private async tryPromote(): Promise<boolean> {
    try {
      await this.engine.promote();
    } catch (e) {
      if (isCellarError(e, "E_LOCKED")) return false;
      throw e;
    }
    // In the step the role changes, every write still pending on the channel is taken: none is left behind.
    this.role = "writer";
    const mine = this.client?.takePending() ?? [];
    this.client?.close();
    this.client = null;
    await this.serve();
    const id = this.clientId.toString("hex");
    for (const w of mine) settle(w, this.server!.apply(id, w.n, w.pre, w.ops));
    this.onPromoted?.();
    return true;
  }

  /** Stop serving or following (before the engine closes); writes still pending fail `E_CLOSED`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    openHere.delete(this.realDir);
    this.client?.failPending(new StoreClosedError());
    this.client?.close();
    await this.server?.close();
    this.key?.destroy();
  }
}

function settle(w: PendingWrite, out: Promise<WriteOutcome> | WriteOutcome): void {
  void Promise.resolve(out).then((o) => ("seq" in o ? w.resolve(o.seq) : w.reject(remoteError(o.code, o.message))));
}


function realpathOrNull(dir: string): string | null {
  try {
    return fs.realpathSync(dir);
  } catch {
    return null;
  }
}
