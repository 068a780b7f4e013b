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

export function randomBytes(n: number): Uint8Array {
  const b = Buffer.alloc(n);
  sodium.randombytes_buf(b);
  return b;
}
