/**
 * The protocol between `exposeStore` (main process) and `exposeStoreInRenderer` (preload), over Electron IPC:
 * one `invoke` channel for requests, one channel the main process `send`s watch updates on. Pure: no Node
 * and no store, so a preload bundle that imports it stays small and runs sandboxed.
 *
 * Everything here is checked in the main process against a renderer that may be compromised: the request's
 * shape, the value types it may hold (what Electron's structured clone can carry, narrowed to what a record
 * input needs), its depth and size, and keys that could pollute a prototype.
 */

/** Request channel (`ipcMain.handle`) and update channel (`webContents.send`) for a channel prefix. */
export function channels(prefix: string): { call: string; update: string } {
  return { call: `${prefix}:call`, update: `${prefix}:update` };
}

/** Operations a renderer may be granted on a collection. */
export const COLLECTION_OPS = ["get", "getMany", "has", "count", "list", "keys", "query", "queryPage", "aggregate", "put", "putMany", "update", "delete", "watch"] as const;
/** Operations a renderer may be granted on a singleton. */
export const SINGLETON_OPS = ["get", "set", "update", "reset", "watch"] as const;

export type CollectionOperation = (typeof COLLECTION_OPS)[number];
export type SingletonOperation = (typeof SINGLETON_OPS)[number];
export type Operation = CollectionOperation | SingletonOperation;

/** Shorthands of an allow-list: `read` = every read, `write` = every write (`watch` is granted by name). */
export const OP_GROUPS = {
  read: ["get", "getMany", "has", "count", "list", "keys", "query", "queryPage", "aggregate"],
  write: ["put", "putMany", "update", "delete", "set", "reset"],
} as const satisfies Record<string, readonly Operation[]>;

/** A request: an entity's operation with its arguments, or a bridge operation (`entity` is `""`). */
export interface Request {
  readonly entity: string;
  readonly op: string;
  readonly args: readonly unknown[];
}

/** What a watch update carries: the watch's id (from the `watch` reply), the value and its commit's `seq`. */
export interface UpdateMessage {
  readonly id: number;
  readonly value: unknown;
  readonly seq: number;
}

/**
 * A failure as a renderer receives it: a plain object (Electron's IPC and `contextBridge` both turn an `Error`
 * into a bare `Error` with its message only, so the `code` would be lost). `code` is the `CellarError`'s code,
 * or `"E_INTERNAL"` for a failure in the main process that is not Cellar's (its message is not sent).
 */
export interface RemoteError {
  readonly name: string;
  readonly code: string;
  readonly message: string;
  /** `E_VALIDATION`: the issues (path, message, validator code; never the value). */
  readonly issues?: readonly { readonly path: readonly (string | number)[]; readonly message: string; readonly code: string }[];
  /** The entity the failure concerns, when the error names one. */
  readonly entity?: string;
}

export type Reply = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: RemoteError };

/** Limits on one request's arguments, checked in main before anything else. */
export interface InputLimits {
  /** Bytes of strings (UTF-16 code units) and byte arrays, plus 8 per other value and per key. Default 8 MiB. */
  maxBytes: number;
  /** Nesting of objects and arrays. Default 32. */
  maxDepth: number;
}

export const DEFAULT_LIMITS: InputLimits = { maxBytes: 8 * 1024 * 1024, maxDepth: 32 };

/** Keys refused anywhere in a renderer's input: assigning them can reach an object's prototype. */
const POISON = new Set(["__proto__", "constructor", "prototype"]);

/** Why a renderer's input was refused: `kind` picks the error (`limit` → E_LIMIT, else E_USAGE). */
export class InputProblem {
  constructor(
    readonly kind: "limit" | "usage",
    readonly message: string,
  ) {}
}

/**
 * Checks that `value` holds only what a request may carry: `undefined`, `null`, booleans, numbers, bigints,
 * strings, `Uint8Array`s, `Date`s, plain arrays and plain objects (no other class, no accessor, no prototype key),
 * within `limits`. Returns the problem, or null. Iterative, so a deep value cannot exhaust the stack.
 */
export function checkInput(value: unknown, limits: InputLimits): InputProblem | null {
  let bytes = 0;
  const stack: { v: unknown; depth: number; at: string }[] = [{ v: value, depth: 0, at: "(argument)" }];
  while (stack.length) {
    const { v, depth, at } = stack.pop()!;
    if (v === null || v === undefined || typeof v === "boolean" || typeof v === "number" || typeof v === "bigint") {
      bytes += 8;
    } else if (typeof v === "string") {
      bytes += v.length;
    } else if (typeof v !== "object") {
      return new InputProblem("usage", `a ${typeof v} at \`${at}\` cannot cross from a renderer`);
    } else if (v instanceof Uint8Array && Object.getPrototypeOf(v) === Uint8Array.prototype) {
      bytes += v.byteLength;
    } else if (v instanceof Date && Object.getPrototypeOf(v) === Date.prototype) {
      bytes += 8; // a query's or an aggregate's time (the repository refuses it where a record field wants a Timestamp)
    } else {
      if (depth >= limits.maxDepth) return new InputProblem("limit", `input nested deeper than ${limits.maxDepth} levels at \`${at}\``);
      const isArray = Array.isArray(v);
      const proto = Object.getPrototypeOf(v);
      if (isArray ? proto !== Array.prototype : proto !== Object.prototype && proto !== null) {
        return new InputProblem("usage", `only plain objects, arrays and byte arrays can cross from a renderer: \`${at}\` is not one`);
      }
      for (const k of Reflect.ownKeys(v)) {
        if (typeof k === "symbol") return new InputProblem("usage", `a symbol key at \`${at}\``);
        if (POISON.has(k)) return new InputProblem("usage", `the key \`${k}\` at \`${at}\` is refused (it could reach a prototype)`);
        if (isArray && k === "length") continue;
        if (isArray && !/^(0|[1-9]\d*)$/.test(k)) return new InputProblem("usage", `an array with a named property at \`${at}\``);
        const d = Object.getOwnPropertyDescriptor(v, k)!;
        if (!("value" in d)) return new InputProblem("usage", `an accessor at \`${at}\``);
        bytes += 8 + k.length;
        stack.push({ v: d.value, depth: depth + 1, at: isArray ? `${at}[${k}]` : `${at}.${k.length > 64 ? k.slice(0, 64) + "…" : k}` });
      }
    }
    if (bytes > limits.maxBytes) return new InputProblem("limit", `input larger than ${limits.maxBytes} bytes`);
  }
  return null;
}

/** A request's outer shape: `{ entity: string, op: string, args: unknown[] }` and nothing else. */
export function checkRequestShape(req: unknown): req is Request {
  if (typeof req !== "object" || req === null || Array.isArray(req) || Object.getPrototypeOf(req) !== Object.prototype) return false;
  const keys = Reflect.ownKeys(req);
  if (keys.length !== 3 || !keys.every((k) => k === "entity" || k === "op" || k === "args")) return false;
  const r = req as Record<string, unknown>;
  return typeof r.entity === "string" && r.entity.length <= 256 && typeof r.op === "string" && r.op.length <= 64 && Array.isArray(r.args) && r.args.length <= 4;
}
