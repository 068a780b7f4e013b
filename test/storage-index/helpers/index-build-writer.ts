/**
 * Child process of the promotion test (test/query/index-build.test.ts): the writer of a shared store, opened
 * with the schema before the indexes were added; it logs `OPEN` and waits to be killed.
 *
 *   tsx index-build-writer.ts <dir> <log>
 */
import fs from "node:fs";
import { openStore } from "../../../src/runtime/typed/store.js";
import { before, KEY } from "./index-build-defs.js";

const [dir, log] = process.argv.slice(2) as [string, string];
const store = await openStore({ focus: before }, { dir, key: KEY, compaction: { auto: false } });
fs.writeFileSync(log, `OPEN ${store.role}\n`);
setInterval(() => {}, 60_000);
