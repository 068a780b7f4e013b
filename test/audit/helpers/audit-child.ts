/**
 * A process on an audited store for test/audit: `hold` opens it (writer, or follower when another process
 * holds it), prints `ready <role>`, then reads and writes `profiles` records every few ms (each counted by
 * the audit log, appended every 5 ms) until SIGTERM: then closes and prints `closed`.
 * Prints `progress` after its 20th read and write. `churn` writes and reads as fast as it can, its log appended after each, until it is killed.
 */
import { openStore } from "../../../src/generated/index.js";

const [dir, mode, actor] = process.argv.slice(2) as [string, "hold" | "churn", string];
const key = new Uint8Array(32).fill(9);

const store = await openStore({ dir, key, audit: { actor, flushMs: mode === "churn" ? 0 : 5 } });
store.on("error", (e) => process.stderr.write(`error event ${e.code}: ${e.message}\n`));
process.stdout.write(`ready ${store.role}\n`);
let stop = false;
let n = 0;
// Stopped by SIGTERM, not by a line on stdin: with stdin read by readline, a follower's first write here waited
// for stdin's next data (seen with or without the audit log; noted in the report of issue 16's audit part).
process.on("SIGTERM", () => (stop = true));
while (!stop) {
  const id = `${actor}-${n++ % 20}`;
  await store.profiles.put({ id, displayName: `n${n}`, email: `secret-${actor}-${n}@example.com` });
  await store.profiles.get(id);
  if (mode === "churn") await store.audit.flush();
  if (n === 20) process.stdout.write("progress\n"); // 20 reads and writes done (appended, in churn mode)
  else await new Promise((r) => setTimeout(r, 2));
}
await store.close();
process.stdout.write(`closed ${n}\n`);
