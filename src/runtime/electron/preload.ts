/**
 * `exposeStoreInRenderer(contextBridge, ipcRenderer, "cellar", shape)`: the preload side of
 * `cellar/electron`. Puts on `window.cellar` a client with the repositories' API (get, getMany, has, count,
 * list, keys, query, put, putMany, update, delete; a singleton's get, set, update, reset; `watch` with `subscribe`)
 * made of functions only, so `contextBridge` proxies each call and `ipcRenderer` itself never reaches the
 * page. Imports nothing but types and the pure protocol: a sandboxed preload bundle stays small.
 *
 * Failures reject with a frozen plain object `{ name, code, message, issues?, entity? }` (`RemoteError`):
 * Electron turns an `Error` crossing IPC or the bridge into a bare `Error` and its `code` would be lost.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import type { CollectionDefinition, EntityDefinition, SingletonDefinition } from "../typed/entity.js";
import type { Collection, EntityInput, QueryWhere, Singleton, StoredRecord, WatchUpdate } from "../typed/types.js";
import type { ContextBridgeLike, IpcRendererLike } from "./electron-types.js";
import { channels, COLLECTION_OPS, type RemoteError, type Reply, SINGLETON_OPS, type UpdateMessage } from "./protocol.js";

/** An update of a watch in a renderer: the value (sensitive fields redacted unless granted) and its commit's `seq`. */
export type RendererWatchUpdate<T> = WatchUpdate<T>;

/**
 * A watch in a renderer: `subscribe` delivers the current value first, then the value after each commit that
 * changed it; a subscriber that falls behind gets the latest. Unsubscribing the last subscriber, or `close()`,
 * ends the watch in the main process too. `onError` gets a refusal (`E_FORBIDDEN`, `E_USAGE`, …).
 */
export interface RendererWatch<T> {
  subscribe(cb: (u: RendererWatchUpdate<T>) => void, onError?: (e: RemoteError) => void): () => void;
  close(): void;
}

/** A collection in a renderer: the repository's signatures (`update` takes a patch: a function cannot cross IPC). */
export type RendererCollection<Desc extends DescMessage, K extends string | number | bigint, I extends string> = Pick<
  Collection<Desc, K, I>,
  "get" | "getMany" | "has" | "count" | "list" | "keys" | "query" | "queryPage" | "aggregate" | "put" | "putMany" | "delete"
> & {
  update(key: K, patch: EntityInput<Desc>): Promise<StoredRecord<Desc>>;
  watch(key: K): RendererWatch<StoredRecord<Desc> | undefined>;
  watch(where: QueryWhere<Desc, I>): RendererWatch<readonly StoredRecord<Desc>[]>;
};

/** A singleton in a renderer: the repository's `get`, `set`, `reset`, `update` with a patch, and `watch`. */
export type RendererSingleton<Desc extends DescMessage> = Pick<Singleton<Desc>, "get" | "set" | "reset"> & {
  update(patch: EntityInput<Desc>): Promise<StoredRecord<Desc>>;
  watch(): RendererWatch<StoredRecord<Desc>>;
};

/** `window.cellar`'s type: `declare global { interface Window { cellar: RendererStore<typeof entities> } }`. */
export type RendererStore<E extends Record<string, EntityDefinition>> = {
  readonly [P in keyof E]: E[P] extends CollectionDefinition<infer D, infer K, infer I>
    ? RendererCollection<D, K, I>
    : E[P] extends SingletonDefinition<infer D>
      ? RendererSingleton<D>
      : never;
};

/**
 * Which entities the preload exposes, and their kind: the preload cannot ask the main process synchronously,
 * and the page must find `window.cellar` complete when its scripts start. Typed against the app's entities
 * (`StoreShape<typeof entities>`, a type-only import), so a wrong kind or name does not compile.
 */
export type StoreShape<E extends Record<string, EntityDefinition>> = {
  readonly [P in keyof E]?: E[P] extends { kind: "collection" } ? "collection" : "singleton";
};

export interface RendererOptions {
  /** Channel prefix, the same as `exposeStore`'s (default `"cellar"`). */
  channel?: string;
}

/** Expose the store's client on `window[apiKey]` (see the module comment and README "Electron"). */
export function exposeStoreInRenderer<E extends Record<string, EntityDefinition>>(
  contextBridge: ContextBridgeLike,
  ipcRenderer: IpcRendererLike,
  apiKey: string,
  shape: StoreShape<E>,
  options?: RendererOptions,
): void {
  const { call, update } = channels(options?.channel ?? "cellar");
  const invoke = async (entity: string, op: string, args: unknown[]): Promise<unknown> => {
    while (args.length && args[args.length - 1] === undefined) args.pop();
    let reply: Reply;
    try {
      reply = (await ipcRenderer.invoke(call, { entity, op, args })) as Reply;
    } catch (e) {
      // The arguments did not clone (a function, a class instance with private state…) or no handler answered.
      throw remote("E_USAGE", `the request could not reach the main process: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (reply && reply.ok === true) return reply.value;
    const err = reply && reply.ok === false ? reply.error : undefined;
    throw err && typeof err.code === "string" ? Object.freeze({ ...err }) : remote("E_INTERNAL", "the main process sent no answer this client understands");
  };

  const watches = new Map<number, { last: UpdateMessage | null; subs: Set<(u: RendererWatchUpdate<unknown>) => void>; errs: Set<(e: RemoteError) => void>; error: RemoteError | null }>();
  let nextId = 1;
  ipcRenderer.on(update, (_event, msg: UpdateMessage) => {
    const w = msg && typeof msg.id === "number" ? watches.get(msg.id) : undefined;
    if (!w) return;
    w.last = msg;
    for (const cb of w.subs) cb({ value: msg.value, seq: msg.seq });
  });
  // A (re)loaded page: the main process closes this window's watches of the page before.
  void invoke("", "reset", []).catch(() => {});

  const watch = (entity: string, spec: unknown[]): RendererWatch<unknown> => {
    const id = nextId++;
    const w = { last: null as UpdateMessage | null, subs: new Set<(u: RendererWatchUpdate<unknown>) => void>(), errs: new Set<(e: RemoteError) => void>(), error: null as RemoteError | null };
    watches.set(id, w);
    invoke(entity, "watch", [id, ...spec]).catch((e: RemoteError) => {
      watches.delete(id);
      w.error = e;
      for (const cb of w.errs) cb(e);
    });
    const close = () => {
      if (!watches.delete(id)) return;
      w.subs.clear();
      w.errs.clear();
      void invoke("", "unwatch", [id]).catch(() => {});
    };
    return {
      subscribe(cb, onError) {
        if (w.error) {
          if (onError) queueMicrotask(() => onError(w.error!));
          return () => {};
        }
        w.subs.add(cb);
        if (onError) w.errs.add(onError);
        const last = w.last;
        if (last) queueMicrotask(() => w.subs.has(cb) && w.last === last && cb({ value: last.value, seq: last.seq }));
        return () => {
          w.subs.delete(cb);
          if (onError) w.errs.delete(onError);
          if (!w.subs.size) close();
        };
      },
      close,
    };
  };

  const api: Record<string, Record<string, (...a: unknown[]) => unknown>> = {};
  for (const [name, kind] of Object.entries(shape as Record<string, unknown>)) {
    if (kind !== "collection" && kind !== "singleton") throw new TypeError(`cellar: the shape of \`${name}\` must be "collection" or "singleton"`);
    const repo: Record<string, (...a: unknown[]) => unknown> = {};
    for (const op of kind === "collection" ? COLLECTION_OPS : SINGLETON_OPS) {
      repo[op] =
        op === "watch"
          ? kind === "singleton"
            ? () => watch(name, [])
            : (arg: unknown) => watch(name, [typeof arg === "object" && arg !== null ? { where: arg } : { key: arg }])
          : (...args: unknown[]) => invoke(name, op, args);
    }
    api[name] = repo;
  }
  contextBridge.exposeInMainWorld(apiKey, api);
}

function remote(code: string, message: string): RemoteError {
  return Object.freeze({ name: "CellarBridgeError", code, message });
}
