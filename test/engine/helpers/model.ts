/** Shared by crash tests and their child processes: the key and value scheme, and the log checker. */
import fs from "node:fs";
import type { WriteOp } from "../../../src/runtime/storage/engine.js";

export const TEST_KEY = new Uint8Array(32).map((_, i) => (i * 37 + 11) & 0xff);

export function valueFor(key: string, n: number): Uint8Array {
  return Buffer.from(`${key}#${n}#`.padEnd(120, "."));
}

interface Issued {
  id: number;
  tag: string;
  ops: [string, string | null][];
}

/** Parse a crash-writer log: issued ops in order and the set of acknowledged ids. */
/**
 * A writer child's side of that log: `say` a line (a synchronous write: the page cache survives SIGKILL), and
 * `issue` ops to the engine, logged before (`I <id> <tag> <ops>`) and once acknowledged (`A <id>`).
 */
export function writeLog(logPath: string, engine: { write(ops: readonly WriteOp[]): Promise<void> }): { say(line: string): void; issue(ops: WriteOp[], tag: string): Promise<void> } {
  const fd = fs.openSync(logPath, "a");
  const say = (line: string) => void fs.writeSync(fd, line + "\n");
  let opId = 0;
  const issue = (ops: WriteOp[], tag: string): Promise<void> => {
    const id = ++opId;
    say(`I ${id} ${tag} ${JSON.stringify(ops.map((o) => (o.op === "put" ? [o.key, Buffer.from(o.value).toString()] : [o.key, null])))}`);
    return engine.write(ops).then(() => say(`A ${id}`));
  };
  return { say, issue };
}

export function readLog(file: string): { issued: Issued[]; acked: Set<number>; lines: string[] } {
  const lines = fs.readFileSync(file, "utf8").split("\n");
  const issued: Issued[] = [];
  const acked = new Set<number>();
  for (const line of lines) {
    if (line.startsWith("I ")) {
      const m = /^I (\d+) (\w+) (.*)$/.exec(line);
      if (!m) continue; // a torn last line: the op was never issued to the engine
      try {
        issued.push({ id: Number(m[1]), tag: m[2]!, ops: JSON.parse(m[3]!) });
      } catch {
        // torn JSON at the end of the log: the write call had not happened yet
      }
    } else if (/^A \d+$/.test(line)) acked.add(Number(line.slice(2)));
  }
  return { issued, acked, lines };
}

/**
 * Check a recovered store against the log. Every key must hold the state after
 * its last acknowledged op, or after an op issued later (in flight at the kill);
 * no key may hold anything never issued; batches are all-or-none.
 * Returns a list of violations (empty when the store is right).
 */
export function checkAgainstLog(
  stored: Map<string, string>,
  log: { issued: Issued[]; acked: Set<number> },
  initial: Map<string, string | null> = new Map(),
): string[] {
  const problems: string[] = [];
  // per key: list of [opIndex, state, acked]
  const hist = new Map<string, { state: string | null; acked: boolean; id: number }[]>();
  for (const is of log.issued) {
    for (const [k, v] of is.ops) {
      let h = hist.get(k);
      if (!h) hist.set(k, (h = []));
      h.push({ state: v, acked: log.acked.has(is.id), id: is.id });
    }
  }
  const keys = new Set([...hist.keys(), ...stored.keys(), ...initial.keys()]);
  for (const k of keys) {
    const h = hist.get(k) ?? [];
    let lastAcked = -1;
    h.forEach((e, i) => {
      if (e.acked) lastAcked = i;
    });
    const allowed = new Set<string | null>();
    if (lastAcked === -1) allowed.add(initial.has(k) ? initial.get(k)! : null);
    for (let i = Math.max(lastAcked, 0); i < h.length; i++) if (i >= lastAcked) allowed.add(h[i]!.state);
    const got = stored.has(k) ? stored.get(k)! : null;
    if (!allowed.has(got)) {
      problems.push(
        `key ${k}: found ${got === null ? "nothing" : JSON.stringify(got.slice(0, 30))}, allowed ${[...allowed]
          .map((a) => (a === null ? "nothing" : JSON.stringify(a.slice(0, 30))))
          .join(" | ")}`,
      );
    }
  }
  for (const is of log.issued) {
    if (is.tag !== "batch") continue;
    const present = is.ops.filter(([k, v]) => stored.get(k) === v).length;
    if (present !== 0 && present !== is.ops.length) problems.push(`batch ${is.id}: ${present} of ${is.ops.length} records survived`);
    if (log.acked.has(is.id) && present !== is.ops.length) problems.push(`acknowledged batch ${is.id} lost`);
  }
  return problems;
}
