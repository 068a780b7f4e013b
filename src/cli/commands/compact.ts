/**
 * `cellar compact <dir>`: rewrite the live records into a fresh segment and free the dead bytes. With the
 * app holding the store, this process follows it and the app's process runs the compaction (the runtime
 * forwards a follower's `compact`); the command waits for it.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { addStoreOptions, type StoreCliOptions } from "../store-options.js";

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("compact")
      .description("rewrite live records into a fresh segment and free dead bytes (run by the app's process when it holds the store)")
      .argument("<dir>", "store directory"),
  ).action(async (dir: string, opts: StoreCliOptions) => compact(dir, opts, ctx));
}

async function compact(dir: string, opts: StoreCliOptions, ctx: CliContext): Promise<void> {
  const { createOutput, formatBytes: bytes } = await import("../output.js");
  const { abs, phased, withStore } = await import("../ops.js");
  const out = createOutput(opts, ctx);
  const at = abs(ctx, dir);
  await withStore(at, opts, ctx, "compact", true, async (store) => {
    const before = store.stats();
    const started = Date.now();
    await phased(out, "compacting", () => store.compact());
    const after = store.stats();
    const doc = {
      dir: at,
      ranIn: store.role === "follower" ? "writer process" : "this process",
      before: { fileBytes: before.fileBytes, deadBytes: before.deadBytes },
      after: { fileBytes: after.fileBytes, deadBytes: after.deadBytes },
      freedBytes: Math.max(0, before.fileBytes - after.fileBytes),
      ms: Date.now() - started,
    };
    out.result(doc, () =>
      `compacted \`${at}\`${doc.ranIn === "writer process" ? " (run by the process holding the store)" : ""}: ${bytes(before.fileBytes)} -> ${bytes(after.fileBytes)} (freed ${bytes(doc.freedBytes)}) in ${doc.ms} ms`,
    );
  });
}
