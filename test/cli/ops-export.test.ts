/**
 * `cellar export` and `cellar import`, run as the real command: a round trip into another store; sensitive
 * fields left out by default (and kept out of the output), written only with --include-sensitive; an import
 * is all or nothing.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { cellar, noSecrets, open, seed, STORE, taskId, tempRoot } from "./helpers/ops.js";

const { root, cleanup } = tempRoot("cellar-cli-export-");
afterAll(cleanup);

it("exports without sensitive fields by default, imports into another store, and with --include-sensitive carries them", { timeout: 300_000 }, async () => {
  const src = path.join(root, "src");
  const dst = path.join(root, "dst");
  await seed(src, 25);
  await (await open(dst)).close(); // an empty store
  const plain = path.join(root, "plain.ndjson");
  const e = await cellar(["export", src, ...STORE, "--out", plain, "--json"]);
  noSecrets(e);
  expect(e.code, e.stderr).toBe(0);
  expect(JSON.parse(e.stdout)).toMatchObject({ file: plain, redacted: true, records: { tasks: 25, profiles: 3 } });
  const text = fs.readFileSync(plain, "utf8");
  expect(text).not.toContain("token-SECRET-");
  expect(text).not.toContain("secret.person@");

  const secret = path.join(root, "secret.ndjson");
  const s = await cellar(["export", src, ...STORE, "--out", secret, "--include-sensitive", "--entity", "profiles"]);
  noSecrets(s);
  expect(s.code, s.stderr).toBe(0);
  expect(s.stderr).toMatch(/clear text/);
  expect(fs.readFileSync(secret, "utf8")).toContain("token-SECRET-1");
  expect(fs.readFileSync(secret, "utf8")).not.toContain(`"tasks"`);

  const i = await cellar(["import", dst, ...STORE, "--in", plain, "--json"]);
  noSecrets(i);
  expect(i.code, i.stderr).toBe(0);
  expect(JSON.parse(i.stdout)).toMatchObject({ records: { tasks: 25, profiles: 3 } });
  let d = await open(dst);
  expect(await d.tasks.count()).toBe(25);
  expect((await d.tasks.get(taskId(4)))?.title).toBe("task 4");
  expect((await d.profiles.get("user-1"))?.authToken).toBe(""); // left out of the file
  await d.close();

  const i2 = await cellar(["import", dst, ...STORE, "--in", secret]);
  noSecrets(i2);
  expect(i2.code, i2.stderr).toBe(0);
  d = await open(dst);
  expect((await d.profiles.get("user-1"))?.authToken).toBe("token-SECRET-1");
  await d.close();

  // A bad line: nothing is written, a failure exit.
  fs.writeFileSync(path.join(root, "bad.ndjson"), text.replace(`"title":"task 3"`, `"title":7`));
  const bad = await cellar(["import", dst, ...STORE, "--in", path.join(root, "bad.ndjson"), "--mode", "replace"]);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/E_IMPORT/);
  d = await open(dst);
  expect(await d.tasks.count()).toBe(25);
  await d.close();
});
