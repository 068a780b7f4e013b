/** better-sqlite3 in WAL mode, one table `tasks(id TEXT PRIMARY KEY, v TEXT)` holding JSON. */
import type { Database, Statement } from "better-sqlite3";
import type { StoreAdapter, SystemSpec } from "../adapter.js";
import { diskUsage } from "../fsutil.js";
import type { SettingsPatch, TaskRecord } from "../records.js";
import { join } from "node:path";

type Synchronous = "FULL" | "NORMAL";

class SqliteAdapter implements StoreAdapter {
  #db: Database | undefined;
  #dir = "";
  #put!: Statement<[string, string]>;
  #get!: Statement<[string], string | undefined>;
  #putMany!: (batch: readonly TaskRecord[]) => void;
  #getSettings!: Statement<[], string | undefined>;
  #putSettings!: Statement<[string]>;

  constructor(
    private readonly DatabaseCtor: typeof import("better-sqlite3"),
    private readonly synchronous: Synchronous,
  ) {}

  async open(dir: string): Promise<void> {
    this.#dir = dir;
    const db = new this.DatabaseCtor(join(dir, "store.sqlite"));
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${this.synchronous}`);
    db.exec("CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, v TEXT NOT NULL)");
    db.exec("CREATE TABLE IF NOT EXISTS settings (k INTEGER PRIMARY KEY CHECK (k = 1), v TEXT NOT NULL)");
    this.#put = db.prepare("INSERT OR REPLACE INTO tasks (id, v) VALUES (?, ?)");
    this.#get = db.prepare<[string], string | undefined>("SELECT v FROM tasks WHERE id = ?").pluck();
    const put = this.#put;
    this.#putMany = db.transaction((batch: readonly TaskRecord[]) => {
      for (const r of batch) put.run(r.id, JSON.stringify(r.json));
    });
    this.#getSettings = db.prepare<[], string | undefined>("SELECT v FROM settings WHERE k = 1").pluck();
    this.#putSettings = db.prepare("INSERT OR REPLACE INTO settings (k, v) VALUES (1, ?)");
    this.#db = db;
  }

  async putOne(record: TaskRecord): Promise<void> {
    this.#put.run(record.id, JSON.stringify(record.json));
  }

  async putMany(batch: readonly TaskRecord[]): Promise<void> {
    this.#putMany(batch);
  }

  async updateSettings(patch: SettingsPatch): Promise<void> {
    const db = this.#db!;
    db.transaction(() => {
      const current = this.#getSettings.get();
      const merged = { ...(current === undefined ? {} : JSON.parse(current)), ...patch.json };
      this.#putSettings.run(JSON.stringify(merged));
    })();
  }

  async get(key: string): Promise<unknown> {
    const v = this.#get.get(key);
    return v === undefined ? undefined : JSON.parse(v);
  }

  async readAll(): Promise<number> {
    let n = 0;
    const all = this.#db!.prepare<[], string>("SELECT v FROM tasks").pluck();
    for (const v of all.iterate()) {
      JSON.parse(v);
      n++;
    }
    return n;
  }

  async listAll(): Promise<number> {
    const all = this.#db!.prepare<[], string>("SELECT v FROM tasks").pluck().all();
    return all.map((v) => JSON.parse(v) as unknown).length;
  }

  async compact(): Promise<void> {
    this.#db!.pragma("wal_checkpoint(TRUNCATE)");
  }

  async close(): Promise<void> {
    this.#db?.close();
    this.#db = undefined;
  }

  sizeOnDisk() {
    return diskUsage(this.#dir);
  }
}

function sqliteSpec(synchronous: Synchronous): SystemSpec {
  return {
    id: `sqlite-${synchronous.toLowerCase()}`,
    label: `better-sqlite3 ${synchronous}`,
    kind: "peer",
    packageName: "better-sqlite3",
    durability:
      synchronous === "FULL"
        ? "WAL, `synchronous=FULL`: every commit fsyncs the WAL"
        : "WAL, `synchronous=NORMAL`: commits are not fsynced (only checkpoints are); a power cut can lose the last commits",
    async create() {
      const mod = await import("better-sqlite3");
      return new SqliteAdapter(mod.default, synchronous);
    },
  };
}

export const sqliteFull = sqliteSpec("FULL");
export const sqliteNormal = sqliteSpec("NORMAL");
