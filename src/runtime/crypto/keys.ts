/**
 * Where a store's master key (its key-encryption key, KEK) comes from. The master key never encrypts
 * records: it wraps the store's random data keys in the KEYRING file (docs/FORMAT.md, "Keyring";
 * docs/SECURITY.md).
 *
 * - {@link keys.raw}: 32 bytes the app already holds (from its own secret store).
 * - {@link keys.passphrase}: a passphrase stretched with Argon2id (`crypto_pwhash`); salt and cost are
 *   stored in the keyring, so the same passphrase opens the store on any machine.
 * - {@link keys.external}: an async function, for Electron `safeStorage`, an OS keychain
 *   (`keychainKey` in `cellar/keychain`) or a KMS. It is asked once per open.
 */
import sodium from "sodium-native";
import { KeyError, UsageError } from "../errors.js";

/** Argon2id cost. The default (2 passes, 192 MiB) takes ~0.23 s on the 2-core machine of docs/BENCHMARKS.md. */
export interface PassphraseCost {
  /** Passes over memory (`crypto_pwhash` opslimit). Default 2; at least 1. */
  readonly opsLimit?: number;
  /** Memory in bytes (`crypto_pwhash` memlimit). Default 192 MiB; at least 8 KiB. */
  readonly memLimit?: number;
}

export const DEFAULT_PASSPHRASE_COST = Object.freeze({ opsLimit: 2, memLimit: 192 * 1024 * 1024 });

/** What an external key function is told about the store asking. */
export interface KeyRequest {
  /** The store directory (absolute). */
  readonly dir: string;
  /** The store id, hex (32 characters); stable for the store's life. */
  readonly storeId: string;
  /** True when the store is being created: a function backed by a keychain may create the key now. */
  readonly creating: boolean;
}

export type KeyProvider =
  | { readonly kind: "raw"; readonly key: Uint8Array }
  | { readonly kind: "passphrase"; readonly passphrase: string | Uint8Array; readonly cost?: PassphraseCost }
  | {
      readonly kind: "external";
      /** Named in errors ("the key from `os-keychain` does not open this store"). */
      readonly name: string;
      getKey(request: KeyRequest): Promise<Uint8Array> | Uint8Array;
    };

export const keys = {
  /** A 32-byte master key held by the app. The bytes are copied at open; the caller may zero its copy. */
  raw(key: Uint8Array): KeyProvider {
    if (!(key instanceof Uint8Array) || key.length !== 32) {
      throw new KeyError(`a raw master key must be 32 bytes, got ${key instanceof Uint8Array ? key.length : typeof key}`);
    }
    return Object.freeze({ kind: "raw" as const, key });
  },
  /** A passphrase (non-empty), stretched with Argon2id. `cost` applies when the store or a new passphrase is set. */
  passphrase(passphrase: string | Uint8Array, cost?: PassphraseCost): KeyProvider {
    const n = typeof passphrase === "string" ? passphrase.length : passphrase?.length;
    if (!n) throw new KeyError("the passphrase is empty");
    if (cost) checkCost(cost);
    return Object.freeze({ kind: "passphrase" as const, passphrase, ...(cost ? { cost } : {}) });
  },
  /** A master key fetched by `getKey` (must resolve to 32 bytes). */
  external(name: string, getKey: (request: KeyRequest) => Promise<Uint8Array> | Uint8Array): KeyProvider {
    if (!name) throw new UsageError("an external key provider needs a name");
    return Object.freeze({ kind: "external" as const, name, getKey });
  },
};

export function checkCost(cost: PassphraseCost): void {
  const ops = cost.opsLimit ?? DEFAULT_PASSPHRASE_COST.opsLimit;
  const mem = cost.memLimit ?? DEFAULT_PASSPHRASE_COST.memLimit;
  if (!Number.isInteger(ops) || ops < sodium.crypto_pwhash_OPSLIMIT_MIN || ops > 64) {
    throw new UsageError(`passphrase opsLimit must be an integer from ${sodium.crypto_pwhash_OPSLIMIT_MIN} to 64`);
  }
  if (!Number.isInteger(mem) || mem < sodium.crypto_pwhash_MEMLIMIT_MIN || mem > 4 * 1024 * 1024 * 1024) {
    throw new UsageError(`passphrase memLimit must be an integer from ${sodium.crypto_pwhash_MEMLIMIT_MIN} bytes to 4 GiB`);
  }
}
