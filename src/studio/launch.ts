/**
 * `cellar studio` once the store is open: decide the mode (read-only when asked, or when this process is a
 * follower of another process holding the store; reveal only with the keys of sensitive fields), start the
 * server, print the URL (and open it unless `--no-open`), and serve until SIGINT/SIGTERM. The CLI command
 * (src/cli/commands/studio.ts) opens the store with the CLI's key options and closes it afterwards.
 */
import path from "node:path";
import type { EntityDefinition, KeyProvider, StoreHandle } from "../runtime/index.js";
import type { RevealEvent } from "./context.js";
import { openBrowser } from "./open-browser.js";
import { startStudio, type StudioServer } from "./server.js";

export interface LaunchOptions {
  readonly store: StoreHandle<Record<string, EntityDefinition>>;
  readonly entities: Record<string, EntityDefinition>;
  readonly key?: KeyProvider;
  readonly readOnly: boolean;
  readonly open: boolean;
  readonly port?: number;
  readonly lockFile?: string;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/** This process's role in a shared store (`StoreImpl.role`, not in the public types). */
function isFollower(store: object): boolean {
  return (store as { role?: unknown }).role === "follower";
}

/** Opened with `redactSensitive` (no keys of sensitive fields): `StoreImpl.redacted`. */
function isRedacted(store: object): boolean {
  return (store as { redacted?: unknown }).redacted === true;
}

/**
 * What a reveal leaves behind: where the store keeps an audit log, a `reveal` entry (entity, key, field
 * path, the actor `cellar-cli:<user>`; never the value), appended before the value is shown (a failed append
 * refuses the reveal); and a line on stderr naming the entity and the field (not the key: keys can be
 * personal, and stderr may be a log).
 */
function revealHook(o: LaunchOptions): (e: RevealEvent) => Promise<void> {
  return async (e) => {
    const recorded = await o.store.audit.reveal(e);
    o.err(`cellar studio: revealed \`${e.field}\` of a \`${e.entity}\` record${recorded ? " (recorded in the audit log)" : ""}`);
  };
}

/** Start the server for an open store; `stopped` resolves when a signal stopped it (the store is left open). */
export async function launchStudio(o: LaunchOptions): Promise<{ server: StudioServer; stopped: Promise<void> }> {
  const follower = isFollower(o.store);
  const readOnly = o.readOnly || follower || isRedacted(o.store);
  const reason = o.readOnly ? "--read-only" : follower ? "another process holds the store" : isRedacted(o.store) ? "opened without the keys of sensitive fields" : undefined;
  const server = await startStudio({
    store: o.store,
    entities: o.entities,
    readOnly,
    canReveal: !isRedacted(o.store),
    onReveal: revealHook(o),
    ...(reason !== undefined && { readOnlyReason: reason }),
    ...(o.key !== undefined && { key: o.key }),
    ...(o.lockFile !== undefined && { lockFile: o.lockFile }),
    ...(o.port !== undefined && { port: o.port }),
  });
  o.out(`Cellar Studio for ${path.resolve(o.store.dir)}${readOnly ? ` (read-only: ${reason})` : ""}`);
  o.out(`  ${server.url}`);
  o.out("The link signs one browser in, once. Press Ctrl+C to stop.");
  if (o.open && !(await openBrowser(server.url))) o.err("cellar studio: no browser opener found (xdg-open/open/start): open the link above.");
  const stopped = new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      void server.close().then(resolve);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  return { server, stopped };
}
