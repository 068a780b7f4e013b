/**
 * `exposeStore(store, { ipcMain, allow })`: the main process side of `cellar/electron`. Registers one
 * `ipcMain.handle` channel that serves an allow-list of entities and operations to renderers, checks every
 * request as coming from an untrusted page (shape, value types, size, depth, prototype keys, entity and
 * operation granted to that window), writes through the store's normal path (validation by the entity's
 * schema), redacts sensitive fields unless granted, answers failures as plain objects carrying `code`, and
 * pushes watch updates with `webContents.send`, closing a window's watches when it is destroyed, its renderer process is gone, or its page reloads.
 */
import { isCellarError, LimitError, ForbiddenError, UsageError } from "../errors.js";
import type { EntityDefinition, KeyValue } from "../typed/entity.js";
import type { TypedStore, Watch } from "../typed/types.js";
import type { IpcMainInvokeEventLike, IpcMainLike, WebContentsLike } from "./electron-types.js";
import {
  channels,
  checkInput,
  checkRequestShape,
  COLLECTION_OPS,
  DEFAULT_LIMITS,
  type InputLimits,
  OP_GROUPS,
  type Operation,
  type RemoteError,
  type Reply,
  type Request,
  SINGLETON_OPS,
} from "./protocol.js";
import { holdsRedacted, pick, redactRecord } from "./redact.js";

/** What one entity grants a window: operations (or the groups `read`, `write`), and sensitive fields or not. */
export type Grant<Op extends string = Operation> = readonly (Op | "read" | "write")[] | { readonly ops: readonly (Op | "read" | "write")[]; readonly sensitive?: boolean };

/** Per entity (the store's property name), what a window may do; an entity left out is refused (`E_FORBIDDEN`). */
export type AllowList<E extends Record<string, EntityDefinition>> = {
  readonly [P in keyof E & string]?: Grant<E[P] extends { kind: "collection" } ? (typeof COLLECTION_OPS)[number] : (typeof SINGLETON_OPS)[number]>;
};

export interface ExposeOptions<E extends Record<string, EntityDefinition>> {
  /** Electron's `ipcMain`. */
  ipcMain: IpcMainLike;
  /**
   * What renderers may do: one allow-list for every window, or a function of the window asking (its
   * `WebContents`: `sender.id`, or the app's own map of windows; and the invoke event, whose
   * `senderFrame.url` says which page asked) called on every request; `null` refuses that window everything. Example: `allow: { tasks: ["read", "write", "watch"], settings: ["get", "watch"] }`.
   * Sensitive fields read `"[redacted]"` unless the entity's grant is `{ ops, sensitive: true }`.
   */
  allow: AllowList<E> | ((sender: WebContentsLike, event: IpcMainInvokeEventLike) => AllowList<E> | null | undefined);
  /** Channel prefix, the same as the preload's (default `"cellar"`: channels `cellar:call`, `cellar:update`). */
  channel?: string;
  /** Limits on a request's arguments (default 8 MiB, 32 levels) and on open watches per window (default 256). */
  limits?: Partial<InputLimits> & { maxWatches?: number };
  /** Failures that are not Cellar's (a bug); the renderer gets `E_INTERNAL` without the message. Default `console.error`. */
  onError?: (error: unknown) => void;
}

/** The handle `exposeStore` returns. */
export interface ExposedStore {
  /** Remove the channel's handler and close every renderer's watches (call before `store.close()`). */
  close(): void;
}

type WatchLike = Watch<unknown>;

interface Target {
  readonly name: string;
  readonly def: EntityDefinition;
  readonly repo: Record<string, (...a: any[]) => any>;
}

interface Window {
  readonly sender: WebContentsLike;
  readonly watches: Map<number, WatchLike>;
}

/** Serve `store` to renderers over Electron IPC (see the module comment and README "Electron"). */
export function exposeStore<E extends Record<string, EntityDefinition>>(store: TypedStore<E>, options: ExposeOptions<E>): ExposedStore {
  const targets = new Map<string, Target>();
  for (const [name, repo] of Object.entries(store as object)) {
    const def = (repo as { def?: EntityDefinition } | null)?.def;
    if (def && (def.kind === "collection" || def.kind === "singleton")) targets.set(name, { name, def, repo });
  }
  if (!targets.size) throw new UsageError("`exposeStore` needs a store from `openStore` (no entity found on it)");
  if (typeof options.allow !== "function") normalize(options.allow, targets); // a static list: check it now
  const limits: InputLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const maxWatches = options.limits?.maxWatches ?? 256;
  const report = options.onError ?? ((e: unknown) => console.error("cellar/electron: a request failed in the main process", e));
  const { call, update } = channels(options.channel ?? "cellar");
  const windows = new Map<number, Window>();
  let closed = false;

  const windowOf = (sender: WebContentsLike): Window => {
    let w = windows.get(sender.id);
    if (!w) {
      w = { sender, watches: new Map() };
      windows.set(sender.id, w);
      sender.once("destroyed", () => closeWindow(sender.id));
      // A crashed renderer's page is gone with its subscribers; a reload after it starts over (reset).
      sender.once("render-process-gone", () => closeWindow(sender.id));
    }
    return w;
  };
  const closeWindow = (id: number) => {
    const w = windows.get(id);
    if (!w) return;
    windows.delete(id);
    for (const watch of w.watches.values()) watch.close();
  };

  const serve = async (event: IpcMainInvokeEventLike, req: unknown, extra: number): Promise<Reply> => {
    try {
      if (closed) throw new UsageError("the store is no longer exposed to renderers");
      if (extra || !checkRequestShape(req)) throw new UsageError("a renderer request must be `{ entity, op, args }` with string names and at most 4 arguments");
      const problem = checkInput(req.args, limits);
      if (problem) throw problem.kind === "limit" ? new LimitError(problem.message) : new UsageError(problem.message);
      const sender = event.sender;
      if (req.entity === "") return { ok: true, value: bridgeOp(windowOf(sender), req) };
      const allow = typeof options.allow === "function" ? options.allow(sender, event) : options.allow;
      const grant = allow ? normalize(allow, targets).get(req.entity) : undefined;
      const target = targets.get(req.entity);
      if (!grant || !target) throw new ForbiddenError(`this window may not use the entity \`${req.entity.slice(0, 64)}\``);
      if (!grant.ops.has(req.op as Operation)) throw new ForbiddenError(`this window may not \`${req.op}\` the entity \`${req.entity}\``);
      const sensitive = grant.sensitive ? [] : target.def.sensitive;
      if (req.op === "watch") return { ok: true, value: openWatch(windowOf(sender), target, sensitive, req.args) };
      return { ok: true, value: await run(target, req.op, req.args, sensitive) };
    } catch (e) {
      return { ok: false, error: remoteError(e, report) };
    }
  };

  const bridgeOp = (w: Window, req: Request): null => {
    if (req.op === "reset" && req.args.length === 0) {
      // A page (re)loaded in this window: the watches of the page before it are gone with it.
      for (const watch of w.watches.values()) watch.close();
      w.watches.clear();
      return null;
    }
    if (req.op === "unwatch" && req.args.length === 1 && Number.isSafeInteger(req.args[0])) {
      w.watches.get(req.args[0] as number)?.close();
      w.watches.delete(req.args[0] as number);
      return null;
    }
    throw new UsageError(`no bridge operation \`${req.op}\` with these arguments`);
  };

  const openWatch = (w: Window, t: Target, sensitive: readonly string[], args: readonly unknown[]): null => {
    const [id, spec] = args;
    if (!Number.isSafeInteger(id) || (id as number) < 0 || args.length > 2) throw new UsageError("`watch` takes a watch id (a non-negative integer) and what to watch");
    if (w.watches.has(id as number)) throw new UsageError("this window already has a watch with this id");
    if (w.watches.size >= maxWatches) throw new LimitError(`a window may hold at most ${maxWatches} watches`);
    const repo = t.repo as { watch?: (arg?: unknown) => WatchLike };
    if (typeof repo.watch !== "function") throw new UsageError("this version of the store has no `watch`");
    let watch: WatchLike;
    if (t.def.kind === "singleton") {
      if (spec !== undefined) throw new UsageError("a singleton's `watch` takes no argument");
      watch = repo.watch();
    } else if (isPlain(spec) && Object.keys(spec).length === 1 && "key" in spec) {
      watch = repo.watch(checkKey(spec.key));
    } else if (isPlain(spec) && Object.keys(spec).length === 1 && isPlain(spec.where)) {
      watch = repo.watch(spec.where);
    } else throw new UsageError("a collection's `watch` takes `{ key }` or `{ where }`");
    w.watches.set(id as number, watch);
    const redact = (v: unknown) => (Array.isArray(v) ? v.map((r) => redactRecord(r, sensitive)) : redactRecord(v, sensitive));
    watch.subscribe(({ value, seq }) => {
      if (w.sender.isDestroyed() || !w.watches.has(id as number)) return;
      w.sender.send(update, { id, value: redact(value), seq });
    });
    return null;
  };

  options.ipcMain.handle(call, (event, req, ...rest) => serve(event, req, rest.length));
  return {
    close() {
      if (closed) return;
      closed = true;
      options.ipcMain.removeHandler(call);
      for (const id of [...windows.keys()]) closeWindow(id);
    },
  };
}

/** An allow-list as sets of operations per entity, every name and operation checked against the store. */
function normalize(allow: Record<string, unknown>, targets: ReadonlyMap<string, Target>): Map<string, { ops: Set<Operation>; sensitive: boolean }> {
  if (typeof allow !== "object" || allow === null) throw new UsageError("`allow` must be an object of entity grants, or a function returning one");
  const out = new Map<string, { ops: Set<Operation>; sensitive: boolean }>();
  for (const [name, grant] of Object.entries(allow)) {
    if (grant === undefined) continue;
    const t = targets.get(name);
    if (!t) throw new UsageError(`\`allow\` names \`${name}\`, which is no entity of this store (entities: ${[...targets.keys()].join(", ")})`);
    const list = Array.isArray(grant) ? grant : (grant as { ops?: unknown }).ops;
    if (!Array.isArray(list)) throw new UsageError(`\`allow.${name}\` must be a list of operations or \`{ ops, sensitive }\``);
    const valid: readonly string[] = t.def.kind === "collection" ? COLLECTION_OPS : SINGLETON_OPS;
    const ops = new Set<Operation>();
    for (const op of list) {
      const group = op === "read" || op === "write" ? OP_GROUPS[op as "read" | "write"].filter((o) => valid.includes(o)) : [op];
      for (const o of group) {
        if (!valid.includes(o)) throw new UsageError(`\`allow.${name}\`: \`${String(o)}\` is no operation of a ${t.def.kind} (${valid.join(", ")}, read, write)`);
        ops.add(o as Operation);
      }
    }
    out.set(name, { ops, sensitive: !Array.isArray(grant) && (grant as { sensitive?: unknown }).sensitive === true });
  }
  return out;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function checkKey(k: unknown): KeyValue {
  if (typeof k === "string" || typeof k === "number" || typeof k === "bigint") return k;
  throw new UsageError("a record key must be a string, a number or a bigint");
}

function checkList(o: unknown): { limit?: number; offset?: number } | undefined {
  if (o === undefined) return undefined;
  const ok = (n: unknown) => n === undefined || (Number.isSafeInteger(n) && (n as number) >= 0);
  if (!isPlain(o) || !Object.keys(o).every((k) => k === "limit" || k === "offset") || !ok(o.limit) || !ok(o.offset)) {
    throw new UsageError("list options must be `{ limit?, offset? }` with non-negative integers");
  }
  return o as { limit?: number; offset?: number };
}

/** What `query` and `queryPage` take from a renderer (the repository checks the values: E_USAGE). */
const QUERY_OPTIONS = ["limit", "offset", "orderBy", "reverse", "after", "scan"];

/** Options of a read: a plain object of the names `allowed` (or nothing). */
function checkOptions(o: unknown, allowed: readonly string[]): Record<string, unknown> | undefined {
  if (o === undefined) return undefined;
  if (!isPlain(o) || !Object.keys(o).every((k) => allowed.includes(k))) throw new UsageError(`options must be an object of ${allowed.map((k) => `\`${k}\``).join(", ")}`);
  return o;
}

function checkWrite(input: unknown, sensitive: readonly string[], what: string): Record<string, unknown> {
  if (!isPlain(input)) throw new UsageError(`\`${what}\` takes an object`);
  if (holdsRedacted(input, sensitive)) {
    throw new UsageError(`a sensitive field of this \`${what}\` reads \`"[redacted]"\` (a value read in a renderer): leave the field out (\`update\` keeps it) instead of writing the marker`);
  }
  return input;
}

/** One granted operation on an entity, its arguments checked, its result redacted. */
async function run(t: Target, op: string, args: readonly unknown[], sensitive: readonly string[]): Promise<unknown> {
  const r = t.repo;
  const one = (v: unknown) => redactRecord(v, sensitive);
  const many = (v: unknown[]) => v.map(one);
  const arity = (n: number) => {
    if (args.length > n) throw new UsageError(`\`${op}\` takes at most ${n} argument${n === 1 ? "" : "s"}`);
  };
  if (t.def.kind === "singleton") {
    switch (op) {
      case "get": {
        arity(1);
        if (args[0] !== undefined && typeof args[0] !== "string") throw new UsageError("a singleton's `get` takes a dotted path or nothing");
        const whole = one(await r.get!());
        return args[0] === undefined ? whole : pick(whole, args[0] as string);
      }
      case "set": {
        arity(2);
        if (typeof args[0] !== "string") throw new UsageError("`set` takes a dotted path and a value");
        const nested = (args[0] as string).split(".").reduceRight<unknown>((v, name) => ({ [name]: v }), args[1]);
        checkWrite(nested, sensitive, "set");
        return one(await r.set!(args[0], args[1]));
      }
      case "update":
        arity(1);
        return one(await r.update!(checkWrite(args[0], sensitive, "update")));
      case "reset":
        arity(0);
        await r.reset!();
        return null;
    }
  } else {
    switch (op) {
      case "get":
        arity(1);
        return one(await r.get!(checkKey(args[0])));
      case "has":
        arity(1);
        return r.has!(checkKey(args[0]));
      case "delete":
        arity(1);
        return r.delete!(checkKey(args[0]));
      case "getMany":
        arity(1);
        if (!Array.isArray(args[0])) throw new UsageError("`getMany` takes a list of keys");
        return many(await r.getMany!(args[0].map(checkKey)));
      case "put":
        arity(1);
        return one(await r.put!(checkWrite(args[0], sensitive, "put")));
      case "putMany": {
        arity(1);
        if (!Array.isArray(args[0])) throw new UsageError("`putMany` takes a list of records");
        // Every record is checked before any is written: `putMany` is one commit, all or nothing.
        await r.putMany!(args[0].map((v) => checkWrite(v, sensitive, "putMany")));
        return null;
      }
      case "update":
        arity(2);
        return one(await r.update!(checkKey(args[0]), checkWrite(args[1], sensitive, "update")));
      case "count":
        arity(2);
        if (args[0] !== undefined && !isPlain(args[0])) throw new UsageError("`count` takes an object of indexed fields, or nothing");
        return r.count!(args[0], checkOptions(args[1], ["scan"]));
      case "list":
        arity(1);
        return many(await r.list!(checkList(args[0])));
      case "keys":
        arity(1);
        return r.keys!(checkList(args[0]));
      case "query":
        arity(2);
        if (!isPlain(args[0])) throw new UsageError("`query` takes an object of indexed fields");
        return many(await r.query!(args[0], checkOptions(args[1], QUERY_OPTIONS)));
      case "queryPage": {
        arity(2);
        if (!isPlain(args[0])) throw new UsageError("`queryPage` takes an object of indexed fields");
        const page = (await r.queryPage!(args[0], checkOptions(args[1], QUERY_OPTIONS))) as { records: unknown[]; cursor: string | undefined };
        return { records: many(page.records), cursor: page.cursor };
      }
      case "aggregate": {
        arity(1);
        if (!isPlain(args[0])) throw new UsageError("`aggregate` takes an object of options");
        // A sum or a minimum is a value: a sensitive field's stays in the main process unless granted.
        for (const m of ["sum", "avg", "min", "max"]) {
          const fields = args[0][m];
          if (Array.isArray(fields) && fields.some((f) => sensitive.includes(f as string))) {
            throw new ForbiddenError(`\`aggregate\` over a sensitive field of \`${t.def.name}\` is not granted to this window`);
          }
        }
        return r.aggregate!(args[0]);
      }
    }
  }
  throw new UsageError(`no operation \`${op}\` on a ${t.def.kind}`);
}

/** A failure as a plain object a renderer receives whole (Electron drops an error's `code` on the way). */
function remoteError(e: unknown, report: (e: unknown) => void): RemoteError {
  if (isCellarError(e)) {
    const x = e as unknown as { entity?: unknown; issues?: RemoteError["issues"] };
    return {
      name: e.name,
      code: e.code,
      message: e.message,
      ...(typeof x.entity === "string" ? { entity: x.entity } : {}),
      ...(e.code === "E_VALIDATION" && Array.isArray(x.issues) ? { issues: x.issues.map((i) => ({ path: [...i.path], message: i.message, code: i.code })) } : {}),
    };
  }
  report(e);
  return { name: "Error", code: "E_INTERNAL", message: "the main process failed to serve this request (reported there)" };
}
