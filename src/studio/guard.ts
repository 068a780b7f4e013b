/**
 * Who may talk to the studio (docs/STUDIO.md, "Security"): requests must name the server's own address in
 * `Host` (DNS rebinding) and, when they carry one, in `Origin` (cross-site); the one-time token of the
 * printed URL is exchanged once for a session cookie (HttpOnly, SameSite=Strict); every other request needs
 * that session; a POST needs an `Origin` of this server and the session's CSRF token in its form.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

export const COOKIE = "cellar_studio";

/** Why a request is refused, and the status it gets. */
export interface Refusal {
  readonly status: 401 | 403;
  readonly reason: string;
}

/** The session of a request that passed, with its CSRF token for forms. */
export interface Session {
  readonly id: string;
  readonly csrf: string;
}

function token(): string {
  return randomBytes(32).toString("base64url");
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class Guard {
  /** The token of the printed URL; `null` once exchanged. */
  private oneTime: string | null = token();
  private readonly sessions = new Map<string, Session>();
  private hosts: readonly string[] = [];

  /** Set once the server listens: the only `Host` values accepted. */
  listening(port: number): void {
    this.hosts = [`127.0.0.1:${port}`, `localhost:${port}`];
  }

  /** The token to print (before it is used). */
  get startToken(): string {
    if (this.oneTime === null) throw new Error("the start token was used");
    return this.oneTime;
  }

  /** Host and Origin: `null` when they name this server (an absent Origin is a same-origin GET). */
  checkAddress(req: IncomingMessage): Refusal | null {
    const host = req.headers.host ?? "";
    if (!this.hosts.includes(host)) return { status: 403, reason: "the Host header does not name this studio's address" };
    const origin = req.headers.origin;
    if (origin !== undefined && !this.hosts.some((h) => origin === `http://${h}`)) {
      return { status: 403, reason: "the request comes from another origin" };
    }
    if (req.method === "POST" && origin === undefined) return { status: 403, reason: "a POST must carry an Origin header" };
    return null;
  }

  /** The token of `/auth?token=…` exchanged for a new session, once; `null` for a wrong or used token. */
  exchange(given: string | null): Session | null {
    if (given === null || this.oneTime === null || !same(given, this.oneTime)) return null;
    this.oneTime = null;
    const s = { id: token(), csrf: token() };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The request's session, from its cookie. */
  session(req: IncomingMessage): Session | null {
    const id = cookie(req.headers.cookie ?? "", COOKIE);
    if (id === undefined) return null;
    for (const s of this.sessions.values()) if (same(s.id, id)) return s;
    return null;
  }

  /** The form's CSRF field against the session's. */
  csrfOk(s: Session, given: string | undefined): boolean {
    return given !== undefined && same(given, s.csrf);
  }

  /** The `Set-Cookie` of a session: HttpOnly, SameSite=Strict, for this server's paths. */
  static setCookie(s: Session): string {
    return `${COOKIE}=${s.id}; HttpOnly; SameSite=Strict; Path=/`;
  }
}

/** The value of cookie `name` in a `Cookie` header. */
export function cookie(header: string, name: string): string | undefined {
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
