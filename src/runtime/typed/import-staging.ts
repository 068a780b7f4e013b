/**
 * The staging area of an import past `memoryBytes` (import.ts): the held writes' value bytes moved out of
 * memory into one file, `<dir>/import-staging/values`, sealed in chunks (one arena chunk of values each,
 * ~1 MiB) under a random key held only by this process, unsynced; read back at the switch. The writes' keys,
 * versions and terms stay in memory (import-held.ts). Removed at the end of the import and, after a crash,
 * by the next open (docs/FORMAT.md, "Import").
 *
 * It used to be a staging engine (every record a journal write of its own, each value sealed on its own,
 * then read back through the engine's keyspace): for 100,000 records that was 40% of the import's CPU.
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { AuthenticationError, Sealer } from "../crypto/seal.js";
import { CorruptionError } from "../errors.js";

/** The staging directory inside the store (not a `.tmp` name: open unlinks those as files). */
export const STAGING_DIR = "import-staging";
/** The file of staged values inside {@link STAGING_DIR}. */
export const SPILL_FILE = "values";

/** Remove a staging directory an import left behind (the process died before it finished). */
export function removeStaging(storeDir: string): void {
  fs.rmSync(path.join(storeDir, STAGING_DIR), { recursive: true, force: true });
}

/** Where a staged chunk lies in the spill file. */
export interface SpilledChunk {
  at: number;
  /** Sealed bytes (`nonce ‖ ciphertext ‖ tag`). */
  length: number;
}

/**
 * The spill file of one import: chunks of value bytes appended, each sealed (XChaCha20-Poly1305, its
 * associated data the chunk's offset in the file as 8 little-endian bytes: a chunk read anywhere else does
 * not open), read back by offset.
 */
export class Spill {
  private end = 0;
  private constructor(
    private readonly fh: fs.promises.FileHandle,
    private readonly sealer: Sealer,
    private readonly dir: string,
  ) {}

  /** The spill file's path. */
  get file(): string {
    return path.join(this.dir, SPILL_FILE);
  }

  static async open(storeDir: string): Promise<Spill> {
    removeStaging(storeDir);
    const dir = path.join(storeDir, STAGING_DIR);
    fs.mkdirSync(dir, { mode: 0o700 });
    const fh = await fs.promises.open(path.join(dir, SPILL_FILE), "wx+", 0o600);
    const key = randomBytes(32);
    const sealer = new Sealer(0, key);
    key.fill(0);
    return new Spill(fh, sealer, dir);
  }

  /** Append `plain` sealed; where it lies. */
  async write(plain: Uint8Array): Promise<SpilledChunk> {
    const at = this.end;
    const sealed = this.sealer.seal(plain, ad(at));
    this.end += sealed.length;
    let done = 0;
    while (done < sealed.length) done += (await this.fh.write(sealed, done, sealed.length - done, at + done)).bytesWritten;
    return { at, length: sealed.length };
  }

  /** A chunk's plaintext, in a buffer of its own (decrypted in place); `E_CORRUPT` if the file was changed. */
  async read(c: SpilledChunk): Promise<Uint8Array> {
    const buf = Buffer.allocUnsafe(c.length);
    let done = 0;
    while (done < c.length) {
      const { bytesRead } = await this.fh.read(buf, done, c.length - done, c.at + done);
      if (bytesRead === 0) throw new CorruptionError(this.file, c.at + done, "the import's staging file is shorter than what the import wrote to it");
      done += bytesRead;
    }
    try {
      return this.sealer.openInPlace(buf, ad(c.at));
    } catch (e) {
      if (e instanceof AuthenticationError) throw new CorruptionError(this.file, c.at, "a chunk of the import's staging file does not authenticate (changed while the import ran)", { cause: e });
      throw e;
    }
  }

  async close(): Promise<void> {
    try {
      await this.fh.close();
    } finally {
      this.sealer.destroy();
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

function ad(at: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(at));
  return b;
}
