/** One round of the SIGKILL crash loop, shared by test/engine/crash.test.ts and the soak script. */
import path from "node:path";
import { Engine } from "../../../src/runtime/storage/engine.js";
import { checkAgainstLog, readLog, TEST_KEY } from "./model.js";
import { startChild, waitForLine } from "./spawn.js";

export interface RoundResult {
  stored: Map<string, string>;
  acked: number;
  tornTail: boolean;
  damaged: number;
  problems: string[];
  stderr: string;
  signal: NodeJS.Signals | null;
}

/** Start a writer on `dir`, SIGKILL it after `killAfterMs`, reopen the store and check it against the log. */
export async function crashRound(
  dir: string,
  logDir: string,
  round: number,
  seed: number,
  killAfterMs: number,
  initial: Map<string, string | null>,
): Promise<RoundResult> {
  const log = path.join(logDir, `round-${round}.log`);
  const { child, exited } = startChild("crash-writer.ts", [dir, log, String(seed)]);
  await waitForLine(log, /^OPEN$/m);
  await new Promise((r) => setTimeout(r, killAfterMs));
  child.kill("SIGKILL");
  const { signal, stderr } = await exited;
  const parsed = readLog(log);
  const engine = await Engine.open({ dir, key: TEST_KEY, compaction: { auto: false } });
  const stored = new Map<string, string>();
  try {
    for (const k of engine.keys("e")) stored.set(k, Buffer.from(engine.get("e", k)!.value).toString());
  } finally {
    await engine.close();
  }
  return {
    stored,
    acked: parsed.acked.size,
    tornTail: engine.recovery.truncatedTail !== null,
    damaged: engine.recovery.damaged.length,
    problems: checkAgainstLog(stored, parsed, initial),
    stderr,
    signal,
  };
}
