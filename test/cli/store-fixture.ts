/**
 * A real store for the CLI tests, made (or held open) by the app's own generated `openStore` in a child
 * process: `tsx test/cli/store-fixture.ts create <dir>` writes tasks (one in progress, tagged "cli"),
 * two profiles with sensitive `email`/`authToken` and the settings singleton, then closes;
 * `… old <dir>` writes two focus sessions as schema version 2 (the app is at 3: an upgrade would migrate them);
 * `… hold <dir>` opens the store, prints `holding <pid>` and keeps it open until stdin ends. The key:
 * CELLAR_TEST_PASSPHRASE (a cheap Argon2id cost, stored in the keyring), CELLAR_TEST_KEY_HEX (32 bytes) or
 * CELLAR_TEST_KEYCHAIN=SERVICE[/ACCOUNT] (`keychainKey`, under a Secret Service: test/cli/keychain.test.ts).
 */
import { keys, openStore as openRuntimeStore } from "../../src/runtime/index.js";
import { entities, openStore } from "../../src/generated/index.js";
import { keychainKey } from "../../src/runtime/crypto/keychain.js";
import { TaskStatus } from "../../src/generated/examples/tasks/v1/tasks_pb.js";

const [mode, dir] = process.argv.slice(2);
const hex = process.env.CELLAR_TEST_KEY_HEX;
const keychain = process.env.CELLAR_TEST_KEYCHAIN;
const [service, ...account] = (keychain ?? "").split("/");
const key = keychain
  ? keychainKey({ service: service!, ...(account.length ? { account: account.join("/") } : {}) })
  : hex ? keys.raw(new Uint8Array(Buffer.from(hex, "hex"))) : keys.passphrase(process.env.CELLAR_TEST_PASSPHRASE ?? "", { opsLimit: 1, memLimit: 8 * 1024 * 1024 });
if (mode === "old") {
  const old = await openRuntimeStore({ ...entities, focusSessions: { ...entities.focusSessions, version: 2 } }, { dir: dir!, key, cleanup: false });
  await old.focusSessions.put({ id: "f1", startedAt: { seconds: 1767322800n, nanos: 0 } } as never);
  await old.focusSessions.put({ id: "f2", startedAt: { seconds: 1767322900n, nanos: 0 } } as never);
  await old.close();
  process.exit(0);
}
const store = await openStore({ dir: dir!, key, cleanup: false });
if (mode === "create") {
  const created = new Date("2026-01-02T03:04:05Z");
  for (let i = 0; i < 30; i++) {
    await store.tasks.put({
      id: `task-${String(i).padStart(3, "0")}`,
      title: `task number ${i}`,
      status: i % 3 === 0 ? TaskStatus.IN_PROGRESS : TaskStatus.TODO,
      tags: i % 10 === 0 ? ["cli"] : [],
      createdAt: { seconds: BigInt(Math.floor(created.getTime() / 1000) + i), nanos: 0 },
    } as never);
  }
  await store.profiles.put({ id: "u1", displayName: "Ada", email: "ada@example.org", authToken: "tok-SECRET-VALUE-1" } as never);
  await store.profiles.put({ id: "u2", displayName: "Grace", email: "grace@example.org", authToken: "tok-SECRET-VALUE-2" } as never);
  await store.settings.update({} as never);
  await store.compact(); // the tasks into a segment (blocks), the profiles stay in the journal after more writes
  await store.profiles.put({ id: "u3", displayName: "Barbara", email: "barbara@example.org", authToken: "tok-SECRET-VALUE-3" } as never);
  await store.close();
} else {
  process.stdout.write(`holding ${process.pid}\n`);
  process.stdin.resume();
  await new Promise<void>((r) => process.stdin.on("end", r));
  await store.close();
}
