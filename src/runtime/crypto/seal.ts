/**
 * libsodium (sodium-native): XChaCha20-Poly1305-IETF with a fresh random
 * 24-byte nonce per frame. Key material lives in sodium secure memory
 * (`sodium_malloc`: guarded pages, locked where the OS allows) and is zeroed
 * by `destroy()`. See docs/SECURITY.md.
 */
import sodium from "sodium-native";
import { AuthenticationError, KeyError } from "../errors.js";
import { NONCE_SIZE, TAG_SIZE } from "../format/format.js";

export const KEY_SIZE = 32;

export { AuthenticationError };

/** Seals and opens frame payloads with one key. */
export class Sealer {
  private key: Buffer | null;
  constructor(
    readonly keyId: number,
    key: Uint8Array,
  ) {
    if (key.length !== KEY_SIZE) throw new KeyError(`a key must be ${KEY_SIZE} bytes, got ${key.length}`);
    this.key = sodium.sodium_malloc(KEY_SIZE);
    this.key.set(key);
  }

  private get k(): Buffer {
    if (!this.key) throw new KeyError("the key was destroyed (the store is closed)");
    return this.key;
  }

  /** Returns `nonce ‖ ciphertext ‖ tag`. */
  seal(plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
    return this.sealInto(Buffer.allocUnsafe(NONCE_SIZE + plaintext.length + TAG_SIZE), plaintext, ad);
  }

  /** Write `nonce ‖ ciphertext ‖ tag` into `out` (exactly 40 bytes longer than `plaintext`); returns it. */
  sealInto<T extends Uint8Array>(out: T, plaintext: Uint8Array, ad: Uint8Array): T {
    if (out.length !== NONCE_SIZE + plaintext.length + TAG_SIZE) throw new RangeError("sealed output has the wrong size");
    // The nonce goes through one reused buffer (copied into `out` by hand): one view per seal instead of three.
    freshNonce(NONCE);
    for (let i = 0; i < NONCE_SIZE; i++) out[i] = NONCE[i]!;
    sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out.subarray(NONCE_SIZE), plaintext, ad, null, NONCE, this.k);
    return out;
  }

  /** Opens `nonce ‖ ciphertext ‖ tag`; throws {@link AuthenticationError} if anything was changed. */
  open(sealed: Uint8Array, ad: Uint8Array): Uint8Array {
    if (sealed.length < NONCE_SIZE + TAG_SIZE) throw new AuthenticationError("sealed payload too short");
    const out = Buffer.allocUnsafe(sealed.length - NONCE_SIZE - TAG_SIZE);
    try {
      sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        out,
        null,
        sealed.subarray(NONCE_SIZE),
        ad,
        sealed.subarray(0, NONCE_SIZE),
        this.k,
      );
    } catch {
      throw new AuthenticationError("authentication failed");
    }
    return out;
  }

  /**
   * Like {@link open}, decrypting in place: the plaintext is `sealed`'s own memory (from byte 24, 40 bytes
   * shorter), for frames read into a buffer of their own. Nothing is written unless the tag verifies.
   */
  openInPlace(sealed: Uint8Array, ad: Uint8Array): Uint8Array {
    if (sealed.length < NONCE_SIZE + TAG_SIZE) throw new AuthenticationError("sealed payload too short");
    const out = sealed.subarray(NONCE_SIZE, sealed.length - TAG_SIZE);
    try {
      sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, sealed.subarray(NONCE_SIZE), ad, sealed.subarray(0, NONCE_SIZE), this.k);
    } catch {
      throw new AuthenticationError("authentication failed");
    }
    return out;
  }

  /**
   * Whether `nonce ‖ ciphertext ‖ tag` is authentic under this key and `ad`, without decrypting it: the tag
   * libsodium's XChaCha20-Poly1305-IETF open checks first, computed the same way (RFC 8439 §2.8 over the
   * HChaCha20 subkey, draft-irtf-cfrg-xchacha §2.3): Poly1305 keyed by the first 32 bytes of the XChaCha20
   * keystream (block 0) over `ad ‖ pad16 ‖ ciphertext ‖ pad16 ‖ le64(|ad|) ‖ le64(|ciphertext|)`, compared in
   * constant time. For a check that needs no plaintext (restore's sealed blocks): the keystream's XOR over
   * the ciphertext, most of an open's cost, is skipped.
   */
  authentic(sealed: Uint8Array, ad: Uint8Array): boolean {
    if (sealed.length < NONCE_SIZE + TAG_SIZE) return false;
    const ct = sealed.subarray(NONCE_SIZE, sealed.length - TAG_SIZE);
    sodium.crypto_stream_xchacha20(POLY_KEY, sealed.subarray(0, NONCE_SIZE), this.k);
    try {
      sodium.crypto_onetimeauth_init(POLY_STATE, POLY_KEY);
      sodium.crypto_onetimeauth_update(POLY_STATE, ad);
      if (ad.length % 16) sodium.crypto_onetimeauth_update(POLY_STATE, ZEROS.subarray(0, 16 - (ad.length % 16)));
      sodium.crypto_onetimeauth_update(POLY_STATE, ct);
      if (ct.length % 16) sodium.crypto_onetimeauth_update(POLY_STATE, ZEROS.subarray(0, 16 - (ct.length % 16)));
      LENGTHS.writeBigUInt64LE(BigInt(ad.length), 0);
      LENGTHS.writeBigUInt64LE(BigInt(ct.length), 8);
      sodium.crypto_onetimeauth_update(POLY_STATE, LENGTHS);
      sodium.crypto_onetimeauth_final(POLY_STATE, MAC);
      return sodium.sodium_memcmp(MAC, sealed.subarray(sealed.length - TAG_SIZE));
    } finally {
      sodium.sodium_memzero(POLY_KEY);
      sodium.sodium_memzero(POLY_STATE);
    }
  }

  destroy(): void {
    if (this.key) {
      sodium.sodium_memzero(this.key);
      this.key = null;
    }
  }
}

/**
 * Nonces come from a pool refilled with `randombytes_buf` 256 nonces at a time: each call of
 * `randombytes_buf` is a `getrandom(2)` system call (~4.7 µs measured per call here, two per put), and a
 * nonce only has to be unpredictable and never reused, which bytes of one random draw, each handed out
 * once, are.
 */
const NONCE_POOL = Buffer.alloc(NONCE_SIZE * 256);
let noncePos = NONCE_POOL.length;

export function freshNonce(into: Uint8Array): void {
  if (noncePos + NONCE_SIZE > NONCE_POOL.length) {
    sodium.randombytes_buf(NONCE_POOL);
    noncePos = 0;
  }
  for (let i = 0; i < NONCE_SIZE; i++) {
    into[i] = NONCE_POOL[noncePos + i]!;
    NONCE_POOL[noncePos + i] = 0; // handed out once
  }
  noncePos += NONCE_SIZE;
}

/** The nonce of the seal in progress (sealing is synchronous: one buffer serves every Sealer). */
const NONCE = Buffer.alloc(NONCE_SIZE);

/** `Sealer.authentic`'s working memory (synchronous: shared; the one-time key and state are zeroed after each use). */
const POLY_KEY = sodium.sodium_malloc(sodium.crypto_onetimeauth_KEYBYTES);
const POLY_STATE = sodium.sodium_malloc(sodium.crypto_onetimeauth_STATEBYTES);
const MAC = Buffer.alloc(TAG_SIZE);
const ZEROS = Buffer.alloc(16);
const LENGTHS = Buffer.alloc(16);

export function randomBytes(n: number): Uint8Array {
  const b = Buffer.alloc(n);
  sodium.randombytes_buf(b);
  return b;
}
