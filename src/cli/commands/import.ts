/**
 * `cellar import <dir> --in FILE [--mode merge|replace] [--allow-redacted]`: import an export file, all or
 * nothing (`store.import`: every line validated, older versions migrated; one bad line and nothing is
 * written). Runs in the process holding the store's lock: refused (exit IN_USE, naming the pid) while the app
 * has the store open.
 */
import { Option, type Command } from "commander";
import type { CliContext } from "../context.js";
import { addStoreOptions, type StoreCliOptions } from "../store-options.js";

interface ImportCliOptions extends StoreCliOptions {
  in: string;
  mode: "merge" | "replace";
  allowRedacted?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("import")
      .description("import an NDJSON export file, all or nothing (refused while another process has the store open)")
      .argument("<dir>", "store directory")
      .requiredOption("--in <file>", "the export file to read")
      .addOption(new Option("--mode <mode>", "merge: put each record; replace: each entity of the file holds exactly its records").choices(["merge", "replace"]).default("merge"))
      .option("--allow-redacted", "replace: accept a file without sensitive fields (stored sensitive values are kept)"),
  ).action(async (dir: string, opts: ImportCliOptions) => importFile(dir, opts, ctx));
}

async function importFile(dir: string, opts: ImportCliOptions, ctx: CliContext): Promise<void> {
  const { createOutput } = await import("../output.js");
  const { abs, countLines, perEntity, requireWriter, withStore } = await import("../ops.js");
  const out = createOutput(opts, ctx);
  const at = abs(ctx, dir);
  const file = abs(ctx, opts.in);
  const lines = await countLines(file);
  await withStore(at, opts, ctx, "import", true, async (store) => {
    requireWriter(store, at, "import");
    const bar = out.progress("import", lines);
    let result;
    try {
      result = await store.import(file, {
        mode: opts.mode,
        ...(opts.allowRedacted ? { allowRedacted: true } : {}),
        onProgress: (p) => bar.update(p.phase === "done" ? lines : Math.min(p.line, lines), lines),
      });
    } finally {
      bar.stop();
    }
    const doc = { file, ...result };
    out.result(doc, () => `imported ${file}: ${perEntity(result.records)}; ${result.written} written, ${result.deleted} deleted`);
  });
}
