/**
 * A follower process with nothing else to do: `tsx follower-request.ts <dir> <key hex> <backup file>` opens the
 * store (another process being its writer), awaits `compact()` and `backup()` (both run by the writer), prints
 * `done <role>` and exits on its own: a request waiting for the writer's answer must keep the process alive
 * (with nothing else pending, Node would otherwise end it, exit 13, with the request unanswered).
 */
import { entities } from "../../../src/generated/index.js";
import { openStore } from "../../../src/runtime/index.js";

const [dir, keyHex, file] = process.argv.slice(2) as [string, string, string];
const store = await openStore({ tasks: entities.tasks }, { dir, key: Buffer.from(keyHex, "hex"), cleanup: false });
const role = store.role;
await store.compact();
await store.backup({ to: file });
await store.close();
process.stdout.write(`done ${role}\n`);
