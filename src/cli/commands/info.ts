/**
 * `cellar info <dir>`: the store's format version, its entities with their schema versions, record counts
 * and bytes on disk, its keys (ids and the master key's kind, never key material) and what opening it found
 * (the recovery report). Read without changing a file (typed/describe.ts): read-only, or as a follower
 * while another process holds the store.
 */
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { type Colors, createOutput, formatBytes, table } from "../output.js";
import { addStoreOptions, prepareStore, type StoreCliOptions } from "../store-options.js";
import type { StoreDescription } from "../../runtime/typed/describe.js";
import type { RecoveryReport } from "../../runtime/index.js";

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("info")
      .description("format, entities, versions, record counts, bytes on disk, key info and what opening found; changes nothing")
      .argument("<dir>", "the store directory"),
  ).action(async (dir: string, opts: StoreCliOptions) => {
    const out = createOutput(opts, ctx);
    const { abs, schema, key } = await prepareStore(dir, opts, ctx);
    const { describeStore } = await import("../../runtime/typed/describe.js");
    const d = await describeStore(schema.entities, { dir: abs, ...key });
    out.result(d, () => humanInfo(d, out.color));
  });
}

function humanInfo(d: StoreDescription, c: Colors): string {
  const opened = d.opened === "follower" ? `as a follower, read from its files (process ${d.holderPid ?? "?"} holds the store)` : "read-only (no other process holds it)";
  const k = d.key;
  const keyLine = !k.encrypted ? "none (plaintext store)" : `${k.masterKey ?? "?"} master key; data keys ${k.keyIds.join(", ")} (active ${k.activeKeyId})`;
  const rows = d.entities.map((e) => [
    e.name,
    e.property ?? c.yellow("(not in the schema)"),
    e.schemaVersion !== undefined ? String(e.schemaVersion) : "-",
    e.storedVersion !== undefined ? String(e.storedVersion) : "-",
    String(e.records),
    Object.keys(e.versions).length > 1 ? Object.entries(e.versions).map(([v, n]) => `v${v}:${n}`).join(" ") : "",
    formatBytes(e.liveBytes),
    formatBytes(e.deadBytes),
    formatBytes(e.historyBytes),
  ]);
  return [
    `${c.bold("store")}    ${d.dir}`,
    `format   ${d.formatVersion} (this cellar writes ${d.runtimeFormatVersion})`,
    `opened   ${opened}`,
    `files    ${formatBytes(d.fileBytes)} (dead ${formatBytes(d.deadBytes)}, journals ${formatBytes(d.journalBytes)}, internal ${formatBytes(d.internalBytes)})`,
    `records  ${d.records}`,
    `key      ${keyLine}`,
    "",
    c.bold("entities"),
    table(["entity", "property", "schema", "stored", "records", "by version", "live", "dead", "history"], rows, c),
    "",
    c.bold("recovery"),
    ...recoveryLines(d.recovery, c),
  ].join("\n");
}

/** The recovery report as lines (entity and key of lost records, never a value). */
export function recoveryLines(r: RecoveryReport, c: Colors): string[] {
  const lines: string[] = [];
  if (r.truncatedTail) lines.push(c.yellow(`  torn journal end: ${r.truncatedTail.file} at ${r.truncatedTail.offset}, ${r.truncatedTail.bytes} bytes (${r.truncatedTail.reason})`));
  for (const d of r.damaged) {
    const lost = d.records.length ? `; ${d.records.length} record(s) lost: ${d.records.slice(0, 5).map((x) => `${x.entity}/${x.key}`).join(", ")}${d.records.length > 5 ? ", …" : ""}` : "";
    lines.push(c.red(`  damaged: ${d.file} at ${d.offset}, ${d.bytes} bytes: ${d.reason}${lost}${d.quarantinedAs ? ` (copy in ${d.quarantinedAs})` : ""}`));
  }
  for (const f of r.removedFiles) lines.push(`  leftover: ${f}`);
  return lines.length ? lines : [c.green("  nothing found: the store opened clean")];
}
