/** Shared by the follower tests (test/share/follower-engine*.test.ts): a store's view, its files, and commit events. */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Engine } from "../../../src/runtime/storage/engine.js";

/** Every record of entity `e`: key → value as text. */
export function view(engine: Engine): Map<string, string> {
  const out = new Map<string, string>();
  for (const k of engine.keys("e")) out.set(k, Buffer.from(engine.get("e", k)!.value).toString());
  return out;
}

/** Every file under `dir` (recursively) with its size, mtime and sha256: equal snapshots mean no file changed. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        out.set(path.relative(dir, p) + "/", "dir");
        walk(p);
        continue;
      }
      const st = fs.statSync(p);
      const hash = crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex");
      out.set(path.relative(dir, p), `${st.size} ${st.mtimeMs} ${hash}`);
    }
  };
  walk(dir);
  return out;
}

/**
 * Follow `engine`'s commit events: a mirror of its records built from `onCommit` alone (re-read whole at an
 * `onResync`), and the problems seen in the events' seq order (each above the last event's: a commit whose ops
 * changed nothing, a delete of an absent key, has no event; a resync never goes back).
 */
export function mirror(engine: Engine): { records: Map<string, string>; problems: string[]; commits: number; resyncs: number } {
  const m = { records: view(engine), problems: [] as string[], commits: 0, resyncs: 0 };
  let last = engine.lastSeq;
  engine.onCommit = (ops, seq) => {
    if (seq <= last) m.problems.push(`commit ${seq} after ${last}`);
    last = seq;
    m.commits++;
    for (const o of ops) {
      if (o.entity !== "e") continue;
      if (o.op === "put") m.records.set(o.key, Buffer.from(o.value).toString());
      else m.records.delete(o.key);
    }
  };
  engine.onResync = (seq) => {
    if (seq < last) m.problems.push(`resync ${seq} after ${last}`);
    last = seq;
    m.resyncs++;
    m.records = view(engine);
  };
  return m;
}

/** The state a log of writes leaves once every write in it is applied, in issue order. */
export function finalState(issued: { ops: [string, string | null][] }[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const is of issued) for (const [k, v] of is.ops) v === null ? out.delete(k) : out.set(k, v);
  return out;
}
