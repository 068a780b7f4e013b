/**
 * A store opened where `@opentelemetry/api` is installed: prints whether opening it loaded the api (issue 15:
 * the api is loaded only when a provider is given or one is registered globally). `register` as argv[3]
 * registers a global meter provider (the api's own no-op one) first, then drops the api from the module cache.
 */
import { createRequire } from "node:module";
import { TaskEntity } from "../../../src/generated/examples/tasks/v1/tasks_cellar.js";
import { openStore } from "../../../src/runtime/index.js";

const require = createRequire(import.meta.url);
const apiPath = require.resolve("@opentelemetry/api");
if (process.argv[3] === "register") {
  const api = require("@opentelemetry/api") as typeof import("@opentelemetry/api");
  api.metrics.setGlobalMeterProvider(api.metrics.getMeterProvider());
  // Forgotten again, so that what follows shows whether open loads it; the registration stays on globalThis.
  const dir = apiPath.slice(0, apiPath.indexOf("/build/") + 1);
  for (const k of Object.keys(require.cache)) if (k.startsWith(dir)) delete require.cache[k];
}
const before = apiPath in require.cache;
const store = await openStore({ tasks: TaskEntity }, { dir: process.argv[2]!, key: new Uint8Array(32).fill(1) });
await store.tasks.put({ id: "a", title: "lazy api" });
const title = (await store.tasks.get("a"))?.title;
await store.close();
process.stdout.write(JSON.stringify({ before, after: apiPath in require.cache, title }));
