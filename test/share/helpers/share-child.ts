/**
 * A process of the sharing tests: opens the store in `<dir>` (the app's generated entities), then takes one
 * command per line on stdin and answers `= <answer>` on stdout; events come as `! <event>` lines.
 *
 *   tsx share-child.ts <dir> <key hex | none>
 *
 * Commands: `put <id> <title>`, `get <id>` (title or `-`), `update <id>` (title += 1 as a number), `count`,
 * `role`, `watch <id>` (`! watch <id> <title> <seq>` per update), `hist <id>` (the titles its history entries hold, newest first), `run <name>` (until `stop`: put `<name>-<i>` and update `ctr-<name>` one after another,
 * `! ack <what>` for each; `stop` answers `= stopped <puts> <updates> <errors>`), `close`;
 * for the soak (test/share/soak.ts): `load <name> <n> <seed>` (puts `<name>-<i>` = `v<i>` for i < n, one at
 * a time or, one time in ten, a batch of 2–5; answers `= loaded <acknowledged> <errors>`), `events` (`= <keys
 * with change events> <keys with more than one>`, counted from the open on), `view` (`= <records> <sha256 of
 * the sorted "id:title" lines>`). With `SHARE_CHILD_QUIET=1`, change events are counted, not printed; with
 * `SHARE_CHILD_LAZY=1` nothing listens for them (no `change` listener, so a follower applies the others' commits
 * when it next reads, not when they are announced: the lazy path of share/sharing.ts).
 */
import crypto from "node:crypto";
import readline from "node:readline";
import { entities } from "../../../src/generated/index.js";
import { openStore } from "../../../src/runtime/index.js";
import { defineCollection } from "../../../src/runtime/typed/entity.js";

// CELLAR_TEST_HISTORY=1: tasks keep a record history (entries written by every process).
const tasks = process.env.CELLAR_TEST_HISTORY === "1" ? defineCollection({ ...entities.tasks, history: { keep: 50 } }) : entities.tasks;

const [dir, keyHex] = process.argv.slice(2) as [string, string];
const say = (s: string) => process.stdout.write(s + "\n");
const opts = keyHex === "none" ? { dir, encryption: "none" as const } : { dir, key: Buffer.from(keyHex, "hex") };

let store: Awaited<ReturnType<typeof openStore<{ tasks: typeof entities.tasks }>>>;
try {
  store = await openStore({ tasks: tasks as typeof entities.tasks }, { ...opts, writeTimeoutMs: 20_000, cleanup: false });
} catch (e) {
  say(`= error ${(e as { code?: string }).code ?? String(e)}`);
  process.exit(0);
}
say(`= open ${store.role} ${process.pid}`);
store.on("role", (r) => say(`! role ${r}`));
store.on("error", (e) => say(`! error ${e.code} ${e.message}`));
const eventsPerKey = new Map<string, number>();
const quiet = process.env["SHARE_CHILD_QUIET"] === "1";
if (process.env["SHARE_CHILD_LAZY"] !== "1") store.on("change", (e) => {
  if (e.entity !== "tasks") return;
  eventsPerKey.set(String(e.key), (eventsPerKey.get(String(e.key)) ?? 0) + 1);
  if (quiet) return;
  // What a read in this process sees the moment the event arrives.
  void store.tasks.get(String(e.key)).then((t) => say(`! change ${e.op} ${String(e.key)} ${t?.title ?? "-"}`));
});

let running = false;
let runDone: Promise<string> | null = null;

async function run(name: string): Promise<string> {
  let puts = 0;
  let updates = 0;
  let errors = 0;
  if (!(await store.tasks.get(`ctr-${name}`))) await store.tasks.put({ id: `ctr-${name}`, title: "0" });
  for (let i = 0; running; i++) {
    try {
      await store.tasks.put({ id: `${name}-${i}`, title: `v${i}` });
      puts++;
      say(`! ack put ${name}-${i}`);
      await store.tasks.update(`ctr-${name}`, (t) => ({ title: String(Number(t.title) + 1) }));
      updates++;
      say(`! ack update ctr-${name}`);
    } catch (e) {
      errors++;
      say(`! fail ${(e as { code?: string }).code ?? String(e)} ${(e as Error).message}`);
    }
  }
  return `stopped ${puts} ${updates} ${errors}`;
}

async function load(name: string, n: number, seed: number): Promise<string> {
  const rand = () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  let acked = 0;
  let errors = 0;
  for (let i = 0; i < n; ) {
    const size = rand() < 0.1 ? Math.min(n - i, 2 + Math.floor(rand() * 4)) : 1;
    const ids = Array.from({ length: size }, (_, j) => i + j);
    try {
      if (size === 1) await store.tasks.put({ id: `${name}-${i}`, title: `v${i}` });
      else await store.batch((tx) => ids.forEach((k) => tx.tasks.put({ id: `${name}-${k}`, title: `v${k}` })));
      acked += size;
    } catch (e) {
      errors++;
      say(`! fail ${(e as { code?: string }).code ?? String(e)} ${(e as Error).message}`);
    }
    i += size;
  }
  return `loaded ${acked} ${errors}`;
}

async function view(): Promise<string> {
  const lines: string[] = [];
  for (const t of await store.tasks.list()) lines.push(`${t.id}:${t.title}`);
  return `${lines.length} ${crypto.createHash("sha256").update(lines.sort().join("\n")).digest("hex")}`;
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const [cmd, a, b] = line.split(" ");
  try {
    if (cmd === "put") {
      await store.tasks.put({ id: a!, title: b! });
      say(`= ok`);
    } else if (cmd === "get") say(`= ${(await store.tasks.get(a!))?.title ?? "-"}`);
    else if (cmd === "update") say(`= ${(await store.tasks.update(a!, (t) => ({ title: String(Number(t.title) + 1) }))).title}`);
    else if (cmd === "count") say(`= ${await store.tasks.count()}`);
    else if (cmd === "hist") say(`= ${(await store.tasks.history(a!)).map((e) => (e.value as { title?: string } | undefined)?.title ?? "-").join(",")}`);
    else if (cmd === "role") say(`= ${store.role}`);
    else if (cmd === "rotate") say(`= ${await store.rotateKey()}`);
    else if (cmd === "watch") {
      store.tasks.watch(a!).subscribe((u) => say(`! watch ${a} ${u.value?.title ?? "-"} ${u.seq}`));
      say("= watching");
    }
    else if (cmd === "run") {
      running = true;
      runDone = run(a!);
      say("= running");
    } else if (cmd === "stop") {
      running = false;
      say(`= ${await runDone}`);
    } else if (cmd === "load") say(`= ${await load(a!, Number(b), Number(line.split(" ")[3]))}`);
    else if (cmd === "events") say(`= ${eventsPerKey.size} ${[...eventsPerKey.values()].filter((c) => c > 1).length}`);
    else if (cmd === "view") say(`= ${await view()}`);
    else if (cmd === "close") {
      await store.close();
      say("= closed");
      process.exit(0);
    } else say(`= unknown ${cmd}`);
  } catch (e) {
    say(`= error ${(e as { code?: string }).code ?? String(e)}`);
  }
}
