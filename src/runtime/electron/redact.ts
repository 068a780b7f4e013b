/**
 * Sensitive fields on their way to a renderer: replaced by `"[redacted]"` as `store.inspect()` marks them (a
 * path through a list or a map redacts that whole field), unless the allow-list grants the entity
 * `sensitive: true`. Records from the store are frozen: a redacted record is a copy, the stored one is
 * untouched.
 */

export const REDACTED = "[redacted]";

type Obj = { [k: string]: unknown };

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** `record` with every sensitive path (local names, dotted) that it holds set to `"[redacted]"`. */
export function redactRecord(record: unknown, paths: readonly string[]): unknown {
  if (!paths.length || !isObj(record)) return record;
  const out: Obj = { ...record };
  for (const path of paths) {
    const parts = path.split(".");
    let at = out;
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i]!;
      if (!(name in at) || at[name] === undefined) break;
      const child = at[name];
      if (i === parts.length - 1 || !isObj(child) || Array.isArray(child)) {
        at[name] = REDACTED;
        break;
      }
      const copy: Obj = { ...child };
      at[name] = copy;
      at = copy;
    }
  }
  return out;
}

/** The field at dotted `path` of `value`, for a singleton's `get(path)` answered from a redacted value. */
export function pick(value: unknown, path: string): unknown {
  let at = value;
  for (const name of path.split(".")) {
    if (!isObj(at) || !Object.hasOwn(at, name)) return undefined;
    at = at[name];
  }
  return at;
}

/**
 * True when a write's input holds `"[redacted]"` at a sensitive path: a record a renderer read back and
 * wrote again, which would overwrite the secret with the marker. Such a write is refused.
 */
export function holdsRedacted(input: unknown, paths: readonly string[]): boolean {
  for (const path of paths) {
    let at = input;
    for (const name of path.split(".")) {
      if (at === REDACTED) return true;
      if (!isObj(at) || !Object.hasOwn(at, name)) {
        at = undefined;
        break;
      }
      at = at[name];
    }
    if (at === REDACTED) return true;
  }
  return false;
}
