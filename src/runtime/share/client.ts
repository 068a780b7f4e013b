/**
 * A follower's side of a store's channel (docs/FORMAT.md, "Channel"): connects, answers the writer's
 * challenge and checks the writer's answer (crypto/channel-key.ts), sends writes with their ids and hands
 * back the writer's replies; tells its owner (sharing.ts) of every `committed` push and of the channel's
 * close. Writes not yet answered stay pending across connections: `resend` sends them again, in order, on
 * the next connection; `takePending` gives them to a follower that became the writer.
 */
import net from "node:net";
import { ChannelAuthError, WriterUnavailableError } from "../errors.js";
import { channelNonce, type ChannelKey } from "../crypto/channel-key.js";
import type { WriteOp } from "../storage/engine.js";
import type { RefreshHint } from "../storage/follower.js";
import { decodeMessage, encodeMessage, FrameDecoder, type Message, Msg, type Precondition, PROTOCOL_VERSION, remoteError } from "./wire.js";

export interface PendingWrite {
  readonly n: number;
  readonly pre: readonly Precondition[];
  readonly ops: readonly WriteOp[];
  /** Whether the write went out on a connection (then a timeout cannot say it was not applied). */
  sent: boolean;
  resolve(seq: number): void;
  reject(e: unknown): void;
  /** When it rejects `E_UNAVAILABLE` unanswered (`performance.now()` ms). */
  readonly deadline: number;
}

export class ChannelClient {
  private socket: net.Socket | null = null;
  /** Writes sent or to send, by `n`, in order. */
  private readonly pending = new Map<number, PendingWrite>();
  private counter = 0;
  /** Requests (`compact`, `backup`) waiting for their result, by number (from the writes' counter); never sent again. */
  private readonly requests = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  /** The writer's pid, from its HELLO. */
  writerPid: number | null = null;
  /**
   * One timer for every pending write's deadline (they come in order): due at the oldest's, re-armed by
   * `expire`. Kept between writes, unref'd while none is pending (a timer per write cost a timer list's
   * setup and teardown each: one write at a time empties the list); a pending write keeps the process alive.
   */
  private clock: NodeJS.Timeout | null = null;

  constructor(
    /** This follower's client id (16 random bytes per `openStore`). */
    readonly clientId: Uint8Array,
    private readonly key: ChannelKey | null,
    private readonly writeTimeoutMs: number,
    /** Commits up to `seq` are durable (a `COMMITTED`, or an `ACK`), where the writer writes them, and its keyring generation. */
    private readonly onCommitted: (seq: number, hint: RefreshHint, keys: number) => void,
    private readonly onClose: () => void,
  ) {}

  get connected(): boolean {
    return this.socket !== null;
  }

  /**
   * Connect to `path` and authenticate: resolves with the writer's acknowledged seq. Rejects with the OS
   * error when nothing listens there, `E_CHANNEL_AUTH` when either side's proof fails.
   */
  connect(path: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path);
      const decoder = new FrameDecoder();
      let stage: "hello" | "welcome" | "open" = "hello";
      let myNonce: Buffer | null = null;
      let writerNonce: Uint8Array | null = null;
      const fail = (e: unknown) => {
        socket.destroy();
        reject(e);
      };
      socket.on("error", (e) => {
        if (stage !== "open") fail(e);
      });
      socket.on("close", () => {
        if (stage !== "open") return fail(Object.assign(new Error("the writer closed the channel during the handshake"), { code: "ECONNRESET" }));
        if (this.socket === socket) {
          this.socket = null;
          for (const r of this.requests.values()) r.reject(new WriterUnavailableError(0, true));
          this.requests.clear();
          this.onClose();
        }
      });
      socket.on("data", (chunk: Buffer) => {
        let msgs: Message[];
        try {
          msgs = decoder.push(chunk).map((b) => decodeMessage(b));
        } catch (e) {
          return stage === "open" ? void socket.destroy() : fail(new ChannelAuthError(`the writer sent a malformed message (${(e as Error).message})`));
        }
        for (const m of msgs) {
          if (stage === "hello") {
            if (m.type !== Msg.hello || m.version !== PROTOCOL_VERSION) return fail(new ChannelAuthError("the channel's first message is not a writer's challenge of this protocol version"));
            if (this.key && !m.nonce) return fail(new ChannelAuthError("the process listening on the channel did not challenge: it is not this store's writer"));
            this.writerPid = m.pid;
            writerNonce = m.nonce;
            myNonce = m.nonce ? channelNonce() : null;
            const mac = m.nonce && this.key ? this.key.proof("client", m.nonce, myNonce!) : null;
            socket.write(encodeMessage({ type: Msg.auth, version: PROTOCOL_VERSION, clientId: this.clientId, pid: process.pid, nonce: mac ? myNonce : null, mac }));
            stage = "welcome";
          } else if (stage === "welcome") {
            if (m.type === Msg.reject) return fail(new ChannelAuthError(`the writer refused this process: ${m.message}`));
            if (m.type !== Msg.welcome) return fail(new ChannelAuthError("the writer did not answer the challenge"));
            if (this.key && (!m.mac || !this.key.verify("writer", writerNonce!, myNonce!, m.mac))) {
              return fail(new ChannelAuthError("the process listening on the channel did not prove it holds the store's key"));
            }
            stage = "open";
            // The channel never keeps the process alive by itself; a write waiting for its reply does (its timer).
            socket.unref();
            this.socket = socket;
            resolve(m.seq);
          } else this.receive(m);
        }
      });
    });
  }

  /** Send a write (queued until connected); resolves with the seq of the commit that holds it. */
  send(pre: readonly Precondition[], ops: readonly WriteOp[]): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const w: PendingWrite = { n: ++this.counter, pre, ops, sent: false, resolve, reject, deadline: performance.now() + this.writeTimeoutMs };
      this.pending.set(w.n, w);
      if (this.clock) this.clock.ref();
      else this.clock = setTimeout(() => this.expire(), this.writeTimeoutMs);
      if (this.socket) this.transmit(w);
    });
  }

  /** Send a request to the writer (connected only); resolves with its result, parsed. */
  request(op: string, args: unknown): Promise<unknown> {
    if (!this.socket) return Promise.reject(new WriterUnavailableError(0, false));
    const n = ++this.counter; // one numbering with writes: a REJECT names either
    return new Promise((resolve, reject) => {
      this.requests.set(n, { resolve, reject });
      // The channel alone never keeps the process alive; a request waiting for its answer does, as a write's timer does.
      this.socket!.ref();
      this.socket!.write(encodeMessage({ type: Msg.request, n, op, json: JSON.stringify(args ?? null) }));
    });
  }

  /** Send every pending write again, in order (after a reconnection). */
  resend(): void {
    for (const w of this.pending.values()) this.transmit(w);
  }

  /** The pending writes, in order, taken out (this process became the writer and applies them itself). */
  takePending(): PendingWrite[] {
    const all = [...this.pending.values()];
    this.pending.clear();
    clearTimeout(this.clock ?? undefined);
    this.clock = null;
    return all;
  }

  /** Reject the writes past their deadline (`E_UNAVAILABLE`, saying whether they went out); re-arm for the next. */
  private expire(): void {
    this.clock = null;
    const now = performance.now();
    for (const w of this.pending.values()) {
      if (w.deadline > now) {
        this.clock = setTimeout(() => this.expire(), w.deadline - now);
        return;
      }
      this.pending.delete(w.n);
      w.reject(new WriterUnavailableError(this.writeTimeoutMs, w.sent));
    }
  }

  /** Fail every pending write with `e` (the store closes, or this process may not connect). */
  failPending(e: unknown): void {
    for (const w of this.takePending()) w.reject(e);
  }

  close(): void {
    const s = this.socket;
    this.socket = null;
    s?.destroy();
  }

  private transmit(w: PendingWrite): void {
    w.sent = true;
    this.socket!.write(encodeMessage({ type: Msg.write, n: w.n, pre: w.pre, ops: w.ops }));
  }

  private receive(m: Message): void {
    if (m.type === Msg.committed) return this.onCommitted(m.seq, { generation: m.generation, journal: m.journal }, m.keys);
    if (m.type === Msg.result || m.type === Msg.reject) {
      const req = this.requests.get(m.n);
      if (req) {
        this.requests.delete(m.n);
        if (!this.requests.size) this.socket?.unref();
        return m.type === Msg.result ? req.resolve(JSON.parse(m.json)) : req.reject(remoteError(m.code, m.message));
      }
    }
    if (m.type !== Msg.ack && m.type !== Msg.reject) return;
    const w = this.pending.get(m.n);
    if (!w) return; // timed out meanwhile, or an answer to a write sent twice
    this.pending.delete(m.n);
    if (!this.pending.size) this.clock?.unref();
    if (m.type === Msg.reject) return w.reject(remoteError(m.code, m.message));
    // The refresh that makes the write visible starts here, told where to look; the write's caller waits for it.
    this.onCommitted(m.seq, { generation: m.generation, journal: m.journal }, m.keys);
    w.resolve(m.seq);
  }
}
