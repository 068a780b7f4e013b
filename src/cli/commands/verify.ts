/**
 * `cellar verify <dir>`: every segment block's checksum, every live record's checksum and tag, and every
 * record of the app's entities decoded (sensitive parts opened, their tags checked), with a report; exit
 * FINDINGS when damage is found. No record is written; the result is kept in the store's `VERIFIED` file
 * (by `cellar-cli:<user>`), which Cellar Studio's health page shows (typed/verify-store.ts, verified.ts).
 */
import type { Command } from "commander";
import { type CliContext, EXIT, setExitCode } from "../context.js";
import { type Colors, createOutput } from "../output.js";
import { addStoreOptions, cliActor, prepareStore, type StoreCliOptions } from "../store-options.js";
import type { VerifyReport } from "../../runtime/typed/verify-store.js";

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("verify")
      .description("check every checksum, tag and record decode; exit 1 when damage is found; changes no record (the result is kept in VERIFIED)")
      .argument("<dir>", "the store directory"),
  ).action(async (dir: string, opts: StoreCliOptions) => {
    const out = createOutput(opts, ctx);
    const { abs, schema, key } = await prepareStore(dir, opts, ctx);
    const { verifyStore } = await import("../../runtime/typed/verify-store.js");
    const bar = out.progress("verifying records");
    let report: VerifyReport;
    try {
      report = await verifyStore(schema.entities, { dir: abs, ...key, by: cliActor() }, (done, total) => bar.update(done, total));
    } finally {
      bar.stop();
    }
    const ok = report.findings.length === 0;
    out.result({ dir: abs, ok, ...report }, () => humanVerify(abs, report, out.color));
    if (!ok) setExitCode(ctx, EXIT.FINDINGS);
  });
}

function humanVerify(dir: string, r: VerifyReport, c: Colors): string {
  const read = Object.values(r.read).reduce((a, b) => a + b, 0);
  const how = r.opened === "follower" ? ` (as a follower: process ${r.holderPid ?? "?"} holds the store; blocks without a live record not read)` : "";
  const lines = [
    `${c.bold("verified")} ${dir}${how}`,
    `  ${r.blocksChecked ? "every segment block's checksum, " : ""}${read} live record(s) read (checksum and tag), ${r.decoded} decoded${r.older ? `, ${r.older} at an older schema version (not decoded)` : ""}`,
  ];
  for (const f of r.findings) {
    const where = f.file !== undefined ? `${f.file} at ${f.offset ?? 0}` : "";
    const rec = f.entity !== undefined ? ` (${f.entity}/${f.key ?? ""})` : "";
    const lost = f.records?.length ? `; ${f.records.length} record(s) lost: ${f.records.slice(0, 5).map((x) => `${x.entity}/${x.key}`).join(", ")}${f.records.length > 5 ? ", …" : ""}` : "";
    lines.push(c.red(`  ${f.kind}: ${where}${rec}: ${f.reason}${lost}`));
  }
  lines.push(r.findings.length ? c.red(`${r.findings.length} problem(s) found`) : c.green("no problems found"));
  if (r.recordError !== undefined) lines.push(c.yellow(`  (the result could not be recorded in the store's VERIFIED file: ${r.recordError})`));
  return lines.join("\n");
}
