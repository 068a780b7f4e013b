/**
 * Key management on an open store (docs/FORMAT.md, "Keyring"): key info, rotation, re-encryption (a compaction
 * that destroys the older data keys) and master key change, for the store and for the copies of it that
 * Cellar made (pre-migration backups under `backups/`, which hold a keyring of their own). Called by the
 * `Engine` facade, and by compaction when it destroys data keys (`rekeyCopies`).
 */
import path from "node:path";
import { isCellarError, KeyError, UsageError } from "../errors.js";
import { BACKUPS_DIR, KEYRING_FILE, StorePaths } from "../format/filenames.js";
import { Keyring } from "../crypto/keyring.js";
import type { KeyProvider } from "../crypto/keys.js";
import { readOnlyError, type StoreState } from "./state.js";
import { loadPackedKeyrings, type PackedKeyring, rewrapPacked } from "./backup-rekey.js";

/** What re-keying needs of an engine opened on a copy of the store. */
export interface CopyEngine {
  rotateKey(): number;
  reencrypt(): Promise<number[]>;
  close(): Promise<void>;
}

export class KeyAdmin {
  constructor(
    private readonly state: StoreState,
    /**
     * Open a copy of this store that Cellar made (a pre-migration backup), under this store's master key, for
     * re-keying it: no automatic compaction, no background check, damage refused.
     */
    private readonly openCopy: (dir: string) => Promise<CopyEngine>,
  ) {}

  /** Key ids and master key kind, for `store.keyInfo()`. Never key material. */
  keyInfo(): { encrypted: boolean; activeKeyId: number; keyIds: number[]; masterKey: "raw" | "passphrase" | "external" | null } {
    const r = this.state.keyring;
    return { encrypted: r !== null, activeKeyId: r?.activeKeyId ?? 0, keyIds: r?.keyIds ?? [], masterKey: r?.kekKind ?? null };
  }

  private requireKeyring(): Keyring {
    this.state.checkOpen();
    if (!this.state.keyring) throw new UsageError('this store was created with `encryption: "none"`: it has no keys to rotate or rewrap');
    return this.state.keyring;
  }

  /** The keyring, for changing keys: refused in a records-only scope (`redactSensitive`), which is read-only. */
  private requireFullKeyring(): Keyring {
    this.state.checkOpen();
    if (this.state.opts.readOnly) throw readOnlyError();
    const ring = this.requireKeyring();
    if (ring.scope !== "all") throw new UsageError("this store was opened with `redactSensitive`: it cannot rotate or rewrap keys");
    return ring;
  }

  /**
   * Make a new random data key the active one: writes from now on use it. Records under older keys are
   * re-encrypted by the next compaction (`reencrypt()` runs one now), after which the old keys are destroyed.
   */
  rotateKey(): number {
    const ring = this.requireFullKeyring();
    if (this.state.poisoned) throw this.state.poisoned;
    return ring.rotate();
  }

  /**
   * Re-encrypt every record under the active data key (a compaction) and destroy older data keys.
   * Resolves with the ids destroyed.
   */
  async reencrypt(compaction: { readonly compacting: Promise<void> | null; compact(): Promise<void> }): Promise<number[]> {
    const ring = this.requireFullKeyring();
    const before = ring.keyIds;
    // A compaction started before the rotation writes under the old key: wait for it, then run one more.
    if (compaction.compacting) await compaction.compacting.catch(() => {});
    // The compaction re-keys the store's copies when it destroys keys; with none to destroy here (a call
    // repeated after a crash or a failure), the copies are re-keyed anyway.
    if (ring.keyIds.some((id) => id < ring.activeKeyId)) await compaction.compact();
    else await this.rekeyCopies();
    return before.filter((id) => !ring.keyIds.includes(id));
  }

  /**
   * Rewrap the data keys under a new master key (one small file rewritten, whatever the store's size), and
   * those of every keyed copy of the store (legacy pre-migration directories) and of `backupFiles` (this
   * store's own store-key backup files, backup-rekey.ts): the old master key opens none of them after. Copies are rewrapped first and the store's keyring last, so a crash in between leaves copies
   * under the new key and the store under the old: the same call again (with the same new key) finishes.
   */
  async changeMasterKey(provider: KeyProvider, backupFiles: readonly string[] = []): Promise<void> {
    const ring = this.requireFullKeyring();
    if (this.state.poisoned) throw this.state.poisoned;
    // The new master key, derived once (Argon2id for a passphrase), in a keyring of its own.
    const next = await ring.withMasterKey(provider);
    const copies: Keyring[] = [];
    let packed: PackedKeyring[] = [];
    try {
      // This store's own backup files (backup-rekey.ts), each keyring opened before any file changes.
      packed = await loadPackedKeyrings(this.state, ring, next, backupFiles);
      // Every copy's keyring is opened before any file changes.
      for (const dir of this.keyedCopies()) {
        const paths = new StorePaths(dir);
        try {
          copies.push(await Keyring.load(this.state.io, paths, ring.unwrappedMasterKey(), "records", () => {}));
        } catch (e) {
          if (!isCellarError(e, "E_KEY")) throw e;
          // Rewrapped already by a call cut short (it opens with the new key), or not under this store's key.
          try {
            (await Keyring.load(this.state.io, paths, next.unwrappedMasterKey(), "records", () => {})).destroy();
          } catch (e2) {
            if (!isCellarError(e2, "E_KEY")) throw e2;
            throw new KeyError(`the keyring of \`${path.relative(this.state.dir, dir)}\` opens with neither the current master key nor the new one; nothing was changed`);
          }
        }
      }
      for (const copy of copies) copy.rewrapAs(next);
      for (const p of packed) await rewrapPacked(this.state, p, next);
      ring.rewrapAs(next);
    } finally {
      for (const p of packed) p.ring.destroy();
      for (const copy of copies) copy.destroy();
      next.destroy();
    }
  }

  /** The directories of this store's copies that hold a keyring (`backups/<name>/KEYRING`). */
  private keyedCopies(): string[] {
    const root = this.state.paths.file(BACKUPS_DIR);
    if (!this.state.io.exists(root)) return [];
    return this.state.io
      .readdir(root)
      .sort()
      .map((n) => path.join(root, n))
      .filter((d) => this.state.io.exists(path.join(d, KEYRING_FILE)));
  }

  /**
   * Re-encrypt every keyed copy under a fresh data key of its own and destroy its older ones, so that no
   * data key this store destroyed survives in a copy. A copy that cannot be re-keyed is reported (`onProblem`)
   * and named in the error; the others are still done.
   */
  async rekeyCopies(): Promise<void> {
    const failed: string[] = [];
    for (const dir of this.keyedCopies()) {
      let copy: CopyEngine | null = null;
      try {
        copy = await this.openCopy(dir);
        copy.rotateKey();
        await copy.reencrypt();
      } catch (e) {
        if (!isCellarError(e)) throw e;
        failed.push(path.relative(this.state.dir, dir));
        this.state.onProblem?.(e);
      } finally {
        await copy?.close();
      }
    }
    if (failed.length) {
      throw new KeyError(`the old data keys were destroyed in the store but not in ${failed.map((f) => `\`${f}\``).join(", ")} (see the \`error\` events); run \`reencrypt()\` again, or delete those copies`);
    }
  }
}
