/**
 * `@opentelemetry/api` is loaded at open only when something could record (issue 15, cold open): with the
 * api installed and no provider registered nor given, opening a store loads no module of it; once a global
 * provider is registered, open loads it. Real child processes (a module loaded once stays loaded).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-lazyapi-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const child = path.join(import.meta.dirname, "helpers", "lazy-api-child.ts");
const run = (...args: string[]) => JSON.parse(execFileSync(process.execPath, ["--import", "tsx", child, ...args], { encoding: "utf8" })) as unknown;

it("opening a store with no provider registered does not load @opentelemetry/api", () => {
  expect(run(path.join(tmp, "a"))).toEqual({ before: false, after: false, title: "lazy api" });
}, 60_000);

it("opening a store after a global provider is registered loads it", () => {
  expect(run(path.join(tmp, "b"), "register")).toEqual({ before: false, after: true, title: "lazy api" });
}, 60_000);
