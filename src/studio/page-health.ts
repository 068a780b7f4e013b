/**
 * Store health: what open found (the recovery report), the last verification (the store's `VERIFIED`), the
 * backups with their age (take one, verify one), key info (ids and kind, never key material), and each
 * entity's schema version against the schema lock.
 */
import fs from "node:fs";
import path from "node:path";
import { lastVerification as readLastVerification, type LastVerification, type ListedBackup, listBackups, verifyBackup } from "../runtime/index.js";
import { bytes, esc, notice, num, page, postForm, table } from "./html.js";
import type { Req, Res, Studio } from "./context.js";

/** `3 h ago`. */
export function age(at: Date, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - at.getTime()) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function recovery(s: Studio): string {
  const r = s.o.store.recoveryReport;
  const rows: string[][] = [
    ["Created by this open", r.created ? "yes" : "no"],
    ["Torn tail cut off", r.truncatedTail ? esc(`${r.truncatedTail.bytes} bytes of ${path.basename(r.truncatedTail.file)} (${r.truncatedTail.reason})`) : "none"],
    ["Damaged records", r.damaged.length ? esc(r.damaged.map((d) => JSON.stringify(d)).join("; ")) : "none"],
    ["Leftover files removed", r.removedFiles.length ? esc(r.removedFiles.map((f) => path.basename(f)).join(", ")) : "none"],
  ];
  return table("What open found (recovery report)", ["Item", "Value"], rows, true);
}

function backupsDir(s: Studio): string {
  return s.currentStats().backups.dir;
}

function listed(s: Studio): ListedBackup[] {
  const dir = backupsDir(s);
  return fs.existsSync(dir) ? listBackups(dir) : [];
}

function backupRows(s: Studio, req: Req, list: ListedBackup[]): string[][] {
  return list.map((b) => {
    const name = path.basename(b.file);
    const verify = postForm("/health/backups/verify", req.session.csrf, `<input type="hidden" name="file" value="${esc(name)}"><button type="submit" class="secondary" aria-label="Verify ${esc(name)}">Verify</button>`, ' class="inline"');
    if (b.damaged !== null) return [esc(name), "", "", bytes(b.bytes), `<span class="field-error">damaged: ${esc(b.damaged)}</span>`, verify];
    return [esc(name), esc(b.createdAt.toISOString()), age(b.createdAt), bytes(b.bytes), esc(`${b.protection}${b.label ? `, “${b.label}”` : ""}`), verify];
  });
}

function backups(s: Studio, req: Req): string {
  const list = listed(s);
  const take = postForm("/health/backups/take", req.session.csrf, '<button type="submit">Take a backup now</button>');
  const head = `<h2>Backups</h2><p>Directory: <code>${esc(backupsDir(s))}</code></p>${take}`;
  if (!list.length) return `${head}<p>No backups yet.</p>`;
  return head + table("Backups, newest first", ["File", "Taken", "Age", "Size", "Protection", "Check"], backupRows(s, req, list), true);
}

function keyInfo(s: Studio): string {
  const k = s.o.store.keyInfo();
  const rows = [
    ["Encrypted", k.encrypted ? "yes" : "no"],
    ["Master key", esc(k.masterKey ?? "none")],
    ["Active data key id", String(k.activeKeyId)],
    ["Data key ids", esc(k.keyIds.join(", "))],
    ["Sensitive fields", s.o.canReveal ? "can be opened (revealed one at a time)" : "keys not loaded: always redacted"],
  ];
  return table("Keys (never key material)", ["Item", "Value"], rows, true);
}

function lockVersions(s: Studio): Record<string, number[]> | null {
  if (!s.o.lockFile || !fs.existsSync(s.o.lockFile)) return null;
  const doc = JSON.parse(fs.readFileSync(s.o.lockFile, "utf8")) as { entities?: Record<string, { versions?: Record<string, unknown> }> };
  return Object.fromEntries(Object.entries(doc.entities ?? {}).map(([n, e]) => [n, Object.keys(e.versions ?? {}).map(Number)]));
}

function schema(s: Studio): string {
  const lock = lockVersions(s);
  const stats = s.currentStats();
  const rows = Object.values(s.o.entities).map((d) => {
    const locked = lock?.[d.name];
    const top = locked?.length ? Math.max(...locked) : undefined;
    const stored = stats.entities[d.name]?.storedVersion;
    const state = [
      lock === null ? "no lock file" : top === undefined ? "not in the lock" : top === d.version ? "matches the lock" : top > d.version ? "older than the lock" : "newer than the lock (run `cellar lock`)",
      ...(stored !== undefined && stored !== d.version ? [`stored at v${stored}: the app's next open migrates it`] : []),
    ].join("; ");
    return [esc(d.name), String(d.version), stored === undefined ? "—" : String(stored), locked ? esc(locked.join(", ")) : "—", num(stats.entities[d.name]?.records ?? 0), esc(state)];
  });
  const note = "<p>Records are stored at the stored version; the app's open migrates older ones to its schema version first (docs/SCHEMAS.md).</p>";
  return `<h2>Schema</h2>${note}` + table("Schema versions against the lock", ["Entity", "Schema version", "Stored version", "Locked versions", "Records", "State"], rows, true);
}

function verificationRows(v: LastVerification): string[][] {
  const result = v.ok ? "no problems found" : `<strong class="bad">${num(v.problems)} problem(s) found: ${num(v.damage)} damaged, ${num(v.decode)} not decoding</strong>`;
  return [
    ["When", `${esc(v.at.toISOString())} (${age(v.at)})`],
    ["Result", result],
    ["Records read", `${num(v.read)} (checksum and tag), ${num(v.decoded)} decoded${v.older ? `, ${num(v.older)} at an older schema version` : ""}`],
    ["Segment blocks", v.blocksChecked ? "every block's checksum checked" : "not all checked (another process held the store)"],
    ["By", esc(`${v.by || "(not named)"}, process ${v.pid} on ${v.host}, in ${v.ms} ms`)],
  ];
}

/** The last full verification (`cellar verify`, `verifyStore`: the store's `VERIFIED`), or "never". */
function lastVerification(s: Studio): string {
  const head = "<h2>Last verification</h2>";
  const how = "<p>Run <code>cellar verify &lt;dir&gt;</code> to check every checksum, tag and record; the store also checks its segment in the background at every open and reports damage in the recovery report above.</p>";
  let v: LastVerification | null;
  try {
    v = readLastVerification(s.o.store.dir);
  } catch (e) {
    return `${head}<p id="last-verification" class="bad">The record of the last verification is unreadable: ${esc((e as Error).message)}</p>${how}`;
  }
  if (!v) return `${head}<p id="last-verification">Never: no verification is recorded for this store.</p>${how}`;
  return head + `<div id="last-verification">${table("The last verification", ["Item", "Value"], verificationRows(v), true)}</div>` + how;
}

export async function healthPage(s: Studio, req: Req, message?: { kind: "ok" | "error"; text: string }): Promise<Res> {
  s.refreshStats();
  let body = message ? notice(message.kind, message.text) : "";
  body += recovery(s) + lastVerification(s) + backups(s, req) + keyInfo(s) + schema(s);
  return { html: page({ title: "Store health", nav: await s.nav(), current: "~health", readOnly: s.readOnly, body }) };
}

/** POST: take a backup into the backup directory. */
export async function takeBackup(s: Studio, req: Req): Promise<Res> {
  const stamp = new Date().toISOString().replace(/[-:.]/g, "");
  const file = path.join(backupsDir(s), `${path.basename(path.resolve(s.o.store.dir))}-studio-${stamp}.cellarbackup`);
  try {
    const info = await s.o.store.backup({ to: file, label: "taken in Cellar Studio" });
    return healthPage(s, req, { kind: "ok", text: `Backup taken: ${path.basename(info.file)} (${bytes(info.bytes)}).` });
  } catch (e) {
    return healthPage(s, req, { kind: "error", text: `The backup failed: ${(e as Error).message}` });
  }
}

/** POST: verify one listed backup (by its file name in the backup directory) with the store's key. */
export async function verifyOne(s: Studio, req: Req): Promise<Res> {
  const name = req.form.get("file") ?? "";
  const known = listed(s).find((b) => path.basename(b.file) === name);
  if (!known) return healthPage(s, req, { kind: "error", text: "No such backup in the backup directory." });
  try {
    const info = await verifyBackup(known.file, s.o.key ? { key: s.o.key } : {});
    return healthPage(s, req, { kind: "ok", text: `${name} verified: ${num(info.entities.reduce((n, e) => n + e.records, 0))} records read and checked.` });
  } catch (e) {
    return healthPage(s, req, { kind: "error", text: `${name} did not verify: ${(e as Error).message}` });
  }
}
