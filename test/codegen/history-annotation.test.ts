// `(cellar.v1.entity).history`: checked like retention, emitted in defineCollection/defineSingleton, and
// not a breaking change for `cellar check` (adding, changing or removing it needs no new version).
import { afterAll, describe, expect, it } from "vitest";
import { pluginError, removeDir, runPlugin } from "./helpers.js";
import { copyOf, lockedBase } from "./schema-project.js";

const file = "shop/v1/shop.proto";
const schema = (entity: string) => ({
  [file]: `syntax = "proto3";
package shop.v1;
import "cellar/v1/options.proto";
message Order {
  option (cellar.v1.entity) = ${entity};
  string id = 1;
}
message Prefs {
  option (cellar.v1.entity) = { version: 1, name: "prefs", singleton: true, history: { keep: 5 } };
  string theme = 1;
}
`,
});

describe("history annotation", () => {
  it("is emitted in the entity definitions of collections and singletons", () => {
    const run = runPlugin(schema(`{ version: 1, name: "orders", key: "id", history: { keep: 20, max_age: "30d" } }`));
    const text = run.files.get("shop/v1/shop_cellar.ts")!;
    expect(text).toContain("  history: { keep: 20, maxAgeMs: 2592000000 },\n});\n\n/**");
    expect(text).toContain("  history: { keep: 5 },\n});");
    const only = runPlugin(schema(`{ version: 1, name: "orders", key: "id", history: { max_age: "12h" } }`)).files.get("shop/v1/shop_cellar.ts")!;
    expect(only).toContain("  history: { maxAgeMs: 43200000 },");
  });

  it("an entity without it has no `history` property", () => {
    const text = runPlugin(schema(`{ version: 1, name: "orders", key: "id" }`)).files.get("shop/v1/shop_cellar.ts")!;
    expect(text.match(/history:/g)).toHaveLength(1); // the singleton's
  });

  it("a bad `max_age` and an empty rule fail at the option", () => {
    expect(pluginError(schema(`{ version: 1, name: "orders", key: "id", history: { keep: 3, max_age: "3 days" } }`))).toMatch(
      /^shop\/v1\/shop\.proto:5:\d+: history `max_age` of entity `Order` must be a positive whole number with a unit \(`ms`, `s`, `m`, `h`, `d`, `w`\), e\.g\. `30d`; found `3 days`$/,
    );
    expect(pluginError(schema(`{ version: 1, name: "orders", key: "id", history: { keep: 0 } }`))).toMatch(
      /^shop\/v1\/shop\.proto:5:\d+: history of entity `Order` sets neither `keep` \(at least 1\) nor `max_age`$/,
    );
  });
});

describe("cellar check", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach(removeDir));
  it("adding, changing or removing history on a locked entity is not a finding", () => {
    const p = copyOf(lockedBase("history-base", dirs), "history-check", dirs);
    p.edit(`{ version: 1, name: "orders", key: "id" }`, `{ version: 1, name: "orders", key: "id", history: { keep: 20, max_age: "30d" } }`);
    let r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    expect(r.findings).toEqual([]);
    p.edit(`history: { keep: 20, max_age: "30d" }`, `history: { keep: 2 }`);
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    expect(r.findings).toEqual([]);
    p.edit(`, history: { keep: 2 }`, "");
    r = p.check();
    expect(r.exitCode, r.text).toBe(0);
    expect(r.findings).toEqual([]);
  });
});
