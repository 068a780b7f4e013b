/**
 * `cellar export <dir> --out FILE [--include-sensitive] [--entity NAME…]`: the store's records as NDJSON
 * (`store.export`; docs/FORMAT.md, "Export file (NDJSON)"), written to a temp file and renamed. Sensitive
 * fields are left out unless `--include-sensitive` (then they are in the file in clear text, and a warning
 * says so). Reads only: works while the app holds the store (this process follows it). A store that keeps
 * an audit log records the export, with or without sensitive fields (actor `cellar-cli:<user>`).
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { addStoreOptions, type StoreCliOptions } from "../store-options.js";

interface ExportCliOptions extends StoreCliOptions {
  out: string;
  includeSensitive?: boolean;
  entity?: string[];
}

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("export")
      .description("write the store's records to an NDJSON file (sensitive fields left out unless --include-sensitive)")
      .argument("<dir>", "store directory")
      .requiredOption("--out <file>", "the NDJSON file to write (replaced atomically)")
      .option("--include-sensitive", "write sensitive fields in clear text into the file")
      .option("--entity <name...>", "only these entities (storage names or store properties)"),
  ).action(async (dir: string, opts: ExportCliOptions) => exportStore(dir, opts, ctx));
}

async function exportStore(dir: string, opts: ExportCliOptions, ctx: CliContext): Promise<void> {
  const { createOutput } = await import("../output.js");
  const { abs, perEntity, storageNames, withStore } = await import("../ops.js");
  const { loadSchema } = await import("../store-options.js");
  const out = createOutput(opts, ctx);
  const at = abs(ctx, dir);
  const entities = storageNames((await loadSchema(opts, ctx)).entities, opts.entity);
  const includeSensitive = opts.includeSensitive === true;
  // Sensitive fields need the store opened with their keys: a writing open (reads only are done). Without
  // them, read-only, unless the store keeps an audit log, which records every export (with or without).
  await withStore(at, opts, ctx, "export", includeSensitive || "if-audited", async (store) => {
    const counts = store.stats().entities;
    const total = (entities ?? Object.keys(counts)).reduce((n, e) => n + (counts[e]?.records ?? 0), 0);
    const bar = out.progress("export", total);
    const before = new Map<string, number>();
    let result;
    try {
      result = await store.export({
        to: abs(ctx, opts.out),
        includeSensitive,
        ...(entities ? { entities } : {}),
        onProgress: (p) => {
          before.set(p.entity, p.done);
          bar.update([...before.values()].reduce((n, v) => n + v, 0), total);
        },
      });
    } finally {
      bar.stop();
    }
    if (includeSensitive) out.warn(`${result.file} holds sensitive fields in clear text: keep it safe and delete it when done`);
    out.result(result, () => `exported to ${result.file}: ${perEntity(result.records)}${result.redacted ? " (sensitive fields left out)" : ""}`);
  });
}
