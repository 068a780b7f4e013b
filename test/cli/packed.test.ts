// The `cellar` bin as a user gets it: the packed tarball installed in a fresh app (`cellar init --js`,
// `cellar generate`, a store written by the app's generated openStore), then `npx cellar info` on it; and
// on a terminal (util-linux `script`, a pseudo-terminal; the bin run directly, without npx and its spinner): the hidden passphrase prompt (the passphrase fed
// through the terminal is not echoed), colours on a terminal and none with NO_COLOR. An install test:
// CELLAR_INSTALL_TESTS=1 (`npm run test:install`).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshApp, installTarball, packedSdk, repoRoot, sh } from "../helpers/pack.js";

const PASS = "packed-CLI-passphrase-42";
const T = 600_000;
let work: string;
let app: string;

// The user's environment: no npm_* of `npm test`, not this checkout's node_modules/.bin on PATH.
const env: Record<string, string> = Object.fromEntries(
  Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !/^npm_/i.test(e[0]) && e[0] !== "INIT_CWD" && e[0] !== "NODE_OPTIONS" && e[0] !== "NO_COLOR"),
);
env.PATH = (process.env.PATH ?? "").split(delimiter).filter((p) => !p.startsWith(repoRoot)).join(delimiter);

/** `cmd` under `script` (a pseudo-terminal for stdin, stdout and stderr); `answer` typed once `prompt` shows. */
function onTerminal(cmd: string, extra: Record<string, string> = {}, prompt?: string, answer?: string): Promise<{ status: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn("script", ["-qec", cmd, "/dev/null"], { cwd: app, env: { ...env, ...extra }, stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    let typed = false;
    const take = (d: Buffer) => {
      output += d.toString();
      if (prompt && !typed && output.includes(prompt)) {
        typed = true;
        setTimeout(() => child.stdin.write(`${answer}\r`), 200);
      }
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", fail);
    child.on("close", (status) => done({ status, output }));
    if (!prompt) child.stdin.end();
  });
}

describe.runIf(process.env.CELLAR_INSTALL_TESTS === "1")("the packed `cellar` bin", () => {
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "cellar-cli-packed-"));
    app = freshApp(join(work, "app"));
    installTarball(app, packedSdk());
    sh(app, "npx", ["--no-install", "cellar", "init", "--js"], { env });
    sh(app, "npx", ["--no-install", "cellar", "generate"], { env });
    writeFileSync(
      join(app, "make-store.mjs"),
      `import { keys } from "cellar";
  import { openStore } from "./src/generated/index.js";
  const store = await openStore({ dir: "store", key: keys.passphrase(process.env.P, { opsLimit: 1, memLimit: 8 * 1024 * 1024 }), cleanup: false });
  await store.appSettings.update({ language: "fr" });
  await store.close();
  `,
    );
    sh(app, process.execPath, ["make-store.mjs"], { env: { ...env, P: PASS } });
  }, T);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("npx cellar info: the app's schema found from buf.gen.yaml, the key from the environment", () => {
    const out = sh(app, "npx", ["--no-install", "cellar", "info", "store", "--passphrase-env", "P"], { env: { ...env, P: PASS } });
    expect(out).toMatch(/\n {2}app_settings +appSettings +1 +1 +1 /);
    expect(out).toContain("key      passphrase master key");
    expect(out).not.toContain("\u001b[");
    expect(out).not.toContain(PASS);
    const json = JSON.parse(sh(app, "npx", ["--no-install", "cellar", "verify", "store", "--json", "--passphrase-env", "P"], { env: { ...env, P: PASS } })) as { ok: boolean; decoded: number };
    expect(json).toMatchObject({ ok: true, decoded: 1 });
  }, T);

  it("on a terminal: the hidden prompt takes the passphrase without echo; colours, and none with NO_COLOR", async () => {
    const asked = await onTerminal("node_modules/.bin/cellar info store", {}, "Passphrase for store: ", PASS);
    expect(asked.status, asked.output).toBe(0);
    expect(asked.output).toContain("Passphrase for store: ");
    expect(asked.output).not.toContain(PASS);
    expect(asked.output).toMatch(/app_settings +appSettings/);
    expect(asked.output).toContain("\u001b[1mentities\u001b[22m");
    const plain = await onTerminal("node_modules/.bin/cellar info store --passphrase-env P", { P: PASS, NO_COLOR: "1" });
    expect(plain.status, plain.output).toBe(0);
    expect(plain.output).toMatch(/app_settings +appSettings/);
    expect(plain.output).not.toContain("\u001b[");
  }, T);
});
