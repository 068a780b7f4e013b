/**
 * examples/electron without Electron: its main and preload bundles, built with esbuild as its `npm run build`
 * builds them, run in Node with the `electron` module replaced by a recording stand-in
 * (helpers/electron-stub.mjs): the main process opens a real store and exposes it, the sandbox-style preload
 * (a fresh `vm` context whose only module is `electron`) puts the client on the page, and a read and a
 * refused write go through. It shows the example's code runs; nothing of Electron itself is exercised.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { build } from "esbuild";
import { afterAll, expect, it } from "vitest";

const example = path.resolve(import.meta.dirname, "../../examples/electron");
const out = path.join(example, `.smoke-${process.pid}`);
const userData = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-electron-example-"));

afterAll(() => {
  fs.rmSync(out, { recursive: true, force: true });
  fs.rmSync(userData, { recursive: true, force: true });
});

it("the example's main bundle opens and exposes the store; its preload bundle needs only `electron` and serves the page", async () => {
  const common = { bundle: true, logLevel: "silent", absWorkingDir: example, tsconfig: path.join(example, "tsconfig.json") } as const;
  // What examples/electron/package.json's `build` script runs.
  await build({ ...common, entryPoints: ["main.ts"], platform: "node", format: "esm", packages: "external", outfile: path.join(out, "main.mjs") });
  await build({ ...common, entryPoints: ["preload.ts"], platform: "browser", format: "cjs", external: ["electron"], outfile: path.join(out, "preload.cjs") });
  const stdout = execFileSync(process.execPath, [path.join(import.meta.dirname, "helpers", "example-runner.mjs"), path.join(out, "main.mjs")], {
    env: { ...process.env, STUB_USER_DATA: userData },
    encoding: "utf8",
  });
  const seen = JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
  expect(seen).toMatchObject({
    requires: ["electron"],
    exposedKey: "cellar",
    welcome: "Welcome: edit me in either window",
    refused: "E_VALIDATION",
  });
  expect(seen.windows).toEqual([
    { file: "index.html", webPreferences: { preload: "preload.cjs", contextIsolation: true, nodeIntegration: false, sandbox: true } },
    { file: "index.html", webPreferences: { preload: "preload.cjs", contextIsolation: true, nodeIntegration: false, sandbox: true } },
    { file: "settings.html", webPreferences: { preload: "preload.cjs", contextIsolation: true, nodeIntegration: false, sandbox: true } },
  ]);
  expect((seen.api as Record<string, string[]>).tasks).toContain("watch");
  expect(Object.keys(seen.api as object)).toEqual(["tasks", "settings"]);
  expect(fs.existsSync(path.join(userData, "store"))).toBe(true);
});
