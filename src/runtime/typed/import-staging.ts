/**
 * The staging area of an import past one write (import.ts): a temporary engine in `<dir>/import-staging/`,
 * removed at the end of the import and, after a crash, by the next open (docs/FORMAT.md, "Import").
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { keys as keyProviders } from "../crypto/keys.js";
import { opSize, type BlockRecord } from "../format/records.js";
import { Engine, type WriteOp } from "../storage/engine.js";

/** The staging engine's directory inside the store (not a `.tmp` name: open unlinks those as files). */
export const STAGING_DIR = "import-staging";

/** Remove a staging directory an import left behind (the process died before it finished). */
export function removeStaging(storeDir: string): void {
  fs.rmSync(path.join(storeDir, STAGING_DIR), { recursive: true, force: true });
}

/**
 * The staging engine of a large import: the file's encoded writes, unsynced (nothing in it needs to survive
 * a crash), sealed under a random master key held only by this process; its keyspace sorts them by key.
 */
export class Staging {
  private pending: WriteOp[] = [];
  private size = 0;
  private constructor(
    private readonly engine: Engine,
    private readonly dir: string,
  ) {}

  static async open(main: Engine): Promise<Staging> {
    removeStaging(main.dir);
    const dir = path.join(main.dir, STAGING_DIR);
    const key = randomBytes(32);
    const engine = await Engine.open({
      dir,
      key: keyProviders.raw(key),
      io: main.io,
      durability: "relaxed",
      relaxedSyncMs: 3_600_000,
      compaction: { auto: false },
      compression: false,
      verifyOnOpen: false,
    });
    key.fill(0);
    return new Staging(engine, dir);
  }

  /** Stage a write; a promise when it wrote what was pending (every 4 MiB). */
  put(op: WriteOp): Promise<void> | undefined {
    this.pending.push(op);
    this.size += opSize(op);
    return this.size >= 4 * 1024 * 1024 ? this.flush() : undefined;
  }

  private async flush(): Promise<void> {
    const ops = this.pending;
    this.pending = [];
    this.size = 0;
    if (ops.length) await this.engine.write(ops);
  }

  /** Everything staged is written. */
  async ready(): Promise<void> {
    await this.flush();
  }

  /**
   * The staged records of `entity`, in UTF-8 key order: their values are read in file order (each staged
   * frame opened once, a turn taken every 256 records), then handed out in key order. Holds the entity's
   * staged values in memory, as a compaction does (the switch that reads them is one).
   */
  async records(entity: string): Promise<Iterable<BlockRecord>> {
    const entries = [...this.engine.scan(entity)];
    const order = entries.map((_, i) => i);
    order.sort((a, b) => {
      const x = entries[a]![1];
      const y = entries[b]![1];
      return x.file - y.file || x.frameOffset - y.frameOffset || x.start - y.start;
    });
    const values: (Uint8Array | undefined)[] = new Array(entries.length);
    let n = 0;
    for (const i of order) {
      values[i] = this.engine.read(entity, entries[i]![1]).slice();
      if (++n % 256 === 0) await new Promise<void>((r) => setImmediate(r));
    }
    return (function* () {
      for (let i = 0; i < entries.length; i++) {
        const [key, loc] = entries[i]!;
        yield { key, version: loc.version, value: values[i]!, terms: loc.terms };
        values[i] = undefined;
      }
    })();
  }

  async close(): Promise<void> {
    try {
      await this.engine.close();
    } finally {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

