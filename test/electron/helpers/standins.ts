/**
 * Stand-ins for what Electron gives `cellar/electron`, for tests without the Electron binary (it cannot be
 * installed here): `ipcMain`, `WebContents` and `ipcRenderer` over a real process boundary, a
 * `child_process.fork` channel with `serialization: "advanced"` (V8's structured clone, as Electron's IPC:
 * functions refused, class instances lose their prototype, an `Error` arrives as a plain `Error` without
 * `code`), and a `contextBridge` that copies values the way Electron's `PassValueToOtherContext`
 * (shell/renderer/api/electron_api_context_bridge.cc) does: primitives pass, functions and promises are
 * proxied (their arguments, results and rejections copied), a native error becomes `new Error(message)`,
 * arrays and objects are copied (own enumerable string keys, prototype dropped), anything else goes
 * through structured clone; `exposeInMainWorld` deep-freezes the copy and refuses an existing key; since
 * Electron 29 the `ipcRenderer` object crosses as an empty object.
 *
 * What this does not reproduce: two V8 contexts (the copy here stays in one realm), Chromium's IPC and
 * process model, sandboxed preloads, `senderFrame`, navigation events.
 */
import { EventEmitter } from "node:events";
import type { ChildProcess } from "node:child_process";
import { types } from "node:util";
import type { ContextBridgeLike, IpcMainInvokeEventLike, IpcMainLike, IpcRendererLike, WebContentsLike } from "../../../src/runtime/electron/index.js";

/** Messages of the Electron-IPC stand-in over the fork channel. */
export type IpcMessage =
  | { t: "invoke"; n: number; channel: string; args: unknown[] }
  | { t: "reply"; n: number; value?: unknown; error?: string }
  | { t: "send"; channel: string; args: unknown[] };

/** Main side: Electron's `ipcMain` (handle/removeHandler), serving invokes that arrive from renderer processes. */
export class IpcMainStandIn implements IpcMainLike {
  readonly handlers = new Map<string, (event: IpcMainInvokeEventLike, ...args: any[]) => unknown>();

  handle(channel: string, listener: (event: IpcMainInvokeEventLike, ...args: any[]) => unknown): void {
    if (this.handlers.has(channel)) throw new Error(`Attempted to register a second handler for '${channel}'`);
    this.handlers.set(channel, listener);
  }

  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }

  /** Serve the invokes of the renderer process `child` as coming from `webContents`, its page at `url`. */
  attach(child: ChildProcess, webContents: WebContentsStandIn, url = "file:///app/index.html"): void {
    child.on("message", async (m: IpcMessage) => {
      if (m.t !== "invoke") return;
      const handler = this.handlers.get(m.channel);
      if (!handler) return void child.send({ t: "reply", n: m.n, error: `No handler registered for '${m.channel}'` });
      let reply: IpcMessage;
      try {
        reply = { t: "reply", n: m.n, value: await handler({ sender: webContents, senderFrame: { url } }, ...m.args) };
      } catch (e) {
        // Electron rejects the renderer's invoke with the thrown error's text only.
        reply = { t: "reply", n: m.n, error: `Error invoking remote method '${m.channel}': ${String(e)}` };
      }
      try {
        child.send(reply);
      } catch (e) {
        child.send({ t: "reply", n: m.n, error: `Error invoking remote method '${m.channel}': ${String(e)}` });
      }
    });
  }
}

/** Main side: a window's `WebContents`: `send` reaches the renderer process; `destroy()` is the window closing. */
export class WebContentsStandIn extends EventEmitter implements WebContentsLike {
  static #next = 1;
  readonly id = WebContentsStandIn.#next++;
  #destroyed = false;
  /** Every `send` made, for assertions. */
  readonly sent: { channel: string; args: unknown[] }[] = [];

  constructor(private readonly child: ChildProcess) {
    super();
  }

  send(channel: string, ...args: any[]): void {
    if (this.#destroyed) throw new Error("Object has been destroyed");
    this.sent.push({ channel, args });
    this.child.send({ t: "send", channel, args } satisfies IpcMessage);
  }

  isDestroyed(): boolean {
    return this.#destroyed;
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.emit("destroyed");
  }
}

/** Objects Electron refuses to carry across the bridge whole (Electron ≥ 29: `ipcRenderer` becomes `{}`). */
const UNBRIDGEABLE = new WeakSet<object>();

/** Renderer side: Electron's `ipcRenderer` over this process's fork channel. */
export function ipcRendererStandIn(proc: NodeJS.Process = process): IpcRendererLike & { reset(): void } {
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const events = new EventEmitter();
  let n = 0;
  proc.on("message", (m: IpcMessage) => {
    if (m.t === "reply") {
      const p = pending.get(m.n);
      pending.delete(m.n);
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.value);
    } else if (m.t === "send") events.emit(m.channel, { sender: ipc }, ...m.args);
  });
  const ipc = {
    async invoke(channel: string, ...args: unknown[]): Promise<unknown> {
      const id = ++n;
      const reply = new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
      try {
        proc.send!({ t: "invoke", n: id, channel, args } satisfies IpcMessage); // structured clone: throws on a function
      } catch (e) {
        pending.delete(id);
        throw new Error(`An object could not be cloned. (${(e as Error).message})`);
      }
      return reply;
    },
    on(channel: string, listener: (event: unknown, ...args: any[]) => void) {
      events.on(channel, listener);
      return ipc;
    },
    removeListener(channel: string, listener: (...args: any[]) => void) {
      events.removeListener(channel, listener);
      return ipc;
    },
    /** A page reload: the old page's listeners go with its isolated world. */
    reset() {
      events.removeAllListeners();
    },
  };
  UNBRIDGEABLE.add(ipc);
  return ipc;
}

function isElectronPlainObject(v: object): boolean {
  return !(
    types.isDate(v) ||
    types.isArgumentsObject(v) ||
    types.isBoxedPrimitive(v) ||
    types.isNativeError(v) ||
    types.isRegExp(v) ||
    types.isPromise(v) ||
    types.isMap(v) ||
    types.isSet(v) ||
    types.isMapIterator(v) ||
    types.isSetIterator(v) ||
    types.isWeakMap(v) ||
    types.isWeakSet(v) ||
    types.isArrayBuffer(v) ||
    types.isArrayBufferView(v) ||
    Array.isArray(v) ||
    types.isSharedArrayBuffer(v) ||
    types.isProxy(v) ||
    types.isModuleNamespaceObject(v)
  );
}

/** A value passed from one world to the other, as Electron's context bridge passes it. */
export function passToOtherWorld(value: unknown, cache = new Map<unknown, unknown>(), depth = 0): unknown {
  if (depth >= 1000) throw new TypeError("Electron contextBridge recursion depth exceeded.  Nested objects deeper than 1000 are not supported.");
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return value;
  if (cache.has(value)) return cache.get(value);
  if (UNBRIDGEABLE.has(value)) return {};
  let out: unknown;
  if (typeof value === "function") {
    const fn = value as (...a: unknown[]) => unknown;
    out = (...args: unknown[]) => {
      const passed = args.map((a) => passToOtherWorld(a));
      let ret: unknown;
      try {
        ret = fn(...passed);
      } catch (e) {
        throw new Error(e instanceof Error ? `Uncaught ${e.name}: ${e.message}` : `Uncaught ${String(e)}`);
      }
      return passToOtherWorld(ret);
    };
  } else if (types.isPromise(value)) {
    out = (value as Promise<unknown>).then(
      (v) => passToOtherWorld(v),
      (e) => {
        throw passToOtherWorld(e);
      },
    );
  } else if (types.isNativeError(value)) {
    return new Error((value as Error).message);
  } else if (Array.isArray(value)) {
    const arr: unknown[] = [];
    cache.set(value, arr);
    for (let i = 0; i < value.length; i++) arr.push(passToOtherWorld(value[i], cache, depth + 1));
    return arr;
  } else if (isElectronPlainObject(value)) {
    const obj: Record<string, unknown> = {};
    cache.set(value, obj);
    for (const k of Object.keys(value)) obj[k] = passToOtherWorld((value as Record<string, unknown>)[k], cache, depth + 1);
    return obj;
  } else {
    out = structuredClone(value); // throws DataCloneError, as Electron's serializer does
  }
  cache.set(value, out);
  return out;
}

function deepFreeze(v: unknown, seen = new Set<unknown>()): void {
  if (v === null || typeof v !== "object" || seen.has(v) || types.isTypedArray(v)) return;
  seen.add(v);
  for (const k of Object.getOwnPropertyNames(v)) deepFreeze((v as Record<string, unknown>)[k], seen);
  Object.freeze(v);
}

/** Renderer side: Electron's `contextBridge`, exposing into `mainWorld` (the page's `window`). */
export function contextBridgeStandIn(mainWorld: Record<string, unknown>): ContextBridgeLike {
  return {
    exposeInMainWorld(apiKey: string, api: unknown) {
      if (apiKey in mainWorld) throw new Error("Cannot bind an API on top of an existing property on the window object");
      const proxy = passToOtherWorld(api);
      deepFreeze(proxy);
      Object.defineProperty(mainWorld, apiKey, { value: proxy, writable: false, configurable: false, enumerable: true });
    },
  };
}
