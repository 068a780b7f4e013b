/**
 * Compaction: every live record rewritten into one new segment, the old journals and segment retired
 * (docs/FORMAT.md, "Crash windows": "Compaction"); with a `Rewrite`, the schema migration that rides on it
 * ("Migration"). `maybeCompact` starts one when dead space or journal size pass their thresholds (after each
 * commit) or when open or the background check found damage; `compact` and `rewrite` are the `Engine`
 * facade's. Reads records through reads.ts; re-keys the store's copies through key-admin.ts when it
 * destroys data keys.
 */
import { CorruptionError, isCellarError, StoreClosedError, UsageError } from "../errors.js";
import { FILE_HEADER_SIZE } from "../format/format.js";
import type { Loc } from "../format/location.js";
import type { BlockRecord } from "../format/records.js";
import { compareUtf8 } from "../format/segment-index.js";
import type { Keyring } from "../crypto/keyring.js";
import { resealValue, type SensitiveKeys } from "../crypto/value.js";
import { JournalWriter } from "./journal-writer.js";
import type { KeyAdmin } from "./key-admin.js";
import { type Manifest, writeManifest } from "./manifest.js";
import { attachPages, type Reads } from "./reads.js";
import { type SegmentInput, type WrittenSegment, writeSegment } from "./segment.js";
import { type DamageReport, frameKey, readOnlyError, type StoreState } from "./state.js";
import { overdue, sortInSlices, turn } from "../platform/turn.js";

/** A record transformation applied by {@link Compaction.rewrite}: plaintext value in, the new record out. */
export interface Rewrite {
  /**
   * New schema version of each entity whose records go through `transform`; its records already at that
   * version are copied as they are.
   */
  versions: ReadonlyMap<string, number>;
  transform(
    entity: string,
    key: string,
    version: number,
    value: Uint8Array,
  ): Promise<{ version: number; value: Uint8Array; terms: readonly string[] }>;
  /**
   * Records to merge in (an import, typed/import.ts): per entity, the records (once ready) in strictly
   * ascending UTF-8 key order, each replacing the live record of its key. Values are record values as the
   * typed layer encodes them (sensitive parts sealed under this store's keys). They land in the new segment,
   * so they become live with the same manifest rename as the rest. Not with `versions` (a rewrite migrates
   * or merges records in, not both): the records are merged without an await per record.
   */
  extra?: ReadonlyMap<string, () => Promise<Iterable<BlockRecord>>>;
  /** Entities whose live records are all dropped: afterwards they hold exactly their `extra` records. */
  replace?: ReadonlySet<string>;
  /**
   * Compress the new segment's blocks (default: the store's `compression`). An import passes false: its
   * records land uncompressed, as a bulk load's do in the journal, and the next compaction compresses them.
   */
  compress?: boolean;
  /** Called synchronously once the new segment is installed (before any other code runs): drop caches of changed records. */
  onInstalled?: () => void;
}

/** What compaction copies: each entity's live keys (UTF-8 order) and their locations, and records merged in. */
type Reseal = (entity: string, key: string, version: number, value: Uint8Array) => Uint8Array;

type Snapshot = { entity: string; keys: string[]; locs: Loc[]; extra?: () => Promise<Iterable<BlockRecord>> }[];

export class Compaction {
  /** The compaction running, if any. */
  compacting: Promise<void> | null = null;
  /** The compaction running merges records in (`Rewrite.extra`, an import): they replace live ones when it ends. */
  merging = false;

  constructor(
    private readonly state: StoreState,
    private readonly reads: Reads,
    private readonly keyAdmin: KeyAdmin,
  ) {}

  maybeCompact(force: boolean): void {
    if (this.compacting || this.state.closed || this.state.poisoned || this.state.opts.readOnly) return;
    const c = this.state.opts.compaction;
    if (!force) {
      if (!c.auto) return;
      const { deadBytes, fileBytes, journalBytes } = this.state.stats();
      const wantDead = deadBytes >= c.minDeadBytes && deadBytes * 2 >= fileBytes;
      const wantJournal = journalBytes >= c.maxJournalBytes;
      if (!wantDead && !wantJournal) return;
    }
    this.compact().catch((e: unknown) => {
      if (isCellarError(e)) this.state.onProblem?.(e);
    });
  }

  /**
   * Rewrite every live record into one new segment and retire the old files.
   * Reads and writes go on meanwhile; a crash at any step leaves the old state or the new one.
   */
  compact(): Promise<void> {
    if (this.state.closed) return Promise.reject(new StoreClosedError());
    if (this.state.opts.readOnly) return Promise.reject(readOnlyError());
    if (this.compacting) return this.compacting;
    this.compacting = this.observedRun().finally(() => {
      this.compacting = null;
    });
    return this.compacting;
  }

  /**
   * A compaction that passes every live record of the entities in `rewrite.versions` through
   * `rewrite.transform` (schema migration) and records those entities' new schema versions in the same
   * manifest write: the switch to migrated records is one atomic rename. If `transform` throws, the new
   * segment is removed and the store stays exactly as it was (its new, empty journal aside).
   */
  async rewrite(rewrite: Rewrite): Promise<void> {
    this.state.checkOpen();
    if (this.state.opts.readOnly) throw readOnlyError();
    if (rewrite.extra && rewrite.versions.size) throw new UsageError("a rewrite migrates records or merges records in, not both");
    while (this.compacting) await this.compacting.catch(() => {});
    const before = this.state.journal;
    this.merging = rewrite.extra !== undefined;
    const run = this.observedRun(rewrite);
    const tracked = run.finally(() => {
      this.compacting = null;
      this.merging = false;
    });
    tracked.catch(() => {}); // the caller gets the failure from `run`
    this.compacting = tracked;
    try {
      await run;
    } catch (e) {
      // Nothing was written since (a rewrite runs at open, before the store is handed out): drop the
      // empty journal the rotation created, so that the store's files are exactly what they were.
      const j = this.state.journal;
      if (j !== before && j.tail === FILE_HEADER_SIZE && this.state.manifest.journalStart <= before.number) {
        this.state.journal = before;
        const f = this.state.files.get(j.number);
        this.state.files.delete(j.number);
        if (f) this.state.io.close(f.fd);
        this.state.io.unlink(this.state.paths.journal(j.number));
        this.state.io.syncDir(this.state.paths.dir);
      }
      throw e;
    }
  }

  /** `runCompaction`, told to the hooks (hooks.ts) when it starts and when it ends. */
  private async observedRun(rewrite?: Rewrite): Promise<void> {
    const hook = this.state.opts.hooks.compaction;
    if (!hook) return this.runCompaction(rewrite);
    const kind = rewrite?.extra ? "import" : rewrite?.versions.size ? "migration" : "compaction";
    const end = hook({ kind, bytesBefore: this.state.stats().fileBytes });
    try {
      await this.runCompaction(rewrite);
    } catch (e) {
      end({ error: e, result: null });
      throw e;
    }
    end({ error: null, result: { bytesAfter: this.state.stats().fileBytes } });
  }

  private async runCompaction(rewrite?: Rewrite): Promise<void> {
    const s = this.state;
    const io = s.io;
    // A commit whose fdatasync runs aside (commit.ts) is indexed when it ends: the rotation comes after it, and
    // after the journal's zero fill ahead (the new journal starts as large as the old one ends up).
    while (s.syncing || s.journal.filling) await (s.syncing ?? s.journal.settled());
    s.checkOpen();
    // 1. Rotate: new writes go to a fresh journal; the old files become read-only input.
    const { newJ, oldFiles, seqFloor, ring, keyId } = this.rotate();

    // 2. Snapshot of everything that lives in the old files, sorted in UTF-8 byte order (segment order).
    const snapshot = await this.snapshot(rewrite);
    const segNo = s.manifest.nextFile++;
    const lost: DamageReport[] = [];
    let written: WrittenSegment | null = null;
    if (snapshot.length) {
      written = await this.writeSnapshot(segNo, snapshot, ring, keyId, lost, rewrite);
      s.fp("compaction.beforeDirSync");
      io.syncDir(s.paths.dir);
    }
    // Writes waiting since the segment was started go through before the switch (they land in the new journal).
    await new Promise<void>((r) => setImmediate(r));
    if (s.closed) throw new StoreClosedError();
    // 3. Switch the manifest.
    const next: Manifest = {
      ...s.manifest,
      generation: s.manifest.generation + 1,
      journalStart: newJ,
      seqFloor,
      segments: written ? [segNo] : [],
      keyFloor: keyId,
      entities: new Map([...s.manifest.entities, ...(rewrite?.versions ?? [])]),
    };
    s.fp("compaction.beforeManifestRename");
    writeManifest(io, s.paths, next, s.metaSealer(), s.fp);
    s.manifest = next;
    s.fp("compaction.afterManifestRename");

    // 4. The new segment holds every record of the retired files: fold the overlays onto it.
    // Entities whose records' terms may differ from what the keyspaces hold: merged in, migrated, or lost.
    const changed = new Set([...(rewrite?.extra?.keys() ?? []), ...(rewrite?.versions.keys() ?? []), ...lost.flatMap((d) => d.records.map((r) => r.entity))]);
    this.install(segNo, written, oldFiles, rewrite?.extra, changed);
    rewrite?.onInstalled?.();
    // 5. Retire the old files; damaged ones are copied to quarantine/ first, and the loss is announced.
    this.retire(oldFiles, lost);
    // 6. Destroy data keys no live file uses (rotation): the keyring is rewritten without them, then the
    // store's copies are re-keyed so that the old keys survive nowhere.
    if (ring) {
      s.fp("compaction.beforeKeyRetire");
      if (ring.retireBelow(keyId).length) await this.keyAdmin.rekeyCopies();
    }
  }

  /** Step 1: new writes go to a fresh journal; returns what the rest of the compaction needs of the old state. */
  private rotate(): { newJ: number; oldFiles: number[]; seqFloor: number; ring: Keyring | null; keyId: number } {
    const s = this.state;
    const io = s.io;
    const newJ = s.manifest.nextFile++;
    const writer = JournalWriter.create(io, s.paths.journal(newJ), newJ, s.manifest.storeId, s.lastSeq, s.journal);
    io.syncDir(s.paths.dir);
    const oldFiles = [...s.files.keys()];
    s.journal = writer;
    s.files.set(newJ, { fd: writer.fd, bound: writer.bound, kind: "journal", size: writer.tail, plainTotal: 0, plainLive: 0 });
    const seqFloor = s.lastSeq;
    // Every frame written from here on (new journal, new segment) uses this data key or a later one:
    // once the manifest names only those files, older data keys protect nothing and are destroyed.
    const ring = s.keyring;
    const keyId = ring ? ring.activeKeyId : 0;
    s.fp("compaction.afterRotate");
    return { newJ, oldFiles, seqFloor, ring, keyId };
  }

  /**
   * Step 2: every entity's live keys and their locations, entities in UTF-8 byte order (segment order), read
   * by the keyspace's scan a slice at a time with turns of the event loop between (the overlay sorted in
   * slices first). Writes go on meanwhile, into the new journal: a record a slice reads from it (written
   * after the rotation) is copied too, and stays shadowed by that journal's entry, which replay applies
   * after the segment; a key deleted before its slice is read is left out, and its tombstone in the new
   * journal stays. Either way the new segment plus the new journal is the live state (FORMAT.md,
   * "Compaction").
   */
  private async snapshot(rewrite?: Rewrite): Promise<Snapshot> {
    const snapshot: Snapshot = [];
    const names = new Set([...this.state.entities.keys(), ...(rewrite?.extra?.keys() ?? [])]);
    for (const entity of [...names].sort(compareUtf8)) {
      const ks = this.state.entities.get(entity);
      const keys: string[] = [];
      const locs: Loc[] = [];
      if (ks && !rewrite?.replace?.has(entity)) {
        await ks.orderOverlay();
        let after: string | undefined;
        for (let more = true; more; ) {
          if (overdue()) await turn();
          this.state.checkOpen();
          more = false;
          for (const [k, loc] of ks.scan(after)) {
            keys.push(k);
            locs.push(loc);
            after = k;
            if (overdue()) {
              more = true;
              break;
            }
          }
        }
      }
      const extra = rewrite?.extra?.get(entity);
      if (keys.length || extra) snapshot.push({ entity, keys, locs, ...(extra ? { extra } : {}) });
    }
    return snapshot;
  }

  /**
   * Step 2, continued: write the snapshot's records into segment `segNo`, through `rewrite.transform` for the
   * entities it migrates, resealing sensitive parts under the active data key. Records that cannot be read
   * are left out and reported in `lost`.
   */
  private writeSnapshot(
    segNo: number,
    snapshot: Snapshot,
    ring: Keyring | null,
    keyId: number,
    lost: DamageReport[],
    rewrite: Rewrite | undefined,
  ): Promise<WrittenSegment> {
    const s = this.state;
    const keys = ring ? this.sensitiveKeys(keyId) : null;
    // Sensitive parts sealed under an older data key move to the current one (rotation).
    const reseal = (entity: string, key: string, version: number, value: Uint8Array) => (keys ? resealValue(value, entity, key, version, keys) : value);
    return writeSegment(
      s.io,
      s.paths.segmentTemp(segNo),
      s.paths.segment(segNo),
      segNo,
      s.manifest.storeId,
      ring ? { meta: ring.meta(keyId), record: (entity) => ring.record(keyId, entity) } : null,
      snapshot.map((part) => {
        const target = rewrite?.versions.get(part.entity);
        return target === undefined ? this.copied(part, lost, reseal) : this.migrated(part, target, rewrite!, lost, reseal);
      }),
      s.fp,
      turn,
      rewrite?.compress ?? s.opts.compression,
    );
  }

  /**
   * An entity's live records as they are, with the records merged in (import): its values are read first
   * (`prepare`, in file order), then handed out without an await per record.
   */
  private copied(part: Snapshot[number], lost: DamageReport[], reseal: Reseal): SegmentInput {
    let values: (Uint8Array | undefined)[] = [];
    let extra: Iterable<BlockRecord> | undefined;
    return {
      entity: part.entity,
      prepare: async () => {
        values = await this.readInFileOrder(part.entity, part.locs, lost);
        extra = await part.extra?.();
      },
      records: (function* (): Generator<BlockRecord> {
        // Records merged in go before the stored keys above them, and in place of the stored record of the same key.
        const more = extra?.[Symbol.iterator]();
        let next = more?.next();
        let prev: string | undefined;
        const merged = function* (upTo: string | undefined): Generator<BlockRecord> {
          while (next && !next.done && (upTo === undefined || compareUtf8(next.value.key, upTo) <= 0)) {
            const r = next.value;
            if (prev !== undefined && compareUtf8(prev, r.key) >= 0) throw new Error(`records merged into \`${part.entity}\` are not in ascending key order`);
            prev = r.key;
            yield { key: r.key, version: r.version, value: reseal(part.entity, r.key, r.version, r.value), terms: r.terms };
            next = more!.next();
          }
        };
        for (let i = 0; i < part.keys.length; i++) {
          const key = part.keys[i]!;
          if (more) {
            yield* merged(key);
            if (prev === key) {
              values[i] = undefined;
              continue; // replaced by the record merged in
            }
          }
          const value = values[i];
          if (value === undefined) continue; // damaged: reported in `lost`
          const loc = part.locs[i]!;
          yield { key, version: loc.version, value: reseal(part.entity, key, loc.version, value), terms: loc.terms };
          values[i] = undefined;
        }
        if (more) yield* merged(undefined);
      })(),
    };
  }

  /** An entity's live records, those at another version than `target` through `rewrite.transform`. */
  private migrated(part: Snapshot[number], target: number, rewrite: Rewrite, lost: DamageReport[], reseal: Reseal): SegmentInput {
    const self = this;
    return {
      entity: part.entity,
      records: (async function* (): AsyncGenerator<BlockRecord> {
        const values = await self.readInFileOrder(part.entity, part.locs, lost);
        for (let i = 0; i < part.keys.length; i++) {
          const value = values[i];
          if (value === undefined) continue; // damaged: reported in `lost`
          const loc = part.locs[i]!;
          const key = part.keys[i]!;
          if (loc.version !== target) yield { key, ...(await rewrite.transform(part.entity, key, loc.version, value)) };
          else yield { key, version: loc.version, value: reseal(part.entity, key, loc.version, value), terms: loc.terms };
          values[i] = undefined;
        }
      })(),
    };
  }

  /** Step 4: open the new segment (if any) and fold every keyspace's overlay onto it. */
  private install(segNo: number, written: WrittenSegment | null, oldFiles: readonly number[], extra: ReadonlyMap<string, unknown> | undefined, changed: ReadonlySet<string>): void {
    const s = this.state;
    const retired = new Set(oldFiles);
    if (written) {
      const segFd = s.io.open(s.paths.segment(segNo), "r");
      s.files.set(segNo, {
        fd: segFd,
        bound: written.bound,
        kind: "segment",
        size: written.size,
        plainTotal: written.index.valueBytes,
        plainLive: 0,
      });
    }
    s.segment = written ? written.index : null;
    if (written) attachPages(s, written.index);
    // Entities merged in (import) get a keyspace if they had none; the `changed` ones' index terms are read afresh.
    for (const entity of extra?.keys() ?? []) s.ks(entity);
    for (const [entity, ks] of s.entities) ks.rebase(s.segment, retired, changed.has(entity));
  }

  /** Step 5: report what was lost (a copy of each damaged file in quarantine/ first), then delete the old files. */
  private retire(oldFiles: readonly number[], lost: readonly DamageReport[]): void {
    const s = this.state;
    const io = s.io;
    for (const d of lost) {
      d.quarantinedAs = s.keepCopy(d.file);
      s.recovery.damaged.push(d);
      s.onProblem?.(new CorruptionError(d.file, d.offset, `${d.reason}; ${d.records.length} record(s) lost, listed in the recovery report`));
    }
    s.fp("compaction.beforeDelete");
    for (const n of oldFiles) {
      const f = s.files.get(n)!;
      const file = f.kind === "segment" ? s.paths.segment(n) : s.paths.journal(n);
      io.close(f.fd);
      s.files.delete(n);
      io.unlink(file);
    }
    io.syncDir(s.paths.dir);
    // The old files' frames and blocks go; decoded records stay (their values did not change).
    s.cache.clearDefaultSpace();
    this.reads.forgetLastBlock();
    s.recount();
  }

  /** The sensitive-field keys as value.ts needs them, with `activeKeyId` the key compaction writes under. */
  private sensitiveKeys(activeKeyId: number): SensitiveKeys {
    const ring = this.state.keyring!;
    return { storeId: this.state.manifest.storeId, activeKeyId, sensitive: (id, entity) => ring.sensitive(id, entity) };
  }

  /**
   * Read the values at `locs` visiting frames in file order, each frame once, yielding to other work
   * between frames. Reading in key order instead made every record decrypt a whole (possibly 500 KiB) journal
   * frame once the block cache thrashed: minutes for a 100,000-record bulk load. Holds one entity's live
   * values in memory at a time.
   */
  private async readInFileOrder(entity: string, locs: readonly Loc[], lost: DamageReport[]): Promise<(Uint8Array | undefined)[]> {
    const order = await sortInSlices(
      locs.map((_, i) => i),
      (a, b) => {
        const x = locs[a]!;
        const y = locs[b]!;
        return x.file - y.file || x.frameOffset - y.frameOffset || x.start - y.start;
      },
    );
    const values: (Uint8Array | undefined)[] = new Array(locs.length);
    let lastFrame = -1;
    let bad: DamageReport | null = null;
    // Let waiting writes through before the first frame, however small the store: compaction never holds
    // the event loop from rotation to the end.
    await turn();
    for (const i of order) {
      const loc = locs[i]!;
      const frame = frameKey(loc.file, loc.frameOffset);
      if (frame !== lastFrame) {
        lastFrame = frame;
        bad = null;
        // A frame is opened whole by its first record's read (a bulk load's journal frame: ~0.5 MiB).
        if (overdue()) await turn();
        this.state.checkOpen();
      } else if (overdue()) {
        await turn();
        this.state.checkOpen();
      }
      if (bad) {
        bad.records.push({ entity, key: loc.key });
        continue;
      }
      try {
        values[i] = this.reads.read(entity, loc).slice(); // a copy: the frame's plaintext may leave the cache
      } catch (e) {
        // A frame that fails its checks here (authentication, after its crc passed at open) cannot be
        // copied: its records are left out of the new segment and reported, and compaction goes on.
        if (!isCellarError(e, "E_CORRUPT")) throw e;
        const c = e as CorruptionError;
        bad = { file: c.file, offset: c.offset, bytes: loc.frameLength, reason: c.reason, records: [{ entity, key: loc.key }], quarantinedAs: null };
        lost.push(bad);
      }
    }
    return values;
  }
}
