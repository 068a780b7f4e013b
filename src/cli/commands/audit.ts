/**
 * `cellar audit verify <dir>` and `cellar audit list <dir>`: a store's audit log (docs/SECURITY.md, "Audit
 * log"), read without the app's schema (the log is the engine's `~audit` records): the store is opened
 * read-only, or joined as a follower when another process holds it. `verify` exits FINDINGS when the chain
 * does not verify; `--expect SEQ:MAC` checks the log still holds a head saved earlier (`store.audit.head()`).
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { CliError, type CliContext, EXIT, setExitCode } from "../context.js";
import { createOutput } from "../output.js";
import { addKeyOptions, keyOptions, requireStore, type StoreCliOptions } from "../store-options.js";
import type { AuditEntry, AuditVerifyReport, TypedStore } from "../../runtime/index.js";

interface VerifyFlags extends StoreCliOptions {
  expect?: string;
}
interface ListFlags extends StoreCliOptions {
  since?: string;
  limit?: string;
}

export function register(program: Command, ctx: CliContext): void {
  const audit = program.command("audit").description("the store's tamper-evident audit log (docs/SECURITY.md)");
  addKeyOptions(audit.command("verify").argument("<dir>", "the store directory"))
    .description("check the audit log's chain of MACs: every entry in place, unedited, none missing, the tail not cut")
    .option("--expect <SEQ:MAC>", "a head saved earlier (store.audit.head()): the log must still hold it (detects a rollback)")
    .option("--json", "print one JSON document on stdout")
    .action(async (dir: string, opts: VerifyFlags) => {
      const expect = opts.expect !== undefined ? parseExpect(opts.expect) : undefined;
      const report = await withStore(dir, opts, ctx, (s) => s.audit.verify(expect ? { expect } : {}));
      createOutput(opts, ctx).result(report, () => humanReport(report));
      if (!report.ok) setExitCode(ctx, EXIT.FINDINGS);
    });
  addKeyOptions(audit.command("list").argument("<dir>", "the store directory"))
    .description("print the audit log's entries, oldest first (who, what, when; never a value)")
    .option("--since <TIME>", "entries from this time on (ISO 8601, or milliseconds since 1970)")
    .option("--limit <N>", "at most N entries")
    .option("--json", "print one JSON document on stdout")
    .action(async (dir: string, opts: ListFlags) => {
      const options = { ...(opts.since !== undefined ? { since: parseSince(opts.since) } : {}), ...(opts.limit !== undefined ? { limit: parseLimit(opts.limit) } : {}) };
      const entries = await withStore(dir, opts, ctx, (s) => s.audit.list(options));
      createOutput(opts, ctx).result({ entries }, () => entries.map(humanEntry).join("\n") + (entries.length ? "\n" : "(no entries)\n"));
    });
}

function parseExpect(s: string): { seq: number; mac: string } {
  const m = /^(\d+):([0-9a-fA-F]{64})$/.exec(s);
  if (!m) throw new CliError("--expect takes SEQ:MAC (the seq and the 64 hex digits of store.audit.head())", EXIT.USAGE, "E_USAGE");
  return { seq: Number(m[1]), mac: m[2]!.toLowerCase() };
}

function parseSince(s: string): Date {
  const d = /^\d+$/.test(s) ? new Date(Number(s)) : new Date(s);
  if (Number.isNaN(d.getTime())) throw new CliError(`--since: \`${s}\` is not a time (ISO 8601, or milliseconds)`, EXIT.USAGE, "E_USAGE");
  return d;
}

function parseLimit(s: string): number {
  if (!/^\d+$/.test(s)) throw new CliError("--limit takes a whole number", EXIT.USAGE, "E_USAGE");
  return Number(s);
}

/**
 * Run `f` on the store at `dir` opened without entities (the log needs none): read-only, or as a follower
 * of the process that holds it; closed after.
 */
async function withStore<T>(dir: string, opts: StoreCliOptions, ctx: CliContext, f: (s: TypedStore<{}>) => Promise<T>): Promise<T> {
  const abs = resolve(ctx.cwd, dir);
  requireStore(abs);
  const key = await keyOptions(opts, ctx, dir);
  const { openStore, isCellarError } = await import("../../runtime/index.js");
  const base = { dir: abs, ...key, cleanup: false as const };
  let store: TypedStore<{}>;
  try {
    store = await openStore({}, { ...base, redactSensitive: true });
  } catch (e) {
    if (!isCellarError(e) || e.code !== "E_LOCKED") throw e;
    store = await openStore({}, base); // another process holds it: read through it as a follower
  }
  try {
    return await f(store);
  } finally {
    await store.close();
  }
}

function humanReport(r: AuditVerifyReport): string {
  const lines = [
    r.ok ? `audit log verifies: ${r.entries} entries (${r.firstSeq}–${r.lastSeq}), head ${r.head.seq}` : `audit log does NOT verify: ${r.problems.length} problem${r.problems.length === 1 ? "" : "s"}`,
  ];
  if (r.prunedThrough) lines.push(`pruned through ${r.prunedThrough}`);
  for (const p of r.problems) lines.push(`  ${p.kind} at ${p.seq}: ${p.message}`);
  if (r.head.seq) lines.push(`head: ${r.head.seq}:${r.head.mac}`);
  return lines.join("\n") + "\n";
}

function humanEntry(e: AuditEntry): string {
  const who = [e.actor || "-", `pid ${e.pid}`, e.host].join(" ");
  const what = [e.action, e.entity ?? "", e.count ? `×${e.count}` : "", e.keys.length ? `keys ${e.keys.join(",")}` : ""].filter(Boolean).join(" ");
  const detail = Object.keys(e.detail).length ? ` ${JSON.stringify(e.detail)}` : "";
  return `${e.seq}\t${e.at.toISOString()}\t${who}\t${what}${detail}`;
}
