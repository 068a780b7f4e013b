/**
 * FORMAT.md, "Record history", checked with the independent decoder of test/format/decoder.ts (written from
 * FORMAT.md alone): the `~history:E` records a store with history writes have the documented keys, versions
 * and values, and their sensitive parts open under the history entity's key with the entry key in the AD.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, expect, it } from "vitest";
import { entities } from "../../src/generated/index.js";
import { UserProfileSchema } from "../../src/generated/examples/profile/v1/profile_pb.js";
import { defineCollection, openStore } from "../../src/runtime/index.js";
import { listLiveRecords, openRecordValue, readManifest } from "./decoder.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-history-format-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const key = new Uint8Array(32).fill(2);

it("history entries decode as FORMAT.md says: key ‖ 0x00 ‖ 16 hex digits, the replaced value or nothing, sealed per entry key", async () => {
  const dir = path.join(tmp, "store");
  const profiles = defineCollection({ ...entities.profiles, history: { keep: 5 } });
  const store = await openStore({ profiles }, { dir, key });
  const t0 = Date.now();
  await store.profiles.put({ id: "p1", displayName: "Ann", email: "ann@example.com", authToken: "tok-1" });
  await store.profiles.put({ id: "p1", displayName: "Ann B", email: "annb@example.com" });
  await store.compact(); // entries in the segment
  await store.profiles.delete("p1"); // and in the journal
  await store.close();

  const m = readManifest(dir, key);
  const entries = listLiveRecords(dir, key).filter((r) => r.entity === "~history:profiles");
  expect(entries).toHaveLength(3);
  const byKey = entries.sort((a, b) => (a.key < b.key ? -1 : 1));
  const shown: unknown[] = [];
  for (const r of byKey) {
    const match = /^p1\u0000([0-9a-f]{12})([0-9a-f]{4})$/.exec(r.key);
    expect(match, r.key).not.toBeNull();
    const ms = parseInt(match![1]!, 16);
    expect(ms).toBeGreaterThanOrEqual(t0);
    expect(ms).toBeLessThanOrEqual(Date.now());
    expect(r.version).toBe(1);
    if (r.value.length === 0) {
      shown.push(null);
      continue;
    }
    const v = openRecordValue(m, r); // AD: store id, version, the entry key; key: sensitive(keyId, "~history:profiles")
    const msg = fromBinary(UserProfileSchema, v.protobuf);
    shown.push([v.kind, msg.displayName, msg.email, msg.authToken]);
  }
  // Oldest first: the creation (nothing before it), then each replaced version.
  expect(shown).toEqual([null, [1, "Ann", "ann@example.com", "tok-1"], [1, "Ann B", "annb@example.com", ""]]);
  // The record itself is gone (deleted); its history stays.
  expect(listLiveRecords(dir, key).filter((r) => r.entity === "profiles")).toEqual([]);
});
