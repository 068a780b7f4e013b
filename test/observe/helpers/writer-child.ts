/** Holds a store open as its writer until killed: prints `ready` once open. */
import { TaskEntity } from "../../../src/generated/examples/tasks/v1/tasks_cellar.js";
import { openStore } from "../../../src/runtime/index.js";

const store = await openStore({ tasks: TaskEntity }, { dir: process.argv[2]!, key: new Uint8Array(32).fill(6) });
await store.tasks.put({ id: "w", title: "from the writer" });
process.stdout.write("ready\n");
setInterval(() => {}, 1000);
