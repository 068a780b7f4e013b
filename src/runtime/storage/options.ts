/**
 * The engine's options: what `Engine.open` accepts (`EngineOptions`), and the same with every default filled
 * in (`ResolvedOptions`), which the engine's jobs read. `resolveOptions` checks and resolves them; called by
 * open.ts before it takes the store's lock.
 */
import { KeyError, UsageError } from "../errors.js";
import type { KeyScope } from "../crypto/keyring.js";
import { type KeyProvider, keys as keyProviders } from "../crypto/keys.js";
import { type Failpoint, type FileIO, nodeFileIO } from "../platform/io.js";
import { type EngineHooks, NO_HOOKS } from "./hooks.js";

export interface EngineOptions {
  dir: string;
  /**
   * The master key: a provider from `keys` (raw 32 bytes, passphrase, external function), or 32 raw bytes.
   * Required unless `encryption` is `"none"`.
   */
  key?: Uint8Array | KeyProvider;
  /** `"records"` never derives the keys of sensitive fields (inspection tools). Default `"all"`. */
  keyScope?: KeyScope;
  encryption?: "xchacha20poly1305" | "none";
  /**
   * `"full"` (default): a write resolves after fdatasync. `"relaxed"`: after write(2); fdatasync at most
   * `relaxedSyncMs` after the oldest unsynced write (in the flush that finds it that old, or on a timer).
   */
  durability?: "full" | "relaxed";
  relaxedSyncMs?: number;
  /** What to do when damage (other than a torn final frame) is found at open. Default `"quarantine"`. */
  onCorruption?: "quarantine" | "refuse";
  /**
   * Budget for decoded frames and blocks kept in memory (plaintext bytes). Default 64 MiB. The engine's
   * cache also holds the store's decoded records (`recordCacheBytes`): both share one budget of the sum.
   */
  blockCacheBytes?: number;
  /** What the store adds to the shared cache budget for its decoded records (default 0; `openStore` passes its `cacheBytes`). */
  recordCacheBytes?: number;
  /**
   * Compress segment blocks (default true). Journal commit frames are compressed only with
   * `compressJournal` (default false): deflate cost ~7 µs per record on the commit path, the journal is
   * short-lived, and compaction compresses everything it keeps.
   */
  compression?: boolean;
  /** Also compress journal commit groups of at least 4 KiB. Default false. */
  compressJournal?: boolean;
  /** Automatic compaction thresholds; set `auto: false` to compact only on demand. */
  compaction?: { auto?: boolean; minDeadBytes?: number; maxJournalBytes?: number };
  /** Verify every segment block's checksum at open (default true). */
  /**
   * Check every segment block's checksum: `"background"` (default) right after open, a block at a time
   * between other work; `true` before open returns (damage is in the recovery report at once, at the cost
   * of reading the whole segment: ~20 ms per 20 MB here); `false` never (blocks are still checked,
   * crc and seal, whenever they are read).
   */
  verifyOnOpen?: boolean | "background";
  /**
   * Open an existing store without changing any of its files (`redactSensitive` stores, inspection): no
   * write, compaction, key change, key retirement, leftover removal, torn-tail cut, quarantine copy or
   * journal creation; damage is reported only. A missing store is refused. Default false.
   */
  readOnly?: boolean;
  /**
   * Refuse (`E_QUOTA`, nothing written) a write or batch that would take the store's data files (segment and
   * journals, counted up to each journal's last frame; dead bytes included until a compaction frees them)
   * past `maxBytes`. A write of deletes only is always allowed, and so are compaction and cleanup. Default: none.
   * Example: `quota: { maxBytes: 512 * 1024 * 1024 }`.
   */
  quota?: { maxBytes: number };
  io?: FileIO;
  /** Called at each named crash window (tests crash or fail the store there). */
  failpoint?: (name: Failpoint) => void;
  /** What the engine tells an observer (commit groups, compactions, backups: hooks.ts). Default none. */
  hooks?: EngineHooks;
}

/** The options as the engine's jobs read them: every default filled in. */
export type ResolvedOptions = Required<Omit<EngineOptions, "key" | "keyScope" | "io" | "failpoint" | "compaction" | "dir" | "quota">> & {
  compaction: { auto: boolean; minDeadBytes: number; maxJournalBytes: number };
  /** `Infinity` without a quota. */
  quota: { maxBytes: number };
};

/** Check `options` (throws `E_USAGE` or `E_KEY`) and fill in their defaults. Touches no file. */
export function resolveOptions(options: EngineOptions): {
  io: FileIO;
  fp: (name: Failpoint) => void;
  provider: KeyProvider | null;
  opts: ResolvedOptions;
} {
  const io = options.io ?? nodeFileIO();
  const fp = options.failpoint ?? (() => {});
  const encryption = options.encryption ?? "xchacha20poly1305";
  if (encryption !== "none" && encryption !== "xchacha20poly1305") throw new UsageError(`unknown \`encryption\` \`${String(encryption)}\``);
  if (encryption === "none" && options.key) throw new UsageError("`key` was given with `encryption: \"none\"`; choose one");
  if (encryption !== "none" && !options.key) {
    throw new KeyError('no key configured: pass `key` (a provider from `keys`, or 32 bytes) or `encryption: "none"` for a plaintext store');
  }
  const provider: KeyProvider | null = !options.key ? null : options.key instanceof Uint8Array ? keyProviders.raw(options.key) : options.key;
  if (provider && provider.kind !== "raw" && provider.kind !== "passphrase" && provider.kind !== "external") {
    throw new UsageError("`key` must be 32 bytes or a provider from `keys.raw`, `keys.passphrase` or `keys.external`");
  }
  const maxBytes = options.quota?.maxBytes ?? Infinity;
  if (options.quota !== undefined && (typeof maxBytes !== "number" || !(maxBytes > 0))) {
    throw new UsageError("`quota.maxBytes` must be a positive number of bytes");
  }
  const opts = {
    encryption,
    durability: options.durability ?? "full",
    relaxedSyncMs: options.relaxedSyncMs ?? 100,
    onCorruption: options.onCorruption ?? "quarantine",
    blockCacheBytes: options.blockCacheBytes ?? 64 * 1024 * 1024,
    recordCacheBytes: options.recordCacheBytes ?? 0,
    compression: options.compression ?? true,
    compressJournal: options.compressJournal ?? false,
    verifyOnOpen: options.verifyOnOpen ?? "background",
    readOnly: options.readOnly ?? false,
    compaction: {
      auto: options.compaction?.auto ?? true,
      minDeadBytes: options.compaction?.minDeadBytes ?? 4 * 1024 * 1024,
      maxJournalBytes: options.compaction?.maxJournalBytes ?? 64 * 1024 * 1024,
    },
    quota: { maxBytes },
    hooks: options.hooks ?? NO_HOOKS,
  } as const;
  return { io, fp, provider, opts };
}
