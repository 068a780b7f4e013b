/**
 * A real store for the studio's tests and its benchmark: tasks (indexed by status, tags, project and
 * status+creation time), profiles (sensitive `email` and `authToken`) and the settings singleton (a nested
 * sensitive `aiProvider.apiKey`), under a
 * raw key written to a key file (as `--key-file` reads it).
 */
import fs from "node:fs";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { entities } from "../../src/generated/index.js";
import { openStore } from "../../src/runtime/index.js";
import { keys } from "../../src/runtime/index.js";

export const KEY = new Uint8Array(32).fill(7);

/** Write the key file `--key-file` reads (the raw 32 bytes). */
export function writeKeyFile(dir: string): string {
  const file = path.join(dir, "studio.key");
  fs.writeFileSync(file, KEY, { mode: 0o600 });
  return file;
}

const STATUSES = [1, 2, 3, 4];

/**
 * `n` tasks `t000000…` (batches of 5,000), 3 profiles, settings; compacted; closed. `audit`: the store keeps
 * an audit log (profiles and settings audited), which every later open goes on recording in.
 */
export async function buildStore(dir: string, n: number, log?: (done: number) => void, options: { audit?: boolean } = {}): Promise<void> {
  const store = await openStore(entities, { dir, key: keys.raw(KEY), cleanup: false, durability: "relaxed", ...(options.audit && { audit: true }) });
  try {
    const base = Date.UTC(2026, 0, 1);
    for (let i = 0; i < n; i += 5000) {
      await store.batch((tx) => {
        for (let j = i; j < Math.min(n, i + 5000); j++) {
          tx.tasks.put({
            id: `t${String(j).padStart(7, "0")}`,
            title: `Task number ${j}`,
            status: STATUSES[j % 4]!,
            priority: j % 5,
            projectId: `p${j % 10}`,
            tags: j % 3 === 0 ? ["work", `w${j % 7}`] : ["home"],
            createdAt: timestampFromDate(new Date(base + j * 60_000)),
            estimateMinutes: (j * 7) % 240,
          });
        }
      });
      log?.(Math.min(n, i + 5000));
    }
    await store.profiles.put({ id: "u1", displayName: "Ada", email: "ada@example.com", authToken: "secret-token-1" });
    await store.profiles.put({ id: "u2", displayName: "Grace", email: "grace@example.com", authToken: "secret-token-2" });
    await store.profiles.put({ id: "u3", displayName: "<script>alert(1)</script>" });
    await store.settings.update({ language: "en", aiProvider: { model: "small", apiKey: "sk-live-123", baseUrl: "https://ai.example" } });
    await store.compact();
  } finally {
    await store.close();
  }
}
