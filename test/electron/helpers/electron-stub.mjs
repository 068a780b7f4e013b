// A stand-in for the `electron` module, for running the example's bundles in Node (example.test.ts): the
// calls the example makes, recorded on `globalThis.electronStub`. Not Electron: no windows, no pages.
import { EventEmitter } from "node:events";

const stub = (globalThis.electronStub = { handlers: new Map(), windows: [] });
let nextId = 1;

export const app = Object.assign(new EventEmitter(), {
  whenReady: () => Promise.resolve(),
  getPath: () => process.env.STUB_USER_DATA,
  quit: () => stub.quit?.(),
});
export const safeStorage = { isEncryptionAvailable: () => false };
export const ipcMain = {
  handle: (channel, fn) => stub.handlers.set(channel, fn),
  removeHandler: (channel) => stub.handlers.delete(channel),
};
export class BrowserWindow {
  constructor(options) {
    this.options = options;
    const events = new EventEmitter();
    this.webContents = { id: nextId++, sent: [], send: (channel, ...args) => this.webContents.sent.push([channel, args]), isDestroyed: () => false, once: (e, l) => events.once(e, l) };
    stub.windows.push(this);
  }
  loadFile(file) {
    this.file = file;
    return Promise.resolve();
  }
}
export const contextBridge = { exposeInMainWorld: (key, api) => (stub.exposed = { key, api }) };
export const ipcRenderer = {
  invoke: async (channel, ...args) => stub.handlers.get(channel)({ sender: stub.windows[0].webContents }, ...structuredClone(args)),
  on: () => {},
  removeListener: () => {},
};
export default { app, safeStorage, ipcMain, BrowserWindow, contextBridge, ipcRenderer };
