/**
 * `paths(appName, { profile })`: where an app keeps its store, settings, cache and logs, by the operating
 * system's conventions (docs/GETTING-STARTED.md, "Where data lives"):
 *
 * - Linux and other Unixes (XDG Base Directory): `$XDG_DATA_HOME` (default `~/.local/share`),
 *   `$XDG_CONFIG_HOME` (`~/.config`), `$XDG_CACHE_HOME` (`~/.cache`), logs in `$XDG_STATE_HOME`
 *   (`~/.local/state`); a relative value is ignored, as the specification says.
 * - macOS: `~/Library/Application Support`, `~/Library/Preferences`, `~/Library/Caches`, `~/Library/Logs`.
 * - Windows: data and config in `%APPDATA%` (roaming, as Electron's `userData`), cache and logs in
 *   `%LOCALAPPDATA%` (machine-local); defaults under `%USERPROFILE%\AppData`.
 *
 * Profiles keep runs apart: `production` uses the app's name, `development` the name with `-development`,
 * `test` a fresh temporary directory per call. Portable mode keeps everything in a folder beside the
 * executable. A pure function of what it is given (`platform`, `env`, `homedir`, `execPath`, `tmpdir`, each
 * defaulting to the process's), so that every OS's rules are tested on any OS: env-paths reads
 * `process.platform` and the home directory itself and joins with the host's `path`, so Windows paths could
 * not be checked on Linux without patching globals.
 */
import fs from "node:fs";
import os from "node:os";
import nodePath from "node:path";
import { UsageError } from "../errors.js";

/** `path.posix` or `path.win32` (typed by value: older `@types/node` has no `path.PlatformPath`). */
type PathModule = typeof nodePath.posix;

export type Profile = "production" | "development" | "test";
const PROFILES: readonly Profile[] = ["production", "development", "test"];
/** A file of this name beside the executable turns portable mode on. */
export const PORTABLE_MARKER = "portable";

export interface PathsOptions {
  /** Default: `CELLAR_PROFILE` from the environment, else `"production"`. */
  profile?: Profile;
  /** Everything in `<executable's folder>/<name>-data/`. Default: whether a file `portable` is beside the executable. */
  portable?: boolean;
  /** For tests and tools: the platform, environment, home, executable and temp directory to use (default: this process's). */
  platform?: NodeJS.Platform;
  env?: Readonly<Record<string, string | undefined>>;
  homedir?: string;
  execPath?: string;
  tmpdir?: string;
}

export interface AppPaths {
  /** The store and other data the app cannot lose. */
  data: string;
  config: string;
  /** What can be rebuilt. */
  cache: string;
  log: string;
  profile: Profile;
  portable: boolean;
}

/** The app's directories (none is created, except `test`'s fresh temporary directory). */
export function paths(appName: string, options: PathsOptions = {}): AppPaths {
  checkName(appName);
  const env = options.env ?? process.env;
  const profile = profileOf(options.profile ?? env.CELLAR_PROFILE);
  const platform = options.platform ?? process.platform;
  const p = platform === "win32" ? nodePath.win32 : nodePath.posix;
  if (profile === "test") return inTemp(appName, p, options.tmpdir ?? os.tmpdir());
  const name = profile === "production" ? appName : `${appName}-${profile}`;
  const execPath = options.execPath ?? process.execPath;
  const portable = options.portable ?? fs.existsSync(p.join(p.dirname(execPath), PORTABLE_MARKER));
  if (portable) return { ...under(p, p.join(p.dirname(execPath), `${name}-data`)), profile, portable };
  const home = options.homedir ?? os.homedir();
  const dirs = platform === "win32" ? windows(p, env, home, name) : platform === "darwin" ? macos(p, home, name) : xdg(p, env, home, name);
  return { ...dirs, profile, portable };
}

type Dirs = Pick<AppPaths, "data" | "config" | "cache" | "log">;

function checkName(appName: string): void {
  if (typeof appName !== "string" || !appName || appName === "." || appName === ".." || /[/\\:\0]/.test(appName)) {
    throw new UsageError("`appName` must be a non-empty name without `/`, `\\` or `:` (a folder name)");
  }
}

function profileOf(p: string | undefined): Profile {
  if (p === undefined || p === "") return "production";
  if (!PROFILES.includes(p as Profile)) throw new UsageError(`unknown profile \`${p}\` (from \`profile\` or \`CELLAR_PROFILE\`): use ${PROFILES.map((x) => `\`${x}\``).join(", ")}`);
  return p as Profile;
}

function under(p: PathModule, root: string): Dirs {
  return { data: p.join(root, "data"), config: p.join(root, "config"), cache: p.join(root, "cache"), log: p.join(root, "logs") };
}

function inTemp(appName: string, p: PathModule, tmp: string): AppPaths {
  const root = fs.mkdtempSync(p.join(tmp, `${appName}-test-`));
  return { ...under(p, root), profile: "test", portable: false };
}

/** An XDG variable's value when absolute (the specification: relative values are invalid), else `fallback`. */
function xdgDir(p: PathModule, value: string | undefined, fallback: string): string {
  return value && p.isAbsolute(value) ? value : fallback;
}

function xdg(p: PathModule, env: PathsOptions["env"] & object, home: string, name: string): Dirs {
  return {
    data: p.join(xdgDir(p, env.XDG_DATA_HOME, p.join(home, ".local", "share")), name),
    config: p.join(xdgDir(p, env.XDG_CONFIG_HOME, p.join(home, ".config")), name),
    cache: p.join(xdgDir(p, env.XDG_CACHE_HOME, p.join(home, ".cache")), name),
    log: p.join(xdgDir(p, env.XDG_STATE_HOME, p.join(home, ".local", "state")), name),
  };
}

function macos(p: PathModule, home: string, name: string): Dirs {
  const lib = p.join(home, "Library");
  return { data: p.join(lib, "Application Support", name), config: p.join(lib, "Preferences", name), cache: p.join(lib, "Caches", name), log: p.join(lib, "Logs", name) };
}

function windows(p: PathModule, env: PathsOptions["env"] & object, home: string, name: string): Dirs {
  const roaming = env.APPDATA || p.join(home, "AppData", "Roaming");
  const local = env.LOCALAPPDATA || p.join(home, "AppData", "Local");
  return { data: p.join(roaming, name, "Data"), config: p.join(roaming, name, "Config"), cache: p.join(local, name, "Cache"), log: p.join(local, name, "Logs") };
}
