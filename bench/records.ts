/**
 * The records every system stores: ~500-byte task records generated from a fixed seed, so all systems
 * store byte-for-byte the same values and read the same keys.
 *
 * Record `i` depends only on (BENCH_SEED, i): see `rngFor`. Peers store `JSON.stringify(record)`;
 * Cellar stores the same object through its generated repository.
 */
import { BENCH_SEED, rngFor, type Rng } from "./prng.js";

const STREAM_TASK = 1;
const STREAM_KEY = 2;
const STREAM_SETTINGS = 3;

// A small vocabulary with a skewed distribution, so text compresses roughly like real task notes do
// (not like random bytes, and not like one repeated word).
const WORDS = (
  "the a to and of for in on with review draft update fix call send plan write read check meeting " +
  "report budget design release notes client team weekly daily sprint backlog invoice email follow up " +
  "deadline project roadmap feedback slides demo bug test deploy migrate refactor schedule agenda " +
  "onboarding hiring interview contract legal sign-off quarterly metrics dashboard analytics survey " +
  "research prototype user story estimate priority blocker dependency review-comments documentation " +
  "api database backup security audit performance latency memory cache index query schema storage " +
  "journal compaction encryption key rotation settings preferences theme window focus timer pomodoro " +
  "break reminder habit goal streak note idea inbox archive tag label project-x kazari desktop sync"
).split(" ");

const STATUSES = ["TASK_STATUS_TODO", "TASK_STATUS_IN_PROGRESS", "TASK_STATUS_DONE", "TASK_STATUS_BLOCKED"] as const;
const PRIORITIES = ["PRIORITY_LOW", "PRIORITY_MEDIUM", "PRIORITY_HIGH", "PRIORITY_URGENT"] as const;
const TAGS = ["work", "home", "errand", "deep-work", "admin", "health", "finance", "learning", "review", "waiting"];

function word(rng: Rng): string {
  // Squaring the uniform value skews picks toward the front of the list (common words).
  const u = rng.next();
  return WORDS[Math.floor(u * u * WORDS.length)] as string;
}

function sentence(rng: Rng, minWords: number, maxWords: number): string {
  const n = minWords + rng.int(maxWords - minWords + 1);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(word(rng));
  const s = parts.join(" ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function uuidFrom(rng: Rng): string {
  const hex = (n: number): string => n.toString(16).padStart(8, "0");
  const raw = hex(rng.u32()) + hex(rng.u32()) + hex(rng.u32()) + hex(rng.u32());
  // Version 4 / variant 1 bits, so the string is a well-formed UUID.
  const v = raw.slice(0, 12) + "4" + raw.slice(13, 16) + "89ab"[rng.int(4)] + raw.slice(17);
  return `${v.slice(0, 8)}-${v.slice(8, 12)}-${v.slice(12, 16)}-${v.slice(16, 20)}-${v.slice(20, 32)}`;
}

/** The key of record `i`: a UUID, so inserts land in random key order (as in a real app). */
export function taskKey(i: number): string {
  return uuidFrom(rngFor(BENCH_SEED, STREAM_KEY, i));
}

/**
 * A task record, as a plain JSON-compatible object. The shape follows the example schema's Task
 * message (see `toCellarTask` in adapters/cellar.ts for the mapping onto the generated type).
 */
export interface TaskRecord {
  id: string;
  title: string;
  description: string;
  status: (typeof STATUSES)[number];
  priority: (typeof PRIORITIES)[number];
  tags: string[];
  projectId: string;
  estimateMinutes: number;
  /** Milliseconds since the Unix epoch. */
  createdAtMs: number;
  updatedAtMs: number;
  dueAtMs: number;
  completed: boolean;
}

const EPOCH_2025 = Date.UTC(2025, 0, 1);

/** Record `i` of the benchmark stream (≈ 500 bytes as JSON). */
export function makeTask(i: number): TaskRecord {
  const rng = rngFor(BENCH_SEED, STREAM_TASK, i);
  const createdAtMs = EPOCH_2025 + rng.int(365 * 86_400) * 1000;
  const tagCount = 1 + rng.int(3);
  const tags: string[] = [];
  for (let t = 0; t < tagCount; t++) tags.push(rng.pick(TAGS));
  const status = rng.pick(STATUSES);
  return {
    id: taskKey(i),
    title: sentence(rng, 3, 8),
    description: sentence(rng, 24, 36) + ".",
    status,
    priority: rng.pick(PRIORITIES),
    tags,
    projectId: `project-${rng.int(40)}`,
    estimateMinutes: 5 * (1 + rng.int(48)),
    createdAtMs,
    updatedAtMs: createdAtMs + rng.int(30 * 86_400) * 1000,
    dueAtMs: createdAtMs + rng.int(60 * 86_400) * 1000,
    completed: status === "TASK_STATUS_DONE",
  };
}

/** Records `[start, start + count)`. */
export function makeTasks(start: number, count: number): TaskRecord[] {
  const out: TaskRecord[] = new Array(count);
  for (let k = 0; k < count; k++) out[k] = makeTask(start + k);
  return out;
}

/** A settings patch, as an app would send on a preference change. */
export interface SettingsPatch {
  theme: "light" | "dark" | "system";
  focusMinutes: number;
  lastOpenedTaskId: string;
}

export function makeSettingsPatch(i: number): SettingsPatch {
  const rng = rngFor(BENCH_SEED, STREAM_SETTINGS, i);
  return {
    theme: rng.pick(["light", "dark", "system"] as const),
    focusMinutes: 5 * (1 + rng.int(12)),
    lastOpenedTaskId: taskKey(rng.int(1000)),
  };
}

/** Bytes of `JSON.stringify(record)` summed over records `[0, count)`: the "same records as JSON". */
export function jsonBytes(count: number): number {
  let total = 0;
  for (let i = 0; i < count; i++) total += Buffer.byteLength(JSON.stringify(makeTask(i)));
  return total;
}
