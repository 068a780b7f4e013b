/**
 * `cellar change-passphrase <dir>`: rewrap the store's data keys under a new passphrase
 * (`store.changeMasterKey`; only the small KEYRING file is rewritten, and the store's own backup files are
 * rewrapped too; a warning lists the backups there it does not rewrap); the old key stops working at once. The current key comes from the key options; the new
 * passphrase from `--new-passphrase-env VAR` or a hidden prompt asked twice, never from an argument. Refused
 * (exit IN_USE, naming the pid) while the app has the store open.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { addStoreOptions, type StoreCliOptions } from "../store-options.js";

interface ChangeCliOptions extends StoreCliOptions {
  newPassphraseEnv?: string;
}

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("change-passphrase")
      .description("set a new passphrase (master key) for the store (refused while another process has the store open)")
      .argument("<dir>", "store directory")
      .option("--new-passphrase-env <var>", "the environment variable holding the new passphrase (default: asked twice, hidden)"),
  ).action(async (dir: string, opts: ChangeCliOptions) => change(dir, opts, ctx));
}

async function change(dir: string, opts: ChangeCliOptions, ctx: CliContext): Promise<void> {
  const { createOutput } = await import("../output.js");
  const { abs, backupsUnderOldKey, newPassphrase, phased, requireWriter, withStore } = await import("../ops.js");
  const { keys } = await import("../../runtime/crypto/keys.js");
  const out = createOutput(opts, ctx);
  const at = abs(ctx, dir);
  await withStore(at, opts, ctx, "change-passphrase", true, async (store) => {
    requireWriter(store, at, "change-passphrase"); // before asking for the new passphrase
    const next = keys.passphrase(await newPassphrase(ctx, opts.newPassphraseEnv));
    await phased(out, "rewrapping the keys", () => store.changeMasterKey(next));
    const stale = await backupsUnderOldKey(at);
    if (stale.length) {
      out.warn(`${stale.length} backup file(s) of this store taken with \`cellar backup\` or \`store.backup()\` still open with the old key (only Cellar's own automatic and pre-migration backups are rewrapped): take new backups and delete these if the old key may be known: ${stale.join(", ")}`);
    }
    out.result({ dir: at, masterKey: "passphrase", keys: store.keyInfo(), backupsUnderOldKey: stale }, () => `the passphrase of \`${at}\` is changed: the old key no longer opens it`);
  });
}
