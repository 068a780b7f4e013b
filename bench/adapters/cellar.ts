/**
 * Cellar through its generated repositories (src/generated): `store.tasks.put(input)`, one
 * `store.tasks.putMany(inputs)` per batch, `store.settings.update(patch)`, `store.tasks.get(id)`,
 * `store.tasks.iterate()`, `store.compact()`.
 *
 * Two configurations, so the cost of protection is visible:
 * - `cellar`: encryption (XChaCha20-Poly1305) + compression + validation, the defaults;
 * - `cellar-plain`: `encryption: "none"` and `compression: false`. Validation has no switch (every
 *   write is checked against the generated zod schema), so it stays on in both. A plaintext store refuses
 *   entities with sensitive fields, so this one opens the same entities with `sensitive` emptied (the
 *   settings entity's `aiProvider.apiKey`), through the runtime's `openStore`.
 * Both use `durability: "full"` (a write resolves after fdatasync), the default, and default cache sizes.
 */
import type { StoreAdapter, SystemSpec } from "../adapter.js";
import { diskUsage } from "../fsutil.js";
import type { SettingsPatch, TaskRecord } from "../records.js";

type Generated = typeof import("../../src/generated/index.js");
type CellarStore = Awaited<ReturnType<Generated["openStore"]>>;
type StoreOptions = Parameters<Generated["openStore"]>[0];

/** A fixed 32-byte key: the benchmark measures the cipher, not key management. */
const BENCH_KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);

class CellarAdapter implements StoreAdapter {
  #store: CellarStore | undefined;
  #dir = "";

  constructor(
    private readonly generated: Generated,
    private readonly options: Omit<StoreOptions, "dir">,
  ) {}

  async open(dir: string): Promise<void> {
    this.#dir = dir;
    if (this.options.encryption === "none") {
      const { openStore } = await import("../../src/runtime/typed/store.js");
      const plain = Object.fromEntries(Object.entries(this.generated.entities).map(([k, d]) => [k, { ...d, sensitive: [] }]));
      this.#store = (await openStore(plain as unknown as Generated["entities"], { ...this.options, dir })) as CellarStore;
    } else {
      this.#store = await this.generated.openStore({ ...this.options, dir });
    }
  }

  async putOne(record: TaskRecord): Promise<void> {
    await this.#store!.tasks.put(record.input);
  }

  async putMany(batch: readonly TaskRecord[]): Promise<void> {
    // The repository's bulk write (one atomic commit, like `store.batch`, but validated and encoded in slices
    // that let the event loop turn, where a batch's callback encodes every put in one synchronous step).
    await this.#store!.tasks.putMany(batch.map((r) => r.input));
  }

  async updateSettings(patch: SettingsPatch): Promise<void> {
    await this.#store!.settings.update(patch.input);
  }

  async get(key: string): Promise<unknown> {
    return this.#store!.tasks.get(key);
  }

  async readAll(): Promise<number> {
    // Like the peers' adapters (an iterator whose values are decoded and dropped), records are read one at
    // a time and not kept: `list()` would hold all 100,000 decoded records at once.
    let n = 0;
    for await (const _ of this.#store!.tasks.iterate()) n++;
    return n;
  }

  async listAll(): Promise<number> {
    return (await this.#store!.tasks.list()).length;
  }

  async compact(): Promise<void> {
    await this.#store!.compact();
  }

  async close(): Promise<void> {
    await this.#store?.close();
    this.#store = undefined;
  }

  sizeOnDisk() {
    return diskUsage(this.#dir);
  }
}

/**
 * Retention cleanup off (`cleanup: false`): the example schema's `tasks` keep at most 100,000 records
 * (`retention.maxCount`), so with it on, every open of a larger store deletes the excess in the background,
 * which the peers never do: a 1M-record read step iterated 129,053 records while cleanup was deleting.
 */
function cellarSpec(id: string, label: string, durability: string, given: Omit<StoreOptions, "dir" | "cleanup">): SystemSpec {
  const options: Omit<StoreOptions, "dir"> = { ...given, cleanup: false };
  return {
    id,
    label,
    kind: "cellar",
    durability,
    async create() {
      return new CellarAdapter(await import("../../src/generated/index.js"), options);
    },
  };
}

export const cellarSealed = cellarSpec(
  "cellar",
  "Cellar",
  "encryption + compression + validation on; `durability: \"full\"` (resolves after fdatasync)",
  { key: BENCH_KEY, durability: "full" },
);

export const cellarPlain = cellarSpec(
  "cellar-plain",
  "Cellar plain",
  "`encryption: \"none\"`, `compression: false` (validation stays on); `durability: \"full\"`",
  { encryption: "none", compression: false, durability: "full" },
);
