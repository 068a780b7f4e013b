/**
 * Known-answer vectors for the key derivation of docs/FORMAT.md ("Sealing and key derivation", "Keyring").
 * The expected hex was computed once with raw libsodium calls and is pinned here: a change of context
 * string, subkey id, entity id rule or Argon2id parameters shows up as a different hex. libsodium itself
 * is checked against its own published vectors (test/default/kdf.exp and pwhash_argon2id.exp of
 * jedisct1/libsodium), so the pinned values rest on a known-good primitive.
 * Nothing here imports src/runtime.
 */
import { crc32 as crc } from "node:zlib";
import sodium from "sodium-native";
import { describe, expect, it } from "vitest";
import { DataKeys, entityId, kdf, KDF_CONTEXT, masterKeyOf, parseKeyring, unwrapDataKeys } from "../format/decoder.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const seq32 = () => Buffer.from(Array.from({ length: 32 }, (_, i) => i));

describe("libsodium's own vectors", () => {
  it("crypto_kdf_derive_from_key matches libsodium test/default/kdf.exp (key 00..1f, context \"KDF test\")", () => {
    const ctx = Buffer.from("KDF test");
    const out64 = (id: number) => {
      const o = Buffer.alloc(64);
      sodium.crypto_kdf_derive_from_key(o, id, ctx, seq32());
      return hex(o);
    };
    expect(out64(0)).toBe(
      "a0c724404728c8bb95e5433eb6a9716171144d61efb23e74b873fcbeda51d8071b5d70aae12066dfc94ce943f145aa176c055040c3dd73b0a15e36254d450614",
    );
    expect(out64(1)).toBe(
      "02507f144fa9bf19010bf7c70b235b4c2663cc00e074f929602a5e2c10a780757d2a3993d06debc378a90efdac196dd841817b977d67b786804f6d3cd585bab5",
    );
    // The output length Cellar uses (32 bytes): the vector for subkey id 32, length 32.
    const o32 = Buffer.alloc(32);
    sodium.crypto_kdf_derive_from_key(o32, 32, ctx, seq32());
    expect(hex(o32)).toBe("154b291f11196737f8b7f491e4ca11764e0227d34f94295408a869f007aa8618");
  });

  it("crypto_pwhash (Argon2id v1.3) matches libsodium test/default/pwhash_argon2id.exp (vector 6: 1 pass, ~1.6 MB)", () => {
    const out = Buffer.alloc(231);
    sodium.crypto_pwhash(
      out,
      Buffer.from("b540beb016a5366524d4605156493f9874514a5aa58818cd0c6dfffaa9e90205f17b", "hex"),
      Buffer.from("44071f6d181561670bda728d43fb79b4", "hex"), // the first 16 bytes of the vector's salt (SALTBYTES)
      1,
      1631659,
      sodium.crypto_pwhash_ALG_ARGON2ID13,
    );
    expect(hex(out)).toBe(
      "7fb72409b0987f8190c3729710e98c3f80c5a8727d425fdcde7f3644d467fe973f5b5fee683bd3fce812cb9ae5e9921a2d06c2f1905e4e839692f2b934b682f1" +
        "1a2fe2b90482ea5dd234863516dba6f52dc0702d324ec77d860c2e181f84472bd7104fedce071ffa93c5309494ad51623d214447a7b2b1462dc7d5d55a1f6fd5" +
        "b54ce024118d86f0c6489d16545aaa87b6689dad9f2fb47fda9894f8e12b87d978b483ccd4cc5fd9595cdc7a818452f915ce2f7df95ec12b1c72e3788d473441" +
        "d884f9748eb14703c21b45d82fd667b85f5b2d98c13303b3fe76285531a826b6fc0fe8e3dddecf",
    );
    expect(sodium.crypto_pwhash_ALG_ARGON2ID13).toBe(2); // the keyring's `alg` byte
  });
});

describe("Cellar's key derivation (data key 00..1f)", () => {
  const dk = seq32();

  it("entityId(e) is the first 6 bytes, little-endian, of BLAKE2b-256 of the UTF-8 name", () => {
    const blake = (s: string) => {
      const h = Buffer.alloc(32);
      sodium.crypto_generichash(h, Buffer.from(s, "utf8"));
      return hex(h);
    };
    expect(blake("tasks")).toBe("041158a041d1aa915130d525a91b6c8a5bad0218f730d6d66be09c38b835bd4b");
    expect(entityId("tasks")).toBe(230079793205508); // 0x d1 41 a0 58 11 04 read little-endian
    expect(entityId("tasks")).toBe(0xd141a0581104);
    expect(blake("profiles")).toBe("87389bc803a0da784ffc379b4df31596423e2d58403c976a4c2a4a09f42cabbb");
    expect(entityId("profiles")).toBe(175938110961799);
    expect(entityId("settings")).toBe(169390432839214);
    expect(entityId("note")).toBe(158052005144363);
    expect(entityId("ключ")).toBe(50005471856569); // UTF-8, not UTF-16
    for (const e of ["tasks", "profiles", "settings", "note", "ключ"]) expect(entityId(e)).toBeLessThan(2 ** 48);
  });

  it("meta, record(\"tasks\") and sensitive(\"profiles\") subkeys", () => {
    expect(KDF_CONTEXT).toEqual({ meta: "CellarMK", record: "CellarRK", sensitive: "CellarSK" });
    const keys = new DataKeys(new Map([[1, dk]]));
    const META = "74cfdca36087b7622fd23585cc242859bdfa43964a35d91d69c65dbe92a6ec5e";
    const RECORD_TASKS = "3927b4e6c5df011f2eb9139ccac57495578251e8b30d9cfdb72ef549bae55365";
    const SENSITIVE_PROFILES = "4a889221d55a37579af47c67f4e962977776b093755aa96a0abb36510279eb11";
    const RECORD_PROFILES = "7aeaafa5fc3704fa732af678577655374341f56b8e902e2fd9424731bd9360ed";
    expect(hex(keys.meta(1)!)).toBe(META);
    expect(hex(keys.record(1, "tasks")!)).toBe(RECORD_TASKS);
    expect(hex(keys.sensitive(1, "profiles")!)).toBe(SENSITIVE_PROFILES);
    expect(hex(keys.record(1, "profiles")!)).toBe(RECORD_PROFILES);
    // the same with raw libsodium calls, nothing from the decoder
    const raw = (id: number, ctx: string) => {
      const o = Buffer.alloc(32);
      sodium.crypto_kdf_derive_from_key(o, id, Buffer.from(ctx, "latin1"), dk);
      return hex(o);
    };
    expect(raw(0, "CellarMK")).toBe(META);
    expect(raw(230079793205508, "CellarRK")).toBe(RECORD_TASKS);
    expect(raw(175938110961799, "CellarSK")).toBe(SENSITIVE_PROFILES);
    expect(hex(kdf(dk, 0, "CellarMK"))).toBe(META);
    // a data key that is not listed has no subkeys
    expect(keys.meta(2)).toBeNull();
    // every subkey differs from the others and from the data key
    const all = [META, RECORD_TASKS, SENSITIVE_PROFILES, RECORD_PROFILES, hex(dk), hex(keys.sensitive(1, "tasks")!)];
    expect(new Set(all).size).toBe(all.length);
  });

  it("Argon2id master key: crypto_pwhash(32, NFC UTF-8 passphrase, salt, opsLimit 1, memLimit 64 KiB)", () => {
    const pw = (s: string) => {
      const o = Buffer.alloc(32);
      sodium.crypto_pwhash(o, Buffer.from(s.normalize("NFC"), "utf8"), Buffer.from("0123456789abcdef"), 1, 8192 * 8, 2);
      return hex(o);
    };
    expect(pw("correct horse battery staple")).toBe("6aae361c12fe20f022b47b290a1c3ff26c792515f68c50e44e696c06c9301ffd");
    // "café" precomposed and decomposed are one key after NFC
    expect(pw("caf\u00e9")).toBe("211daa4d09bfc4d5a7e910bb0efcbcfdfb95e36fb0a819ff4697d89f7815b0f0");
    expect(pw("cafe\u0301")).toBe("211daa4d09bfc4d5a7e910bb0efcbcfdfb95e36fb0a819ff4697d89f7815b0f0");
  });

  it("the decoder's master key from a hand-built kind-2 keyring is the same Argon2id output", () => {
    // file header (kind 'K', generation 1) + one unsealed type-5 frame holding a kind-2 payload with one wrapped key
    const storeId = Buffer.alloc(16, 7);
    const header = Buffer.alloc(32);
    header.write("CELLAR", 0, "latin1");
    header[6] = 0x4b;
    header[7] = 2;
    storeId.copy(header, 8);
    header.writeUInt32LE(1, 24);
    header.writeUInt32LE(crc(header.subarray(0, 28)), 28);
    const kek = Buffer.from("6aae361c12fe20f022b47b290a1c3ff26c792515f68c50e44e696c06c9301ffd", "hex");
    const wrapped = Buffer.alloc(72);
    sodium.randombytes_buf(wrapped.subarray(0, 24));
    const params = Buffer.concat([
      Buffer.from([2, 0]), // kekKind 2, providerName ""
      Buffer.from("0123456789abcdef"), // salt
      Buffer.from([1, 0x80, 0x80, 0x04, 2]), // opsLimit 1, memLimit 65536 (varint 80 80 04), alg 2
      Buffer.from([1, 1]), // activeKeyId 1, nkeys 1
    ]);
    const ad = Buffer.concat([header.subarray(0, 28), Buffer.from([1, 0, 0, 0]), params]);
    sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(wrapped.subarray(24), dk, ad, null, wrapped.subarray(0, 24), kek);
    const payload = Buffer.concat([params, Buffer.from([1]) /* keyId 1 */, wrapped]);
    const frame = Buffer.alloc(24 + payload.length);
    frame.writeUInt32LE(payload.length, 4);
    frame[8] = 5;
    frame.writeBigUInt64LE(1n, 16);
    payload.copy(frame, 24);
    frame.writeUInt32LE(crc(frame.subarray(4)), 0);
    const ring = parseKeyring(Buffer.concat([header, frame]));
    expect(ring).toMatchObject({ kekKind: 2, activeKeyId: 1, generation: 1, pwhash: { opsLimit: 1, memLimit: 65536 } });
    const master = masterKeyOf(ring, { passphrase: "correct horse battery staple" });
    expect(hex(master)).toBe(hex(kek));
    expect(hex(unwrapDataKeys(ring, master).get(1)!)).toBe(hex(dk));
  });
});

