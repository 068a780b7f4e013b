/**
 * Child process for lock tests, driven line by line over stdin; each command answers one line on stdout:
 *   open <dir>      → `OPEN <pid>`, `LOCKED <holder pid or ->` or `ERR <code>`
 *   put <key>       → `OK` (a put through the open store, acknowledged)
 *   close           → `CLOSED`
 * The parent kills it (SIGKILL) or closes its stdin to end it.
 */
import readline from "node:readline";
import { Engine } from "../../../src/runtime/storage/engine.js";
import { isCellarError, type StoreLockedError } from "../../../src/runtime/errors.js";
import { TEST_KEY, valueFor } from "./model.js";

let engine: Engine | null = null;
const say = (line: string) => process.stdout.write(line + "\n");

async function run(cmd: string, arg: string): Promise<string> {
  switch (cmd) {
    case "open":
      try {
        engine = await Engine.open({ dir: arg, key: TEST_KEY, compaction: { auto: false }, verifyOnOpen: false });
        return `OPEN ${process.pid}`;
      } catch (e) {
        if (isCellarError(e, "E_LOCKED")) return `LOCKED ${(e as StoreLockedError).holder?.pid ?? "-"}`;
        return `ERR ${isCellarError(e) ? e.code : String(e)}`;
      }
    case "put":
      await engine!.write([{ op: "put", entity: "e", key: arg, version: 1, value: valueFor(arg, 1), terms: [] }]);
      return "OK";
    case "close":
      await engine?.close();
      engine = null;
      return "CLOSED";
    default:
      return `ERR unknown command ${cmd}`;
  }
}

// Commands run one after another, in the order they arrive.
let queue: Promise<unknown> = Promise.resolve();
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const at = line.indexOf(" ");
  const cmd = at < 0 ? line : line.slice(0, at);
  const arg = at < 0 ? "" : line.slice(at + 1);
  queue = queue.then(() => run(cmd, arg)).then(say, (e: unknown) => say(`ERR ${String(e)}`));
});
