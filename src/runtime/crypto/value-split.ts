/**
 * The split of a record value into its public and sensitive parts (value.ts, docs/FORMAT.md "Record values")
 * done on the protobuf bytes instead of on a message: the generated codec encodes a write input whole, and
 * the fields a sensitive path names are moved out of those bytes. The parts are the bytes the message-level
 * split (`ValueCodec.encode`: `toBinary` of each part) writes for the same input, since both keep the
 * fields in field-number order and a message field on a sensitive path stays in the public part (with what
 * is left of it) and goes to the sensitive part only when something of it moved.
 */
import type { DescField } from "@bufbuild/protobuf";

/** Per field number on a sensitive path: null, the field moves whole; else the plan of the message it holds. */
export type WirePlan = Map<number, WirePlan | null>;

/** The wire plan of a message-level plan (value.ts `Plan`). */
export function wirePlan(plan: readonly { field: DescField; sub: readonly { field: DescField; sub: unknown }[] | null }[]): WirePlan {
  const out: WirePlan = new Map();
  for (const { field, sub } of plan) out.set(field.number, sub ? wirePlan(sub as typeof plan) : null);
  return out;
}

/** Thrown on bytes the generated encoders never write (a group, a truncated field): the caller takes the general path. */
export class WireSplitError extends Error {}

function varint(b: Uint8Array, at: number, end: number): [value: number, next: number] {
  let v = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (at >= end) break;
    const x = b[at++]!;
    v += (x & 0x7f) * 2 ** shift;
    if (x < 0x80) return [v, at];
  }
  throw new WireSplitError("bad varint");
}

function varintBytes(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** Parts of one message's bytes: slices of the input and small headers, in order. */
class Parts {
  readonly list: Uint8Array[] = [];
  length = 0;
  add(b: Uint8Array): void {
    if (b.length === 0) return;
    this.list.push(b);
    this.length += b.length;
  }
  join(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const b of this.list) {
      out.set(b, at);
      at += b.length;
    }
    return out;
  }
}

/** Where the field starting at `at` ends, and its tag and where its value starts (`next` past `end`: truncated). */
function field(b: Uint8Array, at: number, end: number): { tag: number; afterTag: number; valueAt: number; next: number } {
  const [tag, afterTag] = varint(b, at, end);
  const wt = tag % 8;
  let valueAt = afterTag;
  let next: number;
  if (wt === 0) next = varint(b, afterTag, end)[1];
  else if (wt === 1) next = afterTag + 8;
  else if (wt === 5) next = afterTag + 4;
  else if (wt === 2) {
    const [n, afterLen] = varint(b, afterTag, end);
    valueAt = afterLen;
    next = afterLen + n;
  } else throw new WireSplitError(`wire type ${wt}`);
  if (next > end) throw new WireSplitError("truncated field");
  return { tag, afterTag, valueAt, next };
}

/** Whether some field of `plan` is in the bytes (a message on a path counts only if something in it moves). */
function moves(b: Uint8Array, start: number, end: number, plan: WirePlan): boolean {
  for (let at = start; at < end; ) {
    const f = field(b, at, end);
    const entry = plan.get(Math.floor(f.tag / 8));
    if (entry === null || (entry !== undefined && moves(b, f.valueAt, f.next, entry))) return true;
    at = f.next;
  }
  return false;
}

function splitInto(b: Uint8Array, start: number, end: number, plan: WirePlan, pub: Parts, sens: Parts): void {
  let at = start;
  while (at < end) {
    const tagAt = at;
    const { tag, afterTag, valueAt, next } = field(b, at, end);
    const wt = tag % 8;
    const entry = plan.get(Math.floor(tag / 8));
    if (entry === undefined) pub.add(b.subarray(tagAt, next));
    else if (entry === null) sens.add(b.subarray(tagAt, next));
    else {
      if (wt !== 2) throw new WireSplitError("a message field not length-delimited");
      const p = new Parts();
      const s = new Parts();
      splitInto(b, valueAt, next, entry, p, s);
      const tagBytes = b.subarray(tagAt, afterTag);
      pub.add(tagBytes);
      pub.add(Uint8Array.from(varintBytes(p.length)));
      for (const x of p.list) pub.add(x);
      if (s.length > 0) {
        sens.add(tagBytes);
        sens.add(Uint8Array.from(varintBytes(s.length)));
        for (const x of s.list) sens.add(x);
      }
    }
    at = next;
  }
}

/**
 * The public and sensitive parts of the message encoded in `bytes` (`sensitive` null when no field of a
 * sensitive path is set: the value is stored plain). Throws {@link WireSplitError} on bytes it cannot walk.
 */
export function splitWire(bytes: Uint8Array, plan: WirePlan): { public: Uint8Array; sensitive: Uint8Array | null } {
  // Most values set no sensitive field: one walk that allocates nothing tells.
  if (!moves(bytes, 0, bytes.length, plan)) return { public: bytes, sensitive: null };
  const pub = new Parts();
  const sens = new Parts();
  splitInto(bytes, 0, bytes.length, plan, pub, sens);
  if (sens.length === 0) return { public: bytes, sensitive: null };
  return { public: pub.join(), sensitive: sens.join() };
}
