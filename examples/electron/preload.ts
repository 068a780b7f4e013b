/**
 * Preload of every window (sandboxed, bundled to dist/preload.cjs): puts `window.cellar` on the page. The
 * page gets functions only; `ipcRenderer` stays here.
 */
import { contextBridge, ipcRenderer } from "electron";
import { exposeStoreInRenderer } from "cellar/electron";
import type { entities } from "../../src/generated/index.js";

exposeStoreInRenderer<typeof entities>(contextBridge, ipcRenderer, "cellar", {
  tasks: "collection",
  settings: "singleton",
});
