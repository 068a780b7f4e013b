/**
 * A repository is a property of the store object: an entity property named like a member of the store would
 * replace that member. Every member must be in RESERVED, and a reserved name is refused before any file is
 * touched.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { entities } from "../../src/generated/index.js";
import { openStore, RESERVED } from "../../src/runtime/typed/store.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-reserved-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Names of the members of `o`: its own properties and those of every prototype. */
function members(o: object): string[] {
  const names = new Set<string>();
  for (let p: object | null = o; p; p = Object.getPrototypeOf(p)) for (const n of Object.getOwnPropertyNames(p)) names.add(n);
  return [...names];
}

describe("entity property names", () => {
  it("every member of a store is reserved (a new field or method must be added to RESERVED)", async () => {
    const { profiles, settings, ...plain } = entities; // sensitive entities need a key: not needed here
    void profiles;
    void settings;
    const store = await openStore(plain, { dir: path.join(root, "members"), encryption: "none" });
    try {
      const repos = new Set(Object.keys(plain));
      const unreserved = members(store).filter((n) => !repos.has(n) && !RESERVED.has(n));
      expect(unreserved).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it.each(["engine", "records", "defs", "closed", "listeners", "constructor", "toString", "then", "close"])(
    "an entity property named `%s` is refused with E_USAGE before the directory is created",
    async (name) => {
      const dir = path.join(root, `refused-${name}`);
      await expect(openStore({ [name]: entities.tasks }, { dir, encryption: "none" })).rejects.toMatchObject({ code: "E_USAGE" });
      expect(fs.existsSync(dir)).toBe(false);
    },
  );
});
