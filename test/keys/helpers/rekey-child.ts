/**
 * Child process for the master-key change crash test: opens the store with passphrase `old`, then changes
 * the master key to passphrase `new` and is killed (SIGKILL, by itself) at the failpoint named in argv[3].
 *
 *   tsx rekey-child.ts <dir> <failpoint>
 */
import { openStore } from "../../../src/generated/index.js";
import { keys } from "../../../src/runtime/crypto/keys.js";

const [dir, at] = process.argv.slice(2) as [string, string];
const cost = { opsLimit: 1, memLimit: 64 * 1024 };
const store = await openStore({
  dir,
  key: keys.passphrase("old passphrase", cost),
  failpoint: (name) => {
    if (name === at) process.kill(process.pid, "SIGKILL");
  },
});
await store.changeMasterKey(keys.passphrase("new passphrase", cost));
await store.close();
process.exit(3); // the failpoint was never reached
