/**
 * Who may connect to a store's channel (docs/SECURITY.md, "Several processes"): a process without the
 * store's master key fails the challenge (`E_CHANNEL_AUTH`) and can neither write nor read through the
 * socket; a listener that cannot prove the key is refused by a follower; another user cannot even open the
 * socket (0700 directory); a socket directory open to others or owned by another user is refused
 * (`E_CHANNEL_DIR`). The writer is a real process.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { entities } from "../../src/generated/index.js";
import { openStore } from "../../src/runtime/index.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import { ChannelKey } from "../../src/runtime/crypto/channel-key.js";
import { channelDir, channelPath } from "../../src/runtime/platform/channel-path.js";
import { ChannelClient } from "../../src/runtime/share/client.js";
import { decodeMessage, encodeMessage, FrameDecoder, type Message, Msg } from "../../src/runtime/share/wire.js";
import { type Proc, start } from "./helpers/procs.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-auth-"));
const runtime = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-rt-"));
const KEY = "0c".repeat(32);
const dir = path.join(tmp, "store");
let writer: Proc;
let socket: string;
let otherKey: ChannelKey;
let goodKey: ChannelKey;
const engines: Engine[] = [];

beforeAll(async () => {
  writer = (await start(1, dir, KEY, { XDG_RUNTIME_DIR: runtime })).procs[0]!;
  socket = channelPath(fs.realpathSync(dir), runtime);
  const other = await Engine.open({ dir: path.join(tmp, "other"), key: new Uint8Array(32).fill(9) });
  const same = await Engine.open({ dir: path.join(tmp, "same-key"), key: Buffer.from(KEY, "hex") });
  engines.push(other, same);
  otherKey = ChannelKey.of(other.keyring!);
  goodKey = ChannelKey.of(same.keyring!);
}, 30_000);
afterAll(async () => {
  writer?.kill();
  otherKey?.destroy();
  goodKey?.destroy();
  for (const e of engines) await e.close();
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(runtime, { recursive: true, force: true });
});

/** Connect raw, collect messages until the writer closes (or `ms`). */
function raw(send: (hello: Message & { type: typeof Msg.hello }) => Buffer[], ms = 3000): Promise<{ got: Message[]; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.createConnection(socket);
    const d = new FrameDecoder();
    const got: Message[] = [];
    const t = setTimeout(() => (s.destroy(), resolve({ got, closed: false })), ms);
    s.on("error", () => {});
    s.on("close", () => (clearTimeout(t), resolve({ got, closed: true })));
    s.on("data", (c: Buffer) => {
      for (const b of d.push(c)) {
        const m = decodeMessage(b);
        got.push(m);
        if (m.type === Msg.hello) for (const f of send(m)) s.write(f);
      }
    });
  });
}

const write = (id: string): Buffer =>
  encodeMessage({ type: Msg.write, n: 1, pre: [], ops: [{ op: "put", entity: "tasks", key: id, version: 1, value: new Uint8Array([0]), terms: [] }] });

describe("who may connect", () => {
  it("the same master key passes the challenge both ways and gets the writer's seq", async () => {
    const c = new ChannelClient(new Uint8Array(16).fill(1), goodKey, 5000, () => {}, () => {});
    await expect(c.connect(socket)).resolves.toBeGreaterThanOrEqual(0);
    expect(c.writerPid).toBe(writer.proc.pid);
    c.close();
  });

  it("a process without the key fails the challenge (E_CHANNEL_AUTH) and its write is never applied", async () => {
    const c = new ChannelClient(new Uint8Array(16).fill(2), otherKey, 5000, () => {}, () => {});
    await expect(c.connect(socket)).rejects.toMatchObject({ code: "E_CHANNEL_AUTH" });
    // Raw: a wrong proof, then a write on the same connection; and a write in place of the proof.
    const wrong = await raw((h) => [encodeMessage({ type: Msg.auth, version: 1, clientId: new Uint8Array(16), pid: 1, nonce: h.nonce, mac: new Uint8Array(32) }), write("x1")]);
    expect(wrong.closed).toBe(true);
    expect(wrong.got.map((m) => m.type)).toEqual([Msg.hello, Msg.reject]);
    expect(wrong.got[1]).toMatchObject({ code: "E_CHANNEL_AUTH" });
    const skip = await raw(() => [write("x2")]);
    expect(skip.closed).toBe(true);
    expect(skip.got.map((m) => m.type)).toEqual([Msg.hello, Msg.reject]);
    // No proof offered at all (a plaintext client's AUTH) to an encrypted store's writer.
    const none = await raw(() => [encodeMessage({ type: Msg.auth, version: 1, clientId: new Uint8Array(16), pid: 1, nonce: null, mac: null }), write("x3")]);
    expect(none.got.map((m) => m.type)).toEqual([Msg.hello, Msg.reject]);
    // Nothing it sent was applied, and it learned no seq (no WELCOME, no `committed`).
    for (const id of ["x1", "x2", "x3"]) expect(await writer.send(`get ${id}`)).toBe("-");
  });

  it("a follower refuses a listener that cannot prove the key, or does not challenge", async () => {
    const fake = path.join(channelDir(runtime), "fake.sock");
    for (const mode of ["bad-proof", "no-challenge"] as const) {
      const server = net.createServer((s) => {
        s.on("error", () => {});
        s.write(encodeMessage({ type: Msg.hello, version: 1, pid: 1, nonce: mode === "bad-proof" ? new Uint8Array(32).fill(5) : null }));
        s.on("data", () => s.write(encodeMessage({ type: Msg.welcome, seq: 999, mac: mode === "bad-proof" ? new Uint8Array(32).fill(6) : null })));
      });
      await new Promise<void>((r) => server.listen(fake, r));
      const c = new ChannelClient(new Uint8Array(16).fill(3), goodKey, 5000, () => {}, () => {});
      await expect(c.connect(fake)).rejects.toMatchObject({ code: "E_CHANNEL_AUTH" });
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it("a process without the key cannot open the store either (E_KEY)", async () => {
    process.env.XDG_RUNTIME_DIR = runtime;
    await expect(openStore({ tasks: entities.tasks }, { dir, key: new Uint8Array(32).fill(9) })).rejects.toMatchObject({ code: "E_KEY" });
  });

  it.skipIf(process.getuid?.() !== 0)("another user cannot open the socket (its directory is 0700)", () => {
    const r = spawnSync(process.execPath, ["-e", `require("net").connect(${JSON.stringify(socket)}).on("error", (e) => console.log(e.code)).on("connect", () => console.log("CONNECTED"))`], {
      uid: 65534,
      gid: 65534,
      encoding: "utf8",
      timeout: 10_000,
    });
    expect(r.stdout.trim()).toBe("EACCES");
  });
});

describe("the socket directory", () => {
  it("open to others, or owned by another user: openStore refuses (E_CHANNEL_DIR)", async () => {
    const rt = fs.mkdtempSync(path.join(tmp, "rt-"));
    const d = channelDir(rt);
    fs.mkdirSync(d, { mode: 0o700 });
    fs.chmodSync(d, 0o755);
    process.env.XDG_RUNTIME_DIR = rt;
    try {
      const open = () => openStore({ tasks: entities.tasks }, { dir: path.join(tmp, "mode"), key: Buffer.from(KEY, "hex") });
      await expect(open()).rejects.toMatchObject({ code: "E_CHANNEL_DIR" });
      if (process.getuid?.() === 0) {
        fs.chmodSync(d, 0o700);
        fs.chownSync(d, 4321, 4321);
        await expect(open()).rejects.toMatchObject({ code: "E_CHANNEL_DIR" });
      }
      // The same store opens once the directory is this user's and 0700 (the refused opens left it closed).
      fs.chownSync(d, process.getuid!(), process.getgid!());
      const s = await open();
      expect(s.role).toBe("writer");
      await s.close();
    } finally {
      process.env.XDG_RUNTIME_DIR = runtime;
    }
  });
});
