/**
 * A real Secret Service for the keychain tests (test/keys/keychain.test.ts, test/cli/keychain.test.ts): a
 * private HOME, a command run under `dbus-run-session` with gnome-keyring-daemon started (unlocked by
 * PASSWORD, or left locked), in a child process of its own, never the developer's own bus, daemon or display.
 * Under CI (`CI=true`) missing gnome-keyring or dbus-run-session is a failure (.ci/run installs them);
 * elsewhere those tests are skipped with `skipReason` in the suite's title.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const isCI = !!process.env.CI && process.env.CI !== "false";
/** The login keyring's password in every private HOME. */
export const PASSWORD = "keyring-login-password";

function has(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}
const missing = [
  ...(has("dbus-run-session") ? [] : ["dbus-run-session (Debian package dbus-bin)"]),
  ...(has("gnome-keyring-daemon") ? [] : ["gnome-keyring-daemon (Debian package gnome-keyring)"]),
];
/** Why the Secret Service tests cannot run here, or "". */
export const skipReason =
  process.platform !== "linux"
    ? `the Secret Service tests run on Linux only (this is ${process.platform})`
    : missing.length
      ? `${missing.join(" and ")} not installed: apt-get install --no-install-recommends gnome-keyring dbus-daemon dbus-bin`
      : "";

/** A fresh private HOME (with an XDG_RUNTIME_DIR in it); `removeHomes` deletes every one made. */
const homes: string[] = [];
export function newHome(prefix = "cellar-keychain-"): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.mkdirSync(path.join(home, "run"), { mode: 0o700 });
  homes.push(home);
  return home;
}
export function removeHomes(): void {
  for (const home of homes.splice(0)) fs.rmSync(home, { recursive: true, force: true });
}

/** `command` under a new session bus with gnome-keyring-daemon, unlocked by $KEYRING_PW (creating the login keyring on first use) or started locked. Exit 90: the daemon did not start. */
export function inKeyringSession(keyring: "unlocked" | "locked", command: string[]): string[] {
  const start =
    keyring === "unlocked"
      ? 'printf %s "$KEYRING_PW" | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 90; exec "$@"'
      : 'gnome-keyring-daemon --start --components=secrets >/dev/null || exit 90; exec "$@"';
  return ["dbus-run-session", "--", "sh", "-c", start, "sh", ...command];
}

/** The environment of a session in `home`: this one's, with HOME and XDG dirs in `home`, KEYRING_PW, and no bus, keyring daemon or display of the developer's. */
export function sessionEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_DATA_HOME: path.join(home, "data"),
    XDG_CONFIG_HOME: path.join(home, "config"),
    XDG_CACHE_HOME: path.join(home, "cache"),
    XDG_RUNTIME_DIR: path.join(home, "run"),
    KEYRING_PW: PASSWORD,
    ...extra,
  };
  // Never the developer's own session bus, keyring daemon or display (no unlock prompt may pop up).
  for (const name of ["DBUS_SESSION_BUS_ADDRESS", "GNOME_KEYRING_CONTROL", "DISPLAY", "WAYLAND_DISPLAY", "SSH_AUTH_SOCK"]) delete env[name];
  return env;
}

export interface Exited {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs argv in the repo root as a process group of its own, killed whole after `timeoutMs` (a daemon left behind cannot hang the test). */
export function runGroup(argv: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<Exited> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        /* already gone */
      }
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Processes whose command line names gnome-keyring-daemon and whose environment has HOME=home (Linux /proc). */
export function daemonsIn(home: string): number[] {
  const pids: number[] = [];
  for (const pid of fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!cmd.includes("gnome-keyring-daemon")) continue;
      if (fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(`HOME=${home}`)) pids.push(Number(pid));
    } catch {
      /* exited meanwhile, or not ours */
    }
  }
  return pids;
}
