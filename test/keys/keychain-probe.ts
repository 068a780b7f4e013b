/**
 * Runs keychain operations in this process and prints their results as one JSON line on stdout, for
 * keychain.test.ts, which starts it under `dbus-run-session` with a real gnome-keyring (or with no Secret
 * Service at all). Usage: CELLAR_KEYCHAIN_OPS='[{"op":"getKey",...},...]' node --import tsx keychain-probe.ts
 *
 * Ops: getKey (through `keychainKey`), delete (through `deleteKeychainKey`), openStore (a real store under
 * `keychainKey`, or under a raw key that may then be changed to `keychainKey` with `changeMasterKey`; returns
 * the settings' `language`, after setting it if given), and setRaw / getRaw / accounts / entries, which touch the
 * keychain directly through `@napi-rs/keyring` (pinned to the Secret Service) to plant or inspect entries.
 */
import { openStore } from "../../src/generated/index.js";
import { deleteKeychainKey, keychainKey } from "../../src/runtime/crypto/keychain.js";
import { keys } from "../../src/runtime/crypto/keys.js";

export type ProbeOp =
  | { op: "getKey"; service: string; account?: string; storeId: string; creating: boolean }
  | { op: "delete"; service: string; account: string }
  | { op: "setRaw"; service: string; account: string; value: string }
  | { op: "getRaw"; service: string; account: string }
  | { op: "accounts"; service: string }
  | { op: "entries"; service: string }
  | { op: "openStore"; dir: string; service: string; account?: string; language?: string }
  | { op: "openStoreRaw"; dir: string; keyBase64: string; changeTo?: { service: string; account: string } }
  | { op: "importRuntime" };

export type ProbeResult =
  | { ok: true; value: unknown }
  | { ok: false; error: { name: string; code: unknown; message: string; stack: string } };

async function run(op: ProbeOp): Promise<unknown> {
  switch (op.op) {
    case "getKey": {
      const provider = keychainKey(op.account === undefined ? { service: op.service } : { service: op.service, account: op.account });
      if (provider.kind !== "external") throw new Error("keychainKey did not return an external provider");
      const key = await provider.getKey({ dir: "/nonexistent/store", storeId: op.storeId, creating: op.creating });
      return { name: provider.name, length: key.length, base64: Buffer.from(key).toString("base64") };
    }
    case "delete":
      return await deleteKeychainKey({ service: op.service, account: op.account });
    case "setRaw":
      return await (await rawEntry(op.service, op.account)).setPassword(op.value);
    case "getRaw":
      return await (await rawEntry(op.service, op.account)).getPassword();
    case "accounts": {
      const { findCredentialsAsync } = await import("@napi-rs/keyring");
      return (await findCredentialsAsync(op.service)).map((c) => c.account).sort();
    }
    case "openStore": {
      const key = keychainKey(op.account === undefined ? { service: op.service } : { service: op.service, account: op.account });
      const store = await openStore({ dir: op.dir, key });
      try {
        if (op.language !== undefined) await store.settings.update({ language: op.language });
        return (await store.settings.get()).language;
      } finally {
        await store.close();
      }
    }
    case "openStoreRaw": {
      const store = await openStore({ dir: op.dir, key: keys.raw(Buffer.from(op.keyBase64, "base64")) });
      try {
        if (op.changeTo) await store.changeMasterKey(keychainKey(op.changeTo));
        return (await store.settings.get()).language;
      } finally {
        await store.close();
      }
    }
    case "entries": {
      const { findCredentialsAsync } = await import("@napi-rs/keyring");
      return (await findCredentialsAsync(op.service)).map((c) => ({ account: c.account, password: c.password })).sort((a, b) => a.account.localeCompare(b.account));
    }
    case "importRuntime":
      return Object.keys(await import("../../src/runtime/index.js")).length;
  }
}

async function rawEntry(service: string, account: string) {
  const { AsyncEntry } = await import("@napi-rs/keyring");
  return new AsyncEntry(service, account, { linux: { store: "secret-service" } });
}

const ops = JSON.parse(process.env.CELLAR_KEYCHAIN_OPS ?? "[]") as ProbeOp[];
const results: ProbeResult[] = [];
for (const op of ops) {
  try {
    results.push({ ok: true, value: (await run(op)) ?? null });
  } catch (e) {
    const err = e as { name?: string; code?: unknown; message?: string; stack?: string };
    results.push({ ok: false, error: { name: String(err?.name), code: err?.code, message: String(err?.message), stack: String(err?.stack) } });
  }
}
process.stdout.write(JSON.stringify(results) + "\n");
