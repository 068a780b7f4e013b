/**
 * Write ids, exactly once (docs/FORMAT.md, "`~clients`"): every follower write carries `(client id, n)`,
 * and the writer puts record `~clients`/`<client id hex>` = a plain record value (crypto/value.ts: compaction
 * and backup verification read every value so) holding the protobuf message `{ uint64 n = 1; fixed64 ms = 2 }`
 * (`0x00 ‖ 0x08 varint(n) ‖ 0x11 u64 LE wall time ms`), in the same
 * engine write, so the id is durable atomically with the write and a new writer (after a failover) reads it.
 * A write whose `n` is at most the client's recorded one was applied already: acknowledged, never applied
 * again. `ClientTable` is the writer's view: the durable values, read on first use, and what is queued.
 */
import { ByteReader, ByteWriter, DecodeError } from "../format/bytes.js";
import type { Engine, WriteOp } from "../storage/engine.js";
import { ValueKind } from "../crypto/value.js";

/** The internal entity of the write-id records. */
export const CLIENTS_ENTITY = "~clients";
/** Records of clients silent for longer are deleted when a writer opens. */
export const CLIENT_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
/** Outcomes of failed writes remembered per client (a re-send after a lost reply gets the same answer). */
const FAILED_KEPT = 64;

export function encodeClientValue(n: number, ms: number): Uint8Array {
  const w = new ByteWriter(24).u8(ValueKind.plain).u8(0x08).varint(n).u8(0x11);
  const t = w.reserve(8);
  new DataView(t.buffer, t.byteOffset, 8).setBigUint64(0, BigInt(Math.max(0, Math.floor(ms))), true);
  return w.finish().slice();
}

export function decodeClientValue(b: Uint8Array): { n: number; ms: number } {
  const r = new ByteReader(b);
  if (r.u8() !== ValueKind.plain || r.u8() !== 0x08) throw new DecodeError("not a `~clients` value");
  const n = r.varint();
  if (r.u8() !== 0x11) throw new DecodeError("not a `~clients` value");
  const t = r.bytes(8);
  if (!r.done) throw new DecodeError("unexpected bytes after a `~clients` value");
  return { n, ms: Number(new DataView(t.buffer, t.byteOffset, 8).getBigUint64(0, true)) };
}

export interface ClientState {
  /** The highest `n` queued or applied. */
  queued: number;
  /** Writes of this client not yet committed, by `n`: resolve with the seq to acknowledge. */
  readonly inflight: Map<number, Promise<number>>;
  /** Failed writes, by `n` (the last {@link FAILED_KEPT}). */
  readonly failed: Map<number, { code: string; message: string }>;
}

export class ClientTable {
  private readonly clients = new Map<string, ClientState>();

  constructor(private readonly engine: Engine) {}

  /** The state of client `id` (hex), its durable `n` read from `~clients` on first use. */
  get(id: string): ClientState {
    let c = this.clients.get(id);
    if (!c) {
      const rec = this.engine.get(CLIENTS_ENTITY, id);
      let n = 0;
      if (rec) {
        try {
          n = decodeClientValue(rec.value).n;
        } catch {
          n = 0; // not a value this code wrote: no write of it is known
        }
      }
      this.clients.set(id, (c = { queued: n, inflight: new Map(), failed: new Map() }));
    }
    return c;
  }

  /** The put that records `n` as client `id`'s last applied write. */
  static recordOp(id: string, n: number, ms = Date.now()): WriteOp {
    return { op: "put", entity: CLIENTS_ENTITY, key: id, version: 1, value: encodeClientValue(n, ms), terms: [] };
  }

  /** Remember that write `n` of `c` failed. */
  static fail(c: ClientState, n: number, code: string, message: string): void {
    c.failed.set(n, { code, message });
    if (c.failed.size > FAILED_KEPT) c.failed.delete(c.failed.keys().next().value!);
  }

  /** Deletes of the `~clients` records older than {@link CLIENT_MAX_AGE_MS} (a writer runs them at open). */
  staleOps(now = Date.now()): WriteOp[] {
    const ops: WriteOp[] = [];
    for (const [key] of this.engine.scan(CLIENTS_ENTITY)) {
      const rec = this.engine.get(CLIENTS_ENTITY, key);
      let ms = 0;
      try {
        if (rec) ms = decodeClientValue(rec.value).ms;
      } catch {
        ms = 0;
      }
      if (now - ms > CLIENT_MAX_AGE_MS && !this.clients.get(key)?.inflight.size) ops.push({ op: "delete", entity: CLIENTS_ENTITY, key });
    }
    return ops;
  }
}
