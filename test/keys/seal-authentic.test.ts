/**
 * `Sealer.authentic` (crypto/seal.ts) checks the XChaCha20-Poly1305-IETF tag without decrypting: it must accept
 * exactly what libsodium's open accepts. Checked against real seals of many lengths (the padding of `ad` and of
 * the ciphertext to 16 bytes), and against every single-bit change of nonce, ciphertext, tag and `ad`.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Sealer } from "../../src/runtime/crypto/seal.js";

const opens = (s: Sealer, sealed: Uint8Array, ad: Uint8Array): boolean => {
  try {
    s.open(sealed, ad);
    return true;
  } catch {
    return false;
  }
};

describe("Sealer.authentic", () => {
  const sealer = new Sealer(1, randomBytes(32));

  it("accepts every seal of the key, for payload and associated-data lengths around the 16-byte padding", () => {
    for (const n of [0, 1, 15, 16, 17, 31, 64, 1000, 65_537]) {
      for (const a of [0, 1, 15, 16, 17, 48]) {
        const ad = randomBytes(a);
        const sealed = sealer.seal(randomBytes(n), ad);
        expect(sealer.authentic(sealed, ad)).toBe(true);
      }
    }
  });

  it("refuses every single-bit change of nonce, ciphertext, tag or associated data, as open does", () => {
    const ad = randomBytes(45);
    const sealed = sealer.seal(randomBytes(37), ad);
    for (let i = 0; i < sealed.length * 8; i++) {
      const bad = Uint8Array.from(sealed);
      bad[i >> 3]! ^= 1 << (i & 7);
      expect([sealer.authentic(bad, ad), opens(sealer, bad, ad)]).toEqual([false, false]);
    }
    for (let i = 0; i < ad.length * 8; i++) {
      const bad = Uint8Array.from(ad);
      bad[i >> 3]! ^= 1 << (i & 7);
      expect([sealer.authentic(sealed, bad), opens(sealer, sealed, bad)]).toEqual([false, false]);
    }
    expect(sealer.authentic(sealed, ad.subarray(1))).toBe(false); // the lengths are authenticated too
    expect(sealer.authentic(sealed.subarray(0, sealed.length - 1), ad)).toBe(false);
  });

  it("refuses a seal of another key and a payload shorter than nonce and tag", () => {
    const sealed = new Sealer(2, randomBytes(32)).seal(randomBytes(100), new Uint8Array(0));
    expect(sealer.authentic(sealed, new Uint8Array(0))).toBe(false);
    expect(sealer.authentic(new Uint8Array(39), new Uint8Array(0))).toBe(false);
  });
});
