/**
 * conf (the engine under electron-store): one JSON file, rewritten atomically (write temp, fsync,
 * rename) on every `set`, and read back and parsed on every `get`. Tasks live under `tasks.<id>`,
 * the settings under `settings.*`.
 */
import type Conf from "conf";
import { join } from "node:path";
import type { StoreAdapter, SystemSpec } from "../adapter.js";
import { diskUsage } from "../fsutil.js";
import type { SettingsPatch, TaskRecord } from "../records.js";

type Store = Record<string, unknown>;

class ConfAdapter implements StoreAdapter {
  #conf: Conf<Store> | undefined;
  #dir = "";

  constructor(private readonly ConfCtor: typeof Conf) {}

  async open(dir: string): Promise<void> {
    this.#dir = dir;
    this.#conf = new this.ConfCtor<Store>({ cwd: join(dir, "conf"), configName: "store" });
  }

  async putOne(record: TaskRecord): Promise<void> {
    this.#conf!.set(`tasks.${record.id}`, record.json);
  }

  async putMany(batch: readonly TaskRecord[]): Promise<void> {
    const patch: Store = {};
    for (const r of batch) patch[`tasks.${r.id}`] = r.json;
    this.#conf!.set(patch);
  }

  async updateSettings(patch: SettingsPatch): Promise<void> {
    const dotted: Store = {};
    for (const [k, v] of Object.entries(patch.json)) dotted[`settings.${k}`] = v;
    this.#conf!.set(dotted);
  }

  async get(key: string): Promise<unknown> {
    return this.#conf!.get(`tasks.${key}`);
  }

  async readAll(): Promise<number> {
    const tasks = this.#conf!.get("tasks") as Store | undefined;
    return tasks === undefined ? 0 : Object.keys(tasks).length;
  }

  async listAll(): Promise<number> {
    // conf's get reads and parses the whole file: the records come back decoded, in one object.
    const tasks = this.#conf!.get("tasks") as Store | undefined;
    return tasks === undefined ? 0 : Object.values(tasks).length;
  }

  async compact(): Promise<void> {
    // One file, rewritten whole on every set: nothing to compact.
  }

  async close(): Promise<void> {
    this.#conf = undefined;
  }

  sizeOnDisk() {
    return diskUsage(this.#dir);
  }
}

export const confSpec: SystemSpec = {
  id: "conf",
  label: "conf",
  kind: "peer",
  packageName: "conf",
  durability: "atomic rewrite of the whole JSON file (temp file, fsync, rename) on every set",
  async create() {
    const mod = await import("conf");
    return new ConfAdapter(mod.default);
  },
};
