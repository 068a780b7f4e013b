/**
 * `cellar reencrypt <dir>`: re-encrypt every record under the active data key now and destroy the older keys
 * (`store.reencrypt`, a compaction). Runs in the process holding the store's lock: refused (exit IN_USE,
 * naming the pid) while the app has the store open.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { addStoreOptions, type StoreCliOptions } from "../store-options.js";

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("reencrypt")
      .description("re-encrypt every record under the active data key and destroy older keys (refused while another process has the store open)")
      .argument("<dir>", "store directory"),
  ).action(async (dir: string, opts: StoreCliOptions) => reencrypt(dir, opts, ctx));
}

async function reencrypt(dir: string, opts: StoreCliOptions, ctx: CliContext): Promise<void> {
  const { createOutput } = await import("../output.js");
  const { abs, phased, requireWriter, withStore } = await import("../ops.js");
  const out = createOutput(opts, ctx);
  const at = abs(ctx, dir);
  await withStore(at, opts, ctx, "reencrypt", true, async (store) => {
    requireWriter(store, at, "reencrypt");
    const destroyedKeyIds = await phased(out, "re-encrypting", () => store.reencrypt());
    const keys = store.keyInfo();
    out.result({ dir: at, activeKeyId: keys.activeKeyId, destroyedKeyIds, keys }, () =>
      `every record of \`${at}\` is under data key ${keys.activeKeyId}; destroyed: ${destroyedKeyIds.join(", ") || "none (no older key)"}`,
    );
  });
}
