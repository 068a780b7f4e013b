/**
 * `npm run demo`: codegen has just run; this is an example app using the
 * generated repositories on a real store on disk. It writes settings, tasks and
 * focus sessions, closes the store, reopens it as a restart would, reads
 * everything back, and prints what it did and where the files are.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { durationFromMs, durationMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { defaultBackupDir, isCellarError, listBackups, paths, restoreBackup, trend, verifyBackup } from "../src/runtime/index.js";
import { openStore } from "../src/generated/index.js";
import { FocusOutcome } from "../src/generated/examples/focus/v1/focus_pb.js";
import { Theme } from "../src/generated/examples/settings/v1/settings_pb.js";
import { TaskStatus, Priority } from "../src/generated/examples/tasks/v1/tasks_pb.js";

const dir = path.resolve(process.env.CELLAR_DEMO_DIR ?? ".cellar-demo/store");
const keyFile = path.join(path.dirname(dir), "demo.key");
fs.mkdirSync(path.dirname(dir), { recursive: true });
// A real app keeps this key in the OS keychain or Electron safeStorage; the demo keeps it in a file.
if (!fs.existsSync(keyFile)) fs.writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
const key = new Uint8Array(fs.readFileSync(keyFile));

const log = (...a: unknown[]) => console.log("  ", ...a);

console.log(`Cellar demo — store at ${dir}`);
// The generated openStore passes the app's migrations (src/migrations/registry.ts): a store written by an
// older version of this demo is backed up and upgraded here.
// Automatic backups: one a day at most (taken in the background at open when due), into `<store>.backups`
// beside the store directory, pruned to the last 3 plus one a day for a week.
const backups = { every: "1d", keep: { last: 3, daily: 7 } } as const;
// audit: a tamper-evident log in the store of sensitive reads and writes, backups, exports and key changes
// (who, what, when; never a value), each entry chained to the previous by a MAC.
let store = await openStore({ dir, key, backups, audit: { actor: "demo" } });
log(store.recoveryReport.created ? "created a new encrypted store" : "opened the existing store");
if (store.migrationBackup) log(`migrated records of an older schema; the store as it was is in ${path.relative(dir, store.migrationBackup)}`);
store.on("change", (e) => changes.push(`${e.op} ${e.entity}${e.key === undefined ? "" : ` ${String(e.key)}`}`));
const changes: string[] = [];

const settings = await store.settings.get();
log(`settings before: theme=${Theme[settings.theme]} language=${settings.language} font=${settings.ui?.fontSize}`);
await store.settings.update({ theme: Theme.DARK, language: "pt-BR" });
await store.settings.update((s) => ({ ...s, aiProvider: { ...s.aiProvider, apiKey: "sk-demo-not-a-real-key" } }));

const now = Date.now();
const titles = ["Write the quarterly report", "Review pull requests", "Plan the offsite", "Fix the login bug"];
const run = `${now.toString(36)}`;
await store.batch((tx) => {
  titles.forEach((title, i) =>
    tx.tasks.put({
      id: `task-${run}-${i}`,
      title,
      status: i === 0 ? TaskStatus.DONE : TaskStatus.TODO,
      priority: i === 3 ? Priority.URGENT : Priority.MEDIUM,
      tags: i % 2 ? ["work", "review"] : ["work"],
      notes: "Written by the Cellar demo.",
      createdAt: timestampFromDate(new Date(now - i * 3_600_000)),
    }),
  );
});
log(`batch: ${titles.length} tasks committed atomically`);
for (let i = 0; i < 3; i++) {
  await store.focusSessions.put({
    id: `focus-${run}-${i}`,
    taskId: `task-${run}-${i}`,
    startedAt: timestampFromDate(new Date(now - (i + 1) * 1_800_000)),
    duration: durationFromMs(25 * 60_000),
    outcome: i === 2 ? FocusOutcome.STOPPED_EARLY : FocusOutcome.COMPLETED,
  });
}
log("3 focus sessions written");

try {
  await store.tasks.put({ id: "", title: "" });
} catch (e) {
  if (isCellarError(e, "E_VALIDATION")) log(`invalid task refused before touching disk: ${e.message}`);
  else throw e;
}
await store.close();
log(`closed; ${changes.length} change events seen (${changes.slice(0, 3).join(", ")}, …)`);

// --- restart -------------------------------------------------------------------------------------
store = await openStore({ dir, key, backups });
const back = await store.settings.get();
log(`after reopen: theme=${Theme[back.theme]} language=${back.language} api key set=${back.aiProvider?.apiKey ? "yes" : "no"}`);
const todo = await store.tasks.query({ status: TaskStatus.TODO });
log(`tasks: ${await store.tasks.count()} stored, ${todo.length} to do; first: "${(await store.tasks.get(`task-${run}-0`))?.title}"`);
const sessions = await store.focusSessions.list();
const minutes = sessions.reduce((m, s) => m + (s.duration ? durationMs(s.duration) : 0) / 60_000, 0);
const completed = await store.focusSessions.query({ outcome: FocusOutcome.COMPLETED });
log(`focus sessions: ${sessions.length} (${minutes} minutes in total, ${completed.length} completed)`);
// Queries by date: a range on an index (status,created_at), newest first; `explain` says which index serves it.
const since = { status: TaskStatus.TODO, createdAt: { gte: new Date(now - 3 * 3_600_000) } };
const recent = await store.tasks.query(since, { orderBy: "createdAt", reverse: true, limit: 3 });
const plan = store.tasks.explain(since, { orderBy: "createdAt", reverse: true });
log(`to do, created in the last 3 hours, newest first: ${recent.map((t) => `"${t.title}"`).join(", ")} (index ${plan.index})`);
// Metrics by day in the user's time zone, from the started_at,duration index without decoding a record.
const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const days = await store.focusSessions.aggregate({
  where: { startedAt: { gte: new Date(now - 6 * 86_400_000) } },
  bucket: { field: "startedAt", by: "day", timeZone, from: new Date(now - 6 * 86_400_000), to: new Date(now) },
  fill: true,
  count: true,
  sum: ["duration"],
});
const today = trend(days, (b) => b.sum.duration).at(-1)!;
log(`focus by day (${timeZone}): ${days.map((b) => `${b.label.slice(5)} ${Math.round(b.sum.duration / 60)} min`).join(", ")}; today ${today.change! >= 0 ? "+" : ""}${Math.round(today.change! / 60)} min on the day before`);
// Live subscriptions: a live query gives its current result, then one update per commit that changes it.
const doneTasks = store.tasks.watch({ status: TaskStatus.DONE });
const seen: string[] = [];
doneTasks.subscribe(({ value, seq }) => seen.push(`${value.length} done (commit ${seq})`));
await store.tasks.update(`task-${run}-3`, { status: TaskStatus.DONE });
await store.tasks.update(`task-${run}-2`, { notes: "Still to do: not in the live result, no update." });
await new Promise((r) => setImmediate(r));
doneTasks.close();
log(`watch({ status: DONE }): ${seen.join(" → ")}`);
// Several processes: a second one (a CLI or background helper beside the app) opens the same store. This
// process holds the writer's lock, so that one is a follower: it reads the files itself and sends its writes
// here over a local socket (after proving it holds the key); this process's watch sees them.
const helperTask = `task-${run}-helper`;
const fromHelper = store.tasks.watch(helperTask);
const arrived = new Promise<string>((resolve) => fromHelper.subscribe(({ value, seq }) => value && resolve(`"${value.title}" (commit ${seq})`)));
const helper = path.join(path.dirname(fileURLToPath(import.meta.url)), "demo-helper.ts");
const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", helper, dir, keyFile, helperTask]);
log(`second process, ${stdout.trim()}`);
log(`this process (${store.role}) watched ${helperTask}: ${await arrived}`);
fromHelper.close();
// Read-modify-write of one record (concurrent updates of a key never lose each other), and a batch of gets.
await Promise.all([1, 2, 3].map(() => store.tasks.update(`task-${run}-1`, (t) => ({ estimateMinutes: t.estimateMinutes + 15 }))));
const [first, missing, second] = await store.tasks.getMany([`task-${run}-0`, "no-such-task", `task-${run}-1`]);
log(`getMany: ${first?.title} / ${missing === undefined ? "(missing)" : "?"} / ${second?.title} estimated ${second?.estimateMinutes} min after 3 concurrent updates`);
// Singletons by dotted path, typed from the schema (a wrong path or value type does not compile).
await store.settings.set("ui.fontSize", 16);
log(`settings.get("ui.fontSize") = ${await store.settings.get("ui.fontSize")}`);
// Record history (`history: {keep: 20, max_age: "30d"}` on the settings schema): undo my last settings change.
await store.settings.update({ theme: Theme.LIGHT });
const [lastChange] = await store.settings.history();
const undone = await store.settings.revert(lastChange!.id);
log(`undo the change of ${lastChange!.changedAt.toISOString()}: theme back to ${Theme[undone.theme]} (${(await store.settings.history()).length} versions kept)`);
// Data lifecycle: an online backup into one file (writes go on meanwhile), checked record by record, restored
// into a second directory as another computer would; an NDJSON export (sensitive fields left out).
const lifecycle = path.join(path.dirname(dir), "lifecycle");
const backup = await store.backup({ to: path.join(lifecycle, "demo.cellarbackup"), label: "demo run" });
const counts = backup.entities.filter((e) => e.records > 0 && !e.name.startsWith("~")).map((e) => `${e.records} ${e.name}`);
log(`backup: ${backup.bytes} bytes, ${counts.join(", ")} (sealed bytes copied, nothing decrypted)`);
await verifyBackup(backup.file, { key });
const restoredDir = path.join(lifecycle, "restored");
await restoreBackup(backup.file, { dir: restoredDir, key });
const restored = await openStore({ dir: restoredDir, key });
log(`verified, then restored into ${path.relative(path.dirname(dir), restoredDir)}: ${await restored.tasks.count()} tasks there`);
await restored.close();
const exported = await store.export({ to: path.join(lifecycle, "tasks.ndjson"), entities: ["tasks", "settings"] });
log(`export: ${exported.records.tasks} tasks and the settings as NDJSON, sensitive fields ${exported.redacted ? "left out" : "included"}`);
log(`listBackups: ${listBackups(lifecycle).map((b) => `${path.basename(b.file)} ${b.damaged ? "damaged" : "intact"}`).join(", ")}`);
// Records hold bigint (Timestamp seconds): JSON.stringify needs the repository's protobuf JSON.
log(`toJson: ${JSON.stringify(store.tasks.toJson(first!)).slice(0, 90)}…`);
await store.compact();
// Key rotation: new writes use a fresh data key at once; reencrypt() moves every record to it and destroys the old one.
const newKey = await store.rotateKey();
const destroyed = await store.reencrypt();
log(`rotated to data key ${newKey}; every record re-encrypted, data key ${destroyed.join(", ")} destroyed`);
// What a support tool sees: sensitive fields are never opened.
for await (const r of store.inspect({ entities: ["settings"] })) log(`inspect(): settings = ${JSON.stringify(r.json)}`);
const audit = await store.audit.verify();
const recent3 = (await store.audit.list()).slice(-3).map((e) => `${e.action}${e.entity ? ` ${e.entity}` : ""}${e.count > 1 ? ` ×${e.count}` : ""}`);
log(`audit log: ${audit.entries} entries, chain ${audit.ok ? "verified" : "BROKEN"}; latest: ${recent3.join(", ")}`);
const stats = store.stats();
await store.close();

// The cellar CLI on the same store, as support staff would run it (docs/CLI.md): what it holds, no code written.
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "cellar.ts");
const schema = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "src", "generated", "index.ts");
const info = JSON.parse(
  (await promisify(execFile)(process.execPath, ["--import", "tsx", cli, "info", dir, "--key-file", keyFile, "--schema", schema, "--json"])).stdout,
) as { formatVersion: number; entities: { name: string; records: number }[] };
log(`cellar info --json: format ${info.formatVersion}, ${info.entities.filter((e) => e.records > 0).map((e) => `${e.name} ${e.records}`).join(", ")}`);
// Where a desktop app keeps its store: the OS's data directory, apart per profile (CELLAR_PROFILE).
log(`paths("my-app").data = ${paths("my-app").data}; development: ${paths("my-app", { profile: "development" }).data}`);

const automatic = listBackups(defaultBackupDir(dir)).flatMap((b) => (b.damaged === null ? [b] : []));
console.log(`\nAutomatic backups in ${defaultBackupDir(dir)}: ${automatic.length} (newest ${automatic[0]?.createdAt.toISOString() ?? "none yet"})`);
console.log(`Files in ${dir}:`);
for (const name of fs.readdirSync(dir).sort()) {
  const st = fs.statSync(path.join(dir, name));
  console.log(`   ${name.padEnd(22)} ${st.isDirectory() ? "(dir)" : `${st.size} bytes`}`);
}
const perEntity = Object.entries(stats.entities).filter(([, e]) => e.records > 0).map(([name, e]) => `${name} ${e.liveBytes} B live`);
console.log(`${stats.records} live records (${perEntity.join(", ")}); run again to see them persist across restarts.`);
