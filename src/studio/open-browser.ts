/**
 * Open a URL in the user's browser with the platform's own opener (`open` on macOS, `start` through
 * `cmd` on Windows, `xdg-open` elsewhere), detached. Never fails: without an opener (a server, a container)
 * the printed URL is the way in, and the answer says whether an opener was started.
 */
import { spawn } from "node:child_process";

export function openerFor(platform: NodeJS.Platform): { cmd: string; args: (url: string) => string[] } {
  if (platform === "darwin") return { cmd: "open", args: (u) => [u] };
  // `start` is a cmd.exe builtin; the empty string is the window title it would otherwise take the URL for.
  if (platform === "win32") return { cmd: "cmd", args: (u) => ["/c", "start", "", u.replace(/&/g, "^&")] };
  return { cmd: "xdg-open", args: (u) => [u] };
}

/** Resolves `true` when the opener started, `false` when there is none (or it failed to start). */
export function openBrowser(url: string, platform: NodeJS.Platform = process.platform): Promise<boolean> {
  const { cmd, args } = openerFor(platform);
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(cmd, args(url), { detached: true, stdio: "ignore", windowsHide: true });
    } catch {
      return resolve(false);
    }
    child.once("error", () => resolve(false));
    child.once("spawn", () => {
      child.unref();
      resolve(true);
    });
  });
}
