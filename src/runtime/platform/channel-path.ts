/**
 * Where a store's channel lives (docs/FORMAT.md, "Channel"): a Unix domain socket
 * `<runtime dir>/cellar-<uid>/<hash>.sock`, runtime dir = `$XDG_RUNTIME_DIR` when set, else `os.tmpdir()`;
 * `<hash>` = the first 24 hex digits of SHA-256 of the store directory's real path (socket paths are limited
 * to ~104 bytes, a store path is not). On Windows, the named pipe `\\.\pipe\cellar-<hash>` (untested here).
 *
 * The directory is this user's alone: created 0700, and refused (`E_CHANNEL_DIR`) when it exists as a
 * symbolic link, as anything but a directory, with another owner or with any permission for group or others.
 * For a plaintext store that directory is the only thing that keeps other users off the channel.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ChannelDirError, IoError } from "../errors.js";

/** Hex digits of SHA-256(real store path) in a socket's name. */
export const CHANNEL_HASH_HEX = 24;

/** The channel's socket (or pipe) path of the store whose real directory path is `realDir`. */
export function channelPath(realDir: string, runtimeDir = defaultRuntimeDir()): string {
  const hash = crypto.createHash("sha256").update(realDir, "utf8").digest("hex").slice(0, CHANNEL_HASH_HEX);
  if (process.platform === "win32") return `\\\\.\\pipe\\cellar-${hash}`;
  return path.join(channelDir(runtimeDir), `${hash}.sock`);
}

/** `$XDG_RUNTIME_DIR` when set (and absolute), else the OS temp directory. */
export function defaultRuntimeDir(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  return xdg && path.isAbsolute(xdg) ? xdg : os.tmpdir();
}

/** `<runtimeDir>/cellar-<uid>`. */
export function channelDir(runtimeDir = defaultRuntimeDir()): string {
  return path.join(runtimeDir, `cellar-${process.getuid?.() ?? "user"}`);
}

/**
 * Create the socket's directory (0700) when missing, then check it: a real directory (not a link), owned by
 * this user, no permission bit for group or others. Throws `E_CHANNEL_DIR` otherwise, `E_IO` when the OS
 * refuses. Nothing to check on Windows (a named pipe has no directory).
 */
export function ensureChannelDir(socket: string): void {
  if (process.platform === "win32") return;
  const dir = path.dirname(socket);
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new IoError("mkdir", dir, (e as NodeJS.ErrnoException).code ?? "unknown", { cause: e });
  }
  checkChannelDir(dir);
}

/** The checks of {@link ensureChannelDir} on an existing directory. */
export function checkChannelDir(dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (e) {
    throw new IoError("lstat", dir, (e as NodeJS.ErrnoException).code ?? "unknown", { cause: e });
  }
  if (st.isSymbolicLink()) throw new ChannelDirError(dir, "is a symbolic link");
  if (!st.isDirectory()) throw new ChannelDirError(dir, "is not a directory");
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new ChannelDirError(dir, `is owned by user ${st.uid}, not this user (${uid})`);
  if ((st.mode & 0o077) !== 0) throw new ChannelDirError(dir, `has mode 0${(st.mode & 0o777).toString(8)}`);
}
