/**
 * The bytes of one record value (docs/FORMAT.md, "Record values"): the protobuf encoding of the message,
 * with the entity's `sensitive` fields taken out and sealed separately under the entity's sensitive-field
 * key, so that a holder of record keys only (inspection, export, logs) sees the rest and never those values.
 *
 *   value := 0x00 message                                  no sensitive field is set
 *          | 0x01 varint(keyId) varint(n) public[n] sealed  public = message without the sensitive fields,
 *                                                           sealed = nonce ‖ XChaCha20-Poly1305(sensitive part)
 *
 * Both parts are encodings of the same message type holding disjoint fields, so the message is
 * `fromBinary(public ‖ sensitive)` (protobuf merges concatenated encodings). A sensitive field reached
 * through singular message fields is split out alone; one reached through a repeated or map field moves
 * that whole repeated or map field into the sealed part (merging would append list elements, not fields).
 */
import { create, type DescField, type DescMessage, fromBinary, type JsonValue, type Message, toBinary } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { ByteReader, ByteWriter, DecodeError, type SliceableBuffer } from "../format/bytes.js";
import { KeyError } from "../errors.js";
import type { Sealer } from "./seal.js";
import { type EntityCodec, ProtoWriter } from "../format/protowire.js";
import { AuthenticationError } from "./seal.js";
import { splitWire, type WirePlan, wirePlan } from "./value-split.js";

export const ValueKind = { plain: 0, sensitive: 1 } as const;

/**
 * Internal: a record value's message bytes (past the envelope, and the sensitive part opened) do not decode
 * as the codec's message type. The typed layer reports it as a schema mismatch (`SchemaMismatchError`), not
 * as damage: the frame's checks passed, so the bytes are what was written.
 */
export class PayloadDecodeError extends Error {
  constructor(cause: unknown) {
    super("the record's message does not decode as its entity's message type", { cause });
  }
}

/** True when `bytes` are a well-formed protobuf encoding of some message (read without a schema). */
function wellFormed(bytes: Uint8Array): boolean {
  try {
    const r = new BinaryReader(bytes);
    while (r.pos < r.len) {
      const [no, wireType] = r.tag();
      r.skip(wireType, no);
    }
    return true;
  } catch {
    return false;
  }
}

/** What a value codec needs from the keyring. */
export interface SensitiveKeys {
  readonly storeId: Uint8Array;
  readonly activeKeyId: number;
  /** The sensitive-field key of `entity` under data key `keyId` (null if that data key is gone); throws in a records-only scope. */
  sensitive(keyId: number, entity: string): Sealer | null;
}

/**
 * Associated data of a sealed record value (journal) and of a sealed sensitive part: store id ‖ u32 schema
 * version ‖ UTF-8 record key. The entity is bound by the key itself (each entity has its own subkeys).
 */
export function recordAd(storeId: Uint8Array, version: number, key: string): Uint8Array {
  const at = storeId.length + 4;
  const ad = Buffer.allocUnsafe(at + Buffer.byteLength(key, "utf8"));
  ad.set(storeId, 0);
  ad.writeUInt32LE(version, storeId.length);
  ad.write(key, at, "utf8");
  return ad;
}

const adScratch = Buffer.allocUnsafe(256) as SliceableBuffer;
const adViews = new Map<number, Uint8Array>();

/**
 * {@link recordAd} in a shared buffer, for hot paths that pass it straight to one seal or open: valid
 * until the next call (no allocation per record; views are kept per length).
 */
export function scratchRecordAd(storeId: Uint8Array, version: number, key: string): Uint8Array {
  const at = storeId.length + 4;
  const n = at + (key.length * 3 <= adScratch.length - at ? adScratch.utf8Write(key, at, adScratch.length - at) : -1);
  if (n < at) return recordAd(storeId, version, key); // a very long key: no scratch
  adScratch.set(storeId, 0);
  adScratch.writeUInt32LE(version, storeId.length);
  let view = adViews.get(n);
  if (!view) adViews.set(n, (view = adScratch.subarray(0, n)));
  return view;
}

export interface Envelope {
  kind: number;
  keyId: number;
  public: Uint8Array;
  sealed: Uint8Array | null;
}

export function parseEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length === 0) throw new DecodeError("empty record value");
  const kind = bytes[0]!;
  if (kind === ValueKind.plain) return { kind, keyId: 0, public: bytes.subarray(1), sealed: null };
  if (kind !== ValueKind.sensitive) throw new DecodeError(`unknown record value kind ${kind}`);
  const r = new ByteReader(bytes);
  r.u8();
  const keyId = r.varint(0xffffffff);
  const n = r.varint(bytes.length);
  const pub = r.bytes(n);
  return { kind, keyId, public: pub, sealed: bytes.subarray(r.pos) };
}

function encodeEnvelope(pub: Uint8Array, keyId: number, sealed: Uint8Array): Uint8Array {
  const w = new ByteWriter(pub.length + sealed.length + 12);
  w.u8(ValueKind.sensitive).varint(keyId).varint(pub.length).bytes(pub).bytes(sealed);
  return w.finish();
}

/**
 * Re-seal the sensitive part of `bytes` under the active data key if it was sealed under an older one
 * (key rotation, during compaction). Values without a sensitive part, or already current, are returned as is.
 */
export function resealValue(bytes: Uint8Array, entity: string, key: string, version: number, keys: SensitiveKeys): Uint8Array {
  if (bytes[0] !== ValueKind.sensitive) return bytes;
  const env = parseEnvelope(bytes);
  if (env.keyId === keys.activeKeyId) return bytes;
  const from = keys.sensitive(env.keyId, entity);
  const to = keys.sensitive(keys.activeKeyId, entity);
  if (!from || !to) throw new KeyError(`the data key ${env.keyId} of a sensitive part of \`${entity}\` is gone`);
  const ad = recordAd(keys.storeId, version, key);
  const plain = from.open(env.sealed!, ad);
  try {
    return encodeEnvelope(env.public, to.keyId, to.seal(plain, ad));
  } finally {
    plain.fill(0);
  }
}

/**
 * The value `bytes` of record `from` (entity, key) as a value of record `to` at the same schema version: a
 * sealed sensitive part is opened under `from`'s sensitive-field key and associated data and sealed again
 * under `to`'s (active data key); the public part is kept as it is. Record history (typed/history.ts)
 * copies a replaced version into its `~history:E` entry this way.
 */
export function moveValue(
  bytes: Uint8Array,
  from: { entity: string; key: string },
  to: { entity: string; key: string },
  version: number,
  keys: SensitiveKeys | null,
): Uint8Array {
  if (bytes[0] !== ValueKind.sensitive) return bytes;
  const env = parseEnvelope(bytes);
  if (!env.sealed) return bytes;
  const src = keys?.sensitive(env.keyId, from.entity);
  const dst = keys?.sensitive(keys.activeKeyId, to.entity);
  if (!keys || !src || !dst) throw new KeyError(`the data key ${env.keyId} of a sensitive part of \`${from.entity}\` is gone`);
  const plain = src.open(env.sealed, recordAd(keys.storeId, version, from.key));
  try {
    return encodeEnvelope(env.public, dst.keyId, dst.seal(plain, recordAd(keys.storeId, version, to.key)));
  } finally {
    plain.fill(0);
  }
}

// ---------------------------------------------------------------- splitting a message

/** Per field of a message: move it whole into the sensitive part, or descend into its (singular) message. */
type Plan = { field: DescField; sub: Plan | null }[];

function compile(desc: DescMessage, paths: readonly string[]): Plan {
  const plan: Plan = [];
  // Per field, the paths below it; null when the field itself is sensitive (then it moves whole).
  const byField = new Map<DescField, string[] | null>();
  for (const p of paths) {
    const parts = p.split(".");
    let field = desc.fields.find((f) => !f.oneof && f.localName === parts[0]);
    let rest = parts.slice(1);
    if (!field && parts.length > 1) {
      // A oneof member: `oneofName.memberName`.
      field = desc.fields.find((f) => f.oneof?.localName === parts[0] && f.localName === parts[1]);
      rest = parts.slice(2);
    }
    if (!field) throw new Error(`sensitive path \`${p}\` is not a field of \`${desc.typeName}\``);
    const list = byField.has(field) ? byField.get(field)! : [];
    if (!rest.length || list === null) byField.set(field, null);
    else byField.set(field, [...list, rest.join(".")]);
  }
  for (const [field, rest] of byField) {
    plan.push({ field, sub: rest && field.fieldKind === "message" && !field.oneof ? compile(field.message, rest) : null });
  }
  return plan;
}

type Obj = Record<string, unknown>;

function isSet(obj: Obj, f: DescField): boolean {
  if (f.oneof) return (obj[f.oneof.localName] as { case?: string } | undefined)?.case === f.localName;
  const v = obj[f.localName];
  switch (f.fieldKind) {
    case "list":
      return (v as unknown[]).length > 0;
    case "map":
      return Object.keys(v as object).length > 0;
    case "message":
      return v !== undefined;
    default:
      if (v === undefined) return false;
      if (f.presence !== 2 /* IMPLICIT */) return true;
      if (v instanceof Uint8Array) return v.length > 0;
      return v !== "" && v !== 0 && v !== false && v !== BigInt(0);
  }
}

/** Move set fields of `plan` from `pub` into `sens`; true if anything moved. */
function move(plan: Plan, pub: Obj, sens: Obj, zero: (d: DescMessage) => Obj): boolean {
  let moved = false;
  for (const { field, sub } of plan) {
    if (!isSet(pub, field)) continue;
    if (field.oneof) {
      sens[field.oneof.localName] = pub[field.oneof.localName];
      pub[field.oneof.localName] = { case: undefined };
      moved = true;
    } else if (sub) {
      const child = create((field as DescField & { fieldKind: "message" }).message) as unknown as Obj;
      if (move(sub, pub[field.localName] as Obj, child, zero)) {
        sens[field.localName] = child;
        moved = true;
      }
    } else {
      sens[field.localName] = pub[field.localName];
      pub[field.localName] = zero(field.parent as DescMessage)[field.localName]; // never an extension
      moved = true;
    }
  }
  return moved;
}

/** Deep copy of a message's plain-object tree (messages, arrays, maps; bytes and scalars shared). */
function cloneTree<T>(v: T): T {
  if (Array.isArray(v)) return v.map(cloneTree) as T;
  if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) out[k] = cloneTree(x);
    return out as T;
  }
  return v;
}

/** Encodes and decodes the values of one entity. */
export class ValueCodec {
  private readonly plan: Plan;
  /** {@link plan} by field numbers, for the split of encoded bytes (value-split.ts). */
  private readonly wire: WirePlan;
  private readonly zeros = new Map<string, Obj>();
  readonly hasSensitive: boolean;

  constructor(
    readonly entity: string,
    readonly schema: DescMessage,
    readonly sensitivePaths: readonly string[],
    /** The entity's generated codec, if any: the same results as zod + protobuf-es, faster. */
    private readonly codec?: EntityCodec,
  ) {
    this.plan = compile(schema, sensitivePaths);
    this.wire = wirePlan(this.plan);
    this.hasSensitive = this.plan.length > 0;
  }

  /**
   * `fromBinary`, through the generated decoder when it takes these bytes. Bytes that do not decode as
   * `schema` throw {@link PayloadDecodeError}: the caller has checked them already (checksum, authentication).
   */
  private parse(bytes: Uint8Array): Message {
    try {
      return (this.codec?.decode(bytes) as Message | undefined) ?? fromBinary(this.schema, bytes);
    } catch (e) {
      // Well-formed protobuf that this message type cannot read (a field's wire type or UTF-8 changed): the
      // schema changed. Bytes that are not protobuf at all cannot come from any schema: damage, as before.
      if (wellFormed(bytes)) throw new PayloadDecodeError(e);
      throw e;
    }
  }

  /**
   * The stored value of a write input in one step (the generated codec's checks are zod's), or null when
   * this input needs the general path: zod, `create`, then {@link encode}. For an entity with sensitive
   * fields these are the plain value of the whole message: {@link sealSensitive} makes the stored value of it
   * once the record's key is known.
   */
  encodeInput(input: unknown, w: ProtoWriter, arena = false): Uint8Array | null {
    if (!this.codec) return null;
    // A shared writer is reset and its bytes copied out; an arena (one per batch) keeps them and hands out
    // views (one buffer for a batch's values instead of one allocation each).
    if (!arena) w.reset();
    const start = w.pos;
    w.byte(ValueKind.plain);
    if (!this.codec.encode(w, input)) {
      w.pos = start;
      return null;
    }
    const out = arena ? w.view(start) : w.copy(start);
    // The shared writer's buffer outlives this write: no sensitive value is left in it.
    if (this.hasSensitive && !arena) w.buf.fill(0, start, w.pos);
    return out;
  }

  /**
   * The stored value of `plain` (a plain value of the whole message: {@link encodeInput}) for record `key` at
   * `version`: itself when no sensitive field is set, else the envelope of its public part and its sensitive
   * part sealed, the same parts {@link encode} makes of the message. The caller zeroes `plain` when done.
   */
  sealSensitive(plain: Uint8Array, key: string, version: number, keys: SensitiveKeys | null): Uint8Array {
    if (!this.hasSensitive) return plain;
    const parts = splitWire(plain.subarray(1), this.wire);
    if (!parts.sensitive) return plain;
    if (!keys) throw new KeyError(`entity \`${this.entity}\` has sensitive fields and the store has no key`);
    const sealer = keys.sensitive(keys.activeKeyId, this.entity)!;
    const sealed = sealer.seal(parts.sensitive, recordAd(keys.storeId, version, key));
    parts.sensitive.fill(0);
    return encodeEnvelope(parts.public, sealer.keyId, sealed);
  }

  private zero = (d: DescMessage): Obj => {
    let z = this.zeros.get(d.typeName);
    if (!z) this.zeros.set(d.typeName, (z = create(d) as unknown as Obj));
    return z;
  };

  /**
   * Mark every sensitive path in `json` (the protobuf JSON of a record's public part) as `"[redacted]"`;
   * a path through a repeated or map field redacts that whole field.
   */
  redact(json: JsonValue): JsonValue {
    const mark = (plan: Plan, obj: { [k: string]: JsonValue }) => {
      for (const { field, sub } of plan) {
        if (sub) {
          const child = obj[field.jsonName];
          const next = child && typeof child === "object" && !Array.isArray(child) ? child : (obj[field.jsonName] = {});
          mark(sub, next as { [k: string]: JsonValue });
        } else obj[field.jsonName] = "[redacted]";
      }
    };
    if (json && typeof json === "object" && !Array.isArray(json)) mark(this.plan, json);
    return json;
  }

  /** Encode `msg` (a message of `schema`) for record `key` at schema `version`. */
  encode(msg: Message, key: string, version: number, keys: SensitiveKeys | null): Uint8Array {
    if (this.hasSensitive) {
      const pub = cloneTree(msg) as unknown as Obj;
      const sens = create(this.schema) as unknown as Obj;
      if (move(this.plan, pub, sens, this.zero)) {
        if (!keys) throw new KeyError(`entity \`${this.entity}\` has sensitive fields and the store has no key`);
        const sealer = keys.sensitive(keys.activeKeyId, this.entity)!;
        const plain = toBinary(this.schema, sens as unknown as Message);
        const sealed = sealer.seal(plain, recordAd(keys.storeId, version, key));
        plain.fill(0);
        return encodeEnvelope(toBinary(this.schema, pub as unknown as Message), sealer.keyId, sealed);
      }
    }
    const body = toBinary(this.schema, msg);
    const out = new Uint8Array(body.length + 1);
    out[0] = ValueKind.plain;
    out.set(body, 1);
    return out;
  }

  /**
   * Decode a stored value. With `redact`, a sealed sensitive part is not opened (its fields read as unset)
   * and the result says so; without it, the part is opened with the entity's sensitive-field key.
   */
  decode(bytes: Uint8Array, key: string, version: number, keys: SensitiveKeys | null, redact = false): { msg: Message; redacted: boolean } {
    if (bytes[0] === ValueKind.plain) return { msg: this.parse(bytes.subarray(1)), redacted: false };
    const env = parseEnvelope(bytes);
    if (!env.sealed) return { msg: this.parse(env.public), redacted: false };
    if (redact) return { msg: this.parse(env.public), redacted: true };
    const sealer = keys?.sensitive(env.keyId, this.entity);
    if (!sealer) throw new KeyError(`the data key ${env.keyId} of a sensitive part of \`${this.entity}\` is missing`);
    let plain: Uint8Array;
    try {
      plain = sealer.open(env.sealed, recordAd(keys!.storeId, version, key));
    } catch (e) {
      if (e instanceof AuthenticationError) throw new DecodeError("authentication failed (sensitive part)");
      throw e;
    }
    const whole = new Uint8Array(env.public.length + plain.length);
    whole.set(env.public, 0);
    whole.set(plain, env.public.length);
    plain.fill(0);
    // `whole` is not zeroed: the decoded message's bytes fields are views into it.
    return { msg: this.parse(whole), redacted: false };
  }
}
