/**
 * `cellar studio`'s web server (docs/STUDIO.md): node:http on 127.0.0.1 only, a free port, the guard
 * (guard.ts) in front of every route, bodies capped, and headers that keep the page to itself (a CSP with
 * no script and no outside source, no caching, referrers only to this origin: with `no-referrer` Chromium
 * sends `Origin: null` on the page's own form posts, which the guard must refuse).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Guard } from "./guard.js";
import { type Req, type Res, Studio, type StudioOptions } from "./context.js";
import { route, STATIC } from "./routes.js";
import { esc } from "./html.js";

const MAX_BODY = 4 * 1024 * 1024;

const HEADERS = {
  "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "same-origin",
  "Cache-Control": "no-store",
  "X-Frame-Options": "DENY",
};

export interface StudioServer {
  /** The URL to open, with the one-time token. */
  readonly url: string;
  readonly port: number;
  /** Stop listening and drop open connections (the store stays open: its owner closes it). */
  close(): Promise<void>;
}

function send(res: http.ServerResponse, status: number, body: string, type = "text/html; charset=utf-8", extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...HEADERS, "Content-Type": type, "Content-Length": Buffer.byteLength(body), ...extra });
  res.end(body);
}

function refusal(res: http.ServerResponse, status: number, reason: string): void {
  send(res, status, `<!doctype html><title>Refused</title><h1>${status === 401 ? "Not signed in" : "Refused"}</h1><p>${esc(reason)}</p>`);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    req.on("data", (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY) {
        reject(new Error("body too large"));
        req.destroy();
      } else parts.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}

/** The token's exchange: `/auth?token=…` sets the session cookie and goes to the overview. */
function auth(guard: Guard, url: URL, res: http.ServerResponse): void {
  const s = guard.exchange(url.searchParams.get("token"));
  if (!s) return refusal(res, 403, "This link was used already or is wrong. Restart `cellar studio` for a new one.");
  res.writeHead(303, { ...HEADERS, Location: "/", "Set-Cookie": Guard.setCookie(s) });
  res.end();
}

async function handle(studio: Studio, guard: Guard, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const bad = guard.checkAddress(req);
  if (bad) return refusal(res, bad.status, bad.reason);
  const url = new URL(req.url ?? "/", `http://${req.headers.host}`);
  if (url.pathname === "/auth" && req.method === "GET") return auth(guard, url, res);
  if (url.pathname === "/favicon.ico") return send(res, 204, "", "image/x-icon");
  const session = guard.session(req);
  if (!session) return refusal(res, 401, "Open the URL `cellar studio` printed (it signs this browser in once).");
  if (url.pathname === "/static/studio.css") return send(res, 200, STATIC.css, "text/css; charset=utf-8");
  if (req.method !== "GET" && req.method !== "POST") return refusal(res, 403, "Only GET and POST are served.");
  const form = req.method === "POST" ? new URLSearchParams(await readBody(req)) : new URLSearchParams();
  if (req.method === "POST" && !guard.csrfOk(session, form.get("csrf") ?? undefined)) return refusal(res, 403, "The form's CSRF token is missing or wrong.");
  const r: Req = { method: req.method, path: url.pathname, query: url.searchParams, form, session };
  const out: Res = await route(studio, r);
  if ("redirect" in out) {
    res.writeHead(303, { ...HEADERS, Location: out.redirect });
    res.end();
  } else send(res, out.status ?? 200, out.html);
}

/** Start the studio on 127.0.0.1 and a free port (or `port`). */
export async function startStudio(options: StudioOptions & { port?: number }): Promise<StudioServer> {
  const studio = new Studio(options);
  await studio.warm();
  const guard = new Guard();
  const server = http.createServer((req, res) => {
    handle(studio, guard, req, res).catch((e: unknown) => {
      // Errors are shown to the signed-in page only; the message of a Cellar error never holds a stored value.
      if (!res.headersSent) send(res, 500, `<!doctype html><title>Error</title><h1>Error</h1><p>${esc((e as Error).message)}</p><p><a href="/">Back</a></p>`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  guard.listening(port);
  return {
    url: `http://127.0.0.1:${port}/auth?token=${guard.startToken}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
