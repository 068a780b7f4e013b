/**
 * The renderer process of the Electron bridge tests (forked with `serialization: "advanced"`). It runs the
 * preload (`exposeStoreInRenderer` with the `ipcRenderer` and `contextBridge` stand-ins) and then acts as the
 * page: it only touches `window.cellar` of its `mainWorld`, on the test's orders (`ctl` messages), and
 * reports what the page saw. `raw` orders play a compromised renderer that calls `ipcRenderer.invoke`
 * itself with whatever it likes.
 *
 *   fork(renderer-child.ts, [], { execArgv: ["--import", "tsx"], serialization: "advanced" })
 */
import { exposeStoreInRenderer, type RendererStore, type RendererWatch } from "../../../src/runtime/electron/index.js";
import type { entities } from "../../../src/generated/index.js";
import { contextBridgeStandIn, ipcRendererStandIn } from "./standins.js";

export type Ctl =
  | { t: "ctl"; n: number; kind: "call"; entity: string; op: string; args: unknown[] }
  | { t: "ctl"; n: number; kind: "watch"; entity: string; wid: number; arg?: unknown }
  | { t: "ctl"; n: number; kind: "unsubscribe"; wid: number }
  | { t: "ctl"; n: number; kind: "raw"; args: unknown[] }
  | { t: "ctl"; n: number; kind: "rawPoisoned"; channel: string; json: string }
  | { t: "ctl"; n: number; kind: "describe" }
  | { t: "ctl"; n: number; kind: "reload" };

export type CtlReply =
  | { t: "ctl-reply"; n: number; ok: true; value: unknown }
  | { t: "ctl-reply"; n: number; ok: false; error: unknown; isError: boolean; proto: string | null }
  | { t: "ctl-update"; wid: number; value: unknown; seq: number }
  | { t: "ctl-watch-error"; wid: number; error: unknown };

const ipcRenderer = ipcRendererStandIn();
let mainWorld: { cellar?: RendererStore<typeof entities> } & Record<string, unknown> = {};

function preload(): void {
  exposeStoreInRenderer<typeof entities>(contextBridgeStandIn(mainWorld), ipcRenderer, "cellar", {
    tasks: "collection",
    profiles: "collection",
    settings: "singleton",
    conversations: "collection",
  });
}
preload();

const unsubscribes = new Map<number, () => void>();
const send = (m: CtlReply) => process.send!(m);

/** Every member of `v` with its type and whether it is frozen (what the page can reach on `window.cellar`). */
function describe(v: unknown, at: string, out: { path: string; type: string; frozen: boolean }[]): typeof out {
  out.push({ path: at, type: typeof v, frozen: typeof v === "object" && v !== null ? Object.isFrozen(v) : true });
  if (typeof v === "object" && v !== null) for (const k of Object.keys(v)) describe((v as Record<string, unknown>)[k], `${at}.${k}`, out);
  return out;
}

process.on("message", async (m: Ctl) => {
  if (m.t !== "ctl") return;
  const cellar = mainWorld.cellar as unknown as Record<string, Record<string, (...a: unknown[]) => unknown>>;
  try {
    let value: unknown = null;
    switch (m.kind) {
      case "call":
        value = await cellar[m.entity]![m.op]!(...m.args);
        break;
      case "watch": {
        const repo = cellar[m.entity] as unknown as { watch(arg?: unknown): RendererWatch<unknown> };
        const w = m.arg === undefined ? repo.watch() : repo.watch(m.arg);
        unsubscribes.set(
          m.wid,
          w.subscribe(
            (u) => send({ t: "ctl-update", wid: m.wid, value: u.value, seq: u.seq }),
            (e) => send({ t: "ctl-watch-error", wid: m.wid, error: e }),
          ),
        );
        break;
      }
      case "unsubscribe":
        unsubscribes.get(m.wid)?.();
        unsubscribes.delete(m.wid);
        break;
      case "raw":
        value = await ipcRenderer.invoke(...(m.args as [string, ...unknown[]]));
        break;
      case "rawPoisoned":
        // An own `__proto__` key, as JSON.parse makes it: structured clone carries it as an own property.
        value = await ipcRenderer.invoke(m.channel, JSON.parse(m.json));
        break;
      case "describe":
        value = { members: describe(mainWorld.cellar, "cellar", []), keys: Object.keys(mainWorld) };
        break;
      case "reload":
        // A page reload: a fresh window object and isolated world, and the preload runs again.
        unsubscribes.clear();
        ipcRenderer.reset();
        mainWorld = {};
        preload();
        break;
    }
    send({ t: "ctl-reply", n: m.n, ok: true, value });
  } catch (e) {
    const proto = e !== null && typeof e === "object" ? (Object.getPrototypeOf(e) === Object.prototype ? "Object" : (Object.getPrototypeOf(e)?.constructor?.name ?? null)) : null;
    send({ t: "ctl-reply", n: m.n, ok: false, error: e, isError: e instanceof Error, proto });
  }
});
process.send!({ t: "ready" });
