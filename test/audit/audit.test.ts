/**
 * The audit log on real stores (real files, real libsodium): an entry for each audited action, who and when,
 * never a value; the chain verifies; edits, removals, reordering, a cut tail and a rolled-back copy are each
 * detected; retention prunes and the log still verifies.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { keys, restoreBackup } from "../../src/runtime/index.js";
import { AUDIT_ENTITY, decodeEntry, encodeEntry, encodeEntryBody, entryKey } from "../../src/runtime/format/audit.js";
import { decodedText, key, rawAudit, SECRETS, seed, tamper, tempRoot } from "./helpers.js";

const tmp = tempRoot("api");
afterAll(tmp.cleanup);

describe("audit log: what is recorded", () => {
  it("records sensitive reads and writes (aggregated, with keys, never values) and each store operation, with actor, pid and host", async () => {
    const dir = tmp.fresh("actions");
    const store = await openStore({ dir, key, audit: { actor: "user:42", flushMs: 60_000 } });
    await seed(store);
    await store.profiles.get("p1");
    await store.audit.withActor("support:7", () => store.profiles.get("p2"));
    await store.tasks.put({ id: "t1", title: "not audited" });
    const out = path.join(tmp.root, "export.ndjson");
    await store.export({ to: out });
    await store.export({ to: out, includeSensitive: true });
    await store.import(out);
    const backup = await store.backup({ to: path.join(tmp.root, "b1.cellar") });
    await store.rotateKey();
    await store.reencrypt();
    await store.changeMasterKey(keys.raw(new Uint8Array(32).fill(3)));
    await store.recoverFrom(backup.file, { key: new Uint8Array(32).fill(3) }).catch(() => {});
    const list = await store.audit.list();
    await store.close();

    const actions = list.map((e) => e.action);
    expect(actions[0]).toBe("start");
    for (const a of ["write", "read", "export", "import", "backup", "rotate-key", "reencrypt", "change-master-key", "recover"]) expect(actions).toContain(a);
    expect(actions.filter((a) => a === "export")).toHaveLength(2);
    const reads = list.filter((e) => e.action === "read");
    expect(reads.find((e) => e.actor === "user:42")).toMatchObject({ entity: "profiles", count: 1, keys: ["p1"], pid: process.pid });
    expect(reads.find((e) => e.actor === "support:7")).toMatchObject({ entity: "profiles", count: 1, keys: ["p2"] });
    expect(list.find((e) => e.action === "write")).toMatchObject({ entity: "profiles", count: 2, actor: "user:42" });
    expect(list.some((e) => e.entity === "tasks")).toBe(false);
    const exports = list.filter((e) => e.action === "export").map((e) => e.detail.includeSensitive);
    expect(exports).toEqual([false, true]);
    expect(list.find((e) => e.action === "rotate-key")!.detail).toEqual({ keyId: 2 });
    expect(list.every((e) => e.host.length > 0 && e.at instanceof Date)).toBe(true);
    // Seqs in order without a gap.
    expect(list.map((e) => e.seq)).toEqual(list.map((_, i) => i + 1));

    // Opened again with the new master key: the log (its root rewrapped with the data keys) still verifies.
    const again = await openStore({ dir, key: new Uint8Array(32).fill(3), audit: true });
    const report = await again.audit.verify();
    expect(report).toMatchObject({ ok: true, problems: [] });
    expect(report.lastSeq).toBe(report.head.seq);
    await again.close();

    // Nothing of a sensitive value in any decoded entry, nor in the store's files.
    const text = decodedText(await rawAudit(dir, new Uint8Array(32).fill(3)));
    for (const s of SECRETS) expect(text).not.toContain(s);
  });

  it("records a restore in the restored store's log, which verifies", async () => {
    const dir = tmp.fresh("restore");
    const store = await openStore({ dir, key, audit: true });
    await seed(store);
    const b = await store.backup({ to: path.join(tmp.root, "r.cellar") });
    await store.profiles.delete("p2");
    await store.close();
    await restoreBackup(b.file, { dir, key, auditActor: "ops:1" });
    const back = await openStore({ dir, key, audit: true });
    const list = await back.audit.list();
    expect(list.at(-1)).toMatchObject({ action: "restore", actor: "ops:1", detail: { file: b.file } });
    expect((await back.audit.verify()).ok).toBe(true);
    await back.close();
  });

  it("a backup without the sensitive keys leaves the log out (its keyring has no audit root): the restored store starts a new log that verifies", async () => {
    const dir = tmp.fresh("nosens");
    const store = await openStore({ dir, key, audit: true });
    await seed(store);
    const b = await store.backup({ to: path.join(tmp.root, "nosens.cellar"), includeSensitive: false, password: "pw-for-test", passwordCost: { opsLimit: 1, memLimit: 8192 } });
    await store.close();
    expect(b.entities.map((e) => e.name)).not.toContain(AUDIT_ENTITY);
    const target = tmp.fresh("nosens-restored");
    await restoreBackup(b.file, { dir: target, password: "pw-for-test", key });
    const back = await openStore({ dir: target, key, audit: true });
    expect((await back.audit.list()).map((e) => e.action)).toEqual(["start"]);
    expect((await back.audit.verify()).ok).toBe(true);
    await back.close();
  });

  it("refuses `audit` on a plaintext store (E_KEY) and unknown entities (E_USAGE); a store without a log says so", async () => {
    const { profiles: _p, settings: _s, ...plain } = (await import("../../src/generated/index.js")).entities;
    const { openStore: openRaw } = await import("../../src/runtime/typed/store.js");
    await expect(openRaw(plain, { dir: tmp.fresh("plain"), encryption: "none", audit: true })).rejects.toMatchObject({ code: "E_KEY" });
    await expect(openStore({ dir: tmp.fresh("bad"), key, audit: { entities: ["nope"] } })).rejects.toMatchObject({ code: "E_USAGE" });
    const store = await openStore({ dir: tmp.fresh("none"), key });
    await expect(store.audit.verify()).rejects.toMatchObject({ code: "E_USAGE" });
    await store.close();
  });
});

/** A store with a few entries, closed; returns its directory. */
async function logged(name: string, extra = 0): Promise<string> {
  const dir = tmp.fresh(name);
  const store = await openStore({ dir, key, audit: { flushMs: 0 } });
  await seed(store);
  for (let i = 0; i < 4 + extra; i++) {
    await store.profiles.get("p1");
    await store.audit.flush();
  }
  await store.close();
  return dir;
}

async function verifyAt(dir: string, expect?: { seq: number; mac: string }) {
  const store = await openStore({ dir, key, redactSensitive: true });
  try {
    return await store.audit.verify(expect ? { expect } : {});
  } finally {
    await store.close();
  }
}

describe("audit log: tampering is detected", () => {
  it("an untouched log verifies, read-only (redactSensitive) too", async () => {
    const report = await verifyAt(await logged("clean"));
    expect(report).toMatchObject({ ok: true, firstSeq: 1, problems: [] });
    expect(report.entries).toBeGreaterThanOrEqual(6);
  });

  it("an entry's bytes edited (re-encoded with another count, its MAC kept)", async () => {
    const dir = await logged("edit");
    await tamper(dir, (r) => {
      const d = decodeEntry(r.get(entryKey(3))!);
      const body = encodeEntryBody({ ...d.body, count: d.body.count + 1 });
      return { put: [[entryKey(3), encodeEntry(body, d.mac)]] };
    });
    const report = await verifyAt(dir);
    expect(report.ok).toBe(false);
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: "edited", seq: 3 }));
  });

  it("one byte of an entry flipped in place", async () => {
    const dir = await logged("flip");
    await tamper(dir, (r) => {
      const v = r.get(entryKey(2))!.slice();
      v[v.length - 40]! ^= 1;
      return { put: [[entryKey(2), v]] };
    });
    expect((await verifyAt(dir)).problems.map((p) => p.kind)).toContain("edited");
  });

  it("an entry removed", async () => {
    const dir = await logged("remove");
    await tamper(dir, () => ({ del: [entryKey(3)] }));
    expect((await verifyAt(dir)).problems).toContainEqual(expect.objectContaining({ kind: "missing", seq: 3 }));
  });

  it("two entries swapped", async () => {
    const dir = await logged("swap");
    await tamper(dir, (r) => ({ put: [[entryKey(2), r.get(entryKey(3))!], [entryKey(3), r.get(entryKey(2))!]] }));
    const kinds = (await verifyAt(dir)).problems.map((p) => `${p.kind}@${p.seq}`);
    expect(kinds).toEqual(expect.arrayContaining(["moved@2", "moved@3"]));
  });

  it("the tail cut (last entries removed, the head left)", async () => {
    const dir = await logged("truncate");
    const head = (await rawAudit(dir)).size - 1; // entries + head record
    await tamper(dir, () => ({ del: [entryKey(head), entryKey(head - 1)] }));
    expect((await verifyAt(dir)).problems).toContainEqual(expect.objectContaining({ kind: "truncated", seq: head - 1 }));
  });

  it("the log replaced by an older copy of itself (head too): found against a head kept outside the store", async () => {
    const dir = await logged("older");
    const old = await rawAudit(dir);
    const store = await openStore({ dir, key, audit: { flushMs: 0 } });
    await store.profiles.get("p2");
    const saved = (await store.audit.head())!;
    await store.close();
    const now = await rawAudit(dir);
    await tamper(dir, () => ({ put: [...old], del: [...now.keys()].filter((k) => !old.has(k)) }));
    // A consistent rollback of the whole log is not visible from inside the store (docs/SECURITY.md) …
    expect((await verifyAt(dir)).ok).toBe(true);
    // … and is against the head the app kept elsewhere.
    const report = await verifyAt(dir, saved);
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: "rollback", seq: saved.seq }));
    // An older copy of the entries alone (the head kept) is a cut tail.
    await tamper(dir, () => ({ put: [["h", now.get("h")!]] }));
    expect((await verifyAt(dir)).problems.map((p) => p.kind)).toContain("truncated");
  });

  it("an entry copied from another store's log does not verify in this one (the chain starts from the store id)", async () => {
    const a = await logged("a");
    const b = await logged("b");
    const fromA = await rawAudit(a);
    await tamper(b, () => ({ put: [[entryKey(1), fromA.get(entryKey(1))!]] }));
    expect((await verifyAt(b)).problems).toContainEqual(expect.objectContaining({ kind: "edited", seq: 1 }));
  });

  it("strict verification throws E_AUDIT_TAMPERED naming seqs, never content", async () => {
    const dir = await logged("strict");
    await tamper(dir, () => ({ del: [entryKey(2)] }));
    const store = await openStore({ dir, key, redactSensitive: true });
    const e = await store.audit.verify({ strict: true }).catch((x: unknown) => x);
    await store.close();
    expect(e).toMatchObject({ code: "E_AUDIT_TAMPERED", problems: [expect.objectContaining({ kind: "missing", seq: 2 })] });
    expect(String((e as Error).message)).toMatch(/entries 2 are missing|entries 2/);
  });
});

describe("audit log: retention", () => {
  it("prunes by entries, leaves an anchor and a prune entry, and still verifies; removing the anchor is detected", async () => {
    const dir = await logged("keep", 10);
    const before = await verifyAt(dir);
    const store = await openStore({ dir, key, audit: { flushMs: 0, keep: { entries: 5 } } });
    const list = await store.audit.list();
    await store.close();
    expect(list.length).toBeLessThanOrEqual(6);
    const prune = list.find((e) => e.action === "prune")!;
    expect(prune.detail).toMatchObject({ from: 1 });
    const report = await verifyAt(dir);
    expect(report).toMatchObject({ ok: true, prunedThrough: prune.detail.through });
    expect(report.lastSeq).toBe(before.lastSeq + 1);
    await tamper(dir, () => ({ del: ["a"] }));
    expect((await verifyAt(dir)).ok).toBe(false);
  });

  it("prunes by age", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    let dir: string;
    try {
      vi.setSystemTime(Date.now() - 10 * 86_400_000); // only Date is faked: the entries are dated 10 days back
      dir = await logged("days");
    } finally {
      vi.useRealTimers();
    }
    const before = await verifyAt(dir);
    const store = await openStore({ dir, key, audit: { flushMs: 0, keep: { days: 5 } } });
    await store.profiles.get("p1");
    const list = await store.audit.list();
    await store.close();
    expect(list[0]).toMatchObject({ action: "prune", detail: { from: 1, through: before.lastSeq } });
    expect(list.every((e) => e.at.getTime() > Date.now() - 86_400_000)).toBe(true);
    expect((await verifyAt(dir)).ok).toBe(true);
  });
});

describe("audit log: a store that keeps one", () => {
  it("records when opened without `audit` (a tool), and not with `audit: false`", async () => {
    const dir = await logged("inherit");
    const before = (await verifyAt(dir)).lastSeq;
    const tool = await openStore({ dir, key });
    await tool.export({ to: path.join(tmp.root, "tool.ndjson") });
    await tool.close();
    const off = await openStore({ dir, key, audit: false });
    await off.export({ to: path.join(tmp.root, "off.ndjson") });
    await off.close();
    const report = await verifyAt(dir);
    expect(report).toMatchObject({ ok: true, lastSeq: before + 1 });
    // The log's records are Cellar's, not the app's: stats() counts the two profiles only.
    const store = await openStore({ dir, key, redactSensitive: true });
    expect(store.stats().records).toBe(2);
    await store.close();
  });
});
