/**
 * `paths(appName, { profile })` (platform/app-paths.ts): each OS's rules, checked on any OS by injecting the
 * platform, environment, home directory and executable; profiles apart; `test` in a fresh temp directory;
 * portable mode by option and by the marker file beside a (real, temporary) executable.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import * as cellar from "../../src/runtime/index.js";
import { paths } from "../../src/runtime/index.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-paths-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const exe = path.join(tmp, "no-marker", "app");

describe("linux (XDG)", () => {
  const base = { platform: "linux" as const, homedir: "/home/ann", execPath: exe };
  it("uses the XDG defaults without the variables", () => {
    expect(paths("Notes", { ...base, env: {} })).toEqual({
      data: "/home/ann/.local/share/Notes",
      config: "/home/ann/.config/Notes",
      cache: "/home/ann/.cache/Notes",
      log: "/home/ann/.local/state/Notes",
      profile: "production",
      portable: false,
    });
  });
  it("follows XDG_*_HOME, and ignores a relative value as the specification says", () => {
    const env = { XDG_DATA_HOME: "/data", XDG_CONFIG_HOME: "/cfg", XDG_CACHE_HOME: "relative/cache", XDG_STATE_HOME: "/state" };
    const p = paths("Notes", { ...base, env });
    expect([p.data, p.config, p.cache, p.log]).toEqual(["/data/Notes", "/cfg/Notes", "/home/ann/.cache/Notes", "/state/Notes"]);
  });
  it("applies to other Unixes too", () => {
    expect(paths("Notes", { ...base, platform: "freebsd", env: {} }).data).toBe("/home/ann/.local/share/Notes");
  });
});

describe("macOS", () => {
  it("uses ~/Library's folders", () => {
    const p = paths("Notes", { platform: "darwin", homedir: "/Users/ann", env: { XDG_DATA_HOME: "/ignored" }, execPath: exe });
    expect([p.data, p.config, p.cache, p.log]).toEqual([
      "/Users/ann/Library/Application Support/Notes",
      "/Users/ann/Library/Preferences/Notes",
      "/Users/ann/Library/Caches/Notes",
      "/Users/ann/Library/Logs/Notes",
    ]);
  });
});

describe("Windows", () => {
  it("keeps data and config in %APPDATA%, cache and logs in %LOCALAPPDATA%, joined with backslashes", () => {
    const env = { APPDATA: "C:\\Users\\ann\\AppData\\Roaming", LOCALAPPDATA: "D:\\Local" };
    const p = paths("Notes", { platform: "win32", homedir: "C:\\Users\\ann", env, execPath: "C:\\Program Files\\Notes\\Notes.exe" });
    expect([p.data, p.config, p.cache, p.log]).toEqual([
      "C:\\Users\\ann\\AppData\\Roaming\\Notes\\Data",
      "C:\\Users\\ann\\AppData\\Roaming\\Notes\\Config",
      "D:\\Local\\Notes\\Cache",
      "D:\\Local\\Notes\\Logs",
    ]);
  });
  it("falls back to the AppData folders under the home without the variables", () => {
    const p = paths("Notes", { platform: "win32", homedir: "C:\\Users\\ann", env: {}, execPath: "C:\\Program Files\\Notes\\Notes.exe" });
    expect([p.data, p.cache]).toEqual(["C:\\Users\\ann\\AppData\\Roaming\\Notes\\Data", "C:\\Users\\ann\\AppData\\Local\\Notes\\Cache"]);
  });
});

describe("profiles", () => {
  const base = { platform: "linux" as const, homedir: "/home/ann", execPath: exe };
  it("keeps development apart from production, from the option or CELLAR_PROFILE; the option wins", () => {
    expect(paths("Notes", { ...base, env: {}, profile: "development" }).data).toBe("/home/ann/.local/share/Notes-development");
    expect(paths("Notes", { ...base, env: { CELLAR_PROFILE: "development" } })).toMatchObject({ data: "/home/ann/.local/share/Notes-development", profile: "development" });
    expect(paths("Notes", { ...base, env: { CELLAR_PROFILE: "development" }, profile: "production" }).data).toBe("/home/ann/.local/share/Notes");
  });
  it("puts `test` in a fresh temporary directory on every call", () => {
    const a = paths("Notes", { ...base, env: { CELLAR_PROFILE: "test" }, tmpdir: tmp });
    const b = paths("Notes", { ...base, env: {}, profile: "test", tmpdir: tmp });
    expect(a.profile).toBe("test");
    expect(path.dirname(path.dirname(a.data))).toBe(tmp);
    expect(path.dirname(a.data)).not.toBe(path.dirname(b.data));
    expect(fs.statSync(path.dirname(a.data)).isDirectory()).toBe(true);
    expect([a.data, a.config, a.cache, a.log].map((d) => path.basename(d))).toEqual(["data", "config", "cache", "logs"]);
  });
  it("refuses an unknown profile and a name that is not a folder name (E_USAGE)", () => {
    expect(() => paths("Notes", { ...base, env: { CELLAR_PROFILE: "staging" } })).toThrow(expect.objectContaining({ code: "E_USAGE" }));
    for (const bad of ["", "..", "a/b", "a\\b", "C:x"]) expect(() => paths(bad, { ...base, env: {} })).toThrow(expect.objectContaining({ code: "E_USAGE" }));
  });
});

describe("portable mode", () => {
  it("keeps everything beside the executable with `portable: true`", () => {
    const p = paths("Notes", { platform: "linux", env: {}, homedir: "/home/ann", execPath: "/opt/notes/notes", portable: true });
    expect(p).toEqual({ data: "/opt/notes/Notes-data/data", config: "/opt/notes/Notes-data/config", cache: "/opt/notes/Notes-data/cache", log: "/opt/notes/Notes-data/logs", profile: "production", portable: true });
    const w = paths("Notes", { platform: "win32", env: {}, homedir: "C:\\Users\\ann", execPath: "E:\\Notes\\Notes.exe", portable: true, profile: "development" });
    expect(w.data).toBe("E:\\Notes\\Notes-development-data\\data");
  });
  it("turns on when a file `portable` is beside the executable, unless `portable: false`", () => {
    const dir = path.join(tmp, "usb");
    fs.mkdirSync(dir);
    const execPath = path.join(dir, "notes");
    const base = { platform: "linux" as const, env: {}, homedir: "/home/ann", execPath };
    expect(paths("Notes", base).portable).toBe(false);
    fs.writeFileSync(path.join(dir, cellar.PORTABLE_MARKER), "");
    expect(paths("Notes", base)).toMatchObject({ portable: true, data: path.join(dir, "Notes-data", "data") });
    expect(paths("Notes", { ...base, portable: false }).data).toBe("/home/ann/.local/share/Notes");
  });
});

it("is part of the public API (`cellar.paths`) and defaults to this process's platform and environment", () => {
  const p = cellar.paths("Notes", { profile: "production", portable: false });
  expect(path.isAbsolute(p.data)).toBe(true);
  expect(p.data).toContain("Notes");
});
