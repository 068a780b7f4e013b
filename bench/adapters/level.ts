/**
 * classic-level (LevelDB, snappy block compression on by default), every write with `{ sync: true }`.
 * Tasks live under the `t!` prefix and the settings value under `s!settings`; values are JSON strings.
 */
import type { ClassicLevel } from "classic-level";
import type { StoreAdapter, SystemSpec } from "../adapter.js";
import { diskUsage } from "../fsutil.js";
import type { SettingsPatch, TaskRecord } from "../records.js";

const TASK_PREFIX = "t!";
const TASK_END = 't"'; // the next string after every `t!…` key
const SETTINGS_KEY = "s!settings";

class LevelAdapter implements StoreAdapter {
  #db: ClassicLevel<string, string> | undefined;
  #dir = "";

  constructor(private readonly Level: typeof ClassicLevel) {}

  async open(dir: string): Promise<void> {
    this.#dir = dir;
    const db = new this.Level<string, string>(dir, { keyEncoding: "utf8", valueEncoding: "utf8" });
    await db.open();
    this.#db = db;
  }

  async putOne(record: TaskRecord): Promise<void> {
    await this.#db!.put(TASK_PREFIX + record.id, JSON.stringify(record.json), { sync: true });
  }

  async putMany(batch: readonly TaskRecord[]): Promise<void> {
    await this.#db!.batch(
      batch.map((r) => ({ type: "put" as const, key: TASK_PREFIX + r.id, value: JSON.stringify(r.json) })),
      { sync: true },
    );
  }

  async updateSettings(patch: SettingsPatch): Promise<void> {
    const db = this.#db!;
    const current = await db.get(SETTINGS_KEY);
    const merged = { ...(current === undefined ? {} : JSON.parse(current)), ...patch.json };
    await db.put(SETTINGS_KEY, JSON.stringify(merged), { sync: true });
  }

  async get(key: string): Promise<unknown> {
    const v = await this.#db!.get(TASK_PREFIX + key);
    return v === undefined ? undefined : JSON.parse(v);
  }

  async readAll(): Promise<number> {
    let n = 0;
    const it = this.#db!.values({ gte: TASK_PREFIX, lt: TASK_END });
    try {
      for (;;) {
        const chunk = await it.nextv(1000);
        if (chunk.length === 0) break;
        for (const v of chunk) JSON.parse(v);
        n += chunk.length;
      }
    } finally {
      await it.close();
    }
    return n;
  }

  async listAll(): Promise<number> {
    const all = await this.#db!.values({ gte: TASK_PREFIX, lt: TASK_END }).all();
    return all.map((v) => JSON.parse(v) as unknown).length;
  }

  async compact(): Promise<void> {
    await this.#db!.compactRange("\u0000", "\uffff");
  }

  async close(): Promise<void> {
    await this.#db?.close();
    this.#db = undefined;
  }

  sizeOnDisk() {
    return diskUsage(this.#dir);
  }
}

export const levelSpec: SystemSpec = {
  id: "leveldb",
  label: "LevelDB",
  kind: "peer",
  packageName: "classic-level",
  durability: "classic-level, every write and batch with `{ sync: true }`",
  async create() {
    const { ClassicLevel } = await import("classic-level");
    return new LevelAdapter(ClassicLevel);
  },
};
