/**
 * Child process of the recovery crash test: opens a damaged store, writes the keys its recovery report names
 * to `named` (JSON), then runs `recoverFrom(file)` and SIGKILLs itself at `failpoint` (its first hit after
 * recovery starts). Prints nothing; the parent checks the store.
 *
 * argv: dir file failpoint named
 */
import fs from "node:fs";
import { openStore } from "../../../src/generated/index.js";
import type { Failpoint } from "../../../src/runtime/platform/io.js";
import { KEY } from "../../backup/helpers.js";

const [dir, file, at, named] = process.argv.slice(2);
if (!dir || !file || !at || !named) throw new Error("usage: recover-child dir file failpoint named");
let armed = false;
const failpoint = (name: Failpoint) => {
  if (armed && name === at) process.kill(process.pid, "SIGKILL");
};
const store = await openStore({ dir, key: KEY, verifyOnOpen: true, failpoint });
fs.writeFileSync(named, JSON.stringify(store.recoveryReport.damaged.flatMap((d) => d.records.map((r) => r.key))));
armed = true;
await store.recoverFrom(file);
await store.close();
process.exit(0);
