/**
 * The second process of `npm run demo` (examples/demo.ts): what a CLI or background helper beside the app
 * does. It opens the store the demo has open, the same way (`openStore` with the key); the demo holds the
 * writer's lock, so this process is a follower: it reads the store's files itself and sends its writes to the
 * demo over a local socket, after proving it holds the key.
 *
 *   tsx examples/demo-helper.ts <store dir> <key file> <task id>
 */
import fs from "node:fs";
import { openStore } from "../src/generated/index.js";

const [dir, keyFile, id] = process.argv.slice(2) as [string, string, string];
const store = await openStore({ dir, key: new Uint8Array(fs.readFileSync(keyFile)) });
const before = await store.tasks.count();
await store.tasks.put({ id, title: "Added by a second process", tags: ["helper"] });
// Read-your-writes: once the put resolved, this process's reads see it.
const mine = await store.tasks.get(id);
console.log(`${store.role} (pid ${process.pid}): saw ${before} tasks, wrote "${mine?.title}" through the writer`);
await store.close();
