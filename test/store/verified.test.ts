/**
 * The store's last verification: `verifyStore` writes its result (when, counts, by whom) to the store's
 * `VERIFIED`, `lastVerification(dir)` reads it back (null before any, `E_CORRUPT` for a file it did not write),
 * a damaged store is recorded as not ok with its counts, `record: false` writes nothing, and a directory that
 * cannot take the file leaves the verification standing with `recordError`. Real stores in temp dirs.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { entities, openStore } from "../../src/generated/index.js";
import { keys, lastVerification, verifyStore } from "../../src/runtime/index.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-verified-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const KEY = new Uint8Array(32).fill(5);
let n = 0;

async function makeStore(): Promise<string> {
  const dir = path.join(root, `s${n++}`);
  const store = await openStore({ dir, key: keys.raw(KEY), cleanup: false });
  await store.batch((tx) => {
    for (let i = 0; i < 20; i++) tx.profiles.put({ id: `p${i}`, displayName: `P ${i}`, email: `p${i}@example.com` });
  });
  await store.compact();
  await store.close();
  return dir;
}

describe("the last verification", () => {
  it("is null before any, then what verifyStore found, when and by whom", async () => {
    const dir = await makeStore();
    expect(lastVerification(dir)).toBeNull();
    const before = Date.now();
    const report = await verifyStore(entities, { dir, key: keys.raw(KEY), by: "ops:ana" });
    const v = lastVerification(dir)!;
    expect(v).toMatchObject({ ok: true, problems: 0, damage: 0, decode: 0, decoded: 20, older: 0, blocksChecked: true, opened: "read-only", by: "ops:ana", pid: process.pid, host: os.hostname() });
    expect(v.read).toBe(Object.values(report.read).reduce((a, b) => a + b, 0)); // the app's records and Cellar's own (index state)
    expect(v.read).toBeGreaterThanOrEqual(20);
    expect(v.at.getTime()).toBeGreaterThanOrEqual(before);
    expect(report.recorded).toEqual(v);
    expect(fs.readFileSync(path.join(dir, "VERIFIED"), "utf8")).not.toContain("@example.com");
    expect(fs.statSync(path.join(dir, "VERIFIED")).mode & 0o777).toBe(0o600);
    // The store opens as before with the file beside it.
    const store = await openStore({ dir, key: keys.raw(KEY) });
    expect(await store.profiles.count()).toBe(20);
    await store.close();
  });

  it("records a damaged store as not ok with its counts; record: false leaves the last one", async () => {
    const dir = await makeStore();
    const seg = fs.readdirSync(dir).find((f) => f.endsWith(".seg"))!;
    const bytes = fs.readFileSync(path.join(dir, seg));
    bytes[200]! ^= 0xff;
    fs.writeFileSync(path.join(dir, seg), bytes);
    const report = await verifyStore(entities, { dir, key: keys.raw(KEY) });
    expect(report.findings.length).toBeGreaterThan(0);
    const v = lastVerification(dir)!;
    expect(v).toMatchObject({ ok: false, problems: report.findings.length, damage: report.findings.length, decode: 0, by: "" });
    const again = await verifyStore(entities, { dir, key: keys.raw(KEY), record: false, by: "someone else" });
    expect(again.recorded).toBeNull();
    expect(lastVerification(dir)).toEqual(v);
  });

  it("refuses a VERIFIED it did not write (E_CORRUPT) and reports a directory that cannot take it", async () => {
    const dir = await makeStore();
    fs.writeFileSync(path.join(dir, "VERIFIED"), '{"v":1,"ok":"yes"}');
    expect(() => lastVerification(dir)).toThrow(expect.objectContaining({ code: "E_CORRUPT" }));
    fs.writeFileSync(path.join(dir, "VERIFIED"), "not json");
    expect(() => lastVerification(dir)).toThrow(expect.objectContaining({ code: "E_CORRUPT" }));
    fs.rmSync(path.join(dir, "VERIFIED"));
    // A directory in the way (a rename over it fails, for root too): the verification stands, unrecorded.
    fs.mkdirSync(path.join(dir, "VERIFIED"));
    const report = await verifyStore(entities, { dir, key: keys.raw(KEY) });
    expect(report.findings).toEqual([]);
    expect(report.recorded).toBeNull();
    expect(report.recordError).toMatch(/VERIFIED/);
    fs.rmdirSync(path.join(dir, "VERIFIED"));
    expect(lastVerification(dir)).toBeNull();
  });
});
