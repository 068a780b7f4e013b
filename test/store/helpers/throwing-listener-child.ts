/**
 * Child process for the throwing-listener test: two `change` listeners throw on every event, between
 * listeners that record what they see; writes `<dir>.json` with what happened.
 *
 *   tsx throwing-listener-child.ts <dir>
 */
import fs from "node:fs";
import { openStore } from "../../../src/generated/index.js";
import type { CellarError } from "../../../src/runtime/errors.js";

const [dir] = process.argv.slice(2) as [string];
let uncaught = 0;
process.on("uncaughtException", () => uncaught++);
let warnings = 0;
process.on("warning", (w) => {
  if ((w as Partial<CellarError>).code === "E_LISTENER") warnings++;
});

const store = await openStore({ dir, key: new Uint8Array(32).fill(3) });
await store.tasks.put({ id: "t1", title: "v0" });
await store.tasks.put({ id: "t2", title: "v1" });
await store.tasks.get("t1");
await store.tasks.get("t2"); // both cached

const label = (e: { op: string; key: unknown; entity: string }) => `${e.op} ${e.key === undefined ? e.entity : String(e.key)}`;
const afterThrow: string[] = [];
const seenInListener: Promise<string>[] = [];
const errors: CellarError[] = [];
store.on("change", (e) => {
  throw new Error(`boom ${label(e)}`);
});
store.on("change", (e) => {
  afterThrow.push(label(e));
  if (e.entity === "tasks" && (e.key === "t1" || e.key === "t2") && e.op === "put") {
    seenInListener.push(store.tasks.get("t2").then((t) => t!.title));
  }
});
const off = store.on("change", (e) => {
  throw new Error(`boom-2 ${label(e)}`);
});
const offError = store.on("error", (e) => errors.push(e));

await store.batch((tx) => {
  tx.tasks.put({ id: "t1", title: "v1" });
  tx.tasks.put({ id: "t2", title: "v2" });
  tx.tasks.put({ id: "t3", title: "v3" });
});
await store.tasks.delete("t1");
await store.settings.update({ language: "fr" });
const after = {
  t1: (await store.tasks.get("t1"))?.title ?? null,
  t2: (await store.tasks.get("t2"))?.title ?? null,
  t3: (await store.tasks.get("t3"))?.title ?? null,
  language: (await store.settings.get()).language,
};
// Without an `error` listener, a listener's error becomes a process warning.
offError();
off();
await store.tasks.put({ id: "t4", title: "v4" });
await new Promise((r) => setImmediate(r));
await store.close();

fs.writeFileSync(
  `${dir}.json`,
  JSON.stringify({
    uncaught,
    afterThrow,
    errorEvents: errors.length,
    errorCodes: [...new Set(errors.map((e) => e.code))],
    causes: errors.slice(0, 2).map((e) => (e.cause as Error).message),
    seenInListener: await Promise.all(seenInListener),
    after,
    warningsWithoutErrorListener: warnings,
  }),
);
