/**
 * lmdb-js with its defaults on Linux (overlappingSync), sync on. With overlappingSync a write's promise
 * resolves at commit and `flushed` resolves once it is synced to disk, so every write here awaits
 * `flushed` before it counts as durable. Values are JSON strings, as for every peer.
 */
import type { Database, RootDatabase } from "lmdb";
import { join } from "node:path";
import type { StoreAdapter, SystemSpec } from "../adapter.js";
import { diskUsage } from "../fsutil.js";
import type { SettingsPatch, TaskRecord } from "../records.js";

class LmdbAdapter implements StoreAdapter {
  #root: RootDatabase | undefined;
  #tasks!: Database<string, string>;
  #settings!: Database<string, string>;
  #dir = "";

  constructor(private readonly lmdb: typeof import("lmdb")) {}

  async open(dir: string): Promise<void> {
    this.#dir = dir;
    const root = this.lmdb.open({ path: join(dir, "store.mdb"), noSync: false });
    this.#tasks = root.openDB<string, string>({ name: "tasks", encoding: "string" });
    this.#settings = root.openDB<string, string>({ name: "settings", encoding: "string" });
    this.#root = root;
  }

  async putOne(record: TaskRecord): Promise<void> {
    await this.#tasks.put(record.id, JSON.stringify(record.json));
    await this.#root!.flushed;
  }

  async putMany(batch: readonly TaskRecord[]): Promise<void> {
    const tasks = this.#tasks;
    await tasks.transaction(() => {
      for (const r of batch) void tasks.put(r.id, JSON.stringify(r.json));
    });
    await this.#root!.flushed;
  }

  async updateSettings(patch: SettingsPatch): Promise<void> {
    const settings = this.#settings;
    await settings.transaction(() => {
      const current = settings.get("settings");
      void settings.put("settings", JSON.stringify({ ...(current === undefined ? {} : JSON.parse(current)), ...patch.json }));
    });
    await this.#root!.flushed;
  }

  async get(key: string): Promise<unknown> {
    const v = this.#tasks.get(key);
    return v === undefined ? undefined : JSON.parse(v);
  }

  async readAll(): Promise<number> {
    let n = 0;
    for (const { value } of this.#tasks.getRange()) {
      JSON.parse(value);
      n++;
    }
    return n;
  }

  async listAll(): Promise<number> {
    return (await this.#tasks.getRange().map(({ value }) => JSON.parse(value) as unknown).asArray).length;
  }

  async compact(): Promise<void> {
    // LMDB reuses freed pages in place; there is no log to fold.
  }

  async close(): Promise<void> {
    await this.#root?.close();
    this.#root = undefined;
  }

  sizeOnDisk() {
    return diskUsage(this.#dir);
  }
}

export const lmdbSpec: SystemSpec = {
  id: "lmdb",
  label: "lmdb",
  kind: "peer",
  packageName: "lmdb",
  durability: "default overlappingSync; each write awaits `db.flushed` (synced to disk)",
  async create() {
    return new LmdbAdapter(await import("lmdb"));
  },
};
