/**
 * The records every system stores: ~500-byte task records of the generated `Task` type
 * (schemas/examples/tasks/v1/tasks.proto), generated from a fixed seed so all systems store the same
 * values under the same keys and read the same keys.
 *
 * Each record comes in the two forms the systems take it, built before any clock starts:
 * - `input`: the generated Task's init object, what Cellar's `store.tasks.put()` takes;
 * - `json`: the same Task in protobuf's canonical JSON mapping (what `toJson(TaskSchema, …)` returns:
 *   enum names, RFC 3339 timestamps), what the peers `JSON.stringify`. test/bench-smoke.test.ts checks
 *   that the two agree.
 *
 * Record `i` depends only on (BENCH_SEED, i): see `rngFor`.
 */
import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import { GridDensity, Theme, type UserSettingsSchema } from "../src/generated/examples/settings/v1/settings_pb.js";
import { Priority, TaskStatus, type TaskSchema } from "../src/generated/examples/tasks/v1/tasks_pb.js";
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

const STATUSES = [TaskStatus.TODO, TaskStatus.IN_PROGRESS, TaskStatus.DONE, TaskStatus.ARCHIVED] as const;
const PRIORITIES = [Priority.LOW, Priority.MEDIUM, Priority.HIGH, Priority.URGENT] as const;
const TAGS = ["work", "home", "errand", "deep-work", "admin", "health", "finance", "learning", "review", "waiting"];

/**
 * A flat copy of `s`. Strings built by `+`, template literals and `slice` are trees that point into
 * their parts; V8 flattens them later, on first use as a hash key or in native code, which would show
 * up as memory that the store under test appears to free. Flat strings from the start keep the memory
 * measurement about the store.
 */
function flat(s: string): string {
  return Buffer.from(s, "utf8").toString("utf8");
}

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
  return flat(s.charAt(0).toUpperCase() + s.slice(1));
}

function uuidFrom(rng: Rng): string {
  const hex = (n: number): string => n.toString(16).padStart(8, "0");
  const raw = hex(rng.u32()) + hex(rng.u32()) + hex(rng.u32()) + hex(rng.u32());
  // Version 4 / variant 1 bits, so the string is a well-formed UUID.
  const v = raw.slice(0, 12) + "4" + raw.slice(13, 16) + "89ab"[rng.int(4)] + raw.slice(17);
  return flat(`${v.slice(0, 8)}-${v.slice(8, 12)}-${v.slice(12, 16)}-${v.slice(16, 20)}-${v.slice(20, 32)}`);
}

/** The key of record `i`: a UUID, so inserts land in random key order (as in a real app). */
export function taskKey(i: number): string {
  return uuidFrom(rngFor(BENCH_SEED, STREAM_KEY, i));
}

export type TaskInput = MessageInitShape<typeof TaskSchema>;

export interface TaskRecord {
  /** The key: the Task's `id`. */
  readonly id: string;
  /** The generated Task's init object (Cellar). */
  readonly input: TaskInput;
  /** The same Task in protobuf's canonical JSON mapping (peers). */
  readonly json: JsonObject;
}

const EPOCH_2025_S = Date.UTC(2025, 0, 1) / 1000;

/** A whole-second timestamp as the init object and as its canonical JSON string. */
function timestamp(seconds: number): { input: { seconds: bigint; nanos: number }; json: string } {
  return {
    input: { seconds: BigInt(seconds), nanos: 0 },
    json: flat(new Date(seconds * 1000).toISOString().replace(".000Z", "Z")),
  };
}

/** Record `i` of the benchmark stream (≈ 500 bytes as JSON). */
export function makeTask(i: number): TaskRecord {
  const rng = rngFor(BENCH_SEED, STREAM_TASK, i);
  const id = taskKey(i);
  const created = EPOCH_2025_S + rng.int(365 * 86_400);
  const createdAt = timestamp(created);
  const updatedAt = timestamp(created + rng.int(30 * 86_400));
  const dueAt = timestamp(created + rng.int(60 * 86_400));
  const tagCount = 1 + rng.int(3);
  const tags: string[] = [];
  for (let t = 0; t < tagCount; t++) tags.push(rng.pick(TAGS));
  const status = rng.pick(STATUSES);
  const completedAt = status === TaskStatus.DONE ? timestamp(created + rng.int(20 * 86_400)) : undefined;
  const priority = rng.pick(PRIORITIES);
  const title = sentence(rng, 3, 8);
  const notes = flat(sentence(rng, 24, 36) + ".");
  const projectId = flat(`project-${rng.int(40)}`);
  const estimateMinutes = 5 * (1 + rng.int(48));

  const input: TaskInput = {
    id,
    title,
    status,
    priority,
    createdAt: createdAt.input,
    updatedAt: updatedAt.input,
    dueAt: dueAt.input,
    tags,
    notes,
    projectId,
    estimateMinutes,
  };
  if (completedAt) input.completedAt = completedAt.input;
  // Field order and names as toJson(TaskSchema, …) writes them (field-number order, lowerCamelCase).
  const json: JsonObject = {
    id,
    title,
    status: `TASK_STATUS_${TaskStatus[status]}`,
    priority: `PRIORITY_${Priority[priority]}`,
    createdAt: createdAt.json,
    updatedAt: updatedAt.json,
    ...(completedAt ? { completedAt: completedAt.json } : {}),
    dueAt: dueAt.json,
    tags,
    notes,
    projectId,
    estimateMinutes,
  };
  return { id, input, json };
}

/** A small record (id, a short title, a status; ~80 bytes as JSON): a few settings-sized rows of an app. */
export function makeSmallTask(i: number): TaskRecord {
  const id = taskKey(i);
  const title = `Water the plants, week ${i}`;
  return { id, input: { id, title, status: TaskStatus.TODO }, json: { id, title, status: "TASK_STATUS_TODO" } };
}

/** Records `[start, start + count)`. */
export function makeTasks(start: number, count: number): TaskRecord[] {
  const out: TaskRecord[] = new Array(count);
  for (let k = 0; k < count; k++) out[k] = makeTask(start + k);
  return out;
}

export type SettingsInput = Partial<MessageInitShape<typeof UserSettingsSchema>>;

/** A settings patch, as the preferences window would send it, in both forms (see TaskRecord). */
export interface SettingsPatch {
  readonly input: SettingsInput;
  readonly json: JsonObject;
}

const THEMES = [Theme.DARK, Theme.LIGHT, Theme.AUTO] as const;
const DENSITIES = [GridDensity.COMPACT, GridDensity.NORMAL, GridDensity.SPACIOUS] as const;
const LANGUAGES = ["en", "de", "pt-BR", "ja", "fr"];

export function makeSettingsPatch(i: number): SettingsPatch {
  const rng = rngFor(BENCH_SEED, STREAM_SETTINGS, i);
  const theme = rng.pick(THEMES);
  const language = rng.pick(LANGUAGES);
  const ui = {
    sidebarCollapsed: rng.int(2) === 1,
    gridDensity: rng.pick(DENSITIES),
    showGridLines: rng.int(2) === 1,
    fontSize: 10 + rng.int(12),
  };
  return {
    input: { theme, language, ui },
    json: {
      theme: `THEME_${Theme[theme]}`,
      language,
      ui: { ...ui, gridDensity: `GRID_DENSITY_${GridDensity[ui.gridDensity]}` },
    },
  };
}

/** Bytes of `JSON.stringify(record.json)` summed over records `[0, count)`: the "same records as JSON". */
export function jsonBytes(count: number): number {
  let total = 0;
  for (let i = 0; i < count; i++) total += Buffer.byteLength(JSON.stringify(makeTask(i).json));
  return total;
}
