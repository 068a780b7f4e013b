/**
 * What `cellar/electron` asks of Electron, as structural interfaces: the SDK has no `electron` dependency,
 * and the app passes in its own `ipcMain`, `ipcRenderer` and `contextBridge`. Each interface is the subset
 * of Electron's own type that Cellar calls; `examples/electron/` type-checks passing the real objects
 * (`npm run check:electron`, against the `electron.d.ts` of the version it installs).
 */

/** The part of Electron's `WebContents` the main side uses: its id, `send`, and the end of its life or of its page's process. */
export interface WebContentsLike {
  readonly id: number;
  send(channel: string, ...args: any[]): void;
  isDestroyed(): boolean;
  once(event: "destroyed", listener: (...args: any[]) => void): unknown;
  once(event: "render-process-gone", listener: (...args: any[]) => void): unknown;
}

/** Electron's `IpcMainInvokeEvent`, the part Cellar reads: which window asked, and from which frame (its URL). */
export interface IpcMainInvokeEventLike {
  readonly sender: WebContentsLike;
  readonly senderFrame?: { readonly url: string } | null;
}

/** Electron's `ipcMain`: `handle` and `removeHandler`. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: IpcMainInvokeEventLike, ...args: any[]) => Promise<unknown> | unknown): void;
  removeHandler(channel: string): void;
}

/** Electron's `ipcRenderer` in a preload: `invoke`, and `on`/`removeListener` for pushed watch updates. */
export interface IpcRendererLike {
  invoke(channel: string, ...args: any[]): Promise<any>;
  on(channel: string, listener: (event: any, ...args: any[]) => void): unknown;
  removeListener(channel: string, listener: (...args: any[]) => void): unknown;
}

/** Electron's `contextBridge`: `exposeInMainWorld`. */
export interface ContextBridgeLike {
  exposeInMainWorld(apiKey: string, api: any): void;
}
