/**
 * `cellar rotate-key <dir>`: make a new random data key the active one (`store.rotateKey`); records under
 * older keys are re-encrypted by the next compaction, or now with `--reencrypt` (or `cellar reencrypt`).
 * Runs in the process holding the store's lock: refused (exit IN_USE, naming the pid) while the app has it.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { addStoreOptions, type StoreCliOptions } from "../store-options.js";

interface RotateCliOptions extends StoreCliOptions {
  reencrypt?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("rotate-key")
      .description("start using a new random data key (refused while another process has the store open)")
      .argument("<dir>", "store directory")
      .option("--reencrypt", "also re-encrypt every record under the new key now and destroy the old keys"),
  ).action(async (dir: string, opts: RotateCliOptions) => rotate(dir, opts, ctx));
}

async function rotate(dir: string, opts: RotateCliOptions, ctx: CliContext): Promise<void> {
  const { createOutput } = await import("../output.js");
  const { abs, phased, requireWriter, withStore } = await import("../ops.js");
  const out = createOutput(opts, ctx);
  const at = abs(ctx, dir);
  await withStore(at, opts, ctx, "rotate-key", true, async (store) => {
    requireWriter(store, at, "rotate-key");
    const activeKeyId = await store.rotateKey();
    const destroyedKeyIds = opts.reencrypt ? await phased(out, "re-encrypting", () => store.reencrypt()) : [];
    const doc = { dir: at, activeKeyId, destroyedKeyIds, keys: store.keyInfo() };
    out.result(doc, () =>
      `new data key ${activeKeyId} is active in \`${at}\`` +
      (opts.reencrypt
        ? `; every record re-encrypted, old key(s) ${destroyedKeyIds.join(", ") || "none"} destroyed`
        : `; records under older keys (${doc.keys.keyIds.filter((k) => k !== activeKeyId).join(", ") || "none"}) are re-encrypted by the next compaction (\`cellar reencrypt\` does it now)`),
    );
  });
}
