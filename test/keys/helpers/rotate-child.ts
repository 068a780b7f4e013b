/**
 * Child process for the rotation crash test: rotates the data key, writes one more record under the new
 * key (acknowledged: "ack" is written to the marker file once it resolves), re-encrypts everything, and is
 * killed (SIGKILL, by itself) at the failpoint named in argv[3] — at its `skip`+1-th occurrence.
 *
 *   tsx rotate-child.ts <dir> <failpoint> <skip> <marker file>
 */
import fs from "node:fs";
import { openStore } from "../../../src/generated/index.js";

const [dir, at, skip, marker] = process.argv.slice(2) as [string, string, string, string];
let seen = 0;
const store = await openStore({
  dir,
  key: new Uint8Array(32).fill(7),
  compaction: { auto: false },
  failpoint: (name) => {
    if (name === at && seen++ === Number(skip)) process.kill(process.pid, "SIGKILL");
  },
});
await store.rotateKey();
await store.profiles.put({ id: "after-rotation", email: "late@example.com", authToken: "tok-late" });
fs.writeFileSync(marker, "ack");
await store.reencrypt();
await store.close();
process.exit(3); // the failpoint was never reached
