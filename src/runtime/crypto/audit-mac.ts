/**
 * The audit log's MACs (docs/FORMAT.md, "Audit log"; docs/SECURITY.md, "Audit log"): keyed BLAKE2b-256
 * (`crypto_generichash` with a 32-byte key) under `crypto_kdf_derive_from_key(32, 0, "CellarAU", audit root)`,
 * the audit root being a random key the keyring wraps under the master key (keyring.ts, id 0). Each MAC
 * starts with a label of its own, so an entry's MAC can never pass as the anchor's or the genesis value.
 */
import sodium from "sodium-native";
import type { Keyring } from "./keyring.js";

export const AUDIT_KDF_CONTEXT = "CellarAU";
const LABEL = {
  genesis: Buffer.from("cellar.audit.genesis\0", "latin1"),
  entry: Buffer.from("cellar.audit.entry\0", "latin1"),
  anchor: Buffer.from("cellar.audit.anchor\0", "latin1"),
} as const;
const MAC_SIZE = 32;

export class AuditMac {
  private key: Buffer | null;

  private constructor(key: Buffer) {
    this.key = key;
  }

  /** The MAC key of `ring`'s audit root; null when the keyring has none (the store keeps no audit log). */
  static of(ring: Keyring): AuditMac | null {
    const key = ring.auditSubkey(0, AUDIT_KDF_CONTEXT);
    return key ? new AuditMac(key) : null;
  }

  private mac(label: keyof typeof LABEL, ...parts: Uint8Array[]): Buffer {
    if (!this.key) throw new Error("the audit key was destroyed");
    const out = Buffer.alloc(MAC_SIZE);
    sodium.crypto_generichash(out, Buffer.concat([LABEL[label], ...parts]), this.key);
    return out;
  }

  /** What the first entry chains to: MAC("genesis" ‖ store id). */
  genesis(storeId: Uint8Array): Buffer {
    return this.mac("genesis", storeId);
  }

  /** MAC("entry" ‖ previous MAC ‖ body). */
  entry(prev: Uint8Array, body: Uint8Array): Buffer {
    return this.mac("entry", prev, body);
  }

  /** MAC("anchor" ‖ anchor body). */
  anchor(body: Uint8Array): Buffer {
    return this.mac("anchor", body);
  }

  /** Constant-time comparison of two MACs. */
  static same(a: Uint8Array, b: Uint8Array): boolean {
    return a.length === b.length && sodium.sodium_memcmp(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }

  destroy(): void {
    if (this.key) sodium.sodium_memzero(this.key);
    this.key = null;
  }
}
