/**
 * Runs store mutations in batches, each batch in a child process (fuzz-child.ts), with a watchdog per
 * mutation: a mutation that runs past its timeout is a hang (`timeout`), a child that dies is a `crash`;
 * either way the child is replaced and the batch goes on after that mutation.
 *
 * `npm run fuzz -- --mutations N --seed S [--jobs J] [--timeout MS] [--batch B] [--verbose]` prints a table.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { BUG_OUTCOMES, buildBase, MODES, type Outcome, type Result } from "./store-fuzz.js";

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Known defects owned by other parts of issue 19 (journal recovery, MANIFEST handling): findings that
 * match an entry are counted apart and do not fail the short test. Each entry names its classification,
 * how it is recognised (a stack frame inside the file that owns it), and who fixes it. Remove an entry
 * once its fix is merged: the short test then asserts zero of it.
 */
export interface KnownIssue {
  outcome: Outcome;
  /** Matched against `op`, `what` and `where` of a finding, or the mutated file for a timeout/crash. */
  match: RegExp;
  owner: string;
  note: string;
}
export const KNOWN_ISSUES: readonly KnownIssue[] = [];

export interface RunOptions {
  seed: number;
  mutations: number;
  /** First mutation id (default 0). */
  first?: number;
  jobs?: number;
  batch?: number;
  timeoutMs?: number;
  work?: string;
  onResult?: (r: Result) => void;
}

export interface RunSummary {
  seed: number;
  mutations: number;
  byOutcome: Record<Outcome, number>;
  byMode: Record<string, Record<Outcome, number>>;
  /** Bug results (outcome in BUG_OUTCOMES) not matched by KNOWN_ISSUES. */
  bugs: Result[];
  /** Bug results matched by a known issue. */
  known: { result: Result; issue: KnownIssue }[];
  reportedThenOk: number;
  ms: number;
}

function knownIssueOf(r: Result): KnownIssue | undefined {
  return KNOWN_ISSUES.find((k) => {
    if (k.outcome !== r.outcome) return false;
    const bugs = r.findings.filter((f) => f.outcome === r.outcome);
    if (bugs.length === 0) return k.match.test(`${r.mutation.file} ${r.mutation.kind}`);
    return bugs.every((f) => k.match.test(`${f.op} ${f.what} ${f.where}`));
  });
}

/** Run one child over ids [from, to); resolves with the results (timeouts and crashes included). */
function runChild(seed: number, from: number, to: number, base: string, work: string, timeoutMs: number, onResult: (r: Result) => void): Promise<void> {
  return new Promise((resolve) => {
    let next = from;
    const start = (lo: number) => {
      if (lo >= to) return resolve();
      const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "fuzz-child.ts"), JSON.stringify({ seed, from: lo, to, base, work })], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let current = -1;
      let timer: NodeJS.Timeout | undefined;
      let killedFor = -1;
      let buf = "";
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      child.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const l = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (l.startsWith("S ")) {
            current = Number(l.slice(2));
            clearTimeout(timer);
            timer = setTimeout(() => {
              killedFor = current;
              child.kill("SIGKILL");
            }, timeoutMs);
          } else if (l.startsWith("R ")) {
            clearTimeout(timer);
            const r = JSON.parse(l.slice(2)) as Result;
            onResult(r);
            next = r.mutation.id + 1;
            current = -1;
          }
        }
      });
      child.on("exit", () => {
        clearTimeout(timer);
        if (current >= 0) {
          const mode = MODES[current % MODES.length]!;
          const outcome: Outcome = killedFor === current ? "timeout" : "crash";
          onResult({
            mutation: { id: current, mode, file: "?", kind: "?", detail: "" },
            outcome,
            codes: [],
            findings: [{ outcome, op: "child", what: outcome === "timeout" ? `no result after ${timeoutMs} ms` : stderr.slice(-300), where: "" }],
            reported: false,
          });
          fs.rmSync(path.join(work, `m${current}`), { recursive: true, force: true });
          next = current + 1;
        }
        start(next);
      });
    };
    start(from);
  });
}

export async function runFuzz(o: RunOptions): Promise<RunSummary> {
  const t0 = Date.now();
  const work = o.work ?? fs.mkdtempSync(path.join(os.tmpdir(), "cellar-fuzz-"));
  const base = path.join(work, "base");
  for (const m of MODES) await buildBase(m, path.join(base, m));
  const first = o.first ?? 0;
  const end = first + o.mutations;
  const batch = o.batch ?? 200;
  const jobs = Math.max(1, o.jobs ?? 1);
  const zero = () => Object.fromEntries(["ok", "typed", "untyped", "wrong-type", "reopen-failed", "timeout", "crash"].map((k) => [k, 0])) as Record<Outcome, number>;
  const summary: RunSummary = { seed: o.seed, mutations: 0, byOutcome: zero(), byMode: Object.fromEntries(MODES.map((m) => [m, zero()])), bugs: [], known: [], reportedThenOk: 0, ms: 0 };
  const onResult = (r: Result) => {
    summary.mutations++;
    summary.byOutcome[r.outcome]++;
    summary.byMode[r.mutation.mode]![r.outcome]++;
    if (r.reported && (r.outcome === "ok" || r.outcome === "typed")) summary.reportedThenOk++;
    if (BUG_OUTCOMES.includes(r.outcome)) {
      const issue = knownIssueOf(r);
      if (issue) summary.known.push({ result: r, issue });
      else summary.bugs.push(r);
    }
    o.onResult?.(r);
  };
  let cursor = first;
  const worker = async () => {
    while (cursor < end) {
      const lo = cursor;
      cursor = Math.min(end, cursor + batch);
      await runChild(o.seed, lo, cursor, base, work, o.timeoutMs ?? 10_000, onResult);
    }
  };
  try {
    await Promise.all(Array.from({ length: jobs }, worker));
  } finally {
    if (!o.work) fs.rmSync(work, { recursive: true, force: true });
  }
  summary.ms = Date.now() - t0;
  return summary;
}

export function formatSummary(s: RunSummary): string {
  const outcomes = Object.keys(s.byOutcome) as Outcome[];
  const rows = [["outcome", ...MODES.map((m) => `encryption ${m === "none" ? '"none"' : "raw key"}`), "total"]];
  for (const k of outcomes) rows.push([k + (BUG_OUTCOMES.includes(k) ? " (bug)" : ""), ...MODES.map((m) => String(s.byMode[m]![k])), String(s.byOutcome[k])]);
  rows.push(["all", ...MODES.map((m) => String(Object.values(s.byMode[m]!).reduce((a, b) => a + b, 0))), String(s.mutations)]);
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(" | ")} |`;
  const lines = [fmt(rows[0]!), `|${w.map((n, i) => (i === 0 ? "-".repeat(n + 2) : "-".repeat(n + 1) + ":")).join("|")}|`, ...rows.slice(1).map(fmt)];
  lines.push("", `seed ${s.seed}, ${s.mutations} mutations in ${(s.ms / 1000).toFixed(1)} s; ${s.reportedThenOk} opened with a recovery report and read cleanly twice`);
  lines.push(`unexpected bugs: ${s.bugs.length}; known issues (owned elsewhere): ${s.known.length}`);
  const groups = new Map<string, Result[]>();
  for (const r of s.bugs) {
    const f = r.findings.find((x) => x.outcome === r.outcome) ?? r.findings[0];
    const sig = `${r.outcome} | ${f?.op.replace(/#2$/, "")} | ${f?.what.replace(/\d+/g, "N").slice(0, 90)} | ${f?.where.split(" < ")[0] ?? ""}`;
    groups.set(sig, [...(groups.get(sig) ?? []), r]);
  }
  for (const [sig, rs] of [...groups].sort((a, b) => b[1].length - a[1].length)) {
    const ex = rs[0]!.mutation;
    lines.push(`  ${rs.length} × ${sig}\n      e.g. seed ${s.seed} id ${ex.id} (${ex.mode}, ${ex.file}, ${ex.kind} ${ex.detail})`);
  }
  for (const { result: r, issue } of s.known) {
    lines.push(`  known (${issue.owner}): ${r.outcome} seed ${s.seed} id ${r.mutation.id} (${r.mutation.mode}, ${r.mutation.file}, ${r.mutation.kind} ${r.mutation.detail})`);
  }
  return lines.join("\n");
}

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const verbose = process.argv.includes("--verbose");
  const s = await runFuzz({
    seed: arg("seed", 1),
    mutations: arg("mutations", 2000),
    first: arg("first", 0),
    jobs: arg("jobs", 1),
    batch: arg("batch", 200),
    timeoutMs: arg("timeout", 10_000),
    onResult: verbose
      ? (r) => {
          if (BUG_OUTCOMES.includes(r.outcome)) console.log(JSON.stringify(r));
        }
      : undefined,
  });
  console.log(formatSummary(s));
  process.exitCode = s.bugs.length ? 1 : 0;
}
