/**
 * Keys and secrets through the public API: providers, refusals, sensitive fields, redaction, rotation and
 * master-key changes, on real files with real libsodium; the master-key change is killed (SIGKILL) in a
 * real child process at each step of its keyring write.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { defineCollection } from "../../src/runtime/typed/entity.js";
import { openStore as openEntities } from "../../src/runtime/typed/store.js";
import { UserProfileSchema } from "../../src/generated/examples/profile/v1/profile_pb.js";
import { isCellarError, type CellarError } from "../../src/runtime/errors.js";
import { keys } from "../../src/runtime/crypto/keys.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import { MAX_VALUE_BYTES } from "../../src/runtime/format/format.js";
import { startChild } from "../engine/helpers/spawn.js";
import { z } from "zod";
import { storeSnapshot as snapshot } from "../helpers/files.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-keys-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
/** Argon2id at minimum cost: the tests are about the protocol, not the stretching. */
const cost = { opsLimit: 1, memLimit: 64 * 1024 };
const raw = new Uint8Array(32).fill(7);

const SECRETS = ["ada.lovelace@example.com", "tok-SECRET-4f9a2c", "sk-live-API-KEY-77e1"] as const;

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isCellarError(e)) return e.code;
    throw e;
  }
  return "ok";
}

/** Every file under `dir` (recursively), as bytes. */
function allFiles(dir: string): { name: string; bytes: Buffer }[] {
  const out: { name: string; bytes: Buffer }[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...allFiles(p));
    else out.push({ name: path.relative(dir, p), bytes: fs.readFileSync(p) });
  }
  return out;
}

async function writeSecrets(store: Awaited<ReturnType<typeof openStore>>): Promise<void> {
  await store.profiles.put({ id: "u1", displayName: "Ada", email: SECRETS[0], authToken: SECRETS[1], locale: "en-GB" });
  await store.settings.update({ aiProvider: { model: "claude", apiKey: SECRETS[2] } });
}

describe("master key providers", () => {
  it("a passphrase store opens with its passphrase only; a wrong one is E_KEY and changes no byte", async () => {
    const dir = path.join(tmp, "pass");
    let store = await openStore({ dir, key: keys.passphrase("correct horse caf\u00e9", cost) });
    await writeSecrets(store);
    expect(store.keyInfo()).toEqual({ encrypted: true, activeKeyId: 1, keyIds: [1], masterKey: "passphrase" });
    await store.close();
    const before = snapshot(dir);
    const wrong = await openStore({ dir, key: keys.passphrase("correct horse cafe", cost) }).catch((e: CellarError) => e);
    expect((wrong as CellarError).code).toBe("E_KEY");
    expect((wrong as Error).message).toMatch(/wrong key or passphrase/);
    // A raw key where a passphrase is expected is named as such.
    const rawErr = await openStore({ dir, key: raw }).catch((e: CellarError) => e);
    expect((rawErr as CellarError).code).toBe("E_KEY");
    expect((rawErr as Error).message).toMatch(/passphrase/);
    expect(snapshot(dir)).toEqual(before);
    // The same passphrase in another Unicode normalisation is the same key (NFC).
    store = await openStore({ dir, key: keys.passphrase("correct horse cafe\u0301", cost) });
    expect((await store.profiles.get("u1"))?.email).toBe(SECRETS[0]);
    await store.close();
  });

  it("an external provider is asked once per open, told whether the store is being created, and must return 32 bytes", async () => {
    const dir = path.join(tmp, "external");
    const calls: { creating: boolean; storeId: string }[] = [];
    const provider = keys.external("test-vault", (req) => {
      calls.push({ creating: req.creating, storeId: req.storeId });
      return raw;
    });
    let store = await openStore({ dir, key: provider });
    await writeSecrets(store);
    await store.close();
    store = await openStore({ dir, key: provider });
    expect((await store.settings.get()).aiProvider?.apiKey).toBe(SECRETS[2]);
    await store.close();
    expect(calls.map((c) => c.creating)).toEqual([true, false]);
    expect(calls[0]!.storeId).toMatch(/^[0-9a-f]{32}$/);
    expect(calls[1]!.storeId).toBe(calls[0]!.storeId);
    // The same 32 bytes given raw open it too (raw and external are both "32 bytes from the app").
    store = await openStore({ dir, key: raw });
    await store.close();

    const short = await openStore({ dir, key: keys.external("short", () => new Uint8Array(16)) }).catch((e: CellarError) => e);
    expect((short as CellarError).code).toBe("E_KEY");
    expect((short as Error).message).toContain("`short` must return 32 bytes, got 16 bytes");
    // A provider that fails with a message holding a secret: the message is not passed on.
    const failing = keys.external("leaky", () => {
      throw new Error(`vault said no for token ${SECRETS[1]}`);
    });
    const err = await openStore({ dir, key: failing }).catch((e: CellarError) => e);
    expect((err as CellarError).code).toBe("E_KEY");
    expect(`${(err as Error).message}\n${(err as Error).stack}`).not.toContain(SECRETS[1]);
    const other = await openStore({ dir, key: keys.external("other", () => new Uint8Array(32).fill(8)) }).catch((e: CellarError) => e);
    expect((other as CellarError).code).toBe("E_KEY");
    expect((other as Error).message).toContain("the key from `other` does not open this store");
  });

  it("bad provider arguments are refused before anything is created", async () => {
    expect(() => keys.raw(new Uint8Array(31))).toThrow(/32 bytes/);
    expect(() => keys.passphrase("")).toThrow(/empty/);
    expect(() => keys.passphrase("x", { opsLimit: 0 })).toThrow(/opsLimit/);
    expect(() => keys.passphrase("x", { memLimit: 1024 })).toThrow(/memLimit/);
    const dir = path.join(tmp, "bad-arg");
    expect(await code(openStore({ dir, key: { kind: "nope" } as never }))).toBe("E_USAGE");
    expect(fs.existsSync(path.join(dir, "MANIFEST"))).toBe(false);
  });
});

describe("refusals", () => {
  it("a schema with sensitive fields is refused without a key and with encryption: none, naming the fields", async () => {
    const dir = path.join(tmp, "refuse");
    const none = await openStore({ dir, encryption: "none" }).catch((e: CellarError) => e);
    expect((none as CellarError).code).toBe("E_KEY");
    expect((none as Error).message).toContain("`profiles` (`email`, `authToken`)");
    expect((none as Error).message).toContain("`settings` (`aiProvider.apiKey`)");
    const missing = await openStore({ dir }).catch((e: CellarError) => e);
    expect((missing as CellarError).code).toBe("E_KEY");
    expect((missing as Error).message).toMatch(/no key configured/);
    expect(fs.existsSync(dir) ? fs.readdirSync(dir) : []).toEqual([]);
  });

  it("a plaintext store is allowed only when no entity has sensitive fields, and refuses a key later", async () => {
    const Plain = defineCollection({
      name: "plain",
      version: 1,
      schema: UserProfileSchema,
      validator: z.any(),
      sensitive: [],
      key: "id",
      keyKind: "string",
      indexes: [],
    });
    const dir = path.join(tmp, "plaintext");
    const store = await openEntities({ plain: Plain }, { dir, encryption: "none" });
    await store.plain.put({ id: "p1", displayName: "visible" });
    await store.close();
    expect(await code(openEntities({ plain: Plain }, { dir, key: raw }))).toBe("E_KEY");
    expect(fs.existsSync(path.join(dir, "KEYRING"))).toBe(false);
    // An encrypted store opened as plaintext, or without its keyring, is refused.
    const enc = path.join(tmp, "enc");
    const s2 = await openEntities({ plain: Plain }, { dir: enc, key: raw });
    await s2.close();
    expect(await code(openEntities({ plain: Plain }, { dir: enc, encryption: "none" }))).toBe("E_KEY");
    fs.renameSync(path.join(enc, "KEYRING"), path.join(tmp, "KEYRING.moved"));
    const gone = await openEntities({ plain: Plain }, { dir: enc, key: raw }).catch((e: CellarError) => e);
    expect((gone as CellarError).code).toBe("E_CORRUPT");
    expect((gone as Error).message).toMatch(/KEYRING.*missing/);
  });
});

describe("sensitive fields", () => {
  it("no sensitive value — or any other string value — appears in any file, including after compaction and rotation", async () => {
    const dir = path.join(tmp, "grep");
    const store = await openStore({ dir, key: keys.passphrase("pw", cost) });
    await writeSecrets(store);
    await store.tasks.put({ id: "t1", title: "Visible-only-to-record-keys" });
    await store.compact();
    await store.profiles.put({ id: "u2", email: SECRETS[0], authToken: SECRETS[1] });
    await store.rotateKey();
    await store.profiles.put({ id: "u3", email: SECRETS[0], authToken: SECRETS[1] });
    for (const { name, bytes } of allFiles(dir)) {
      for (const s of [...SECRETS, "Visible-only-to-record-keys", "Ada"]) {
        expect(bytes.includes(Buffer.from(s)), `${s} in ${name}`).toBe(false);
        expect(bytes.includes(Buffer.from(s, "utf16le")), `${s} (UTF-16) in ${name}`).toBe(false);
      }
    }
    await store.close();
  });

  for (const [label, options] of [
    ["compressed journal", { compressJournal: true }],
    ["uncompressed segments", { compression: false }],
    ["relaxed durability", { durability: "relaxed" as const }],
  ] as const) {
    it(`no secret in any file with ${label}`, async () => {
      const dir = path.join(tmp, `grep-${label.replace(/ /g, "-")}`);
      const store = await openStore({ dir, key: raw, ...options });
      // Groups of ≥ 4 KiB are the ones compressJournal compresses.
      await store.batch((tx) => {
        for (let i = 0; i < 40; i++) tx.profiles.put({ id: `p${i}`, displayName: "x".repeat(100), email: SECRETS[0], authToken: SECRETS[1] });
      });
      await writeSecrets(store);
      await store.compact();
      await writeSecrets(store);
      await store.close();
      for (const { name, bytes } of allFiles(dir)) {
        for (const s of SECRETS) expect(bytes.includes(Buffer.from(s)), `${s} in ${name}`).toBe(false);
      }
    });
  }

  it("no secret in a compaction's temp file left by a SIGKILL", async () => {
    const dir = path.join(tmp, "grep-tmp");
    const { exited } = startChild("../../keys/helpers/tmp-child.ts", [dir, ...SECRETS]);
    const r = await exited;
    expect(r.signal, r.stderr).toBe("SIGKILL");
    const files = allFiles(dir);
    expect(files.some((f) => f.name.endsWith(".seg.tmp"))).toBe(true);
    for (const { name, bytes } of files) for (const s of SECRETS) expect(bytes.includes(Buffer.from(s)), `${s} in ${name}`).toBe(false);
  });

  it("no secret in any error message, stack or console output when writes of sensitive fields fail", async () => {
    const dir = path.join(tmp, "grep-errors");
    const printed: string[] = [];
    const spies = (["log", "info", "warn", "error", "debug"] as const).map((m) => {
      const orig = console[m];
      console[m] = (...a: unknown[]) => void printed.push(a.map(String).join(" "));
      return () => (console[m] = orig);
    });
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => (printed.push(String(chunk)), true)) as typeof process.stderr.write;
    const errors: unknown[] = [];
    try {
      const store = await openStore({ dir, key: raw });
      // Invalid: the email fails its pattern; the token holds a lone surrogate; a key that is too long.
      for (const bad of [
        { id: "u1", email: `not-an-email ${SECRETS[0]}` },
        { id: "u1", email: SECRETS[0].padEnd(400, "x") },
        { id: "u1", authToken: `${SECRETS[1]}\ud800` },
        { id: "k".repeat(2000), authToken: SECRETS[1] },
        { id: "u1", authToken: SECRETS[1], nope: SECRETS[2] },
      ]) {
        errors.push(await store.profiles.put(bad as never).catch((e: unknown) => e));
      }
      errors.push(await store.settings.update({ aiProvider: { apiKey: 42 as never } }).catch((e: unknown) => e));
      await store.close();
      errors.push(await openStore({ dir, key: keys.raw(new Uint8Array(32)) }).catch((e: unknown) => e));
    } finally {
      for (const restore of spies) restore();
      process.stderr.write = writeErr;
    }
    expect(errors.filter((e) => isCellarError(e)).length).toBeGreaterThanOrEqual(6);
    const text = [
      ...printed,
      ...errors.map((e) => (e instanceof Error ? `${e.message}\n${e.stack}\n${JSON.stringify(e)}` : String(e))),
    ].join("\n");
    for (const s of SECRETS) expect(text).not.toContain(s);
  });

  it("redactSensitive opens with record keys only: sensitive fields read as unset, everything else reads, writes are refused", async () => {
    const dir = path.join(tmp, "redact");
    let store = await openStore({ dir, key: raw });
    await writeSecrets(store);
    await store.compact();
    await store.profiles.put({ id: "u2", displayName: "Grace", email: SECRETS[0], authToken: SECRETS[1] });
    await store.close();

    store = await openStore({ dir, key: raw, redactSensitive: true });
    for (const id of ["u1", "u2"]) {
      const p = (await store.profiles.get(id))!;
      expect(p.email).toBe("");
      expect(p.authToken).toBe("");
      expect(JSON.stringify(p, (_, v) => (typeof v === "bigint" ? String(v) : v))).not.toMatch(/SECRET|lovelace/);
    }
    expect((await store.profiles.get("u1"))!.locale).toBe("en-GB"); // segment record
    expect((await store.profiles.get("u2"))!.displayName).toBe("Grace"); // journal record
    const s = await store.settings.get();
    expect(s.aiProvider?.model).toBe("claude");
    expect(s.aiProvider?.apiKey).toBe("");
    expect(await code(store.profiles.put({ id: "u3" }))).toBe("E_USAGE");
    expect(await code(store.profiles.delete("u1"))).toBe("E_USAGE");
    expect(await code(store.rotateKey())).toBe("E_USAGE");
    expect(await code(store.changeMasterKey(keys.raw(new Uint8Array(32))))).toBe("E_USAGE");
    await store.close();
    store = await openStore({ dir, key: raw });
    expect((await store.profiles.get("u2"))!.authToken).toBe(SECRETS[1]);
    await store.close();
  });

  it("inspect() shows every record as JSON with each sensitive field \"[redacted]\", in either key scope", async () => {
    const dir = path.join(tmp, "inspect");
    let store = await openStore({ dir, key: raw });
    await writeSecrets(store);
    await store.profiles.put({ id: "u2", displayName: "No secrets" });
    await store.tasks.put({ id: "t1", title: "plain" });
    for (const redactSensitive of [false, true]) {
      await store.close();
      store = await openStore({ dir, key: raw, redactSensitive });
      const seen = [];
      for await (const r of store.inspect({ entities: ["profiles", "settings", "tasks"] })) seen.push(r);
      expect(JSON.stringify(seen)).not.toMatch(/SECRET|lovelace|API-KEY/);
      expect(seen.find((r) => r.key === "u1")!.json).toMatchObject({ id: "u1", displayName: "Ada", email: "[redacted]", authToken: "[redacted]", locale: "en-GB" });
      expect(seen.find((r) => r.key === "u2")!.json).toEqual({ id: "u2", displayName: "No secrets" });
      expect(seen.find((r) => r.entity === "settings")!.json).toMatchObject({ aiProvider: { model: "claude", apiKey: "[redacted]" } });
      expect(seen.find((r) => r.entity === "tasks")).toMatchObject({ key: "t1", version: 1, json: { id: "t1", title: "plain" } });
    }
    await expect(store.inspect({ entities: ["nope"] }).next()).rejects.toThrow(/no entity `nope`/);
    await store.close();
  });
});

describe("rotation", () => {
  it("rotateKey switches new writes to a new data key; reencrypt rewrites everything under it and destroys the old one", async () => {
    const dir = path.join(tmp, "rotate");
    let store = await openStore({ dir, key: raw, compaction: { auto: false } });
    await writeSecrets(store);
    for (let i = 0; i < 50; i++) await store.tasks.put({ id: `t${i}`, title: `task ${i}` });
    await store.compact();
    await store.tasks.put({ id: "j1", title: "journal under key 1" });
    expect(await store.rotateKey()).toBe(2);
    expect(store.keyInfo()).toMatchObject({ activeKeyId: 2, keyIds: [1, 2] });
    await store.tasks.put({ id: "j2", title: "journal under key 2" });
    await store.close();
    // Both keys are needed until the re-encryption: the keyring keeps them across reopen.
    store = await openStore({ dir, key: raw, compaction: { auto: false } });
    expect(store.keyInfo().keyIds).toEqual([1, 2]);
    expect((await store.tasks.get("j1"))!.title).toBe("journal under key 1");
    expect(await store.reencrypt()).toEqual([1]);
    expect(store.keyInfo()).toMatchObject({ activeKeyId: 2, keyIds: [2] });
    expect(await store.reencrypt()).toEqual([]); // nothing left to do
    await store.close();
    store = await openStore({ dir, key: raw });
    expect(store.keyInfo().keyIds).toEqual([2]);
    expect((await store.profiles.get("u1"))!.authToken).toBe(SECRETS[1]);
    expect((await store.settings.get()).aiProvider?.apiKey).toBe(SECRETS[2]);
    expect(await store.tasks.count()).toBe(52);
    await store.close();
  });

  it("a crash between the manifest switch and the keyring rewrite: the next open destroys the old key", async () => {
    const dir = path.join(tmp, "rotate-crash");
    let store = await openStore({
      dir,
      key: raw,
      compaction: { auto: false },
      failpoint: (name) => {
        if (name === "compaction.beforeKeyRetire") throw new Error("injected crash");
      },
    });
    await writeSecrets(store);
    await store.rotateKey();
    await expect(store.reencrypt()).rejects.toThrow("injected crash");
    await store.close();
    store = await openStore({ dir, key: raw });
    expect(store.keyInfo().keyIds).toEqual([2]);
    expect((await store.profiles.get("u1"))!.email).toBe(SECRETS[0]);
    await store.close();
  });

  for (const [at, skip] of [
    ["keyring.beforeRename", 0], // inside rotateKey: the new key never existed
    ["keyring.afterRename", 0], // rotateKey's keyring is durable
    ["compaction.beforeSegmentRename", 0],
    ["compaction.beforeManifestRename", 0],
    ["compaction.afterManifestRename", 0],
    ["compaction.beforeDelete", 0],
    ["compaction.beforeKeyRetire", 0],
    ["keyring.beforeRename", 1], // the keyring rewrite that destroys key 1
  ] as const) {
    it(`SIGKILL during rotation at ${at}${skip ? ` (#${skip + 1})` : ""}: every acknowledged record opens, and key 1 is gone once the new manifest is in place`, async () => {
      const dir = path.join(tmp, `rotate-kill-${at}-${skip}`);
      const marker = path.join(tmp, `rotate-kill-${at}-${skip}.ack`);
      const store = await openStore({ dir, key: raw, compaction: { auto: false } });
      await writeSecrets(store);
      for (let i = 0; i < 30; i++) await store.tasks.put({ id: `t${i}`, title: `task ${i}` });
      await store.close();
      const { exited } = startChild("../../keys/helpers/rotate-child.ts", [dir, at, String(skip), marker]);
      const r = await exited;
      expect(r.signal, r.stderr).toBe("SIGKILL");
      const s2 = await openStore({ dir, key: raw, compaction: { auto: false } });
      try {
        expect((await s2.profiles.get("u1"))!.authToken).toBe(SECRETS[1]);
        expect((await s2.settings.get()).aiProvider?.apiKey).toBe(SECRETS[2]);
        expect(await s2.tasks.count()).toBe(30);
        // The record written under key 2 was acknowledged in every window from the compaction on.
        const acknowledged = at.startsWith("compaction.") || skip === 1;
        expect(fs.existsSync(marker)).toBe(acknowledged);
        if (acknowledged) expect((await s2.profiles.get("after-rotation"))!.authToken).toBe("tok-late");
        const ids = s2.keyInfo().keyIds;
        if (at === "keyring.beforeRename" && skip === 0) expect(ids).toEqual([1]);
        else if (at === "compaction.afterManifestRename" || at === "compaction.beforeDelete" || at === "compaction.beforeKeyRetire" || skip === 1) {
          expect(ids).toEqual([2]); // the new manifest names only files under key 2: open finished the destruction
        } else expect(ids).toEqual([1, 2]);
        // Whatever was left, one more re-encryption completes the rotation.
        await s2.reencrypt();
        expect(s2.keyInfo().keyIds).toEqual([s2.keyInfo().activeKeyId]);
      } finally {
        await s2.close();
      }
    });
  }

  it("rotation on a plaintext store is a usage error", async () => {
    const Plain = defineCollection({ name: "p", version: 1, schema: UserProfileSchema, validator: z.any(), sensitive: [], key: "id", keyKind: "string", indexes: [] });
    const store = await openEntities({ p: Plain }, { dir: path.join(tmp, "plain-rot"), encryption: "none" });
    expect(await code(store.rotateKey())).toBe("E_USAGE");
    expect(await code(store.changeMasterKey(keys.raw(raw)))).toBe("E_USAGE");
    await store.close();
  });
});

describe("changeMasterKey", () => {
  it("rewraps the data keys: the old passphrase stops working, the new one opens everything, in constant time", async () => {
    const dir = path.join(tmp, "rekey");
    let store = await openStore({ dir, key: keys.passphrase("old passphrase", cost) });
    await writeSecrets(store);
    for (let i = 0; i < 200; i++) await store.tasks.put({ id: `t${i}`, title: `task ${i}` });
    const before = snapshot(dir);
    await store.changeMasterKey(keys.passphrase("new passphrase", cost));
    const after = snapshot(dir);
    // Only the keyring changed (and not the journal, manifest or segments): the cost is one small file.
    const changed = [...after].filter(([n, h]) => before.get(n) !== h).map(([n]) => n);
    expect(changed).toEqual(["KEYRING"]);
    await store.close();
    expect(await code(openStore({ dir, key: keys.passphrase("old passphrase", cost) }))).toBe("E_KEY");
    store = await openStore({ dir, key: keys.passphrase("new passphrase", cost) });
    expect((await store.profiles.get("u1"))!.authToken).toBe(SECRETS[1]);
    // From a passphrase to an external key and back to a raw key.
    await store.changeMasterKey(keys.external("vault", () => raw));
    await store.close();
    store = await openStore({ dir, key: raw });
    expect(store.keyInfo().masterKey).toBe("external");
    expect(await store.tasks.count()).toBe(200);
    await store.close();
  });

  for (const at of ["keyring.beforeRename", "keyring.afterRename"] as const) {
    it(`SIGKILL at ${at}: exactly one of the two passphrases opens the store, with every record`, async () => {
      const dir = path.join(tmp, `rekey-kill-${at}`);
      const store = await openStore({ dir, key: keys.passphrase("old passphrase", cost) });
      await writeSecrets(store);
      await store.close();
      const { exited } = startChild("../../keys/helpers/rekey-child.ts", [dir, at]);
      const r = await exited;
      expect(r.signal, r.stderr).toBe("SIGKILL");
      const results: Record<string, string> = {};
      for (const pw of ["old passphrase", "new passphrase"]) {
        results[pw] = await code(
          openStore({ dir, key: keys.passphrase(pw, cost) }).then(async (s) => {
            const p = await s.profiles.get("u1");
            await s.close();
            if (p?.authToken !== SECRETS[1]) throw new Error("record lost");
          }),
        );
      }
      expect(results).toEqual(
        at === "keyring.beforeRename" ? { "old passphrase": "ok", "new passphrase": "E_KEY" } : { "old passphrase": "E_KEY", "new passphrase": "ok" },
      );
      expect(fs.readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    });
  }
});

describe("limits", () => {
  it("a value of the maximum size survives reopen in an encrypted store (sealed, it is 40 bytes over the limit)", async () => {
    const dir = path.join(tmp, "max-value");
    const value = new Uint8Array(MAX_VALUE_BYTES).fill(0x5a);
    let e = await Engine.open({ dir, key: raw, compaction: { auto: false } });
    await e.write([{ op: "put", entity: "blob", key: "k", version: 1, value, terms: [] }]);
    await e.close();
    e = await Engine.open({ dir, key: raw, compaction: { auto: false } });
    expect(e.get("blob", "k")!.value.length).toBe(MAX_VALUE_BYTES);
    expect(e.recovery.damaged).toEqual([]);
    await e.close();
  });
});

describe("secure memory", () => {
  it("closing the store zeroes and drops every key: nothing can be derived afterwards", async () => {
    const dir = path.join(tmp, "zero");
    const store = await openStore({ dir, key: raw });
    await writeSecrets(store);
    const ring = (store as unknown as { engine: { keyring: { meta(id: number): unknown; keyIds: number[] } } }).engine.keyring;
    expect(ring.meta(1)).not.toBeNull();
    await store.close();
    expect(ring.keyIds).toEqual([]);
    expect(ring.meta(1)).toBeNull();
  });
});
