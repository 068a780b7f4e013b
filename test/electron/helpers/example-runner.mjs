// Runs the example's main bundle (argv[2]) in Node with `electron` resolved to electron-stub.mjs (hook:
// electron-hooks.mjs), then its
// preload bundle in a fresh `vm` context whose only module is `electron`, and prints what a page would get.
import { register } from "node:module";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { pathToFileURL } from "node:url";

register("./electron-hooks.mjs", import.meta.url);
const electron = await import("electron");
const stub = globalThis.electronStub;
await import(pathToFileURL(process.argv[2]).href);
for (let i = 0; i < 400 && !stub.handlers.has("cellar:call"); i++) await new Promise((r) => setTimeout(r, 10));

const win = stub.windows[0];
const preload = fs.readFileSync(win.options.webPreferences.preload, "utf8");
const requires = [];
const sandbox = { module: { exports: {} }, require: (m) => (requires.push(m), m === "electron" ? electron : undefined), queueMicrotask };
vm.runInNewContext(preload, sandbox, { filename: "preload.cjs" });
const cellar = stub.exposed.api;
let welcome;
for (let i = 0; i < 400 && !welcome; i++) {
  welcome = await cellar.tasks.get("welcome");
  if (!welcome) await new Promise((r) => setTimeout(r, 10));
}
const refused = await cellar.tasks.put({ id: "x", title: "x".repeat(501) }).catch((e) => e);
console.log(JSON.stringify({
  windows: stub.windows.map((w) => ({ file: path.basename(w.file), webPreferences: { ...w.options.webPreferences, preload: path.basename(w.options.webPreferences.preload) } })),
  requires: [...new Set(requires)],
  exposedKey: stub.exposed.key,
  api: Object.fromEntries(Object.entries(cellar).map(([k, v]) => [k, Object.keys(v)])),
  welcome: welcome?.title,
  refused: refused?.code,
}));
process.exit(0);
