/**
 * `@opentelemetry/api` is an optional peer dependency: a real child process in which it cannot be resolved
 * opens a store, writes, reads, compacts and logs as usual.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-noapi-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const here = path.join(import.meta.dirname, "helpers");

it("a store works without @opentelemetry/api installed", () => {
  const out = execFileSync(process.execPath, ["--require", path.join(here, "no-otel.cjs"), "--import", "tsx", path.join(here, "no-otel-child.ts"), path.join(tmp, "s")], { encoding: "utf8" });
  expect(JSON.parse(out)).toEqual({ apiLoads: false, title: "without the api", wrapped: false, events: ["open", "compaction", "close"] });
}, 60_000);
