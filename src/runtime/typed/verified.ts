/**
 * The store's last verification (docs/FORMAT.md, "`VERIFIED`"): `verifyStore` (`cellar verify`) writes what
 * it found, when and by whom to the store directory's `VERIFIED` file (temp file + rename, fsynced), and
 * `lastVerification(dir)` reads it back (Cellar Studio's health page). A file beside the data rather than a
 * record: a verification opens the store without the write lock (read-only, or a follower of the process
 * holding it) and never writes a record. Counts and names only, never a key or a value.
 */
import os from "node:os";
import path from "node:path";
import { CorruptionError, UsageError } from "../errors.js";
import { VERIFIED_FILE } from "../format/filenames.js";
import { nodeFileIO, replaceFileAtomically } from "../platform/io.js";
import type { VerifyReport } from "./verify-store.js";

/** What `lastVerification` returns: the last full verification of a store. */
export interface LastVerification {
  /** When it ended. */
  readonly at: Date;
  /** No problem found. */
  readonly ok: boolean;
  /** Findings: in all, damaged bytes, records that do not decode. */
  readonly problems: number;
  readonly damage: number;
  readonly decode: number;
  /** Live records read (checksum and tag), of those decoded, and at an older schema version. */
  readonly read: number;
  readonly decoded: number;
  readonly older: number;
  /** Every segment block's checksum checked (not as a follower). */
  readonly blocksChecked: boolean;
  readonly opened: "read-only" | "follower";
  /** Who ran it, as the caller said (`cellar verify`: `cellar-cli:<OS user>`); "" when not said. */
  readonly by: string;
  readonly pid: number;
  readonly host: string;
  /** How long it took. */
  readonly ms: number;
}

const FORMAT = 1;
const MAX_BYTES = 64 * 1024;

/** The record of `report` as `VERIFIED` holds it. */
export function verificationOf(report: VerifyReport, by: string, ms: number, at = new Date()): LastVerification {
  const damage = report.findings.filter((f) => f.kind === "damage").length;
  return {
    at,
    ok: report.findings.length === 0,
    problems: report.findings.length,
    damage,
    decode: report.findings.length - damage,
    read: Object.values(report.read).reduce((a, b) => a + b, 0),
    decoded: report.decoded,
    older: report.older,
    blocksChecked: report.blocksChecked,
    opened: report.opened,
    by,
    pid: process.pid,
    host: os.hostname(),
    ms: Math.round(ms),
  };
}

/** Write `v` as the store's `VERIFIED` (replacing the previous one atomically). */
export function recordVerification(dir: string, v: LastVerification): void {
  const text = JSON.stringify({ v: FORMAT, ...v, at: v.at.toISOString() }) + "\n";
  const target = path.join(dir, VERIFIED_FILE);
  // A temp name of this process's own (two verifications at once never share one); `.tmp`: open removes a leftover.
  replaceFileAtomically(nodeFileIO(), dir, `${target}.${process.pid}.tmp`, target, new TextEncoder().encode(text), () => {});
}

const NUMS = ["problems", "damage", "decode", "read", "decoded", "older", "pid", "ms"] as const;

/**
 * The store's last verification, or null when none was recorded. `E_CORRUPT` (naming `VERIFIED`) when the
 * file is not one this version wrote.
 */
export function lastVerification(dir: string): LastVerification | null {
  if (typeof dir !== "string" || !dir) throw new UsageError("`lastVerification` takes the store directory");
  const file = path.join(dir, VERIFIED_FILE);
  const io = nodeFileIO();
  if (!io.exists(file)) return null;
  const bad = (reason: string) => new CorruptionError(file, 0, reason);
  const bytes = io.readFile(file);
  if (bytes.length > MAX_BYTES) throw bad("larger than a verification record");
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as Record<string, unknown>;
  } catch {
    throw bad("not a JSON verification record");
  }
  if (!o || typeof o !== "object" || o.v !== FORMAT) throw bad("not a verification record of format 1");
  const at = new Date(typeof o.at === "string" ? o.at : NaN);
  const wellFormed =
    !Number.isNaN(at.getTime()) && typeof o.ok === "boolean" && typeof o.blocksChecked === "boolean" && (o.opened === "read-only" || o.opened === "follower") &&
    typeof o.by === "string" && typeof o.host === "string" && NUMS.every((k) => Number.isSafeInteger(o[k]) && (o[k] as number) >= 0);
  if (!wellFormed) throw bad("a verification record with a missing or mistyped field");
  const n = (k: (typeof NUMS)[number]) => o[k] as number;
  return {
    at, ok: o.ok as boolean, problems: n("problems"), damage: n("damage"), decode: n("decode"), read: n("read"), decoded: n("decoded"), older: n("older"),
    blocksChecked: o.blocksChecked as boolean, opened: o.opened as "read-only" | "follower", by: o.by as string, pid: n("pid"), host: o.host as string, ms: n("ms"),
  };
}
