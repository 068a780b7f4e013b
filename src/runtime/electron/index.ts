/**
 * `cellar/electron`: a Cellar store in Electron's main process, served to renderers over IPC.
 * Main process: `exposeStore(store, { ipcMain, allow })`. Preload: `exposeStoreInRenderer(contextBridge,
 * ipcRenderer, "cellar", shape)`. The preload half imports no Node module and nothing of the store
 * (protocol.ts, preload.ts), so a bundler that tree-shakes leaves the engine out of a preload bundle.
 * See README "Electron" and docs/ELECTRON.md.
 */
export { exposeStore, type AllowList, type ExposedStore, type ExposeOptions, type Grant } from "./main.js";
export {
  exposeStoreInRenderer,
  type RendererCollection,
  type RendererOptions,
  type RendererSingleton,
  type RendererStore,
  type RendererWatch,
  type RendererWatchUpdate,
  type StoreShape,
} from "./preload.js";
export { COLLECTION_OPS, SINGLETON_OPS, type Operation, type RemoteError } from "./protocol.js";
export type { ContextBridgeLike, IpcMainInvokeEventLike, IpcMainLike, IpcRendererLike, WebContentsLike } from "./electron-types.js";
