/**
 * Child process: writes records holding secrets, then compacts and is killed (SIGKILL, by itself) once the
 * new segment is fully written under its temp name, so that the temp file stays on disk for inspection.
 *
 *   tsx tmp-child.ts <dir> <secret>…
 */
import { openStore } from "../../../src/generated/index.js";

const [dir, ...secrets] = process.argv.slice(2) as [string, ...string[]];
const store = await openStore({
  dir,
  key: new Uint8Array(32).fill(7),
  compaction: { auto: false },
  failpoint: (name) => {
    if (name === "compaction.beforeSegmentRename") process.kill(process.pid, "SIGKILL");
  },
});
await store.profiles.put({ id: "u1", email: secrets[0], authToken: secrets[1] });
await store.settings.update({ aiProvider: { apiKey: secrets[2] } });
await store.compact();
process.exit(3);
