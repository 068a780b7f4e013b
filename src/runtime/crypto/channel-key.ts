/**
 * The key of a store's channel (docs/SECURITY.md, "Several processes"; docs/FORMAT.md, "Channel"): a subkey
 * of the store's master key, `crypto_kdf_derive_from_key(32, 0, "CellarCH", master key)` (the keyring's
 * subkey derivation, purpose `channel`), held in secure memory. Processes prove they hold it with
 * HMAC-SHA-512-256 (`crypto_auth`) over both sides' random nonces; the key itself never crosses the channel.
 */
import sodium from "sodium-native";
import { deriveSubkey, type Keyring } from "./keyring.js";

/** The crypto_kdf context of the channel key (8 bytes). */
export const CHANNEL_KDF_CONTEXT = "CellarCH";
/** Bytes of each side's challenge nonce, and of a proof. */
export const CHANNEL_NONCE_BYTES = 32;
export const CHANNEL_MAC_BYTES = 32;
/** What each side's proof starts with, so a follower's proof can never be replayed as the writer's. */
export const CHANNEL_LABEL = { client: "cellar-channel-client", writer: "cellar-channel-writer" } as const;

export class ChannelKey {
  private key: Buffer | null;

  private constructor(key: Buffer) {
    this.key = key;
  }

  /** The channel key of the store whose keyring is `ring` (derived from its master key). */
  static of(ring: Keyring): ChannelKey {
    const source = ring.unwrappedMasterKey();
    if (source.kind !== "unwrapped") throw new Error("unreachable");
    return new ChannelKey(deriveSubkey(source.kek as Buffer, 0, CHANNEL_KDF_CONTEXT));
  }

  /** `HMAC(K, label ‖ writerNonce ‖ followerNonce)`. */
  proof(label: keyof typeof CHANNEL_LABEL, writerNonce: Uint8Array, followerNonce: Uint8Array): Buffer {
    if (!this.key) throw new Error("the channel key was destroyed");
    const msg = Buffer.concat([Buffer.from(CHANNEL_LABEL[label], "latin1"), writerNonce, followerNonce]);
    const out = Buffer.alloc(CHANNEL_MAC_BYTES);
    sodium.crypto_auth(out, msg, this.key);
    return out;
  }

  /** Whether `mac` is the proof for `label` (constant time). */
  verify(label: keyof typeof CHANNEL_LABEL, writerNonce: Uint8Array, followerNonce: Uint8Array, mac: Uint8Array): boolean {
    if (mac.length !== CHANNEL_MAC_BYTES) return false;
    return sodium.sodium_memcmp(this.proof(label, writerNonce, followerNonce), Buffer.from(mac.buffer, mac.byteOffset, mac.byteLength));
  }

  destroy(): void {
    if (this.key) sodium.sodium_memzero(this.key);
    this.key = null;
  }
}

/** A fresh random challenge nonce. */
export function channelNonce(): Buffer {
  const n = Buffer.alloc(CHANNEL_NONCE_BYTES);
  sodium.randombytes_buf(n);
  return n;
}
