/**
 * A follower's request to the writer (`compact`, `backup`: run by the writer on its behalf) keeps the follower
 * process alive until it is answered, as a pending write does: a one-shot tool (the `cellar` CLI) that awaits
 * nothing else must not be ended by Node with the request unanswered (exit 13, "unsettled top-level await").
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { processScope, start } from "./helpers/procs.js";

const { tmp, env, live } = processScope("cellar-request-alive-");
const KEY = "07".repeat(32);
const here = path.dirname(fileURLToPath(import.meta.url));

it("a follower awaiting compact() and backup() with nothing else pending gets both answers and exits 0", async () => {
  const dir = path.join(tmp, "store");
  const { procs } = await start(1, dir, KEY, env);
  live.push(...procs);
  expect(await procs[0]!.send("put a 1")).toBe("ok");
  const file = path.join(tmp, "from-follower.cellarbackup");
  const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "helpers/follower-request.ts"), dir, KEY, file], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  expect({ code, out: out.trim() }, err).toEqual({ code: 0, out: "done follower" });
  expect(fs.existsSync(file)).toBe(true);
});
