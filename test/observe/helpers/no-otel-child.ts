/** A store used where `@opentelemetry/api` is not installed (no-otel.cjs): prints what it saw as JSON. */
import { createRequire } from "node:module";
import { TaskEntity } from "../../../src/generated/examples/tasks/v1/tasks_cellar.js";
import { openStore } from "../../../src/runtime/index.js";

let apiLoads = true;
try {
  createRequire(import.meta.url)("@opentelemetry/api");
} catch {
  apiLoads = false;
}
const events: string[] = [];
const at = (o: unknown) => void events.push((o as { event: string }).event);
const store = await openStore({ tasks: TaskEntity }, { dir: process.argv[2]!, key: new Uint8Array(32).fill(1), logger: { debug: at, info: at, warn: at, error: at } });
await store.tasks.put({ id: "a", title: "without the api" });
const title = (await store.tasks.get("a"))?.title;
await store.compact();
const wrapped = Object.hasOwn(store.tasks, "put");
await store.close();
process.stdout.write(JSON.stringify({ apiLoads, title, wrapped, events }));
