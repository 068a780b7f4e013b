/**
 * Store fuzzing (docs/RELIABILITY.md): small real stores of the example schema, one file of a copy damaged
 * by a mutation chosen by a seeded PRNG, then every read, a close, a second open and every read again.
 * Each mutation is classified; the runner (fuzz-runner.ts) runs batches of them in child processes.
 */
import { crc32 } from "node:zlib";
import fs from "node:fs";
import path from "node:path";
import { ApplicationStateEntity } from "../../src/generated/examples/appstate/v1/app_state_cellar.js";
import { ConversationEntity } from "../../src/generated/examples/conversations/v1/conversations_cellar.js";
import { UserProfileEntity } from "../../src/generated/examples/profile/v1/profile_cellar.js";
import { UserSettingsEntity } from "../../src/generated/examples/settings/v1/settings_cellar.js";
import { TaskEntity } from "../../src/generated/examples/tasks/v1/tasks_cellar.js";
import { isCellarError } from "../../src/runtime/errors.js";
import { type FileIO, nodeFileIO } from "../../src/runtime/platform/io.js";
import { openStore, type StoreOptions } from "../../src/runtime/typed/store.js";

// ---- PRNG ------------------------------------------------------------------------------------------

/** sfc32, seeded from (seed, stream): the same mutation id always gives the same mutation. */
export function prng(seed: number, stream: number): () => number {
  let a = seed >>> 0;
  let b = (stream * 0x9e3779b9) >>> 0;
  let c = 0x6a09e667 ^ stream;
  let d = 1;
  const next = () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

export interface Rng {
  float(): number;
  int(n: number): number;
  range(lo: number, hi: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

export function rngOf(seed: number, id: number): Rng {
  const f = prng(seed, id);
  const int = (n: number) => Math.floor(f() * n);
  return {
    float: f,
    int,
    range: (lo, hi) => lo + int(hi - lo + 1),
    pick: (xs) => xs[int(xs.length)]!,
    chance: (p) => f() < p,
  };
}

// ---- base stores -----------------------------------------------------------------------------------

export type Mode = "none" | "raw";
export const MODES: readonly Mode[] = ["none", "raw"];
export const RAW_KEY = new Uint8Array(32).map((_, i) => (i * 37 + 11) & 0xff);

export const plainEntities = { tasks: TaskEntity, conversations: ConversationEntity, appState: ApplicationStateEntity };
export const sealedEntities = { ...plainEntities, profiles: UserProfileEntity, settings: UserSettingsEntity };

export function entitiesFor(mode: Mode) {
  return mode === "none" ? plainEntities : sealedEntities;
}

/** Real files without fsync: the fuzz is about what reads make of damaged bytes, not about durability. */
const fastIO: FileIO = { ...nodeFileIO(), datasync() {}, fsync() {}, syncDir() {} };

export function optionsFor(mode: Mode, dir: string): StoreOptions {
  const base = { dir, compaction: { auto: false }, migrations: [], io: fastIO } as const;
  return mode === "none" ? { ...base, encryption: "none" } : { ...base, key: RAW_KEY };
}

const STATUSES = [1, 2, 3];
const TAGS = ["home", "work", "urgent", "later", "ünï"];
const PROJECTS = ["p-1", "p-2", "p-3"];
const ts = (s: number) => ({ seconds: BigInt(1_700_000_000 + s), nanos: (s * 7919) % 1_000_000_000 });

function task(i: number, rev = 0) {
  return {
    id: `t-${String(i).padStart(3, "0")}`,
    title: `task ${i} rev ${rev}`,
    status: STATUSES[i % 3]!,
    priority: (i % 4) as 0,
    createdAt: ts(i),
    tags: [TAGS[i % 5]!, ...(i % 2 ? [TAGS[(i + 2) % 5]!] : [])],
    notes: i % 4 === 0 ? "x".repeat(50 + i) : "",
    projectId: PROJECTS[i % 3]!,
    estimateMinutes: i * 5,
  };
}

function conversation(i: number, rev = 0) {
  return {
    id: `c-${i}`,
    title: `conversation ${i}/${rev}`,
    createdAt: ts(i),
    model: "m",
    messages: [
      { id: `m-${i}-0`, role: 1, body: { case: "content", value: `hello ${i}` }, createdAt: ts(i), promptTokens: i },
      { id: `m-${i}-1`, role: 2, body: { case: "toolCall", value: { name: "f", arguments: { a: 1, b: [true, "x"] }, result: `r${rev}` } }, promptTokens: 2 },
    ],
    totalTokens: BigInt(i * 100),
    archived: i % 3 === 0,
    tags: [TAGS[i % 5]!],
  };
}

/** What the fuzz queries with: every index and a few values of each (some absent). */
export const QUERIES: Record<string, Record<string, unknown[]>> = {
  tasks: { status: [1, 2, 3, 0], tags: [...TAGS, "none"], projectId: [...PROJECTS, "p-9"] },
  conversations: { archived: [true, false], tags: [...TAGS] },
};
export const PROBE_KEYS: Record<string, string[]> = {
  tasks: Array.from({ length: 44 }, (_, i) => `t-${String(i).padStart(3, "0")}`),
  conversations: Array.from({ length: 10 }, (_, i) => `c-${i}`),
  profiles: ["u-1", "u-2", "u-3"],
};

/**
 * Build the base store of `mode` in `dir`: records written and compacted into a segment, then more puts,
 * overwrites and deletes left in the journal (several entities, indexes, singletons).
 */
export async function buildBase(mode: Mode, dir: string): Promise<void> {
  fs.rmSync(dir, { recursive: true, force: true });
  const s: any = await openStore(entitiesFor(mode), optionsFor(mode, dir));
  try {
    await s.batch((tx: any) => {
      for (let i = 0; i < 30; i++) tx.tasks.put(task(i));
    });
    for (let i = 0; i < 6; i++) await s.conversations.put(conversation(i));
    await s.appState.update({ openPanels: ["a", "b"], activePanel: "a", detachedWindows: { w: { x: 1, y: 2, width: 300, height: 400 } } });
    if (mode === "raw") {
      await s.settings.update({ language: "fr", aiProvider: { model: "m", apiKey: "sk-secret" } });
      for (let i = 1; i <= 3; i++) await s.profiles.put({ id: `u-${i}`, displayName: `user ${i}`, email: `u${i}@example.com`, authToken: `tok-${i}` });
    }
    await s.compact();
    // Journal records over the segment: new keys, overwrites, deletes, a singleton update.
    await s.batch((tx: any) => {
      for (let i = 30; i < 40; i++) tx.tasks.put(task(i));
    });
    for (let i = 0; i < 5; i++) await s.tasks.put(task(i * 3, 1));
    for (const k of ["t-001", "t-004", "t-031"]) await s.tasks.delete(k);
    await s.conversations.put(conversation(2, 1));
    await s.conversations.put(conversation(7));
    await s.conversations.delete("c-4");
    await s.appState.update({ activePanel: "b" });
    if (mode === "raw") await s.settings.update({ theme: 2 });
  } finally {
    await s.close();
  }
  fs.rmSync(path.join(dir, "LOCK"), { force: true });
}

/** The data files of a store (not `LOCK`, not folders). */
export function storeFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n !== "LOCK" && fs.statSync(path.join(dir, n)).isFile())
    .sort();
}

// ---- mutations -------------------------------------------------------------------------------------

export interface Mutation {
  id: number;
  mode: Mode;
  file: string;
  kind: string;
  /** Human-readable parameters (offsets, lengths), for the report. */
  detail: string;
}

interface FrameSpan {
  start: number;
  end: number;
}

/** Frames of a Cellar file (32-byte header, then crc | len | 16 header bytes | payload), walked while they check. */
export function frameSpans(b: Uint8Array): FrameSpan[] {
  const out: FrameSpan[] = [];
  if (b.length < 32) return out;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 32;
  while (p + 24 <= b.length) {
    const len = v.getUint32(p + 4, true);
    if (len === 0 && v.getUint32(p, true) === 0) break;
    const end = p + 24 + len;
    if (end > b.length || v.getUint32(p, true) !== crc32(b.subarray(p + 4, end))) break;
    out.push({ start: p, end });
    p = end;
  }
  return out;
}

/** Bytes up to the last non-zero one (a journal is preallocated with zeros). */
function usedLength(b: Uint8Array): number {
  let n = b.length;
  while (n > 0 && b[n - 1] === 0) n--;
  return n;
}

/** Recompute the checksums (file header, frames, segment footer) over ranges the mutation touched. */
function fixChecksums(b: Uint8Array, frames: FrameSpan[], touched: [number, number]): void {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const [lo, hi] = touched;
  if (b.length >= 32 && lo < 32) v.setUint32(28, crc32(b.subarray(0, 28)), true);
  for (const f of frames) {
    if (f.end <= b.length && lo < f.end && hi > f.start) v.setUint32(f.start, crc32(b.subarray(f.start + 4, f.end)), true);
  }
  const footer = b.length - 24;
  if (footer >= 32 && hi > footer && b[b.length - 8] === 0x43) v.setUint32(footer + 12, crc32(b.subarray(footer, footer + 12)), true);
}

const KINDS = [
  "flip-bytes",
  "flip-bit",
  "set-zero",
  "set-ff",
  "set-random",
  "truncate",
  "truncate-frame",
  "extend",
  "splice",
  "duplicate-frame",
  "drop-frame",
  "swap-files",
  "remove-file",
] as const;

/**
 * Apply mutation `id` (drawn from `seed`) to the store copy in `dir`. Changes one file (two for a swap).
 * For a share of the in-place edits the checksums are recomputed, so the damage reaches the decoders
 * behind them (a plaintext store has nothing else; an encrypted store's seal still refuses it).
 */
export function mutate(dir: string, mode: Mode, seed: number, id: number): Mutation {
  const r = rngOf(seed, id);
  const files = storeFiles(dir);
  // Journal and segment most often: they hold the records.
  const weighted = files.flatMap((f) => (f.startsWith("journal-") || f.startsWith("segment-") ? [f, f, f, f] : [f]));
  const file = r.pick(weighted);
  const p = path.join(dir, file);
  const orig = new Uint8Array(fs.readFileSync(p));
  const frames = frameSpans(orig);
  const used = Math.max(usedLength(orig), 1);
  const kind = r.pick(KINDS);
  const fix = r.chance(mode === "none" ? 0.5 : 0.2);
  let b: Uint8Array = orig.slice();
  let detail = "";
  // An offset mostly inside the used bytes, inside a frame when there are frames.
  const offset = () => {
    if (frames.length && r.chance(0.7)) {
      const f = r.pick(frames);
      return r.chance(0.3) ? f.start + r.int(24) : r.range(f.start, f.end - 1);
    }
    return r.int(used);
  };
  const smallLen = () => (r.chance(0.8) ? r.range(1, 16) : r.range(17, 600));
  let touched: [number, number] = [0, 0];
  switch (kind) {
    case "flip-bytes": {
      const n = r.range(1, 4);
      const at: number[] = [];
      for (let i = 0; i < n; i++) {
        const o = offset();
        b[o] = b[o]! ^ r.range(1, 255);
        at.push(o);
      }
      touched = [Math.min(...at), Math.max(...at) + 1];
      detail = `at ${at.join(",")}`;
      break;
    }
    case "flip-bit": {
      const o = offset();
      b[o] = b[o]! ^ (1 << r.int(8));
      touched = [o, o + 1];
      detail = `at ${o}`;
      break;
    }
    case "set-zero":
    case "set-ff":
    case "set-random": {
      const o = offset();
      const n = Math.min(smallLen(), b.length - o);
      for (let i = o; i < o + n; i++) b[i] = kind === "set-zero" ? 0 : kind === "set-ff" ? 0xff : r.int(256);
      touched = [o, o + n];
      detail = `${n} bytes at ${o}`;
      break;
    }
    case "truncate": {
      const n = r.int(used + 1);
      b = b.subarray(0, n);
      detail = `to ${n}`;
      break;
    }
    case "truncate-frame": {
      // At a frame boundary, or zero from there on (a file that ends early).
      const f = frames.length ? r.pick(frames) : { start: Math.min(32, b.length), end: b.length };
      if (r.chance(0.5)) {
        b = b.subarray(0, f.start);
        detail = `cut at ${f.start}`;
      } else {
        b.fill(0, f.start);
        detail = `zeroed from ${f.start}`;
      }
      break;
    }
    case "extend": {
      const n = r.chance(0.7) ? r.range(1, 64) : r.range(65, 40_000);
      const byte = r.pick([0, 1, 0xff, -1]);
      const tail = new Uint8Array(n).map(() => (byte < 0 ? r.int(256) : byte));
      // A preallocated journal is extended in its zero space; any other file at its end.
      const at = file.startsWith("journal-") && r.chance(0.7) ? used : b.length;
      const out = new Uint8Array(Math.max(b.length, at + n));
      out.set(b);
      out.set(tail, at);
      b = out;
      touched = [at, at + n];
      detail = `${n} bytes of ${byte < 0 ? "random" : byte} at ${at}`;
      break;
    }
    case "splice": {
      const n = Math.min(smallLen(), used);
      const from = r.int(Math.max(used - n, 1));
      const to = offset();
      const chunk = orig.slice(from, from + n);
      const out = r.chance(0.5) ? b : new Uint8Array(b.length + chunk.length);
      if (out !== b) {
        out.set(b.subarray(0, to));
        out.set(b.subarray(to), to + chunk.length);
        b = out;
      }
      b.set(chunk.subarray(0, Math.max(0, b.length - to)), to);
      touched = [to, to + n];
      detail = `${n} bytes from ${from} to ${to}`;
      break;
    }
    case "duplicate-frame":
    case "drop-frame": {
      if (!frames.length) {
        b = b.subarray(0, Math.floor(b.length / 2));
        detail = "no frames: halved";
        break;
      }
      const i = r.int(frames.length);
      const f = frames[i]!;
      const fr = orig.slice(f.start, f.end);
      if (kind === "drop-frame") {
        const out = new Uint8Array(b.length - fr.length);
        out.set(b.subarray(0, f.start));
        out.set(b.subarray(f.end), f.start);
        b = out;
        detail = `frame ${i} at ${f.start}`;
      } else if (r.chance(0.5)) {
        // inserted after itself
        const out = new Uint8Array(b.length + fr.length);
        out.set(b.subarray(0, f.end));
        out.set(fr, f.end);
        out.set(b.subarray(f.end), f.end + fr.length);
        b = out;
        detail = `frame ${i} inserted after itself`;
      } else {
        // written over the next frame
        b.set(fr.subarray(0, Math.max(0, b.length - f.end)), f.end);
        detail = `frame ${i} written over the next`;
      }
      break;
    }
    case "swap-files": {
      const other = r.pick(files.filter((f) => f !== file).concat(file));
      if (other !== file) {
        const q = path.join(dir, other);
        const ob = fs.readFileSync(q);
        fs.writeFileSync(q, orig);
        b = new Uint8Array(ob);
      }
      detail = `with ${other}`;
      break;
    }
    case "remove-file": {
      fs.rmSync(p);
      return { id, mode, file, kind, detail: "" };
    }
  }
  if (fix && touched[1] > touched[0]) {
    fixChecksums(b, frameSpans(orig).filter((f) => f.end <= b.length), touched);
    detail += " (checksums recomputed)";
  }
  fs.writeFileSync(p, b);
  return { id, mode, file, kind, detail };
}

// ---- exercising a store ----------------------------------------------------------------------------

export type Outcome = "ok" | "typed" | "untyped" | "wrong-type" | "reopen-failed" | "timeout" | "crash";
export const BUG_OUTCOMES: readonly Outcome[] = ["untyped", "wrong-type", "reopen-failed", "timeout", "crash"];

export interface Finding {
  outcome: Outcome;
  /** Where: `open`, `open#2`, `tasks.query(status)`, … */
  op: string;
  /** Error name and message, or what was wrong with the result. */
  what: string;
  /** The first frames of the stack inside src/ (for grouping and attribution). */
  where: string;
}

export interface Result {
  mutation: Mutation;
  outcome: Outcome;
  /** Typed error codes seen (opens and reads). */
  codes: string[];
  findings: Finding[];
  /** The first open found damage (its recovery report is not empty). */
  reported: boolean;
}

function srcFrames(e: unknown): string {
  const stack = e instanceof Error ? (e.stack ?? "") : "";
  return stack
    .split("\n")
    .filter((l) => l.includes("/src/"))
    .slice(0, 3)
    .map((l) => l.trim().replace(/^at /, "").replace(/\(?\/.*\/src\//, "src/").replace(/\)$/, ""))
    .join(" < ");
}

const isRecord = (v: unknown): boolean => typeof v === "object" && v !== null && !Array.isArray(v);

class Checker {
  codes = new Set<string>();
  findings: Finding[] = [];
  constructor(private readonly pass: string) {}

  async call<T>(op: string, f: () => Promise<T>, check: (v: T) => string | null): Promise<T | undefined> {
    try {
      const v = await f();
      const bad = check(v);
      if (bad) this.findings.push({ outcome: "wrong-type", op: `${op}${this.pass}`, what: bad, where: "" });
      return v;
    } catch (e) {
      if (isCellarError(e)) this.codes.add(e.code);
      else {
        const err = e as Error;
        this.findings.push({
          outcome: "untyped",
          op: `${op}${this.pass}`,
          what: `${err?.name ?? typeof e}: ${String(err?.message ?? e).slice(0, 160)}`,
          where: srcFrames(e),
        });
      }
      return undefined;
    }
  }
}

const arrayOf = (pred: (x: unknown) => boolean, what: string) => (v: unknown) =>
  !Array.isArray(v) ? `not an array (${typeof v})` : v.every(pred) ? null : `an element is not ${what}`;

/** Every read of every entity of `store`. */
async function readAll(store: any, mode: Mode, c: Checker): Promise<void> {
  for (const [prop, def] of Object.entries(entitiesFor(mode))) {
    const repo = store[prop];
    if (def.kind === "singleton") {
      await c.call(`${prop}.get`, () => repo.get(), (v) => (isRecord(v) ? null : `not an object (${typeof v})`));
      continue;
    }
    const keyField = (def as { key: string }).key;
    await c.call(`${prop}.count`, () => repo.count(), (v) => (Number.isInteger(v) && (v as number) >= 0 ? null : `not a count (${String(v)})`));
    const keys = (await c.call(`${prop}.keys`, () => repo.keys(), arrayOf((k) => typeof k === "string", "a string"))) as string[] | undefined;
    await c.call(`${prop}.list`, () => repo.list(), arrayOf(isRecord, "a record"));
    await c.call(`${prop}.list(page)`, () => repo.list({ offset: 2, limit: 5 }), arrayOf(isRecord, "a record"));
    await c.call(
      `${prop}.iterate`,
      async () => {
        const out: unknown[] = [];
        for await (const x of repo.iterate()) out.push(x);
        return out;
      },
      arrayOf(isRecord, "a record"),
    );
    const probe = new Set([...(PROBE_KEYS[prop] ?? []), ...(Array.isArray(keys) ? keys.slice(0, 64) : [])]);
    for (const k of probe) {
      await c.call(`${prop}.get`, () => repo.get(k), (v) =>
        v === undefined ? null : !isRecord(v) ? `not a record (${typeof v})` : null,
      );
      await c.call(`${prop}.has`, () => repo.has(k), (v) => (typeof v === "boolean" ? null : `not a boolean (${typeof v})`));
    }
    for (const [field, values] of Object.entries(QUERIES[prop] ?? {})) {
      for (const value of values) {
        await c.call(`${prop}.query(${field})`, () => repo.query({ [field]: value }), arrayOf(isRecord, "a record"));
      }
    }
    void keyField;
  }
  await c.call(
    "inspect",
    async () => {
      const out: unknown[] = [];
      for await (const r of store.inspect()) out.push(r);
      return out;
    },
    arrayOf((x) => isRecord(x) && typeof (x as { entity?: unknown }).entity === "string" && (x as { json?: unknown }).json !== undefined, "an inspected record"),
  );
}

/** Open, read everything, close; twice. Classify what happened. */
export async function exercise(dir: string, mutation: Mutation): Promise<Result> {
  const mode = mutation.mode;
  const codes = new Set<string>();
  const findings: Finding[] = [];
  let reported = false;
  let firstOpened = false;
  for (const pass of ["", "#2"]) {
    const c = new Checker(pass);
    let store: any;
    try {
      store = await openStore(entitiesFor(mode), optionsFor(mode, dir));
    } catch (e) {
      if (isCellarError(e)) {
        codes.add(e.code);
        if (firstOpened) findings.push({ outcome: "reopen-failed", op: "open#2", what: `${e.code}: ${e.message.slice(0, 160)}`, where: srcFrames(e) });
      } else {
        const err = e as Error;
        findings.push({ outcome: "untyped", op: `open${pass}`, what: `${err?.name}: ${String(err?.message).slice(0, 160)}`, where: srcFrames(e) });
      }
      break;
    }
    if (pass === "") {
      firstOpened = true;
      const rep = store.recoveryReport;
      reported = Boolean(rep && (rep.truncatedTail || rep.damaged.length || rep.removedFiles.length));
    }
    try {
      await readAll(store, mode, c);
    } finally {
      await c.call("close", () => store.close(), () => null);
    }
    for (const code of c.codes) codes.add(code);
    findings.push(...c.findings);
  }
  const order: Outcome[] = ["untyped", "wrong-type", "reopen-failed"];
  const worst = order.find((o) => findings.some((f) => f.outcome === o));
  return { mutation, outcome: worst ?? (codes.size ? "typed" : "ok"), codes: [...codes].sort(), findings, reported };
}
