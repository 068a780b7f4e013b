/**
 * The writer's side of a store's channel (docs/FORMAT.md, "Channel"): listens on the socket (a stale socket
 * file is removed first, only ever by the lock holder), authenticates each follower (mutual challenge,
 * crypto/channel-key.ts; none for a plaintext store), then takes its writes. Each write's preconditions and
 * write id are checked in the synchronous step that queues it, with its `~clients` record added to the same
 * engine write (clients.ts), so followers' writes join the writer's group commits; the reply carries the seq.
 * After each commit, every follower is told the highest acknowledged seq (`committed`).
 */
import fs from "node:fs";
import net from "node:net";
import { isCellarError } from "../errors.js";
import { INTERNAL_ENTITY_PREFIX } from "../format/format.js";
import { channelNonce, type ChannelKey } from "../crypto/channel-key.js";
import type { WriteOp } from "../storage/engine.js";
import { ClientTable } from "./clients.js";
import type { PendingKeys, SharedEngine } from "./engine-view.js";
import { decodeMessage, encodeMessage, FrameDecoder, type Message, Msg, type Precondition, PROTOCOL_VERSION } from "./wire.js";

/** How long a connecting process has to complete the challenge. */
const HANDSHAKE_MS = 5000;
/**
 * Group commit across processes: a commit flush waits for the next write of each follower whose writes were
 * all just acknowledged (without it, the writer's own writes, which come back at once, take most flushes alone
 * and a follower's write waits a whole flush more). It waits at most 1.5 × the followers' usual turnaround
 * (acknowledgment sent → next write received: a moving average, a follower that did not come counted as
 * {@link GATHER_MAX_MS}), and at least {@link GATHER_MIN_MS}: about 0.5 ms on an idle machine, several ms on a loaded 2-core one.
 */
const GATHER_MIN_MS = 1;
const GATHER_MAX_MS = 5;

/** The outcome of one write handed to {@link ChannelServer.apply}: the seq to acknowledge, or the error. */
export type WriteOutcome = { seq: number } | { code: string; message: string };

/** A follower's connection, as {@link ChannelServer.committed} needs it. */
interface FollowerState {
  /** Its writes queued and not yet answered. */
  inflight: number;
  /** A `COMMITTED` was not sent to it (a write of it was in flight): the answer to that write brings one. */
  owed: boolean;
}

export class ChannelServer {
  private server: net.Server | null = null;
  private readonly followers = new Map<net.Socket, FollowerState>();
  readonly clients: ClientTable;
  private pushScheduled = false;
  /** Sends the `COMMITTED`s held for followers just acknowledged whose next write did not come ({@link payOwed}). */
  private owedTimer: NodeJS.Timeout | null = null;
  /** Followers whose write was acknowledged and that have not sent another since: a flush waits for them, briefly. */
  private readonly expected = new Map<net.Socket, number>();
  /** The followers' turnaround, ms (moving average), for how long a flush waits for them. */
  private turnaround = GATHER_MIN_MS;
  private gathering: { promise: Promise<void>; resolve: () => void; timer: NodeJS.Timeout } | null = null;
  /** Runs a follower's request (`compact`, `backup`: StoreImpl.share); resolves with what to send back as JSON. */
  onRequest: ((op: string, args: unknown) => Promise<unknown>) | null = null;
  private closed = false;

  constructor(
    private readonly engine: SharedEngine,
    private readonly key: ChannelKey | null,
    private readonly pending: PendingKeys,
  ) {
    this.clients = new ClientTable(engine);
  }

  /** Listen on `socket` (the caller holds the store's lock: a leftover socket file there is stale). */
  async listen(socket: string): Promise<void> {
    if (process.platform !== "win32") fs.rmSync(socket, { force: true });
    const server = net.createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socket, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", () => {}); // after listening, a failure of one connection is that connection's
    // Serving never keeps the process alive by itself (a store open without the channel never did).
    server.unref();
    this.server = server;
    this.engine.shareWrites({ gather: () => this.gather() });
  }

  /**
   * Before a commit flush (`StoreState.gather`, set through `engine.shareWrites`): a wait until every follower expected has sent its next write,
   * at most 1.5 × their usual turnaround (see {@link GATHER_MAX_MS}); null when none is expected. Those that
   * did not come in time (now, or by the end of the wait) are no longer expected.
   */
  private gather(): Promise<void> | null {
    if (this.expected.size === 0) return null; // every flush asks (one durable put's path): no clock read then
    const now = performance.now();
    for (const [socket, acked] of this.expected) {
      if (now - acked < GATHER_MAX_MS) continue;
      this.expected.delete(socket);
      this.took(GATHER_MAX_MS);
    }
    if (this.expected.size === 0) return null;
    if (!this.gathering) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      const timer = setTimeout(() => {
        for (let i = 0; i < this.expected.size; i++) this.took(GATHER_MAX_MS);
        this.expected.clear();
        this.release();
      }, Math.min(GATHER_MAX_MS, Math.max(GATHER_MIN_MS, 1.5 * this.turnaround)));
      this.gathering = { promise, resolve, timer };
    }
    return this.gathering.promise;
  }

  /** The flush waiting in {@link gather} goes. */
  private release(): void {
    const g = this.gathering;
    if (!g) return;
    this.gathering = null;
    clearTimeout(g.timer);
    g.resolve();
  }

  /** A follower's write was queued (or it left): it is no longer expected; once none is, the flush goes. */
  private arrived(socket: net.Socket, wrote = false): void {
    const acked = this.expected.get(socket);
    if (acked === undefined) return;
    this.expected.delete(socket);
    if (wrote) this.took(Math.min(GATHER_MAX_MS, performance.now() - acked));
    if (this.expected.size === 0) this.release();
  }

  /** One follower's turnaround, into the moving average. */
  private took(ms: number): void {
    this.turnaround += (ms - this.turnaround) / 8;
  }

  /**
   * Tell every follower the highest acknowledged seq (and where it is written), once per turn of commits;
   * except a follower with a write in flight: the `ACK` of that write carries the writer's seq when it is
   * sent (at least this one), so the follower is woken once, not twice (a `REJECT` is followed by the
   * `COMMITTED` it did not get).
   */
  committed(): void {
    if (this.pushScheduled || this.closed || this.followers.size === 0) return; // none to tell: no microtask per commit
    this.pushScheduled = true;
    queueMicrotask(() => {
      this.pushScheduled = false;
      let msg: Buffer | null = null;
      const now = performance.now();
      for (const [s, f] of this.followers) {
        if (f.inflight > 0) f.owed = true;
        else if (this.soon(s, now)) {
          // Just acknowledged: its next write is likely on its way, and that write's ACK covers this commit.
          f.owed = true;
          this.owedTimer ??= setTimeout(this.payOwed, this.holdMs()).unref();
        } else send(s, (msg ??= this.committedMessage()));
      }
    });
  }

  /** How long a `COMMITTED` for a follower just acknowledged is held for its next write: its usual turnaround, bounded. */
  private holdMs(): number {
    return Math.min(GATHER_MAX_MS, Math.max(GATHER_MIN_MS, 1.5 * this.turnaround));
  }

  /** Whether follower `s` was acknowledged within {@link holdMs} and has not written since. */
  private soon(s: net.Socket, now: number): boolean {
    const acked = this.expected.get(s);
    return acked !== undefined && now - acked < this.holdMs();
  }

  /** The held `COMMITTED`s whose follower did not write in time go out (one timer for all, re-armed while some are held). */
  private readonly payOwed = (): void => {
    this.owedTimer = null;
    if (this.closed) return;
    const now = performance.now();
    let msg: Buffer | null = null;
    for (const [s, f] of this.followers) {
      if (!f.owed || f.inflight > 0) continue;
      if (this.soon(s, now)) this.owedTimer ??= setTimeout(this.payOwed, this.holdMs()).unref();
      else {
        f.owed = false;
        send(s, (msg ??= this.committedMessage()));
      }
    }
  };

  private committedMessage(): Buffer {
    return encodeMessage({ type: Msg.committed, seq: this.engine.lastSeq, ...this.engine.position, keys: this.keysGeneration() });
  }

  /**
   * The keyring generation the writer seals under now (0: a plaintext store), sent with each `ACK` and `COMMITTED`:
   * a follower whose keys are older applies the commits at once (its keyring read again) instead of deferring them.
   */
  private keysGeneration(): number {
    return this.engine.keyring?.generation ?? 0;
  }

  /**
   * Apply write `n` of client `id` (hex) with its preconditions: what a follower's WRITE does, and what a
   * promoted follower does with its own writes still pending. Never applied twice; a client's writes queue
   * in the order given (each call queues synchronously unless a precondition's key has a write in flight).
   */
  apply(id: string, n: number, pre: readonly Precondition[], ops: readonly WriteOp[]): Promise<WriteOutcome> | WriteOutcome {
    const c = this.clients.get(id);
    if (n <= c.queued) {
      const inflight = c.inflight.get(n);
      if (inflight) return inflight.then((seq) => ({ seq }), (e) => failure(e));
      return c.failed.get(n) ?? { seq: this.engine.lastSeq };
    }
    const wait = this.pending.settled(pre);
    if (wait) return wait.then(() => this.apply(id, n, pre, ops));
    const skew = this.skew(ops);
    if (skew) {
      ClientTable.fail(c, n, "E_VERSION_SKEW", skew);
      c.queued = n;
      return { code: "E_VERSION_SKEW", message: skew };
    }
    for (const p of pre) {
      if (this.engine.locateSeq(p.entity, p.key) !== p.seq) {
        const out = { code: "E_CONFLICT", message: p.entity };
        ClientTable.fail(c, n, out.code, out.message);
        c.queued = n;
        return out;
      }
    }
    c.queued = n;
    const write = this.engine.write([...ops, ClientTable.recordOp(id, n)]);
    this.pending.track(ops, write);
    const seq = write.then(() => this.engine.lastSeq);
    c.inflight.set(n, seq);
    return seq.then(
      (s) => {
        c.inflight.delete(n);
        return { seq: s };
      },
      (e) => {
        c.inflight.delete(n);
        const out = failure(e);
        ClientTable.fail(c, n, out.code, out.message);
        return out;
      },
    );
  }

  /** Why a follower's records cannot be stored: written at another schema version than the store's (null: they can). */
  private skew(ops: readonly WriteOp[]): string | null {
    for (const o of ops) {
      if (o.op !== "put" || o.entity.startsWith(INTERNAL_ENTITY_PREFIX)) continue;
      const stored = this.engine.storedVersions.get(o.entity);
      if (stored !== undefined && stored !== o.version) {
        return `the store is open in process ${process.pid} with schema version ${stored} of \`${o.entity}\`; the writing process has ${o.version}: reopen it with the same app version`;
      }
    }
    return null;
  }

  private accept(socket: net.Socket): void {
    if (this.closed) return void socket.destroy();
    socket.unref();
    const decoder = new FrameDecoder();
    const nonce = this.key ? channelNonce() : null;
    let client: string | null = null;
    /** This connection's messages are handled one after another (a client's writes queue in order). */
    let chain: Promise<void> = Promise.resolve();
    const state: FollowerState = { inflight: 0, owed: false };
    const timer = setTimeout(() => socket.destroy(), HANDSHAKE_MS).unref();
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      this.followers.delete(socket);
      this.engine.shareWrites({ syncAside: this.followers.size > 0 });
      this.arrived(socket);
    });
    socket.on("data", (chunk: Buffer) => {
      let bodies: Buffer[];
      try {
        bodies = decoder.push(chunk);
      } catch {
        return void socket.destroy();
      }
      for (const body of bodies) {
        let m: Message;
        try {
          m = decodeMessage(body);
        } catch {
          return void socket.destroy();
        }
        if (client === null) {
          client = this.handshake(socket, m, nonce, state);
          if (client === null) return;
          clearTimeout(timer);
          continue;
        }
        if (m.type === Msg.request) {
          this.request(socket, m.n, m.op, m.json);
          continue;
        }
        if (m.type !== Msg.write) return void socket.destroy();
        const id = client;
        chain = chain.then(async () => {
          // Only a wait for a key in flight holds the queue; a queued write's reply comes when it commits.
          let w = this.pending.settled(m.pre);
          if (w) this.arrived(socket, true); // it waits for writes queued: a flush must not wait for it
          for (; w; w = this.pending.settled(m.pre)) await w;
          state.inflight++;
          const reply = (o: WriteOutcome) => {
            // A follower whose writes are all answered is likely to send the next at once: the next flush waits for it.
            if (--state.inflight === 0 && "seq" in o && !socket.destroyed) this.expected.set(socket, performance.now());
            if ("seq" in o) {
              // The seq now, not the write's own: every commit up to it is durable, and it covers the `COMMITTED`s
              // this follower was not sent while the write was in flight.
              state.owed = false;
              send(socket, encodeMessage({ type: Msg.ack, n: m.n, seq: this.engine.lastSeq, ...this.engine.position, keys: this.keysGeneration() }));
            } else {
              send(socket, encodeMessage({ type: Msg.reject, n: m.n, code: o.code, message: o.message }));
              if (state.owed) {
                state.owed = false;
                send(socket, this.committedMessage());
              }
            }
          };
          const out = this.apply(id, m.n, m.pre, m.ops);
          if (out instanceof Promise) void out.then(reply);
          else reply(out);
          this.arrived(socket, true);
        });
      }
    });
    socket.write(encodeMessage({ type: Msg.hello, version: PROTOCOL_VERSION, pid: process.pid, nonce }));
  }

  /** Run a follower's request and answer RESULT (its JSON) or REJECT. */
  private request(socket: net.Socket, n: number, op: string, json: string): void {
    const run = async () => {
      if (!this.onRequest) throw new Error("no request handler");
      return this.onRequest(op, JSON.parse(json) as unknown);
    };
    run().then(
      (r) => socket.destroyed || socket.write(encodeMessage({ type: Msg.result, n, json: JSON.stringify(r ?? null) })),
      (e) => socket.destroyed || socket.write(encodeMessage({ type: Msg.reject, n, code: failure(e).code, message: failure(e).message })),
    );
  }

  /** Check an AUTH message; on success answer WELCOME and return the client id (hex), else refuse and close. */
  private handshake(socket: net.Socket, m: Message, nonce: Buffer | null, state: FollowerState): string | null {
    const refuse = (why: string) => {
      socket.end(encodeMessage({ type: Msg.reject, n: 0, code: "E_CHANNEL_AUTH", message: why }));
      setTimeout(() => socket.destroy(), 1000).unref();
      return null;
    };
    if (m.type !== Msg.auth) return refuse("the first message must answer the challenge");
    if (m.version !== PROTOCOL_VERSION) return refuse(`channel protocol ${m.version} is not this writer's (${PROTOCOL_VERSION})`);
    let mac: Buffer | null = null;
    if (this.key) {
      if (!m.nonce || !m.mac || !this.key.verify("client", nonce!, m.nonce, m.mac)) return refuse("the process did not prove it holds the store's key");
      mac = this.key.proof("writer", nonce!, m.nonce);
    }
    socket.write(encodeMessage({ type: Msg.welcome, seq: this.engine.lastSeq, mac }));
    this.followers.set(socket, state);
    this.engine.shareWrites({ syncAside: true });
    return Buffer.from(m.clientId).toString("hex");
  }

  /** Stop listening and drop every follower (they elect or reconnect); the socket file is removed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.engine.shareWrites({ gather: null, syncAside: false });
    this.expected.clear();
    this.release();
    clearTimeout(this.owedTimer ?? undefined);
    for (const s of this.followers.keys()) s.destroy();
    this.followers.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

/**
 * Write `msg` to a follower's socket; the messages of one step (the `ACK`s of a commit, or a `REJECT` and
 * its `COMMITTED`) go out in one system call, corked until the microtasks queued so far have run: not
 * until the turn's ticks, which run after the writer's own next write may have started a flush (an `ACK`
 * held for a whole fdatasync, and its follower's next write late for the flush after).
 */
function send(socket: net.Socket, msg: Buffer): void {
  if (socket.destroyed) return;
  if (!socket.writableCorked) {
    socket.cork();
    queueMicrotask(() => socket.uncork());
  }
  socket.write(msg);
}

function failure(e: unknown): { code: string; message: string } {
  if (isCellarError(e)) return { code: e.code, message: e.message };
  return { code: "E_IO", message: e instanceof Error ? e.message : String(e) };
}
