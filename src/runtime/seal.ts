/**
 * libsodium (sodium-native): XChaCha20-Poly1305-IETF with a fresh random
 * 24-byte nonce per frame. Key material lives in sodium secure memory
 * (`sodium_malloc`: guarded pages, locked where the OS allows) and is zeroed
 * by `destroy()`. See docs/SECURITY.md.
 */
import sodium from "sodium-native";
import { KeyError } from "./errors.js";
import { NONCE_SIZE, TAG_SIZE } from "./format.js";

export const KEY_SIZE = 32;

export class AuthenticationError extends Error {}

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
    const out = Buffer.allocUnsafe(NONCE_SIZE + plaintext.length + TAG_SIZE);
    const nonce = out.subarray(0, NONCE_SIZE);
    sodium.randombytes_buf(nonce);
    sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
      out.subarray(NONCE_SIZE),
      plaintext,
      ad,
      null,
      nonce,
      this.k,
    );
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

  destroy(): void {
    if (this.key) {
      sodium.sodium_memzero(this.key);
      this.key = null;
    }
  }
}

export function randomBytes(n: number): Uint8Array {
  const b = Buffer.alloc(n);
  sodium.randombytes_buf(b);
  return b;
}
