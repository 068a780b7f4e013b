/**
 * Who may talk to `cellar studio`, with raw HTTP requests against the real child process (no browser): the
 * one-time link, a session cookie on every request, the server's own address in Host (DNS rebinding) and in
 * Origin (cross-site), CSRF on POSTs; and read-only mode when another process holds the store.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { entities } from "../../src/generated/index.js";
import { keys, openStore } from "../../src/runtime/index.js";
import { buildStore, KEY, writeKeyFile } from "./fixture.js";
import { rawRequest, startStudioCli, type StudioChild } from "./cli-child.js";

let tmp: string;
let dir: string;
let keyFile: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-studio-guard-"));
  dir = path.join(tmp, "store");
  keyFile = writeKeyFile(tmp);
  await buildStore(dir, 20);
}, 60_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("cellar studio refuses what is not its own page", () => {
  let cli: StudioChild;
  let cookie: string;
  let host: string;
  let csrf: string;

  beforeAll(async () => {
    cli = await startStudioCli(dir, keyFile);
    host = `127.0.0.1:${cli.port}`;
  }, 60_000);
  afterAll(() => cli?.stop());

  it("listens on 127.0.0.1 and a port of its own", () => {
    expect(cli.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/auth\?token=[\w-]{40,}$/);
  });

  it("refuses a request without the session (401), before and after the link is used", async () => {
    expect((await rawRequest(cli.port, { path: "/e/tasks", headers: { host } })).status).toBe(401);
    const auth = await rawRequest(cli.port, { path: new URL(cli.url).pathname + new URL(cli.url).search, headers: { host } });
    expect(auth.status).toBe(303);
    const set = String(auth.headers["set-cookie"]);
    expect(set).toMatch(/^cellar_studio=[\w-]+; HttpOnly; SameSite=Strict; Path=\/$/);
    cookie = set.split(";")[0]!;
    const ok = await rawRequest(cli.port, { path: "/e/tasks/r/t0000001/edit", headers: { host, cookie } });
    expect(ok.status).toBe(200);
    expect(ok.headers["content-security-policy"]).toContain("default-src 'none'");
    csrf = /name="csrf" value="([^"]+)"/.exec(ok.body)![1]!;
    expect((await rawRequest(cli.port, { path: "/e/tasks", headers: { host, cookie: "cellar_studio=forged" } })).status).toBe(401);
  });

  it("escapes stored text and sends a CSP without script", async () => {
    const r = await rawRequest(cli.port, { path: "/e/profiles", headers: { host, cookie } });
    expect(r.body).toContain("&#60;script&#62;alert(1)&#60;/script&#62;");
    expect(r.body).not.toContain("<script");
    expect(r.headers["content-security-policy"]).not.toContain("script-src");
    expect(r.headers["x-frame-options"]).toBe("DENY");
  });

  it("the link works once", async () => {
    const again = await rawRequest(cli.port, { path: new URL(cli.url).pathname + new URL(cli.url).search, headers: { host } });
    expect(again.status).toBe(403);
    expect(again.headers["set-cookie"]).toBeUndefined();
  });

  it("refuses a foreign Host (DNS rebinding), even with the session", async () => {
    for (const h of [`evil.example:${cli.port}`, "127.0.0.1", `127.0.0.1:${cli.port + 1}`, ""]) {
      const r = await rawRequest(cli.port, { path: "/e/tasks", headers: { host: h, cookie } });
      expect([h, r.status]).toEqual([h, 403]);
    }
    expect((await rawRequest(cli.port, { path: "/e/tasks", headers: { host: `localhost:${cli.port}`, cookie } })).status).toBe(200);
  });

  it("refuses a foreign Origin (cross-site), even with the session", async () => {
    for (const origin of ["http://evil.example", "null", `http://127.0.0.1:${cli.port + 1}`, `https://127.0.0.1:${cli.port}`]) {
      const r = await rawRequest(cli.port, { path: "/e/tasks", headers: { host, cookie, origin } });
      expect([origin, r.status]).toEqual([origin, 403]);
    }
  });

  it("a POST needs this Origin and the session's CSRF token", async () => {
    const post = (headers: Record<string, string>, body: string) =>
      rawRequest(cli.port, { method: "POST", path: "/e/tasks/r/t0000001/delete", headers: { host, cookie, "content-type": "application/x-www-form-urlencoded", ...headers }, body });
    expect((await post({}, `csrf=${csrf}`)).status).toBe(403); // no Origin
    expect((await post({ origin: "http://evil.example" }, `csrf=${csrf}`)).status).toBe(403);
    expect((await post({ origin: `http://${host}` }, "")).status).toBe(403); // no CSRF field
    expect((await post({ origin: `http://${host}` }, "csrf=wrong")).status).toBe(403);
    expect((await rawRequest(cli.port, { path: "/e/tasks/r/t0000001", headers: { host, cookie } })).status).toBe(200);
    const done = await post({ origin: `http://${host}` }, `csrf=${encodeURIComponent(csrf)}`);
    expect([done.status, done.headers.location]).toEqual([303, "/e/tasks?deleted=t0000001"]);
    expect((await rawRequest(cli.port, { path: "/e/tasks/r/t0000001", headers: { host, cookie } })).status).toBe(404);
  });
});

describe("cellar studio beside another process", () => {
  it("is read-only when another process holds the store (it joins as a follower)", async () => {
    const store = await openStore(entities, { dir, key: keys.raw(KEY), cleanup: false });
    let cli: StudioChild | undefined;
    try {
      cli = await startStudioCli(dir, keyFile);
      const host = `127.0.0.1:${cli.port}`;
      const auth = await rawRequest(cli.port, { path: new URL(cli.url).pathname + new URL(cli.url).search, headers: { host } });
      const cookie = String(auth.headers["set-cookie"]).split(";")[0]!;
      const rec = await rawRequest(cli.port, { path: "/e/tasks/r/t0000002", headers: { host, cookie } });
      expect(rec.status).toBe(200);
      expect(rec.body).toContain("read-only");
      expect(rec.body).not.toContain("/edit");
      const edit = await rawRequest(cli.port, { path: "/e/tasks/r/t0000002/edit", headers: { host, cookie } });
      expect(edit.status).toBe(403);
      expect(edit.body).toContain("another process holds the store");
      // The follower sees the holder's writes.
      await store.tasks.put({ id: "t9999999", title: "written by the holder" });
      let seen = 0;
      for (let i = 0; i < 50 && seen !== 200; i++) {
        seen = (await rawRequest(cli.port, { path: "/e/tasks/r/t9999999", headers: { host, cookie } })).status;
        if (seen !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(seen).toBe(200);
    } finally {
      await cli?.stop();
      await store.close();
    }
  }, 60_000);

  it("--read-only disables editing on a store it holds", async () => {
    const cli = await startStudioCli(dir, keyFile, ["--read-only"]);
    try {
      const host = `127.0.0.1:${cli.port}`;
      const auth = await rawRequest(cli.port, { path: new URL(cli.url).pathname + new URL(cli.url).search, headers: { host } });
      const cookie = String(auth.headers["set-cookie"]).split(";")[0]!;
      const edit = await rawRequest(cli.port, { path: "/e/tasks/r/t0000002/edit", headers: { host, cookie } });
      expect([edit.status, edit.body.includes("--read-only")]).toEqual([403, true]);
    } finally {
      await cli.stop();
    }
  }, 60_000);
});
