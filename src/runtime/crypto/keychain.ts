/**
 * A master-key provider backed by the operating system's keychain (`cellar/keychain`): macOS Keychain,
 * Windows Credential Manager, or a Secret Service on Linux (gnome-keyring, KWallet, KeePassXC), through
 * the optional native package `@napi-rs/keyring`. docs/KEYCHAIN.md says what this protects and what not.
 *
 * The entry holds the 32-byte master key as base64 (44 characters). It is created, from
 * `randombytes_buf`, only when a store is being created; afterwards a missing or unreadable entry is a
 * `KeyError` and the store cannot be opened, so keep a backup or recovery path (docs/KEYCHAIN.md).
 *
 * `@napi-rs/keyring` is imported lazily, on the first `getKey`: the runtime loads on a platform that has no
 * prebuilt binary for it (or where it was not installed), and only this provider then fails, with a
 * `KeyError` saying so.
 */
import sodium from "sodium-native";
import { KeyError, UsageError } from "../errors.js";
import type { KeyProvider, KeyRequest } from "./keys.js";

/** Where the key lives in the keychain. */
export interface KeychainOptions {
  /**
   * The keychain's service name (on Linux, the `service` attribute of the Secret Service item); use your
   * app's id.
   *
   * @example "com.example.notes"
   */
  readonly service: string;
  /**
   * The keychain's account name (`username` attribute). Default: the store id (`KeyRequest.storeId`, 32 hex
   * characters), so every store gets its own key. Give a fixed name (a profile name, `"default"`) when the
   * app must find the entry without opening the store, e.g. to delete it on uninstall.
   *
   * @example "default"
   */
  readonly account?: string;
}

/** The provider's name, as it appears in errors ("the key from `os-keychain` ..."). */
export const KEYCHAIN_PROVIDER_NAME = "os-keychain";

const KEY_BYTES = 32;
/** base64 of 32 bytes: 42 characters, one that carries 4 bits (so its last 2 bits are zero), then one `=`. */
const KEY_BASE64 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
const MODULE = "@napi-rs/keyring";

/**
 * A master key kept in the OS keychain under (`service`, `account`).
 *
 * - Entry present: its key is returned (whatever `creating` says).
 * - Entry absent and the store is being created: 32 random bytes are stored, read back to confirm, and
 *   returned.
 * - Entry absent otherwise, entry not a base64 32-byte key, keychain locked or unreachable, native module
 *   missing: `KeyError` (`E_KEY`) naming the service and account. No message ever holds key material.
 *
 * On Linux the entry is always in a Secret Service: `@napi-rs/keyring` would otherwise fall back to the
 * kernel keyring, which is in memory only and would lose the key, and so the store, at the next reboot.
 *
 * @example
 * ```ts
 * import { keychainKey } from "cellar/keychain";
 * const key = keychainKey({ service: "com.example.notes" });
 * ```
 */
export function keychainKey(options: KeychainOptions): KeyProvider {
  const service = checkName("service", options?.service);
  const fixedAccount = options.account === undefined ? undefined : checkName("account", options.account);
  return Object.freeze({
    kind: "external" as const,
    name: KEYCHAIN_PROVIDER_NAME,
    getKey: (request: KeyRequest) => getKey(service, fixedAccount ?? checkName("account", request.storeId), request),
  });
}

/**
 * Deletes the keychain entry (`service`, `account`), e.g. on uninstall. Resolves `true` if an entry was
 * deleted, `false` if there was none. The store whose key it held can no longer be opened with this
 * provider. `account` is required: with {@link keychainKey}'s default it is the store id.
 */
export async function deleteKeychainKey(options: { readonly service: string; readonly account: string }): Promise<boolean> {
  const service = checkName("service", options?.service);
  const account = checkName("account", options.account);
  const entry = await openEntry(service, account);
  try {
    return await entry.deleteCredential();
  } catch (e) {
    throw keychainFailure("could not delete", service, account, e);
  }
}

async function getKey(service: string, account: string, request: KeyRequest): Promise<Uint8Array> {
  const entry = await openEntry(service, account);
  const stored = await read(entry, service, account);
  if (stored !== null) return decode(stored, service, account);
  if (!request.creating) {
    throw new KeyError(
      `the OS keychain entry for service \`${service}\`, account \`${account}\` is missing: it holds this store's master key, ` +
        `so the store cannot be opened without it (was it deleted, or is this another user or machine?)`,
    );
  }
  const fresh = Buffer.alloc(KEY_BYTES);
  sodium.randombytes_buf(fresh);
  const encoded = fresh.toString("base64");
  sodium.sodium_memzero(fresh);
  try {
    await entry.setPassword(encoded);
  } catch (e) {
    throw keychainFailure("could not store a new master key in", service, account, e, encoded);
  }
  const back = await read(entry, service, account, encoded);
  if (back !== encoded) {
    throw new KeyError(
      `the OS keychain entry for service \`${service}\`, account \`${account}\` did not hold the master key just stored ` +
        `(${back === null ? "it was missing" : "it held another value"} when read back); the store was not created`,
    );
  }
  return decode(back, service, account);
}

/** A 32-byte key in sodium secure memory, from the entry's base64 text. */
function decode(text: string, service: string, account: string): Uint8Array {
  if (!KEY_BASE64.test(text)) {
    throw new KeyError(
      `the OS keychain entry for service \`${service}\`, account \`${account}\` is not a Cellar master key ` +
        `(expected 32 bytes in base64, 44 characters)`,
    );
  }
  const plain = Buffer.from(text, "base64");
  const key = sodium.sodium_malloc(KEY_BYTES);
  plain.copy(key);
  sodium.sodium_memzero(plain);
  return key;
}

interface Entry {
  getPassword(): Promise<string | null>;
  setPassword(password: string): Promise<void>;
  deleteCredential(): Promise<boolean>;
}

async function read(entry: Entry, service: string, account: string, secret?: string): Promise<string | null> {
  try {
    return await entry.getPassword();
  } catch (e) {
    throw keychainFailure("could not read", service, account, e, secret);
  }
}

async function openEntry(service: string, account: string): Promise<Entry> {
  let mod: typeof import("@napi-rs/keyring");
  try {
    mod = await import("@napi-rs/keyring");
  } catch (e) {
    throw new KeyError(
      `the OS keychain is not available here: the optional package \`${MODULE}\` could not be loaded ` +
        `(${firstLine(e)}); install it, or use another key provider`,
    );
  }
  try {
    // On Linux, require the Secret Service: no silent fallback to the in-memory kernel keyring.
    return new mod.AsyncEntry(service, account, { linux: { store: "secret-service" } });
  } catch (e) {
    throw keychainFailure("could not open", service, account, e);
  }
}

function keychainFailure(what: string, service: string, account: string, e: unknown, secret?: string): KeyError {
  let reason = firstLine(e);
  if (secret) reason = reason.split(secret).join("[redacted]");
  return new KeyError(`${what} the OS keychain entry for service \`${service}\`, account \`${account}\`: ${reason}${hint(reason)}`);
}

function hint(reason: string): string {
  if (/prompt was dismissed|locked/i.test(reason)) {
    return " (the keyring is locked and no unlock prompt could be shown: unlock it, e.g. by logging in to the desktop session)";
  }
  if (/dbus|secret ?service|org\.freedesktop\.secrets/i.test(reason)) {
    return " (is a Secret Service such as gnome-keyring running on this user's D-Bus session bus?)";
  }
  return "";
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return (text.split("\n")[0] ?? "").trim() || "unknown error";
}

function checkName(what: string, value: unknown): string {
  if (typeof value !== "string" || value.length === 0) throw new UsageError(`the keychain \`${what}\` must be a non-empty string`);
  return value;
}
