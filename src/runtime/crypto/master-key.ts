/**
 * The master key of a keyring (docs/FORMAT.md, "Keyring"): how a `KeyProvider` becomes 32 bytes in secure
 * memory (a raw key copied, a passphrase stretched with Argon2id, an external provider asked), and the
 * password hash parameters of a new passphrase. Used by keyring.ts.
 */
import sodium from "sodium-native";
import { KeyError } from "../errors.js";
import { checkCost, DEFAULT_PASSPHRASE_COST, type KeyProvider } from "./keys.js";
import { KEY_SIZE } from "./seal.js";

/** How the master key of a keyring is obtained (byte 0 of the keyring payload). */
export const KekKind = { raw: 1, passphrase: 2, external: 3 } as const;
export type KekKind = (typeof KekKind)[keyof typeof KekKind];

/** Argon2id parameters of a passphrase-derived master key, as the keyring stores them. */
export interface PasswordHash {
  salt: Uint8Array;
  opsLimit: number;
  memLimit: number;
}

export const PWHASH_SALT_SIZE = 16;

export function secureCopy(b: Uint8Array): Buffer {
  const s = sodium.sodium_malloc(b.length);
  s.set(b);
  return s;
}

export function describe(p: KeyProvider): string {
  return p.kind === "external" ? `the key from \`${p.name}\`` : p.kind === "passphrase" ? "the passphrase" : "the key";
}

export function kindOf(p: KeyProvider): KekKind {
  return p.kind === "raw" ? KekKind.raw : p.kind === "passphrase" ? KekKind.passphrase : KekKind.external;
}

/** Turn a provider into a 32-byte master key in secure memory. `pwhash` is required for passphrases. */
export async function masterKey(
  p: KeyProvider,
  pwhash: PasswordHash | null,
  request: { dir: string; storeId: Uint8Array; creating: boolean },
): Promise<Buffer> {
  if (p.kind === "raw") {
    if (p.key.length !== KEY_SIZE) throw new KeyError(`a raw master key must be ${KEY_SIZE} bytes, got ${p.key.length}`);
    return secureCopy(p.key);
  }
  if (p.kind === "passphrase") {
    const pw = typeof p.passphrase === "string" ? Buffer.from(p.passphrase.normalize("NFC"), "utf8") : Buffer.from(p.passphrase);
    const out = sodium.sodium_malloc(KEY_SIZE);
    try {
      await new Promise<void>((resolve, reject) =>
        sodium.crypto_pwhash_async(out, pw, Buffer.from(pwhash!.salt), pwhash!.opsLimit, pwhash!.memLimit, sodium.crypto_pwhash_ALG_ARGON2ID13, (err) =>
          err ? reject(new KeyError("the passphrase could not be stretched (Argon2id failed: out of memory?)")) : resolve(),
        ),
      );
    } catch (e) {
      sodium.sodium_memzero(out);
      throw e;
    } finally {
      sodium.sodium_memzero(pw);
    }
    return out;
  }
  let key: Uint8Array;
  try {
    key = await p.getKey({ dir: request.dir, storeId: Buffer.from(request.storeId).toString("hex"), creating: request.creating });
  } catch (e) {
    if (e instanceof KeyError) throw e;
    throw new KeyError(`the key provider \`${p.name}\` failed: ${e instanceof Error ? e.constructor.name : typeof e}`);
  }
  if (!(key instanceof Uint8Array) || key.length !== KEY_SIZE) {
    throw new KeyError(`the key provider \`${p.name}\` must return ${KEY_SIZE} bytes, got ${key instanceof Uint8Array ? `${key.length} bytes` : typeof key}`);
  }
  return secureCopy(key);
}

export function newPwhash(p: KeyProvider): PasswordHash | null {
  if (p.kind !== "passphrase") return null;
  const cost = p.cost ?? {};
  checkCost(cost);
  const salt = Buffer.alloc(PWHASH_SALT_SIZE);
  sodium.randombytes_buf(salt);
  return {
    salt,
    opsLimit: cost.opsLimit ?? DEFAULT_PASSPHRASE_COST.opsLimit,
    memLimit: cost.memLimit ?? DEFAULT_PASSPHRASE_COST.memLimit,
  };
}
