/**
 * Files put back by a backup or sync tool, and a damaged MANIFEST (issue 19), on real stores in temp dirs:
 * `MANIFEST` is kept twice (`MANIFEST.copy`); open never deletes a file the manifest does not name unless it
 * is provably this store's own leftover, and refuses (changing nothing) when the MANIFEST looks older than
 * the data files. docs/FORMAT.md, "Manifest" and "Files the manifest does not name".
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import sodium from "sodium-native";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type EngineOptions, type WriteOp } from "../../src/runtime/storage/engine.js";
import { isCellarError } from "../../src/runtime/errors.js";

/** XOR one byte of `file` at `offset`. */
function flipByte(file: string, offset: number): void {
  const b = fs.readFileSync(file);
  b[offset] = b[offset]! ^ 0xff;
  fs.writeFileSync(file, b);
}

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-manifest-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const enc = new TextEncoder();
const put = (key: string): WriteOp => ({ op: "put", entity: "rec", key, version: 1, value: enc.encode(`value of ${key}`), terms: [] });
const id = (i: number) => `r-${String(i).padStart(3, "0")}`;
const masterKey = () => {
  const k = Buffer.alloc(32);
  sodium.randombytes_buf(k);
  return k;
};

async function openErr(opts: EngineOptions): Promise<Record<string, unknown>> {
  try {
    const e = await Engine.open(opts);
    await e.close();
  } catch (err) {
    if (!isCellarError(err)) throw err;
    return err as unknown as Record<string, unknown>;
  }
  throw new Error("open did not fail");
}

/** Every file of the store directory (not LOCK, not quarantine/) with a hash of its bytes. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of fs.readdirSync(dir).sort()) {
    const f = path.join(dir, n);
    if (n === "LOCK" || !fs.statSync(f).isFile()) continue;
    out.set(n, createHash("sha256").update(fs.readFileSync(f)).digest("hex"));
  }
  return out;
}

/** Every record of the store, key → value text; throws if any read fails. */
async function records(opts: EngineOptions): Promise<{ values: Map<string, string>; engine: Engine }> {
  const engine = await Engine.open(opts);
  const values = new Map<string, string>();
  for (const k of engine.keys("rec")) values.set(k, Buffer.from(engine.get("rec", k)!.value).toString());
  return { values, engine };
}

const expected = (n: number) => new Map(Array.from({ length: n }, (_, i) => [id(i), `value of ${id(i)}`]));

const modes: { name: string; opts: () => Partial<EngineOptions> }[] = [
  { name: "encrypted", opts: () => ({ key: masterKey() }) },
  { name: "plaintext", opts: () => ({ encryption: "none" }) },
];

/**
 * 5 records, the manifest files saved (generation 1), then 30 more across two compactions and the journal: a
 * store whose live segment and journal were all written after the saved manifest. 35 acknowledged records.
 */
async function storeWithHistory(extra: Partial<EngineOptions>) {
  const dir = tmp();
  const opts: EngineOptions = { dir, compaction: { auto: false }, ...extra };
  let e = await Engine.open(opts);
  for (let i = 0; i < 5; i++) await e.write([put(id(i))]);
  await e.close();
  const old = { main: fs.readFileSync(path.join(dir, "MANIFEST")), copy: fs.readFileSync(path.join(dir, "MANIFEST.copy")) };
  e = await Engine.open(opts);
  for (let i = 5; i < 20; i++) await e.write([put(id(i))]);
  await e.compact();
  for (let i = 20; i < 30; i++) await e.write([put(id(i))]);
  await e.compact();
  for (let i = 30; i < 35; i++) await e.write([put(id(i))]);
  await e.close();
  const good = fs.readFileSync(path.join(dir, "MANIFEST"));
  expect(fs.readdirSync(dir).filter((n) => n.endsWith(".seg"))).toHaveLength(1);
  return { dir, opts, old, good };
}

describe("a stale MANIFEST put back beside newer files", () => {
  for (const mode of modes) {
    it(`both manifest files from before two compactions (${mode.name}): open refuses and changes nothing; with the good MANIFEST back, all 35 records`, async () => {
      const s = await storeWithHistory(mode.opts());
      fs.writeFileSync(path.join(s.dir, "MANIFEST"), s.old.main);
      fs.writeFileSync(path.join(s.dir, "MANIFEST.copy"), s.old.copy);
      const before = snapshot(s.dir);
      for (const onCorruption of ["quarantine", "refuse"] as const) {
        const err = await openErr({ ...s.opts, onCorruption });
        expect(err).toMatchObject({ code: "E_CORRUPT", file: "MANIFEST" });
        expect(String(err.reason)).toMatch(/looks older than the data files/);
        expect(String(err.reason)).toMatch(/Nothing was changed: put back the newest `MANIFEST`/);
        expect(String(err.message)).not.toMatch(/value of/);
        expect(snapshot(s.dir)).toEqual(before); // the live segment and journal are still there, byte for byte
        expect(fs.existsSync(path.join(s.dir, "quarantine"))).toBe(false);
      }
      // The good MANIFEST put back (its copy still the stale one): every acknowledged record, and the stale
      // copy is reported (kept in quarantine/) and rewritten.
      fs.writeFileSync(path.join(s.dir, "MANIFEST"), s.good);
      const { values, engine } = await records(s.opts);
      expect(values).toEqual(expected(35));
      expect(engine.recovery.damaged).toMatchObject([
        { file: "MANIFEST.copy", offset: 0, reason: expect.stringMatching(/^generation 1, older than `MANIFEST` \(generation 3\)/) },
      ]);
      expect(engine.recovery.damaged[0]!.quarantinedAs).toMatch(/^quarantine[/\\]MANIFEST\.copy\.\d+$/);
      await engine.close();
      expect(fs.readFileSync(path.join(s.dir, "MANIFEST.copy"))).toEqual(s.good);
      const again = await records(s.opts);
      expect(again.values).toEqual(expected(35));
      expect(again.engine.recovery.damaged).toEqual([]);
      await again.engine.close();
    });
  }

  it("only MANIFEST put back from before two compactions: open goes by MANIFEST.copy, reports the stale one, deletes nothing live", async () => {
    const s = await storeWithHistory({ encryption: "none" });
    fs.writeFileSync(path.join(s.dir, "MANIFEST"), s.old.main);
    const liveFiles = [...snapshot(s.dir).keys()].filter((n) => /\.(seg|log)$/.test(n));
    const { values, engine } = await records(s.opts);
    expect(values).toEqual(expected(35));
    expect(engine.recovery.damaged).toMatchObject([
      { file: "MANIFEST", reason: expect.stringMatching(/^generation 1, older than `MANIFEST.copy` \(generation 3\).*opened from `MANIFEST.copy`/) },
    ]);
    expect(engine.recovery.removedFiles).toEqual([]);
    await engine.close();
    for (const n of liveFiles) expect(fs.existsSync(path.join(s.dir, n)), n).toBe(true);
    expect(fs.readFileSync(path.join(s.dir, "MANIFEST"))).toEqual(s.good);
  });

  it("under `onCorruption: \"refuse\"` a stale MANIFEST beside a good copy is E_CORRUPT naming what to do, and nothing changes", async () => {
    const s = await storeWithHistory({ encryption: "none" });
    fs.writeFileSync(path.join(s.dir, "MANIFEST"), s.old.main);
    const before = snapshot(s.dir);
    const err = await openErr({ ...s.opts, onCorruption: "refuse" });
    expect(err).toMatchObject({ code: "E_CORRUPT", file: "MANIFEST", offset: 0 });
    expect(String(err.reason)).toMatch(/`MANIFEST.copy` \(generation 3\) is intact: open with `onCorruption: "quarantine"`/);
    expect(snapshot(s.dir)).toEqual(before);
  });

  it("a segment of another store put in the directory under an unused number is moved to quarantine/ and reported, never deleted", async () => {
    const s = await storeWithHistory({ encryption: "none" });
    const other = await storeWithHistory({ encryption: "none" });
    const seg = fs.readdirSync(other.dir).find((n) => n.endsWith(".seg"))!;
    const foreign = "segment-000099.seg";
    fs.copyFileSync(path.join(other.dir, seg), path.join(s.dir, foreign));
    const err = await openErr({ ...s.opts, onCorruption: "refuse" });
    expect(err).toMatchObject({ code: "E_CORRUPT", file: foreign, reason: expect.stringMatching(/not a segment of this store/) });
    expect(fs.existsSync(path.join(s.dir, foreign))).toBe(true);
    const { values, engine } = await records(s.opts);
    expect(values).toEqual(expected(35));
    const d = engine.recovery.damaged.find((x) => x.file === foreign)!;
    expect(d).toMatchObject({ offset: 0, bytes: fs.statSync(path.join(other.dir, seg)).size, reason: expect.stringMatching(/not a segment of this store/) });
    await engine.close();
    expect(fs.existsSync(path.join(s.dir, foreign))).toBe(false);
    expect(fs.readFileSync(path.join(s.dir, d.quarantinedAs!))).toEqual(fs.readFileSync(path.join(other.dir, seg)));
  });
});

describe("a damaged MANIFEST is recovered from MANIFEST.copy", () => {
  const damages: { name: string; edit: (file: string) => void }[] = [
    { name: "a flipped byte", edit: (f) => flipByte(f, 40) },
    { name: "a flipped header byte", edit: (f) => flipByte(f, 3) },
    { name: "truncated", edit: (f) => fs.truncateSync(f, fs.statSync(f).size - 7) },
    { name: "zeroed", edit: (f) => fs.writeFileSync(f, Buffer.alloc(fs.statSync(f).size)) },
    { name: "emptied", edit: (f) => fs.writeFileSync(f, Buffer.alloc(0)) },
    { name: "deleted", edit: (f) => fs.unlinkSync(f) },
  ];
  for (const mode of modes) {
    for (const file of ["MANIFEST", "MANIFEST.copy"]) {
      it(`${file} ${damages.map((d) => d.name).join(", ")} (${mode.name}): opens with all 35 records and reports it, or refuses under "refuse"`, async () => {
        const s = await storeWithHistory(mode.opts());
        const good = snapshot(s.dir);
        for (const d of damages) {
          d.edit(path.join(s.dir, file));
          if (file === "MANIFEST" || d.name !== "deleted") {
            const err = await openErr({ ...s.opts, onCorruption: "refuse" });
            expect(err, d.name).toMatchObject({ code: "E_CORRUPT", file });
            expect(String(err.reason), d.name).toMatch(/is intact: open with `onCorruption: "quarantine"`/);
          }
          const { values, engine } = await records(s.opts);
          expect(values, d.name).toEqual(expected(35));
          if (file === "MANIFEST" || d.name !== "deleted") {
            expect(engine.recovery.damaged, d.name).toMatchObject([{ file, reason: expect.stringMatching(/opened from `MANIFEST(\.copy)?` \(generation 3\)/) }]);
          } else {
            expect(engine.recovery.damaged, d.name).toEqual([]); // a copy that was never written (older stores)
          }
          await engine.close();
          if (file === "MANIFEST.copy" && d.name === "deleted") {
            // left to the next manifest write: an open that fails later (a migration) must change no file
            expect(fs.existsSync(path.join(s.dir, file))).toBe(false);
            fs.writeFileSync(path.join(s.dir, file), s.good);
          }
          // restored: both copies are the good manifest again
          expect(fs.readFileSync(path.join(s.dir, file)), d.name).toEqual(s.good);
          expect(snapshot(s.dir).get("MANIFEST.copy")).toBe(good.get("MANIFEST.copy"));
        }
      });
    }
  }

  it("both copies damaged: E_CORRUPT naming both and what to do; nothing changes", async () => {
    const s = await storeWithHistory({ encryption: "none" });
    flipByte(path.join(s.dir, "MANIFEST"), 40);
    fs.truncateSync(path.join(s.dir, "MANIFEST.copy"), 10);
    const before = snapshot(s.dir);
    const err = await openErr(s.opts);
    expect(err).toMatchObject({ code: "E_CORRUPT", file: "MANIFEST", offset: 32 });
    expect(String(err.reason)).toBe(
      "checksum mismatch; `MANIFEST.copy` is damaged too (bad magic (file shorter than its header)): the live files cannot be known without guessing; put back both from a backup of this store",
    );
    expect(snapshot(s.dir)).toEqual(before);
  });

  it("a MANIFEST whose write stopped before its copy's rename, then damaged: the copy (one generation older) still accounts for every file", async () => {
    // An error at manifest.beforeCopyRename: MANIFEST is the new generation, MANIFEST.copy the previous one,
    // the compaction's old files are not deleted yet (the state a crash there leaves).
    const dir = tmp();
    let fail = false;
    const opts: EngineOptions = { dir, encryption: "none", compaction: { auto: false } };
    const e = await Engine.open({
      ...opts,
      failpoint: (n) => {
        if (fail && n === "manifest.beforeCopyRename") throw new Error("injected");
      },
    });
    for (let i = 0; i < 20; i++) await e.write([put(id(i))]);
    await e.compact();
    for (let i = 20; i < 35; i++) await e.write([put(id(i))]);
    fail = true;
    await expect(e.compact()).rejects.toThrow("injected");
    await e.close();
    expect(fs.readdirSync(dir).filter((n) => n.endsWith(".seg"))).toHaveLength(2);
    flipByte(path.join(dir, "MANIFEST"), 40);
    const { values, engine } = await records(opts);
    expect(values).toEqual(expected(35));
    expect(engine.recovery.damaged).toMatchObject([{ file: "MANIFEST", reason: expect.stringMatching(/^checksum mismatch; opened from `MANIFEST.copy`/) }]);
    // the newer segment (not named by the copy) was the output of a compaction started from it: deleted
    expect(engine.recovery.removedFiles.filter((n) => n.endsWith(".seg"))).toHaveLength(1);
    await engine.close();
    const again = await records(opts);
    expect(again.values).toEqual(expected(35));
    await again.engine.close();
  });

  it("MANIFEST one generation ahead of its copy (the crash window between the renames) is not damage: the copy is rewritten", async () => {
    const dir = tmp();
    let fail = false;
    const opts: EngineOptions = { dir, encryption: "none", compaction: { auto: false }, onCorruption: "refuse" };
    const e = await Engine.open({
      ...opts,
      failpoint: (n) => {
        if (fail && n === "manifest.beforeCopyRename") throw new Error("injected");
      },
    });
    for (let i = 0; i < 35; i++) await e.write([put(id(i))]);
    fail = true;
    await expect(e.compact()).rejects.toThrow("injected");
    await e.close();
    expect(fs.readFileSync(path.join(dir, "MANIFEST"))).not.toEqual(fs.readFileSync(path.join(dir, "MANIFEST.copy")));
    const { values, engine } = await records(opts);
    expect(values).toEqual(expected(35));
    expect(engine.recovery.damaged).toEqual([]);
    await engine.close();
    expect(fs.readFileSync(path.join(dir, "MANIFEST"))).toEqual(fs.readFileSync(path.join(dir, "MANIFEST.copy")));
  });
});
