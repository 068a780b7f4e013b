/**
 * Write ids and preconditions at the writer (docs/FORMAT.md, "Write ids" and "Channel"), with a real writer
 * (`Sharing.open`) and real connections: a write sent again (a new connection after a lost reply, or a new
 * writer after a compaction and a reopen) is acknowledged, never applied twice; a stale precondition is `E_CONFLICT`; a
 * write no writer takes rejects `E_UNAVAILABLE` after `writeTimeoutMs`, saying it was not sent.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Sharing } from "../../src/runtime/share/sharing.js";
import { ChannelClient } from "../../src/runtime/share/client.js";
import { ChannelKey } from "../../src/runtime/crypto/channel-key.js";
import { channelPath } from "../../src/runtime/platform/channel-path.js";
import { CLIENTS_ENTITY, decodeClientValue } from "../../src/runtime/share/clients.js";
import type { WriteOp } from "../../src/runtime/storage/engine.js";
import { verifyBackup } from "../../src/runtime/storage/restore.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-ids-"));
const runtime = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-rt-"));
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(runtime, { recursive: true, force: true });
});
const key = new Uint8Array(32).fill(4);
/** A record value (a plain envelope around the protobuf `{ string s = 1 }`), so backups of the store verify. */
const put = (k: string, v: string): WriteOp => ({ op: "put", entity: "raw", key: k, version: 1, value: Buffer.from([0, 0x0a, v.length, ...Buffer.from(v)]), terms: [] });
const text = (s: Sharing, k: string) => Buffer.from(s.engine.get("raw", k)?.value.subarray(3) ?? []).toString();

describe("write ids", () => {
  it("a write sent again, on a new connection or to a new writer, is acknowledged and not applied again", async () => {
    const dir = path.join(tmp, "ids");
    let w = await Sharing.open({ dir, key }, { runtimeDir: runtime });
    await w.start();
    const socket = channelPath(fs.realpathSync(dir), runtime);
    const ck = ChannelKey.of(w.engine.keyring!);
    const id = new Uint8Array(16).fill(0xab);
    const client = () => new ChannelClient(id, ck, 5000, () => {}, () => {});
    try {
      const a = client();
      await a.connect(socket);
      const s1 = await a.send([], [put("k", "v1")]);
      expect(text(w, "k")).toBe("v1");
      a.close();
      await w.write([put("k", "v2")], []); // the writer's own write after it
      const s2 = w.engine.lastSeq;
      expect(s2).toBeGreaterThan(s1);

      // The same client id, a new connection, numbering from 1 again: write 1 is a re-send.
      const b = client();
      await b.connect(socket);
      expect(await b.send([], [put("k", "v1")])).toBe(s2); // acknowledged at the current seq, no commit
      expect(text(w, "k")).toBe("v2");
      expect(w.engine.lastSeq).toBe(s2);
      expect(await b.send([], [put("k2", "x")])).toBe(s2 + 1); // write 2 is new
      b.close();
      expect(decodeClientValue(w.engine.get(CLIENTS_ENTITY, Buffer.from(id).toString("hex"))!.value).n).toBe(2);

      // Another client's first write (its record holds n = 1), then a new writer (compaction, close, reopen)
      // reads the ids back from `~clients`.
      const other = new ChannelClient(new Uint8Array(16).fill(0xcd), ck, 5000, () => {}, () => {});
      await other.connect(socket);
      await other.send([], [put("o", "1")]);
      other.close();
      await w.engine.compact();
      // A backup of the store verifies: its `~clients` records read as record values do.
      const file = path.join(tmp, "ids.cellarbackup");
      await w.engine.backup({ to: file });
      await verifyBackup(file, { key });
      await w.close();
      await w.engine.close();
      w = await Sharing.open({ dir, key }, { runtimeDir: runtime });
      await w.start();
      const c = client();
      await c.connect(socket);
      await c.send([], [put("k", "v1")]);
      await c.send([], [put("k2", "y")]);
      expect([text(w, "k"), text(w, "k2")]).toEqual(["v2", "x"]);
      expect(await c.send([], [put("k3", "z")])).toBe(w.engine.lastSeq);
      expect(text(w, "k3")).toBe("z");
      c.close();
    } finally {
      ck.destroy();
      await w.close();
      await w.engine.close();
    }
  });

  it("a precondition that no longer holds is E_CONFLICT, a record at another schema version E_VERSION_SKEW, nothing written", async () => {
    const dir = path.join(tmp, "pre");
    const w = await Sharing.open({ dir, key }, { runtimeDir: runtime });
    await w.start();
    const ck = ChannelKey.of(w.engine.keyring!);
    try {
      await w.write([put("k", "v1")], []);
      w.engine.setEntityVersions(new Map([["raw", 1]]));
      const seq = w.engine.locateSeq("raw", "k");
      const c = new ChannelClient(new Uint8Array(16).fill(1), ck, 5000, () => {}, () => {});
      await c.connect(channelPath(fs.realpathSync(dir), runtime));
      await w.write([put("k", "v2")], []);
      await expect(c.send([{ entity: "raw", key: "k", seq }], [put("k", "from-old")])).rejects.toMatchObject({ code: "E_CONFLICT" });
      expect(text(w, "k")).toBe("v2");
      await expect(c.send([{ entity: "raw", key: "new", seq: 1 }], [put("new", "x")])).rejects.toMatchObject({ code: "E_CONFLICT" });
      await c.send([{ entity: "raw", key: "k", seq: w.engine.locateSeq("raw", "k") }, { entity: "raw", key: "new", seq: 0 }], [put("k", "v3"), put("new", "x")]);
      expect([text(w, "k"), text(w, "new")]).toEqual(["v3", "x"]);
      // A record at another schema version than the store's (a follower of another app version): refused.
      await expect(c.send([], [{ ...(put("k", "v9") as WriteOp & { op: "put" }), version: 2 }])).rejects.toMatchObject({ code: "E_VERSION_SKEW" });
      expect(text(w, "k")).toBe("v3");
      c.close();
    } finally {
      ck.destroy();
      await w.close();
      await w.engine.close();
    }
  });

  it("a write no writer takes rejects E_UNAVAILABLE after writeTimeoutMs, saying it was not sent", async () => {
    const c = new ChannelClient(new Uint8Array(16), null, 150, () => {}, () => {});
    const t0 = Date.now();
    const e = await c.send([], [put("k", "v")]).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "E_UNAVAILABLE", sent: false });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });
});
