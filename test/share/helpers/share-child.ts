/**
 * A process of the sharing tests: opens the store in `<dir>` (the app's generated entities), then takes one
 * command per line on stdin and answers `= <answer>` on stdout; events come as `! <event>` lines.
 *
 *   tsx share-child.ts <dir> <key hex | none>
 *
 * Commands: `put <id> <title>`, `get <id>` (title or `-`), `update <id>` (title += 1 as a number), `count`,
 * `role`, `watch <id>` (`! watch <id> <title> <seq>` per update), `hist <id>` (the titles its history entries hold, newest first), `run <name>` (until `stop`: put `<name>-<i>` and update `ctr-<name>` one after another,
 * `! ack <what>` for each; `stop` answers `= stopped <puts> <updates> <errors>`), `close`.
 */
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
store.on("change", (e) => {
  if (e.entity !== "tasks") return;
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
    } else if (cmd === "close") {
      await store.close();
      say("= closed");
      process.exit(0);
    } else say(`= unknown ${cmd}`);
  } catch (e) {
    say(`= error ${(e as { code?: string }).code ?? String(e)}`);
  }
}
