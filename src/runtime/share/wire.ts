/**
 * The bytes that cross a store's channel (docs/FORMAT.md, "Channel"): length-prefixed frames (u32 LE body
 * length, then the body), each body a message whose first byte is its type. A write's ops travel in the
 * commit payload encoding of format/records.ts (`encodeCommit`), values as the typed layer made them
 * (sensitive fields already sealed). Pure functions over bytes, and `FrameDecoder`, which cuts a byte
 * stream into bodies with every length bounded.
 */
import { ByteReader, ByteWriter, DecodeError } from "../format/bytes.js";
import { MAX_ENTITY_NAME_BYTES, MAX_KEY_BYTES } from "../format/format.js";
import { decodeCommit, encodeCommit, type WriteOp } from "../format/records.js";
import { CellarError, type CellarErrorCode, ConflictError, isCellarError } from "../errors.js";

/** Version of the channel protocol, in HELLO and AUTH; a side that sees another refuses the connection (2: `ACK` and `COMMITTED` carry the writer's keyring generation). */
export const PROTOCOL_VERSION = 2;
/** The largest message body accepted (a write is at most 32 MiB of ops, plus its header). */
export const MAX_MESSAGE_BYTES = 48 * 1024 * 1024;
/** Bytes of a follower's client id. */
export const CLIENT_ID_BYTES = 16;
const MAX_CODE_BYTES = 64;
const MAX_TEXT_BYTES = 4096;
/** The largest JSON of a request (its options) or of its result. */
const MAX_REQUEST_BYTES = 1024 * 1024;

export const Msg = { hello: 1, auth: 2, welcome: 3, write: 4, ack: 5, reject: 6, committed: 7, request: 8, result: 9 } as const;

/** Per key a follower's write touches: the seq of the live version the write was made from (0 = absent). */
export interface Precondition {
  entity: string;
  key: string;
  seq: number;
}

export type Message =
  | { type: typeof Msg.hello; version: number; pid: number; nonce: Uint8Array | null }
  | { type: typeof Msg.auth; version: number; clientId: Uint8Array; pid: number; nonce: Uint8Array | null; mac: Uint8Array | null }
  | { type: typeof Msg.welcome; seq: number; mac: Uint8Array | null }
  | { type: typeof Msg.write; n: number; pre: readonly Precondition[]; ops: readonly WriteOp[] }
  | { type: typeof Msg.ack; n: number; seq: number; generation: number; journal: number; keys: number }
  | { type: typeof Msg.reject; n: number; code: string; message: string }
  | { type: typeof Msg.committed; seq: number; generation: number; journal: number; keys: number }
  | { type: typeof Msg.request; n: number; op: string; json: string }
  | { type: typeof Msg.result; n: number; json: string };

/** One frame: u32 LE length, then the body. */
function frame(body: Uint8Array): Buffer {
  if (body.length > MAX_MESSAGE_BYTES) throw new RangeError(`a channel message of ${body.length} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  out.set(body, 4);
  return out;
}

/** A message as one frame, ready for `socket.write`. */
export function encodeMessage(m: Message): Buffer {
  const w = new ByteWriter(64);
  w.u8(m.type);
  switch (m.type) {
    case Msg.hello:
      w.u8(m.version).u8(m.nonce ? 1 : 0).u32(m.pid);
      if (m.nonce) w.bytes(m.nonce);
      break;
    case Msg.auth:
      w.u8(m.version).bytes(m.clientId).u32(m.pid).u8(m.nonce ? 1 : 0);
      if (m.nonce) w.bytes(m.nonce).bytes(m.mac!);
      break;
    case Msg.welcome:
      w.varint(m.seq).u8(m.mac ? 1 : 0);
      if (m.mac) w.bytes(m.mac);
      break;
    case Msg.write:
      w.varint(m.n).varint(m.pre.length);
      for (const p of m.pre) w.string(p.entity).string(p.key).varint(p.seq);
      encodeCommit(m.ops, w);
      break;
    case Msg.ack:
      w.varint(m.n).varint(m.seq).varint(m.generation).varint(m.journal).varint(m.keys);
      break;
    case Msg.reject:
      w.varint(m.n).string(m.code).string(m.message.slice(0, 1000));
      break;
    case Msg.committed:
      w.varint(m.seq).varint(m.generation).varint(m.journal).varint(m.keys);
      break;
    case Msg.request:
      w.varint(m.n).string(m.op).string(m.json);
      break;
    case Msg.result:
      w.varint(m.n).string(m.json);
      break;
  }
  return frame(w.finish());
}

/** A message body back (throws `DecodeError` on anything malformed or of an unknown type). */
export function decodeMessage(body: Uint8Array): Message {
  const r = new ByteReader(body);
  const type = r.u8();
  let m: Message;
  switch (type) {
    case Msg.hello: {
      const version = r.u8();
      const auth = r.u8();
      m = { type, version, pid: r.u32(), nonce: auth ? r.bytes(32).slice() : null };
      break;
    }
    case Msg.auth: {
      const version = r.u8();
      const clientId = r.bytes(CLIENT_ID_BYTES).slice();
      const pid = r.u32();
      const auth = r.u8();
      m = { type, version, clientId, pid, nonce: auth ? r.bytes(32).slice() : null, mac: auth ? r.bytes(32).slice() : null };
      break;
    }
    case Msg.welcome: {
      const seq = r.varint();
      m = { type, seq, mac: r.u8() ? r.bytes(32).slice() : null };
      break;
    }
    case Msg.write: {
      const n = r.varint();
      const count = r.varint(1_000_000);
      const pre: Precondition[] = [];
      for (let i = 0; i < count; i++) pre.push({ entity: r.string(MAX_ENTITY_NAME_BYTES), key: r.string(MAX_KEY_BYTES), seq: r.varint() });
      const plain = body.subarray(r.pos);
      const ops = decodeCommit(plain).map((e): WriteOp =>
        e.op === "put"
          ? { op: "put", entity: e.entity, key: e.key, version: e.version, terms: e.terms, value: plain.subarray(e.start, e.start + e.length) }
          : { op: "delete", entity: e.entity, key: e.key },
      );
      return { type, n, pre, ops };
    }
    case Msg.ack:
      m = { type, n: r.varint(), seq: r.varint(), generation: r.varint(), journal: r.varint(), keys: r.varint() };
      break;
    case Msg.reject:
      m = { type, n: r.varint(), code: r.string(MAX_CODE_BYTES), message: r.string(MAX_TEXT_BYTES) };
      break;
    case Msg.committed:
      m = { type, seq: r.varint(), generation: r.varint(), journal: r.varint(), keys: r.varint() };
      break;
    case Msg.request:
      m = { type, n: r.varint(), op: r.string(MAX_CODE_BYTES), json: r.string(MAX_REQUEST_BYTES) };
      break;
    case Msg.result:
      m = { type, n: r.varint(), json: r.string(MAX_REQUEST_BYTES) };
      break;
    default:
      throw new DecodeError(`unknown channel message type ${type}`);
  }
  if (!r.done) throw new DecodeError(`${r.buf.length - r.pos} unexpected bytes after a channel message of type ${type}`);
  return m;
}

/** Cuts a byte stream into message bodies. A length over {@link MAX_MESSAGE_BYTES} is a `DecodeError`. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private size = 0;

  /** Add bytes; returns the bodies now complete, in order. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const out: Buffer[] = [];
    while (this.size >= 4) {
      let head = this.chunks[0]!;
      if (head.length < 4) head = this.flatten();
      const len = head.readUInt32LE(0);
      if (len > MAX_MESSAGE_BYTES) throw new DecodeError(`a channel frame of ${len} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`);
      if (this.size < 4 + len) break;
      if (head.length < 4 + len) head = this.flatten();
      out.push(head.subarray(4, 4 + len));
      const rest = head.subarray(4 + len);
      this.size -= 4 + len;
      if (rest.length) this.chunks[0] = rest;
      else this.chunks.shift();
    }
    return out;
  }

  private flatten(): Buffer {
    const all = Buffer.concat(this.chunks);
    this.chunks = [all];
    return all;
  }
}

/** The error a REJECT names, as the follower's app sees it (a conflict as `ConflictError`, retried by the store). */
export function remoteError(code: string, message: string): CellarError {
  if (code === "E_CONFLICT") return new ConflictError(message);
  const e = new CellarError(code as CellarErrorCode, message);
  return isCellarError(e) ? e : new CellarError("E_IO", `the writer failed: ${message}`);
}
