// Minimal types for the parts of sodium-native Cellar uses (the package ships none).
declare module "sodium-native" {
  const sodium: {
    crypto_aead_xchacha20poly1305_ietf_KEYBYTES: number;
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES: number;
    crypto_aead_xchacha20poly1305_ietf_ABYTES: number;
    crypto_aead_xchacha20poly1305_ietf_encrypt(
      c: Uint8Array,
      m: Uint8Array,
      ad: Uint8Array | null,
      nsec: null,
      npub: Uint8Array,
      k: Uint8Array,
    ): number;
    crypto_aead_xchacha20poly1305_ietf_decrypt(
      m: Uint8Array,
      nsec: null,
      c: Uint8Array,
      ad: Uint8Array | null,
      npub: Uint8Array,
      k: Uint8Array,
    ): number;
    crypto_kdf_KEYBYTES: number;
    crypto_kdf_CONTEXTBYTES: number;
    crypto_kdf_derive_from_key(subkey: Uint8Array, subkeyId: number, ctx: Uint8Array, key: Uint8Array): void;
    crypto_generichash(out: Uint8Array, input: Uint8Array, key?: Uint8Array): void;
    /** HMAC-SHA-512-256: a 32-byte tag under a 32-byte key. */
    crypto_auth(out: Uint8Array, input: Uint8Array, key: Uint8Array): void;
    crypto_pwhash(
      out: Uint8Array,
      passwd: Uint8Array,
      salt: Uint8Array,
      opslimit: number,
      memlimit: number,
      alg: number,
    ): void;
    crypto_pwhash_async(
      out: Uint8Array,
      passwd: Uint8Array,
      salt: Uint8Array,
      opslimit: number,
      memlimit: number,
      alg: number,
      callback: (error: Error | null) => void,
    ): void;
    crypto_pwhash_SALTBYTES: number;
    crypto_pwhash_OPSLIMIT_MIN: number;
    crypto_pwhash_MEMLIMIT_MIN: number;
    crypto_pwhash_ALG_ARGON2ID13: number;
    crypto_pwhash_OPSLIMIT_INTERACTIVE: number;
    crypto_pwhash_MEMLIMIT_INTERACTIVE: number;
    crypto_pwhash_OPSLIMIT_MODERATE: number;
    crypto_pwhash_MEMLIMIT_MODERATE: number;
    crypto_stream_xchacha20(c: Uint8Array, n: Uint8Array, k: Uint8Array): void;
    crypto_onetimeauth_KEYBYTES: number;
    crypto_onetimeauth_STATEBYTES: number;
    crypto_onetimeauth_init(state: Uint8Array, k: Uint8Array): void;
    crypto_onetimeauth_update(state: Uint8Array, input: Uint8Array): void;
    crypto_onetimeauth_final(state: Uint8Array, out: Uint8Array): void;
    randombytes_buf(buf: Uint8Array): void;
    sodium_malloc(size: number): Buffer;
    sodium_memzero(buf: Uint8Array): void;
    sodium_memcmp(a: Uint8Array, b: Uint8Array): boolean;
  };
  export default sodium;
}
