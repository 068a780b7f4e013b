/**
 * The audit log's records (docs/FORMAT.md, "Audit log"): the engine entity `~audit` holds entries under
 * `e/<seq as 16 hex digits>`, the chain head under `h` and, once a prefix was pruned, the anchor under `a`.
 * Pure encoding and decoding; the MACs are computed by crypto/audit-mac.ts and checked by storage/audit-log.ts.
 */
import { ByteReader, ByteWriter, DecodeError } from "./bytes.js";

export const AUDIT_ENTITY = "~audit";
export const AUDIT_HEAD_KEY = "h";
export const AUDIT_ANCHOR_KEY = "a";
export const AUDIT_ENTRY_PREFIX = "e/";
export const AUDIT_MAC_SIZE = 32;
/** Byte 0 of every `~audit` value. */
export const AUDIT_FORMAT_VERSION = 1;
export const AUDIT_LIMITS = { actor: 256, host: 255, entity: 255, keys: 32, key: 1024, detail: 4096 } as const;

/** What an entry records (its byte in the entry). */
export const AUDIT_ACTIONS = [
  "read", // 1: sensitive fields read (aggregated)
  "write", // 2: records of an entity with sensitive fields put or deleted (aggregated)
  "export",
  "import",
  "backup",
  "restore",
  "rotate-key",
  "reencrypt",
  "change-master-key",
  "recover",
  "prune",
  "start", // 12: the log began (its first entry)
  "reveal", // 13: one sensitive field of one record shown to a person (store.audit.reveal: Cellar Studio)
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** One entry without its MAC. `detail` is a JSON object's text (never a stored value). */
export interface AuditEntryBody {
  seq: number;
  at: number;
  action: AuditAction;
  actor: string;
  pid: number;
  host: string;
  entity: string;
  count: number;
  keys: readonly string[];
  detail: string;
}

/**
 * A `~audit` record's value as the engine stores every value (a plain value envelope, crypto/value.ts, whose
 * message bytes are well-formed protobuf: restore and backups check that): `0x00 ‖ 0x0A ‖ varint(n) ‖ payload`,
 * i.e. the payload as field 1 (bytes) of a message.
 */
export function wrapValue(payload: Uint8Array): Uint8Array {
  return new ByteWriter(payload.length + 8).u8(0).u8(0x0a).varint(payload.length).bytes(payload).finish().slice();
}

export function unwrapValue(value: Uint8Array): Uint8Array {
  const r = new ByteReader(value);
  if (r.u8() !== 0 || r.u8() !== 0x0a) throw new DecodeError("not an audit record");
  const n = r.varint(value.length);
  const payload = r.bytes(n);
  if (!r.done) throw new DecodeError("trailing bytes after an audit record");
  return payload;
}

export function entryKey(seq: number): string {
  return AUDIT_ENTRY_PREFIX + seq.toString(16).padStart(16, "0");
}

/** The seq of an entry key, or null when `key` is not one. */
export function seqOfKey(key: string): number | null {
  if (!key.startsWith(AUDIT_ENTRY_PREFIX) || key.length !== AUDIT_ENTRY_PREFIX.length + 16) return null;
  const n = Number.parseInt(key.slice(AUDIT_ENTRY_PREFIX.length), 16);
  return Number.isSafeInteger(n) && /^[0-9a-f]{16}$/.test(key.slice(2)) ? n : null;
}

export function encodeEntryBody(e: AuditEntryBody): Uint8Array {
  const w = new ByteWriter(128);
  w.u8(AUDIT_FORMAT_VERSION).varint(e.seq).varint(e.at).u8(AUDIT_ACTIONS.indexOf(e.action) + 1);
  w.string(e.actor).varint(e.pid).string(e.host).string(e.entity).varint(e.count).varint(e.keys.length);
  for (const k of e.keys) w.string(k);
  w.string(e.detail);
  return w.finish().slice();
}

/** An entry's record value: wrapped(body ‖ mac). */
export function encodeEntry(body: Uint8Array, mac: Uint8Array): Uint8Array {
  const payload = new Uint8Array(body.length + mac.length);
  payload.set(body);
  payload.set(mac, body.length);
  return wrapValue(payload);
}

export function decodeEntry(record: Uint8Array): { body: AuditEntryBody; bodyBytes: Uint8Array; mac: Uint8Array } {
  const value = unwrapValue(record);
  if (value.length < 1 + AUDIT_MAC_SIZE) throw new DecodeError("audit entry too short");
  const bodyBytes = value.subarray(0, value.length - AUDIT_MAC_SIZE);
  const r = new ByteReader(bodyBytes);
  if (r.u8() !== AUDIT_FORMAT_VERSION) throw new DecodeError("unknown audit entry version");
  const seq = r.varint();
  const at = r.varint();
  const action = AUDIT_ACTIONS[r.u8() - 1];
  if (!action) throw new DecodeError("unknown audit action");
  const actor = r.string(AUDIT_LIMITS.actor);
  const pid = r.varint();
  const host = r.string(AUDIT_LIMITS.host);
  const entity = r.string(AUDIT_LIMITS.entity);
  const count = r.varint();
  const nkeys = r.varint(AUDIT_LIMITS.keys);
  const keys: string[] = [];
  for (let i = 0; i < nkeys; i++) keys.push(r.string(AUDIT_LIMITS.key));
  const detail = r.string(AUDIT_LIMITS.detail);
  if (!r.done) throw new DecodeError("trailing bytes in an audit entry");
  return { body: { seq, at, action, actor, pid, host, entity, count, keys, detail }, bodyBytes, mac: value.subarray(bodyBytes.length) };
}

/** The chain head (`h`) and the anchor (`a`): a seq and the MAC of the entry at it; the anchor has a MAC of its own. */
export interface AuditPoint {
  seq: number;
  mac: Uint8Array;
}

function pointBytes(h: AuditPoint): Uint8Array {
  return new ByteWriter(48).u8(AUDIT_FORMAT_VERSION).varint(h.seq).bytes(h.mac).finish().slice();
}

export function encodeHead(h: AuditPoint): Uint8Array {
  return wrapValue(pointBytes(h));
}

export function decodeHead(record: Uint8Array): AuditPoint {
  return readPoint(unwrapValue(record));
}

function readPoint(value: Uint8Array): AuditPoint {
  const r = new ByteReader(value);
  if (r.u8() !== AUDIT_FORMAT_VERSION) throw new DecodeError("unknown audit head version");
  const seq = r.varint();
  const mac = r.bytes(AUDIT_MAC_SIZE).slice();
  if (!r.done) throw new DecodeError("trailing bytes in the audit head");
  return { seq, mac };
}

/** The anchor's bytes before its own MAC (what that MAC covers). */
export function anchorBody(a: AuditPoint): Uint8Array {
  return pointBytes(a);
}

export function encodeAnchor(a: AuditPoint, anchorMac: Uint8Array): Uint8Array {
  return encodeEntry(anchorBody(a), anchorMac);
}

export function decodeAnchor(record: Uint8Array): { point: AuditPoint; body: Uint8Array; mac: Uint8Array } {
  const value = unwrapValue(record);
  if (value.length < AUDIT_MAC_SIZE + 2) throw new DecodeError("audit anchor too short");
  const body = value.subarray(0, value.length - AUDIT_MAC_SIZE);
  return { point: readPoint(body), body, mac: value.subarray(body.length) };
}
