/**
 * Raw limits of this machine, measured in the same run as the systems: how fast can any store here
 * make a small write durable, and what do the component costs (sealing, compressing) amount to.
 */
import { closeSync, constants, fdatasyncSync, fsyncSync, openSync, writeSync } from "node:fs";
import { open as openAsync } from "node:fs/promises";
import { join } from "node:path";
import { deflateSync, inflateSync } from "fflate";
import sodium from "sodium-native";
import { makeTask } from "./records.js";
import type { Sizes } from "./sizes.js";
import { nowMs } from "./stats.js";

export type RawId =
  | "append.fdatasync"
  | "append.async"
  | "append.odsync"
  | "prealloc.pwrite"
  | "seal.record"
  | "seal.record.us"
  | "seal.block"
  | "open.record"
  | "open.block"
  | "deflate.record"
  | "deflate.record.us"
  | "deflate.record.ratio"
  | "deflate.block"
  | "deflate.block.us"
  | "deflate.block.ratio"
  | "inflate.record"
  | "inflate.record.us"
  | "inflate.sized.us"
  | "inflate.block";

export interface RawDef {
  readonly id: RawId;
  readonly label: string;
  readonly unit: "ops/s" | "MB/s" | "µs/record" | "ratio";
}

export const RAW_METRICS: readonly RawDef[] = [
  { id: "append.fdatasync", label: "append 512 B + fdatasync (sync fs calls)", unit: "ops/s" },
  { id: "append.async", label: "append 512 B + fdatasync (fs/promises)", unit: "ops/s" },
  { id: "append.odsync", label: "append 512 B to a file opened O_DSYNC", unit: "ops/s" },
  { id: "prealloc.pwrite", label: "pwrite 512 B into a preallocated file + fdatasync", unit: "ops/s" },
  { id: "seal.record", label: "XChaCha20-Poly1305 seal, 512 B records", unit: "MB/s" },
  { id: "seal.record.us", label: "XChaCha20-Poly1305 seal, one 512 B record", unit: "µs/record" },
  { id: "seal.block", label: "XChaCha20-Poly1305 seal, 1 MiB blocks", unit: "MB/s" },
  { id: "open.record", label: "XChaCha20-Poly1305 open, 512 B records", unit: "MB/s" },
  { id: "open.block", label: "XChaCha20-Poly1305 open, 1 MiB blocks", unit: "MB/s" },
  { id: "deflate.record", label: "fflate deflate (level 6), one record at a time", unit: "MB/s" },
  { id: "deflate.record.us", label: "fflate deflate, one record", unit: "µs/record" },
  { id: "deflate.record.ratio", label: "fflate deflate, one record: compressed/plain", unit: "ratio" },
  { id: "deflate.block", label: "fflate deflate (level 6), 1 MiB blocks of records", unit: "MB/s" },
  { id: "deflate.block.us", label: "fflate deflate, per record inside a 1 MiB block", unit: "µs/record" },
  { id: "deflate.block.ratio", label: "fflate deflate, 1 MiB block: compressed/plain", unit: "ratio" },
  { id: "inflate.record", label: "fflate inflate, one record at a time", unit: "MB/s" },
  { id: "inflate.record.us", label: "fflate inflate, one record", unit: "µs/record" },
  { id: "inflate.sized.us", label: "fflate inflate, one record, output size given", unit: "µs/record" },
  { id: "inflate.block", label: "fflate inflate, 1 MiB blocks", unit: "MB/s" },
];

export type RawSample = Partial<Record<RawId, number>>;

const RECORD = 512;

function syncWrites(path: string, n: number, flags: number, sync: (fd: number) => void, positioned: boolean): number {
  const buf = Buffer.alloc(RECORD, 0x61);
  const fd = openSync(path, flags, 0o644);
  try {
    const start = nowMs();
    for (let i = 0; i < n; i++) {
      let off = 0;
      while (off < RECORD) off += writeSync(fd, buf, off, RECORD - off, positioned ? i * RECORD + off : null);
      sync(fd);
    }
    return n / ((nowMs() - start) / 1000);
  } finally {
    closeSync(fd);
  }
}

function preallocate(path: string, bytes: number): void {
  const fd = openSync(path, "w");
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let off = 0; off < bytes; ) off += writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - off), off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function asyncAppends(path: string, n: number): Promise<number> {
  const buf = Buffer.alloc(RECORD, 0x62);
  const fh = await openAsync(path, "a");
  try {
    const start = nowMs();
    for (let i = 0; i < n; i++) {
      let off = 0;
      while (off < RECORD) off += (await fh.write(buf, off, RECORD - off)).bytesWritten;
      await fh.datasync();
    }
    return n / ((nowMs() - start) / 1000);
  } finally {
    await fh.close();
  }
}

/** fsync'd small writes, four ways. `dir` must be on the file system the stores use. */
export async function measureSyncs(dir: string, sizes: Sizes): Promise<RawSample> {
  const n = sizes.rawSyncs;
  const { O_WRONLY, O_CREAT, O_APPEND, O_DSYNC } = constants;
  const prealloc = join(dir, "prealloc.bin");
  preallocate(prealloc, n * RECORD);
  return {
    "append.fdatasync": syncWrites(join(dir, "append.bin"), n, O_WRONLY | O_CREAT | O_APPEND, fdatasyncSync, false),
    "append.async": await asyncAppends(join(dir, "append-async.bin"), n),
    "append.odsync": syncWrites(join(dir, "odsync.bin"), n, O_WRONLY | O_CREAT | O_APPEND | O_DSYNC, () => {}, false),
    "prealloc.pwrite": syncWrites(prealloc, n, O_WRONLY, fdatasyncSync, true),
  };
}

/** Time `fn` over `items`, returning MB/s of `bytes` processed and µs per item. */
function rate(items: number, bytes: number, fn: () => void): { mbps: number; us: number } {
  const start = nowMs();
  fn();
  const ms = nowMs() - start;
  return { mbps: bytes / 1e6 / (ms / 1000), us: (ms * 1000) / items };
}

/** XChaCha20-Poly1305 (sodium-native) sealing and opening, per 512-byte record and per 1 MiB block. */
export function measureSeal(sizes: Sizes): RawSample {
  sealOnce(sizes.rawBytes / 8); // warm-up: let V8 optimize the loops before anything is timed
  return sealOnce(sizes.rawBytes);
}

function sealOnce(totalBytes: number): RawSample {
  const key = Buffer.alloc(32, 7);
  const nonce = Buffer.alloc(24);
  const ad = Buffer.alloc(32, 1);
  const tag = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES;
  const run = (size: number) => {
    const count = Math.max(4, Math.floor(totalBytes / size));
    const plain = Buffer.alloc(size, 0x5a);
    const sealed = Buffer.alloc(size + tag);
    const opened = Buffer.alloc(size);
    const seal = rate(count, count * size, () => {
      for (let i = 0; i < count; i++) {
        sodium.randombytes_buf(nonce); // a fresh nonce per seal, as a store must
        sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(sealed, plain, ad, null, nonce, key);
      }
    });
    const open = rate(count, count * size, () => {
      for (let i = 0; i < count; i++) sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(opened, null, sealed, ad, nonce, key);
    });
    if (!opened.equals(plain)) throw new Error("sodium round trip failed");
    return { seal, open };
  };
  const record = run(RECORD);
  const block = run(1 << 20);
  return {
    "seal.record": record.seal.mbps,
    "seal.record.us": record.seal.us,
    "seal.block": block.seal.mbps,
    "open.record": record.open.mbps,
    "open.block": block.open.mbps,
  };
}

/** fflate deflate/inflate of benchmark records, one at a time and in 1 MiB blocks. */
export function measureFlate(sizes: Sizes): RawSample {
  flateOnce(sizes.rawBytes / 8); // warm-up, as for sealing
  return flateOnce(sizes.rawBytes);
}

function flateOnce(totalBytes: number): RawSample {
  const enc = new TextEncoder();
  const records: Uint8Array[] = [];
  let bytes = 0;
  for (let i = 0; bytes < totalBytes; i++) {
    const r = enc.encode(JSON.stringify(makeTask(i).json));
    records.push(r);
    bytes += r.length;
  }
  // Per record.
  let compressedBytes = 0;
  const compressed: Uint8Array[] = new Array(records.length);
  const deflateRec = rate(records.length, bytes, () => {
    for (let i = 0; i < records.length; i++) compressed[i] = deflateSync(records[i] as Uint8Array, { level: 6 });
  });
  for (const c of compressed) compressedBytes += c.length;
  const inflateRec = rate(records.length, bytes, () => {
    for (const c of compressed) inflateSync(c);
  });
  const inflateSized = rate(records.length, bytes, () => {
    for (let i = 0; i < compressed.length; i++) {
      inflateSync(compressed[i] as Uint8Array, { out: new Uint8Array((records[i] as Uint8Array).length) });
    }
  });
  // 1 MiB blocks of whole records.
  const blocks: { plain: Uint8Array; records: number }[] = [];
  for (let i = 0; i < records.length; ) {
    const parts: Uint8Array[] = [];
    let len = 0;
    while (i < records.length && len < 1 << 20) {
      const r = records[i++] as Uint8Array;
      parts.push(r);
      len += r.length;
    }
    const plain = new Uint8Array(len);
    let off = 0;
    for (const p of parts) {
      plain.set(p, off);
      off += p.length;
    }
    blocks.push({ plain, records: parts.length });
  }
  const deflatedBlocks: Uint8Array[] = [];
  const deflateBlock = rate(records.length, bytes, () => {
    for (const b of blocks) deflatedBlocks.push(deflateSync(b.plain, { level: 6 }));
  });
  const blockCompressed = deflatedBlocks.reduce((s, c) => s + c.length, 0);
  const inflateBlock = rate(records.length, bytes, () => {
    for (let i = 0; i < blocks.length; i++) {
      inflateSync(deflatedBlocks[i] as Uint8Array, { out: new Uint8Array((blocks[i] as { plain: Uint8Array }).plain.length) });
    }
  });
  return {
    "deflate.record": deflateRec.mbps,
    "deflate.record.us": deflateRec.us,
    "deflate.record.ratio": compressedBytes / bytes,
    "deflate.block": deflateBlock.mbps,
    "deflate.block.us": deflateBlock.us,
    "deflate.block.ratio": blockCompressed / bytes,
    "inflate.record": inflateRec.mbps,
    "inflate.record.us": inflateRec.us,
    "inflate.sized.us": inflateSized.us,
    "inflate.block": inflateBlock.mbps,
  };
}
