/**
 * Child process for the SIGKILL-during-import test: opens a store of `profiles` (sensitive fields), acknowledges some writes
 * (logged `ACK <key> <body>` once resolved), then imports `file` and kills itself (SIGKILL) at `step`: a
 * failpoint of the I/O seam (`commit.*`, `compaction.*`) reached during the import, or an import phase
 * (`validate:<line>`: while lines are read, from that line on, `stage`: past one write, staging begins; `switch`: everything validated and staged, nothing switched). During a
 * import it keeps writing and logging acknowledged writes (unless `step` is a commit window).
 *
 *   tsx import-child.ts <dir> <log> <file> <step> [memoryBytes]
 */
import fs from "node:fs";
import type { Failpoint } from "../../../src/runtime/platform/io.js";
import { openStore } from "../../../src/runtime/typed/store.js";
import { UserProfileEntity } from "../../../src/generated/examples/profile/v1/profile_cellar.js";

const [dir, log, file, step, memoryBytes] = process.argv.slice(2) as [string, string, string, string, string | undefined];
const key = new Uint8Array(32).fill(5);
let armed = false;
const die = () => process.kill(process.pid, "SIGKILL");
const store = await openStore(
  { profiles: UserProfileEntity },
  { dir, key, failpoint: (name: Failpoint) => void (armed && name === step && die()) },
);
const ack = (k: string, body: string) => fs.appendFileSync(log, `ACK ${k} ${body}\n`);
for (let i = 0; i < 20; i++) {
  await store.profiles.put({ id: `pre-${i}`, displayName: `before ${i}`, authToken: "p" });
  ack(`pre-${i}`, `before ${i}`);
}
await store.profiles.put({ id: "n0001", displayName: "stored", authToken: "old" });
ack("n0001", "stored");
armed = true;
// Writes during the import, except when the kill is at a commit window (it must be the import's own commit).
let writing = !step.startsWith("commit.");
const during = (async () => {
  for (let i = 0; writing; i++) {
    await store.profiles.put({ id: `during-${i}`, displayName: `during ${i}`, authToken: "d" });
    ack(`during-${i}`, `during ${i}`);
    await new Promise((r) => setTimeout(r, 2));
  }
})();
fs.appendFileSync(log, "IMPORT\n");
await store.import(file, {
  ...(memoryBytes ? { memoryBytes: Number(memoryBytes) } : {}),
  onProgress: (p) => {
    const [phase, from] = step.split(":");
    if (p.phase === phase && p.line >= Number(from ?? 0)) die();
  },
});
writing = false;
await during;
fs.appendFileSync(log, "DONE\n");
process.exit(3);
