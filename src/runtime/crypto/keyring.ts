/**
 * The key hierarchy of an encrypted store (docs/FORMAT.md, "Keyring"; docs/SECURITY.md):
 *
 *   master key (KEK, from a KeyProvider)
 *     └─ wraps data keys DK₁, DK₂, … (random, one per rotation) in the KEYRING file
 *          └─ crypto_kdf subkeys of each DK:
 *               meta       ("CellarMK", id 0)          manifest, journal commit frames, segment indexes
 *               record(e)  ("CellarRK", id entityId(e)) values of entity e (journal) and its segment blocks
 *               sensitive(e) ("CellarSK", id entityId(e)) the sealed sensitive fields inside e's values
 *     └─ wraps the audit root (key id 0, stores with an audit log only; never rotated or retired)
 *          └─ crypto_kdf subkey "CellarAU" id 0: the audit log's MAC key (audit-mac.ts)
 *
 * Every secret lives in sodium secure memory (`sodium_malloc`) and is zeroed by `destroy()`. The KEYRING
 * file is replaced only by temp file, fsync, rename, directory fsync, like the manifest.
 */
import sodium from "sodium-native";
import { ByteReader, ByteWriter, DecodeError } from "../format/bytes.js";
import { CorruptionError, KeyError } from "../errors.js";
import { FILE_HEADER_BOUND, FILE_HEADER_SIZE, FileKind, FRAME_HEADER_SIZE, FrameType, NONCE_SIZE, TAG_SIZE } from "../format/format.js";
import { decodeFileHeader, decodeFrame, encodeFileHeader, encodeFrame, FrameError } from "../format/frame.js";
import { type Failpoint, type FileIO, replaceFileAtomically } from "../platform/io.js";
import type { StorePaths } from "../format/filenames.js";
import type { KeyProvider } from "./keys.js";
import { describe, KekKind, kindOf, masterKey, newPwhash, type PasswordHash, PWHASH_SALT_SIZE, secureCopy } from "./master-key.js";
import { KEY_SIZE, Sealer } from "./seal.js";

export const KDF_CONTEXT = { meta: "CellarMK", record: "CellarRK", sensitive: "CellarSK" } as const;
/** The keyring id of the audit root (docs/FORMAT.md, "Audit log"): data keys start at 1. */
export const AUDIT_ROOT_ID = 0;
const WRAPPED_SIZE = NONCE_SIZE + KEY_SIZE + TAG_SIZE;
/** Upper bound of the number of data keys a keyring may list (rotations not yet finished). */
const MAX_KEYS = 1024;
const MAX_PROVIDER_NAME = 255;

/**
 * How a keyring is opened: a provider, or (for the copies of a store Cellar made itself, e.g. pre-migration
 * backups, whose keyrings are kept under the store's master key) the store's master key already derived.
 */
export type MasterKeySource = KeyProvider | { readonly kind: "unwrapped"; readonly kek: Uint8Array };

/** The plaintext parameters of a keyring, readable without any key. */
export interface KeyringHeader {
  storeId: Uint8Array;
  generation: number;
  kekKind: KekKind;
  /** The provider's name when the keyring was last written (for error messages only). */
  providerName: string;
  pwhash: PasswordHash | null;
  activeKeyId: number;
  wrapped: Map<number, Uint8Array>;
  /** The payload bytes from its start through `nkeys`, bound into every wrapping's AD. */
  params: Uint8Array;
}

/** Subkey id of an entity for crypto_kdf: the first 6 bytes (little-endian) of BLAKE2b-256 of its UTF-8 name. */
export function entityKeyId(entity: string): number {
  const h = Buffer.alloc(32);
  sodium.crypto_generichash(h, Buffer.from(entity, "utf8"));
  return h.readUIntLE(0, 6);
}

/** `crypto_kdf_derive_from_key(32, id, context, key)` into secure memory. */
export function deriveSubkey(key: Buffer, id: number, context: string): Buffer {
  const sub = sodium.sodium_malloc(KEY_SIZE);
  sodium.crypto_kdf_derive_from_key(sub, id, Buffer.from(context, "latin1"), key);
  return sub;
}

/** AD of a wrapped data key: the file header's bound part, the key id, and the keyring's parameters. */
function wrapAd(bound: Uint8Array, keyId: number, params: Uint8Array): Uint8Array {
  const ad = new Uint8Array(FILE_HEADER_BOUND + 4 + params.length);
  ad.set(bound, 0);
  new DataView(ad.buffer).setUint32(FILE_HEADER_BOUND, keyId, true);
  ad.set(params, FILE_HEADER_BOUND + 4);
  return ad;
}

// ---------------------------------------------------------------- file
function encodeKeyringFile(h: KeyringHeader, kek: Buffer, dataKeys: ReadonlyMap<number, Buffer>): Uint8Array {
  const header = encodeFileHeader(FileKind.keyring, h.storeId, h.generation >>> 0);
  const bound = header.subarray(0, FILE_HEADER_BOUND);
  const w = new ByteWriter(256);
  w.u8(h.kekKind).string(h.providerName);
  if (h.kekKind === KekKind.passphrase) {
    const p = h.pwhash!;
    w.bytes(p.salt).varint(p.opsLimit).varint(p.memLimit).u8(sodium.crypto_pwhash_ALG_ARGON2ID13);
  }
  w.varint(h.activeKeyId);
  const ids = [...dataKeys.keys()].sort((a, b) => a - b);
  w.varint(ids.length);
  // Every plaintext field up to here is authenticated by every wrapping (FORMAT.md, "Keyring").
  const params = w.finish().slice();
  for (const id of ids) {
    const wrapped = Buffer.alloc(WRAPPED_SIZE);
    const nonce = wrapped.subarray(0, NONCE_SIZE);
    sodium.randombytes_buf(nonce);
    sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(wrapped.subarray(NONCE_SIZE), dataKeys.get(id)!, wrapAd(bound, id, params), null, nonce, kek);
    w.varint(id).bytes(wrapped);
  }
  const frame = encodeFrame({ type: FrameType.keyring, seq: h.generation, plaintext: w.finish(), compress: false, sealer: null }, bound);
  const out = new Uint8Array(header.length + frame.length);
  out.set(header);
  out.set(frame, header.length);
  return out;
}

/** Read the keyring's plaintext part (checksums first); wrapped keys stay wrapped. */
export function readKeyringHeader(bytes: Uint8Array): KeyringHeader {
  let fh;
  let plain: Uint8Array;
  let generation: number;
  try {
    fh = decodeFileHeader(bytes, FileKind.keyring);
    const frame = bytes.subarray(FILE_HEADER_SIZE);
    const opened = decodeFrame(frame, fh.bound, () => null, false, 64 * 1024);
    if (opened.header.type !== FrameType.keyring || opened.header.seq !== fh.fileNumber) throw new FrameError("unexpected frame type");
    plain = opened.plaintext;
    generation = opened.header.seq;
  } catch (e) {
    if (e instanceof FrameError) throw new CorruptionError("KEYRING", e.problem.startsWith("bad magic") ? 0 : FILE_HEADER_SIZE, e.message);
    throw e;
  }
  try {
    const r = new ByteReader(plain);
    const kind = r.u8();
    if (kind !== KekKind.raw && kind !== KekKind.passphrase && kind !== KekKind.external) throw new DecodeError(`unknown master key kind ${kind}`);
    const providerName = r.string(MAX_PROVIDER_NAME);
    let pwhash: KeyringHeader["pwhash"] = null;
    if (kind === KekKind.passphrase) {
      const salt = r.bytes(PWHASH_SALT_SIZE).slice();
      const opsLimit = r.varint(64);
      const memLimit = r.varint(4 * 1024 * 1024 * 1024);
      if (opsLimit < 1 || memLimit < 8192) throw new DecodeError("password hash cost below the minimum");
      const alg = r.u8();
      if (alg !== sodium.crypto_pwhash_ALG_ARGON2ID13) throw new DecodeError(`unknown password hash ${alg}`);
      pwhash = { salt, opsLimit, memLimit };
    }
    const activeKeyId = r.varint(0xffffffff);
    const wrapped = new Map<number, Uint8Array>();
    const nkeys = r.varint(MAX_KEYS);
    const params = plain.slice(0, r.pos);
    for (let i = 0; i < nkeys; i++) {
      const id = r.varint(0xffffffff);
      wrapped.set(id, r.bytes(WRAPPED_SIZE).slice());
    }
    if (!r.done) throw new DecodeError("trailing bytes");
    if (!wrapped.has(activeKeyId)) throw new DecodeError("the active key is not listed");
    return { storeId: fh.storeId, generation, kekKind: kind, providerName, pwhash, activeKeyId, wrapped, params };
  } catch (e) {
    if (e instanceof DecodeError) throw new CorruptionError("KEYRING", FILE_HEADER_SIZE + FRAME_HEADER_SIZE, `bad payload (${e.message})`);
    throw e;
  }
}

// ---------------------------------------------------------------- the keyring in memory

/** Which subkeys a keyring will derive: `"records"` never derives sensitive-field keys (inspection tools). */
export type KeyScope = "all" | "records";

export type KeyringFailpoint = Extract<Failpoint, "keyring.beforeRename" | "keyring.afterRename">;

export class Keyring {
  private kek: Buffer | null;
  private readonly dataKeys = new Map<number, Buffer>();
  private readonly subkeys = new Map<string, Sealer>();
  private header: KeyringHeader;
  /** The audit log's root key (id 0 in the file), kept apart from the data keys: never rotated, retired or used to seal. */
  private auditRoot: Buffer | null = null;

  private constructor(
    private readonly io: FileIO,
    private readonly paths: StorePaths,
    header: KeyringHeader,
    kek: Buffer,
    readonly scope: KeyScope,
    private readonly fp: (name: Failpoint) => void,
  ) {
    this.header = header;
    this.kek = kek;
  }

  get storeId(): Uint8Array {
    return this.header.storeId;
  }
  get activeKeyId(): number {
    return this.header.activeKeyId;
  }
  /** Ids of the data keys the keyring holds, oldest first. */
  get keyIds(): number[] {
    return [...this.dataKeys.keys()].sort((a, b) => a - b);
  }
  get kekKind(): "raw" | "passphrase" | "external" {
    return this.header.kekKind === KekKind.passphrase ? "passphrase" : this.header.kekKind === KekKind.raw ? "raw" : "external";
  }

  /** Create the keyring of a new store: one random data key (id 1), written before the manifest. */
  static async create(
    io: FileIO,
    paths: StorePaths,
    storeId: Uint8Array,
    provider: KeyProvider,
    scope: KeyScope,
    fp: (name: Failpoint) => void,
  ): Promise<Keyring> {
    const pwhash = newPwhash(provider);
    const kek = await masterKey(provider, pwhash, { dir: paths.dir, storeId, creating: true });
    const header: KeyringHeader = {
      storeId,
      generation: 1,
      kekKind: kindOf(provider),
      providerName: provider.kind === "external" ? provider.name.slice(0, MAX_PROVIDER_NAME) : "",
      pwhash,
      activeKeyId: 1,
      wrapped: new Map(),
      params: new Uint8Array(0),
    };
    const ring = new Keyring(io, paths, header, kek, scope, fp);
    const dk = sodium.sodium_malloc(KEY_SIZE);
    sodium.randombytes_buf(dk);
    ring.dataKeys.set(1, dk);
    try {
      ring.write(header);
    } catch (e) {
      ring.destroy();
      throw e;
    }
    return ring;
  }

  /**
   * Open the keyring of an existing store: checksums, then the master key, then every data key is
   * unwrapped. A master key that unwraps nothing is a {@link KeyError}, before any record is read.
   */
  static async load(io: FileIO, paths: StorePaths, provider: MasterKeySource, scope: KeyScope, fp: (name: Failpoint) => void): Promise<Keyring> {
    if (!io.exists(paths.keyring)) {
      throw new CorruptionError("KEYRING", 0, "missing: the store is encrypted but its keyring file is gone (restore it from a backup)");
    }
    const bytes = io.readFile(paths.keyring);
    const header = readKeyringHeader(bytes);
    if (provider.kind === "unwrapped") return Keyring.unwrapAll(io, paths, bytes, header, secureCopy(provider.kek), scope, fp, "the store's master key");
    const wantPass = header.kekKind === KekKind.passphrase;
    if (wantPass !== (provider.kind === "passphrase")) {
      throw new KeyError(
        wantPass
          ? "this store's master key comes from a passphrase: open it with `keys.passphrase(...)`"
          : `this store's master key is a 32-byte key${header.providerName ? ` (last given by \`${header.providerName}\`)` : ""}, not a passphrase`,
      );
    }
    const kek = await masterKey(provider, header.pwhash, { dir: paths.dir, storeId: header.storeId, creating: false });
    return Keyring.unwrapAll(io, paths, bytes, header, kek, scope, fp, describe(provider));
  }

  /** Unwrap every data key of a keyring file with `kek` (taken over: zeroed on failure). */
  private static unwrapAll(
    io: FileIO,
    paths: StorePaths,
    bytes: Uint8Array,
    header: KeyringHeader,
    kek: Buffer,
    scope: KeyScope,
    fp: (name: Failpoint) => void,
    what: string,
  ): Keyring {
    const ring = new Keyring(io, paths, header, kek, scope, fp);
    try {
      const bound = bytes.subarray(0, FILE_HEADER_BOUND);
      for (const [id, wrapped] of header.wrapped) {
        const dk = sodium.sodium_malloc(KEY_SIZE);
        try {
          sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(dk, null, wrapped.subarray(NONCE_SIZE), wrapAd(bound, id, header.params), wrapped.subarray(0, NONCE_SIZE), kek);
        } catch {
          sodium.sodium_memzero(dk);
          throw new KeyError(`${what} does not open this store (wrong key or passphrase)`);
        }
        if (id === AUDIT_ROOT_ID) ring.auditRoot = dk;
        else ring.dataKeys.set(id, dk);
      }
    } catch (e) {
      ring.destroy();
      throw e;
    }
    return ring;
  }

  private k(): Buffer {
    if (!this.kek) throw new KeyError("the keyring was closed");
    return this.kek;
  }

  /** Write `h` with the data keys in memory, atomically (temp, fsync, rename, directory fsync). */
  private write(h: KeyringHeader): void {
    const bytes = encodeKeyringFile(h, this.k(), this.filed());
    const { io, paths } = this;
    replaceFileAtomically(io, paths.dir, paths.keyringTemp, paths.keyring, bytes, () => this.fp("keyring.beforeRename"));
    this.fp("keyring.afterRename");
    this.header = h;
  }

  /** Derive and remember subkey `name` (callers look in `subkeys` first). */
  private sealer(id: number, context: string, subId: number, name: string): Sealer | null {
    const dk = this.dataKeys.get(id);
    if (!dk) return null;
    const sub = deriveSubkey(dk, subId, context);
    let s: Sealer;
    try {
      s = new Sealer(id, sub);
    } finally {
      sodium.sodium_memzero(sub);
    }
    this.subkeys.set(name, s);
    return s;
  }

  /** Key for the manifest, journal commit frames and segment indexes. */
  meta(id: number): Sealer | null {
    return this.subkeys.get(`m/${id}`) ?? this.sealer(id, KDF_CONTEXT.meta, 0, `m/${id}`);
  }
  /** Key for the values of `entity` (journal) and its segment blocks. */
  record(id: number, entity: string): Sealer | null {
    const name = `r/${id}/${entity}`;
    return this.subkeys.get(name) ?? this.sealer(id, KDF_CONTEXT.record, entityKeyId(entity), name);
  }
  /** Key for the sealed sensitive fields of `entity`'s records; refused in the `"records"` scope. */
  sensitive(id: number, entity: string): Sealer | null {
    if (this.scope !== "all") throw new KeyError("sensitive fields cannot be read or written with a records-only key scope");
    const name = `s/${id}/${entity}`;
    return this.subkeys.get(name) ?? this.sealer(id, KDF_CONTEXT.sensitive, entityKeyId(entity), name);
  }

  /** Add a new random data key and make it the active one (keyring rewritten first: nothing uses it before). */
  rotate(): number {
    const id = Math.max(...this.dataKeys.keys()) + 1;
    const dk = sodium.sodium_malloc(KEY_SIZE);
    sodium.randombytes_buf(dk);
    this.dataKeys.set(id, dk);
    try {
      this.write({ ...this.header, generation: this.header.generation + 1, activeKeyId: id });
    } catch (e) {
      this.dataKeys.delete(id);
      sodium.sodium_memzero(dk);
      throw e;
    }
    return id;
  }

  /**
   * Destroy every data key older than `floor` (no live file uses them any more): the keyring is rewritten
   * without them, then they are zeroed in memory. Returns the ids destroyed.
   */
  retireBelow(floor: number): number[] {
    const old = this.keyIds.filter((id) => id < floor && id !== this.header.activeKeyId);
    if (!old.length) return [];
    const all = new Map(this.dataKeys);
    for (const id of old) this.dataKeys.delete(id);
    try {
      this.write({ ...this.header, generation: this.header.generation + 1 });
    } catch (e) {
      this.dataKeys.clear();
      for (const [id, k] of all) this.dataKeys.set(id, k);
      throw e;
    }
    for (const id of old) this.forget(id, all.get(id)!);
    return old;
  }

  /** Zero data key `id` (`dk`, already out of `dataKeys`) and every subkey derived from it. */
  private forget(id: number, dk: Buffer): void {
    sodium.sodium_memzero(dk);
    for (const [name, s] of this.subkeys) {
      if (Number(name.split("/")[1]) === id) {
        s.destroy();
        this.subkeys.delete(name);
      }
    }
  }

  /** The keyring file's generation this keyring was read or last written at. */
  get generation(): number {
    return this.header.generation;
  }

  /**
   * Take the data keys and parameters of `other`, just loaded from this store's file under the same master key
   * (a follower after a rotation, or promoted: storage/follower.ts), and destroy it; this object stays the one
   * the typed layer holds. Keys `other` lacks stay until {@link dropUnlisted}: unreloaded files may use them.
   */
  adopt(other: Keyring): void {
    if (other.auditRoot && !this.auditRoot) [this.auditRoot, other.auditRoot] = [other.auditRoot, null];
    for (const [id, dk] of other.dataKeys) {
      if (this.dataKeys.has(id)) continue;
      this.dataKeys.set(id, dk);
      other.dataKeys.delete(id);
    }
    this.header = other.header;
    other.destroy();
  }

  /** After {@link adopt}, once no file that uses them is read: destroy the data keys the file no longer lists. */
  dropUnlisted(): void {
    for (const [id, dk] of [...this.dataKeys]) {
      if (this.header.wrapped.has(id)) continue;
      this.dataKeys.delete(id);
      this.forget(id, dk);
    }
  }

  /**
   * A keyring holding only a new master key derived from `provider` (and its parameters: kind, salt, cost),
   * for {@link rewrapAs}: the store's keyring and its copies' are rewrapped under it, one small file each.
   * Nothing is written. The rename of the store's keyring is the switch: before it the old master key
   * opens the store, after it only the new one.
   */
  async withMasterKey(provider: KeyProvider): Promise<Keyring> {
    const pwhash = newPwhash(provider);
    const kek = await masterKey(provider, pwhash, { dir: this.paths.dir, storeId: this.header.storeId, creating: true });
    const header: KeyringHeader = {
      ...this.header,
      kekKind: kindOf(provider),
      providerName: provider.kind === "external" ? provider.name.slice(0, MAX_PROVIDER_NAME) : "",
      pwhash,
    };
    return new Keyring(this.io, this.paths, header, kek, this.scope, this.fp);
  }

  /** The master key, for opening the copies of this store Cellar made (see {@link MasterKeySource}). */
  unwrappedMasterKey(): MasterKeySource {
    return { kind: "unwrapped", kek: this.k() };
  }

  /**
   * Rewrap this keyring's data keys under `source`'s master key and parameters (kind, salt, cost): used on
   * the keyrings of a store's copies when the store's master key changes, with no second key derivation.
   */
  rewrapAs(source: Keyring): void {
    const kek = secureCopy(source.k());
    const old = this.kek;
    this.kek = kek;
    try {
      this.write({
        ...this.header,
        generation: this.header.generation + 1,
        kekKind: source.header.kekKind,
        providerName: source.header.providerName,
        pwhash: source.header.pwhash,
      });
    } catch (e) {
      this.kek = old;
      sodium.sodium_memzero(kek);
      throw e;
    }
    if (old) sodium.sodium_memzero(old);
  }

  /** This keyring's file bytes with the data keys wrapped under `u`'s master key and parameters (a password backup's); writes nothing. */
  encodeUnder(u: Keyring): Uint8Array {
    return encodeKeyringFile({ ...this.header, kekKind: u.header.kekKind, providerName: u.header.providerName, pwhash: u.header.pwhash }, u.k(), this.filed());
  }

  /** The keys the file holds: the data keys and the audit root (id 0) when there is one. */
  private filed(): ReadonlyMap<number, Buffer> {
    return this.auditRoot ? new Map([[AUDIT_ROOT_ID, this.auditRoot], ...this.dataKeys]) : this.dataKeys;
  }

  /** Whether the keyring holds an audit root (a store that keeps an audit log). */
  get hasAuditRoot(): boolean {
    return this.auditRoot !== null;
  }

  /** Add a random audit root (the keyring rewritten, generation + 1); nothing when there is one. */
  createAuditRoot(): void {
    if (this.auditRoot) return;
    const root = sodium.sodium_malloc(KEY_SIZE);
    sodium.randombytes_buf(root);
    this.auditRoot = root;
    try {
      this.write({ ...this.header, generation: this.header.generation + 1 });
    } catch (e) {
      this.auditRoot = null;
      sodium.sodium_memzero(root);
      throw e;
    }
  }

  /** Subkey `context`/`id` of the audit root, in secure memory (the caller zeroes it); null without a root. */
  auditSubkey(id: number, context: string): Buffer | null {
    return this.auditRoot ? deriveSubkey(this.auditRoot, id, context) : null;
  }

  destroy(): void {
    for (const s of this.subkeys.values()) s.destroy();
    this.subkeys.clear();
    for (const k of this.dataKeys.values()) sodium.sodium_memzero(k);
    this.dataKeys.clear();
    if (this.auditRoot) sodium.sodium_memzero(this.auditRoot);
    this.auditRoot = null;
    if (this.kek) sodium.sodium_memzero(this.kek);
    this.kek = null;
  }
}
