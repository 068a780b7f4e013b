/**
 * `store.audit.reveal()`: one sensitive field of one record shown to a person (Cellar Studio's reveal button)
 * recorded as a `reveal` entry (entity, key, field path, actor; never the value), listed and verified like the
 * other entries (the real `cellar audit list|verify` read one in test/audit/cli.test.ts); nothing recorded
 * (false) in a store without a log.
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/generated/index.js";
import { decodedText, key, rawAudit, SECRETS, seed, tempRoot } from "./helpers.js";

const tmp = tempRoot("reveal");

async function verifyLog(dir: string) {
  const store = await openStore({ dir, key });
  try {
    return await store.audit.verify();
  } finally {
    await store.close();
  }
}
afterAll(tmp.cleanup);

describe("audit log: reveal", () => {
  it("records a reveal as its own entry, listed and verified like the others", async () => {
    const dir = tmp.fresh("store");
    const store = await openStore({ dir, key, audit: { actor: "app", flushMs: 60_000 } });
    await seed(store);
    await store.profiles.get("p1");
    expect(await store.audit.withActor("studio:ana", () => store.audit.reveal({ entity: "profiles", key: "p1", field: "email" }))).toBe(true);
    expect(await store.audit.reveal({ entity: "settings", field: "aiProvider.apiKey" })).toBe(true);
    await expect(store.audit.reveal({ entity: "profiles", field: 3 } as never)).rejects.toMatchObject({ code: "E_USAGE" });
    const list = await store.audit.list();
    await store.close();

    const reveals = list.filter((e) => e.action === "reveal");
    expect(reveals.map((e) => [e.actor, e.entity, e.keys, e.count, e.detail])).toEqual([
      ["studio:ana", "profiles", ["p1"], 1, { field: "email" }],
      ["app", "settings", [], 1, { field: "aiProvider.apiKey" }],
    ]);
    // Appended at once, after the read counted before it.
    const read = list.findIndex((e) => e.action === "read" && e.entity === "profiles");
    expect(read).toBeGreaterThanOrEqual(0);
    expect(read).toBeLessThan(list.indexOf(reveals[0]!));
    const text = decodedText(await rawAudit(dir));
    for (const s of SECRETS) expect(text).not.toContain(s);

    expect((await verifyLog(dir)).ok).toBe(true);
  });

  it("leaves the key out with `audit.keys: false`, and records nothing in a store without a log", async () => {
    const dir = tmp.fresh("nokeys");
    const store = await openStore({ dir, key, audit: { keys: false, flushMs: 0 } });
    await store.audit.reveal({ entity: "profiles", key: "p1", field: "email" });
    expect((await store.audit.list()).find((e) => e.action === "reveal")).toMatchObject({ keys: [], detail: { field: "email" } });
    await store.close();

    const plain = await openStore({ dir: tmp.fresh("nolog"), key });
    expect(await plain.audit.reveal({ entity: "profiles", key: "p1", field: "email" })).toBe(false);
    await expect(plain.audit.list()).rejects.toMatchObject({ code: "E_USAGE" });
    await plain.close();
  });
});
