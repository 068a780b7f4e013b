/**
 * The channel's pieces without a store: the socket directory's checks (0700, this user's, no link), the
 * framing (every length bounded, a stream cut anywhere reassembles), each message's bytes back and forth,
 * and the mutual proof (a key derived from the master key; another store's key does not verify).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { channelDir, channelPath, checkChannelDir, ensureChannelDir } from "../../src/runtime/platform/channel-path.js";
import { decodeMessage, encodeMessage, FrameDecoder, MAX_MESSAGE_BYTES, Msg, type Message } from "../../src/runtime/share/wire.js";
import { isCellarError } from "../../src/runtime/errors.js";
import { DecodeError } from "../../src/runtime/format/bytes.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import { ChannelKey, channelNonce } from "../../src/runtime/crypto/channel-key.js";
import { decodeClientValue, encodeClientValue } from "../../src/runtime/share/clients.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-channel-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isCellarError(e) ? e.code : String(e);
  }
  return undefined;
}

describe("socket path and directory", () => {
  it("is <runtime dir>/cellar-<uid>/<24 hex>.sock, the same for the same real path, short enough for a socket", () => {
    const a = channelPath("/some/store", tmp);
    expect(a).toBe(path.join(tmp, `cellar-${process.getuid!()}`, `${a.slice(-29, -5)}.sock`));
    expect(path.basename(a)).toMatch(/^[0-9a-f]{24}\.sock$/);
    expect(channelPath("/some/store", tmp)).toBe(a);
    expect(channelPath("/some/other", tmp)).not.toBe(a);
    expect(channelPath("/x".repeat(400), "/run/user/1000").length).toBeLessThan(104);
  });

  it("creates the directory 0700 and accepts it again", () => {
    const rt = fs.mkdtempSync(path.join(tmp, "rt-"));
    const sock = channelPath("/s", rt);
    ensureChannelDir(sock);
    expect(fs.statSync(channelDir(rt)).mode & 0o777).toBe(0o700);
    expect(() => ensureChannelDir(sock)).not.toThrow();
  });

  it("refuses a directory open to others, a link, a file, or one owned by another user", () => {
    const rt = fs.mkdtempSync(path.join(tmp, "rt-"));
    const dir = channelDir(rt);
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    expect(codeOf(() => ensureChannelDir(channelPath("/s", rt)))).toBe("E_CHANNEL_DIR");
    fs.chmodSync(dir, 0o701);
    expect(codeOf(() => checkChannelDir(dir))).toBe("E_CHANNEL_DIR");
    fs.chmodSync(dir, 0o700);
    expect(codeOf(() => checkChannelDir(dir))).toBeUndefined();
    const link = path.join(rt, "link");
    fs.symlinkSync(dir, link);
    expect(codeOf(() => checkChannelDir(link))).toBe("E_CHANNEL_DIR");
    fs.writeFileSync(path.join(rt, "file"), "");
    expect(codeOf(() => checkChannelDir(path.join(rt, "file")))).toBe("E_CHANNEL_DIR");
    if (process.getuid!() === 0) {
      fs.chownSync(dir, 4321, 4321);
      expect(codeOf(() => checkChannelDir(dir))).toBe("E_CHANNEL_DIR");
    }
  });
});

describe("framing and messages", () => {
  const samples: Message[] = [
    { type: Msg.hello, version: 1, pid: 4242, nonce: new Uint8Array(32).fill(7) },
    { type: Msg.hello, version: 1, pid: 1, nonce: null },
    { type: Msg.auth, version: 1, clientId: new Uint8Array(16).fill(3), pid: 99, nonce: new Uint8Array(32).fill(1), mac: new Uint8Array(32).fill(2) },
    { type: Msg.auth, version: 1, clientId: new Uint8Array(16).fill(3), pid: 99, nonce: null, mac: null },
    { type: Msg.welcome, seq: 2 ** 40, mac: new Uint8Array(32).fill(9) },
    {
      type: Msg.write,
      n: 17,
      pre: [{ entity: "tasks", key: "t1", seq: 5 }],
      ops: [
        { op: "put", entity: "tasks", key: "t1", version: 2, value: new Uint8Array([1, 2, 3]), terms: ["a", "b"] },
        { op: "delete", entity: "tasks", key: "t2" },
      ],
    },
    { type: Msg.ack, n: 17, seq: 300, generation: 4, journal: 2 ** 33, keys: 3 },
    { type: Msg.reject, n: 18, code: "E_CONFLICT", message: "tasks" },
    { type: Msg.committed, seq: 301, generation: 5, journal: 9, keys: 0 },
  ];

  it("every message decodes to what was encoded, whichever way the stream is cut", () => {
    const stream = Buffer.concat(samples.map((m) => encodeMessage(m)));
    for (const cut of [1, 3, 4, 5, 7, 64, stream.length]) {
      const d = new FrameDecoder();
      const got: Message[] = [];
      for (let i = 0; i < stream.length; i += cut) for (const b of d.push(stream.subarray(i, i + cut))) got.push(decodeMessage(b));
      expect(got.map(plain)).toEqual(samples.map(plain));
    }
  });

  it("a frame is u32 LE length then the body, whose first byte is the type", () => {
    const f = encodeMessage({ type: Msg.ack, n: 1, seq: 300, generation: 2, journal: 130, keys: 1 });
    expect([...f]).toEqual([8, 0, 0, 0, Msg.ack, 1, 0xac, 0x02, 2, 0x82, 0x01, 1]);
  });

  it("refuses a length over the limit, an unknown type, and trailing bytes", () => {
    const big = Buffer.alloc(4);
    big.writeUInt32LE(MAX_MESSAGE_BYTES + 1);
    expect(() => new FrameDecoder().push(big)).toThrow(DecodeError);
    expect(() => decodeMessage(new Uint8Array([99]))).toThrow(DecodeError);
    expect(() => decodeMessage(new Uint8Array([Msg.committed, 1, 2, 3, 4, 0]))).toThrow(DecodeError);
    expect(() => decodeMessage(new Uint8Array([Msg.hello, 1, 1, 0, 0, 0, 0]))).toThrow(DecodeError);
  });

  it("a `~clients` value is a plain record value holding protobuf { uint64 n = 1; fixed64 ms = 2 }", () => {
    const b = encodeClientValue(300, 1_700_000_000_000);
    expect([...b.subarray(0, 5)]).toEqual([0x00, 0x08, 0xac, 0x02, 0x11]);
    expect(b.length).toBe(13);
    expect(decodeClientValue(b)).toEqual({ n: 300, ms: 1_700_000_000_000 });
  });
});

describe("channel key", () => {
  it("proves both ways with the same master key, never with another store's or the other side's label", async () => {
    const open = async (name: string, key: Uint8Array) => Engine.open({ dir: path.join(tmp, name), key });
    const k1 = new Uint8Array(32).fill(1);
    const a = await open("a", k1);
    const b = await open("b", new Uint8Array(32).fill(2));
    const a2dir = path.join(tmp, "a2");
    const a2 = await Engine.open({ dir: a2dir, key: k1 }); // another store, same master key: same channel key
    try {
      const [ka, kb, ka2] = [ChannelKey.of(a.keyring!), ChannelKey.of(b.keyring!), ChannelKey.of(a2.keyring!)];
      const w = channelNonce();
      const f = channelNonce();
      const p = ka.proof("client", w, f);
      expect(p.length).toBe(32);
      expect(ka2.verify("client", w, f, p)).toBe(true);
      expect(kb.verify("client", w, f, p)).toBe(false);
      expect(ka.verify("writer", w, f, p)).toBe(false);
      expect(ka.verify("client", f, w, p)).toBe(false);
      expect(ka.verify("client", w, channelNonce(), p)).toBe(false);
      ka.destroy();
      expect(() => ka.proof("client", w, f)).toThrow();
    } finally {
      await Promise.all([a.close(), b.close(), a2.close()]);
    }
  });
});

function plain(m: Message): unknown {
  return JSON.parse(
    JSON.stringify(m, function (this: Record<string, unknown>, k: string, v: unknown) {
      const raw = this[k];
      return raw instanceof Uint8Array ? [...raw] : v;
    }),
  );
}
