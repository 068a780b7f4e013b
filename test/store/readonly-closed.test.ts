/**
 * Read-only (`redactSensitive`) and closed stores through the public API, on real files: a read-only open
 * refuses every mutating call and changes no byte of any file (leftovers, a damaged segment block and a
 * key awaiting retirement included); after `close()` every public method of the store and of each
 * repository, enumerated from the objects themselves, fails with E_CLOSED.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { openStore as openEntities } from "../../src/runtime/typed/store.js";
import { isCellarError } from "../../src/runtime/errors.js";
import { keys } from "../../src/runtime/crypto/keys.js";
import { entities } from "../../src/generated/index.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-ro-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(5);

/** sha256 of every file under `dir`, recursively, by relative path (`LOCK` aside: every open takes it). */
function treeSnapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        out.set(`${path.relative(dir, p)}/`, "dir");
        walk(p);
      } else if (path.relative(dir, p) !== "LOCK") out.set(path.relative(dir, p), createHash("sha256").update(fs.readFileSync(p)).digest("hex"));
    }
  };
  walk(dir);
  return out;
}

/** The error code of a call that throws or rejects, or "ok". */
async function codeOf(f: () => unknown): Promise<string> {
  try {
    const r = f();
    if (r && typeof (r as { next?: unknown }).next === "function" && typeof (r as { then?: unknown }).then !== "function") {
      await (r as AsyncIterator<unknown>).next();
    } else await r;
  } catch (e) {
    if (isCellarError(e)) return e.code;
    return `not a CellarError: ${String(e)}`;
  }
  return "ok";
}

async function seed(dir: string): Promise<void> {
  const store = await openStore({ dir, key });
  for (let i = 0; i < 40; i++) await store.tasks.put({ id: `t${i}`, title: `task ${i}` });
  await store.profiles.put({ id: "u1", displayName: "Ada", authToken: "tok-SECRET" });
  await store.settings.update({ language: "fr" });
  await store.compact(); // a segment
  await store.rotateKey(); // key 1 waits for the next compaction to be destroyed
  await store.tasks.put({ id: "t-new", title: "journal record" });
  await store.close();
}

describe("a redactSensitive store is read-only", () => {
  it("refuses every mutating call and changes no file at open, on reads, on refused calls and at close", async () => {
    const dir = path.join(tmp, "ro");
    await seed(dir);
    // What a writable open would repair or remove: leftovers, an empty last journal, a damaged segment block.
    fs.writeFileSync(path.join(dir, "MANIFEST.tmp"), "leftover of an interrupted manifest write");
    fs.writeFileSync(path.join(dir, "segment-000090.seg"), "an unreferenced segment");
    const journals = fs.readdirSync(dir).filter((n) => n.startsWith("journal-")).sort();
    const next = Number(/\d+/.exec(journals.at(-1)!)![0]) + 1;
    fs.writeFileSync(path.join(dir, `journal-${String(next).padStart(6, "0")}.log`), new Uint8Array(4096));
    const seg = fs.readdirSync(dir).find((n) => /^segment-\d+\.seg$/.test(n) && n !== "segment-000090.seg")!;
    const segBytes = fs.readFileSync(path.join(dir, seg));
    segBytes[200] = segBytes[200]! ^ 0xff; // inside the first block
    fs.writeFileSync(path.join(dir, seg), segBytes);
    const before = treeSnapshot(dir);

    const store = await openStore({ dir, key, redactSensitive: true });
    await (store as unknown as { engine: { verified: Promise<void> } }).engine.verified; // the background block check
    expect(store.keyInfo().keyIds).toEqual([1, 2]);
    // Reads work (the damaged block's records aside).
    expect((await store.tasks.get("t-new"))?.title).toBe("journal record");
    await codeOf(() => store.settings.get()); // its block may be the damaged one
    await codeOf(() => store.profiles.get("u1"));
    for (let i = 0; i < 40; i++) await codeOf(() => store.tasks.get(`t${i}`));
    for await (const r of store.inspect()) void r;
    const refused: Record<string, string> = {
      put: await codeOf(() => store.tasks.put({ id: "x", title: "x" })),
      delete: await codeOf(() => store.tasks.delete("t-new")),
      update: await codeOf(() => store.settings.update({ language: "de" })),
      reset: await codeOf(() => store.settings.reset()),
      revert: await codeOf(() => store.settings.revert(new Date())),
      batch: await codeOf(() => store.batch((tx) => tx.tasks.delete("t-new"))),
      emptyBatch: await codeOf(() => store.batch(() => {})),
      compact: await codeOf(() => store.compact()),
      rotateKey: await codeOf(() => store.rotateKey()),
      reencrypt: await codeOf(() => store.reencrypt()),
      changeMasterKey: await codeOf(() => store.changeMasterKey(keys.raw(new Uint8Array(32).fill(6)))),
      cleanup: await codeOf(() => store.cleanup()),
      backup: await codeOf(() => store.backup({ to: path.join(tmp, "readonly.cellarbackup") })),
      archive: await codeOf(() => store.tasks.archive({ olderThan: "1d", to: path.join(tmp, "readonly-archive.cellarbackup") })),
      import: await codeOf(() => store.import(path.join(tmp, "readonly.ndjson"))),
      singletonImport: await codeOf(() => store.settings.import("{}")),
      recoverFrom: await codeOf(() => store.recoverFrom(path.join(tmp, "readonly.cellarbackup"))),
    };
    expect(refused).toEqual(Object.fromEntries(Object.keys(refused).map((k) => [k, "E_USAGE"])));
    expect(store.keyInfo().keyIds).toEqual([1, 2]); // no key destroyed
    await store.close();
    expect(treeSnapshot(dir)).toEqual(before);

    // A writable open then does what the read-only one left (the store was not made unusable).
    const rw = await openStore({ dir, key });
    expect((await rw.tasks.get("t-new"))?.title).toBe("journal record");
    await rw.close();
    expect(fs.existsSync(path.join(dir, "MANIFEST.tmp"))).toBe(false);
  });

  it("a read-only open never creates a store", async () => {
    const dir = path.join(tmp, "missing");
    expect(await codeOf(() => openStore({ dir, key, redactSensitive: true }))).toBe("E_USAGE");
    expect(fs.existsSync(dir)).toBe(false);
  });

  it("engine options the store sets itself are refused, not silently replaced", async () => {
    const dir = path.join(tmp, "opts");
    for (const extra of [{ recordCacheBytes: 1024 }, { keyScope: "records" }, { readOnly: false }]) {
      expect(await codeOf(() => openEntities(entities, { dir, key, ...extra } as never))).toBe("E_USAGE");
    }
    expect(fs.existsSync(dir)).toBe(false);
  });
});

/** Every function-valued property a user can reach on `o` (own and inherited, not Object's). */
function methodsOf(o: object): string[] {
  const names = new Set<string>();
  for (let p = o; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object) {
    for (const n of Object.getOwnPropertyNames(p)) {
      if (n === "constructor") continue;
      const d = Object.getOwnPropertyDescriptor(p, n)!;
      if (typeof d.value === "function") names.add(n);
    }
  }
  return [...names].sort();
}

/** Methods of the store objects that are not part of the public API (used by the repositories). */
const INTERNAL = new Set([
  "emit",
  "listenerFailed",
  "checkOpen",
  "checkWritable",
  "checkWriter",
  "sortedKeys",
  "read",
  "scan",
  "decode",
  "encodePut",
  "zero",
  "upgradeHost",
  "singletons",
  "pages",
  "idle",
  "defaults",
  "current",
  "checkPatch",
  "merge",
  "resolve",
  "track",
  "busy",
  "trackMany",
  "settledMany",
  "settled",
  "fieldsOf",
  "setMigrations",
  "importFrom",
]);

describe("a closed store", () => {
  it("every public method of the store and of every repository throws or rejects E_CLOSED", async () => {
    const dir = path.join(tmp, "closed");
    const store = await openStore({ dir, key });
    await store.tasks.put({ id: "t1", title: "a" });
    await store.close();
    await store.close(); // a second close does nothing

    const calls: Record<string, () => unknown> = {
      batch: () => store.batch((tx) => tx.tasks.put({ id: "t2", title: "b" })),
      compact: () => store.compact(),
      rotateKey: () => store.rotateKey(),
      reencrypt: () => store.reencrypt(),
      changeMasterKey: () => store.changeMasterKey(keys.raw(new Uint8Array(32).fill(6))),
      keyInfo: () => store.keyInfo(),
      inspect: () => store.inspect(),
      stats: () => store.stats(),
      cleanup: () => store.cleanup(),
      on: () => store.on("change", () => {}),
      backup: () => store.backup({ to: path.join(tmp, "closed.cellarbackup") }),
      export: () => store.export({ to: path.join(tmp, "closed.ndjson") }),
      import: () => store.import(path.join(tmp, "closed.ndjson")),
      recoverFrom: () => store.recoverFrom(path.join(tmp, "closed.cellarbackup")),
    };
    const handle = methodsOf(store).filter((n) => !INTERNAL.has(n) && n !== "close");
    expect(handle).toEqual(Object.keys(calls).sort()); // a new public method needs a line above
    const results: Record<string, string> = {};
    for (const [n, f] of Object.entries(calls)) results[n] = await codeOf(f);

    const collectionCalls = (r: Record<string, (...a: unknown[]) => unknown>, k: unknown, value: unknown): Record<string, () => unknown> => ({
      get: () => r.get!(k),
      getMany: () => r.getMany!([k]),
      put: () => r.put!(value),
      putMany: () => r.putMany!([value]),
      update: () => r.update!(k, {}),
      toJson: () => r.toJson!({}),
      fromJson: () => r.fromJson!({}),
      delete: () => r.delete!(k),
      has: () => r.has!(k),
      list: () => r.list!(),
      iterate: () => r.iterate!(),
      query: () => r.query!({}),
      queryPage: () => r.queryPage!({}, { limit: 1 }),
      explain: () => r.explain!({}),
      aggregate: () => r.aggregate!({ count: true }),
      count: () => r.count!(),
      keys: () => r.keys!(),
      history: () => r.history!(k),
      revert: () => r.revert!(k, new Date()),
      archive: () => r.archive!({ olderThan: "1d", field: "createdAt" }),
      watch: () => r.watch!(k),
    });
    const singletonCalls = (r: Record<string, (...a: unknown[]) => unknown>): Record<string, () => unknown> => ({
      get: () => r.get!(),
      set: () => r.set!("x", 1),
      toJson: () => r.toJson!({}),
      fromJson: () => r.fromJson!({}),
      update: () => r.update!({}),
      reset: () => r.reset!(),
      history: () => r.history!(),
      revert: () => r.revert!(new Date()),
      export: () => r.export!(),
      import: () => r.import!("{}"),
      watch: () => r.watch!(),
    });
    // Every repository, with a value that reaches the encoder (profiles: sensitive fields, sealed).
    const values: Record<string, [unknown, unknown]> = {
      tasks: ["t1", { id: "t1", title: "a" }],
      profiles: ["u1", { id: "u1", displayName: "Ada", authToken: "tok" }],
    };
    for (const prop of Object.keys(entities)) {
      const repo = (store as unknown as Record<string, Record<string, (...a: unknown[]) => unknown>>)[prop]!;
      const def = entities[prop as keyof typeof entities];
      const [k, v] = values[prop] ?? [def.kind === "collection" && def.keyKind !== "string" ? 1 : "k", {}];
      const repoCalls = def.kind === "collection" ? collectionCalls(repo, k, v) : singletonCalls(repo);
      expect(methodsOf(repo).filter((n) => !INTERNAL.has(n)), prop).toEqual(Object.keys(repoCalls).sort());
      for (const [n, f] of Object.entries(repoCalls)) results[`${prop}.${n}`] = await codeOf(f);
    }
    expect(Object.keys(results).length).toBeGreaterThan(40);
    expect(results).toEqual(Object.fromEntries(Object.keys(results).map((k) => [k, "E_CLOSED"])));
  });

  it("an update queued before close() completes; one issued after is E_CLOSED", async () => {
    const dir = path.join(tmp, "closing");
    let store = await openStore({ dir, key });
    const queued = [store.settings.update({ language: "fr" }), store.settings.update((c) => ({ keyBindings: { lang: c.language } }))];
    const closing = store.close();
    expect(await codeOf(() => store.settings.update({ language: "de" }))).toBe("E_CLOSED");
    await Promise.all(queued);
    await closing;
    store = await openStore({ dir, key });
    expect(await store.settings.get()).toMatchObject({ language: "fr", keyBindings: { lang: "fr" } });
    await store.close();
  });
});
