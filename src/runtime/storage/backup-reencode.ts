/**
 * Re-encoded backups (docs/FORMAT.md, "Backup file"): a selective backup (`entities`) or one without the
 * keys of sensitive fields (`includeSensitive: false`) cannot be the store's files copied, so the selected
 * live records are written into one fresh segment, packed with a manifest naming it and a keyring, in the
 * same backup file format. The consistent point is taken as for a full backup (storage/backup.ts): in one
 * synchronous step, every selected entity's live keys and locations, and a read descriptor of our own on
 * every live file, from which the values are then read (a compaction retiring files meanwhile does not
 * disturb them). Without sensitive keys, the records are sealed under a fresh data key of the backup's
 * own, wrapped under Argon2id(password), and each record's sealed sensitive part is dropped (its fields
 * read as unset after a restore).
 */
import { AUDIT_ENTITY } from "../format/audit.js";
import fs from "node:fs";
import path from "node:path";
import { CorruptionError, UsageError } from "../errors.js";
import { BackupKeyKind, decodeBackupHeader, encodeBackupHeader } from "../format/backup-file.js";
import { journalName, KEYRING_FILE, MANIFEST_FILE, segmentName, StorePaths } from "../format/filenames.js";
import { HISTORY_ENTITY_PREFIX, INDEXES_ENTITY, MAX_FRAME_PAYLOAD } from "../format/format.js";
import { decodeFrame, FrameError } from "../format/frame.js";
import type { Loc } from "../format/location.js";
import { blockRecordIs, type BlockRecord } from "../format/records.js";
import { compareUtf8 } from "../format/segment-index.js";
import { keys } from "../crypto/keys.js";
import { Keyring } from "../crypto/keyring.js";
import { parseEnvelope, recordAd, ValueKind } from "../crypto/value.js";
import { type BackupInfo, type BackupOptions, backupInfo, checkBackupOptions, type Part, writePacked } from "./backup.js";
import { encodeManifestFile } from "./manifest.js";
import { readBlock, writeSegment } from "./segment.js";
import type { StoreState } from "./state.js";


/**
 * Whether engine entity `name` is selected (`~history:E` goes with `E`; `~indexes` always: it says which index
 * terms the records hold, and a restored store without it would check them all again at open).
 */
function selector(sel: BackupOptions["entities"]): (name: string) => boolean {
  const include = sel?.include ? new Set(sel.include) : null;
  const exclude = new Set(sel?.exclude ?? []);
  return (name) => {
    if (name === INDEXES_ENTITY) return true;
    const base = name.startsWith(HISTORY_ENTITY_PREFIX) ? name.slice(HISTORY_ENTITY_PREFIX.length) : name;
    return (!include || include.has(base)) && !exclude.has(base);
  };
}

type Own = Map<number, { fd: number; bound: Uint8Array; kind: "journal" | "segment" }>;

/** Read the value at `loc` through our own descriptors, with the checks `Reads.read` makes (last frame kept). */
function ownReader(s: StoreState, own: Own) {
  let lastKey = "";
  let last: { plain: Uint8Array; keyId: number; block: boolean } | null = null;
  return (entity: string, loc: Loc): Uint8Array => {
    const f = own.get(loc.file);
    const name = path.basename(f?.kind === "segment" ? s.paths.segment(loc.file) : s.paths.journal(loc.file));
    if (!f) throw new CorruptionError(name, loc.frameOffset, "file missing");
    const k = `${entity}/${loc.file}/${loc.frameOffset}`;
    try {
      if (k !== lastKey || !last) {
        if (f.kind === "segment") {
          last = { plain: readBlock(s.io, f, { offset: loc.frameOffset, frameLength: loc.frameLength }, loc.seq, (id) => s.keyring?.record(id, entity) ?? null, s.manifest.encrypted), keyId: 0, block: true };
        } else {
          const frame = Buffer.allocUnsafe(loc.frameLength);
          if (s.io.read(f.fd, frame, loc.frameOffset) !== frame.length) throw new FrameError("bad record length", "short read");
          const { header, plaintext } = decodeFrame(frame, f.bound, s.metaKeys, s.manifest.encrypted, MAX_FRAME_PAYLOAD, true);
          if (header.seq !== loc.seq) throw new FrameError("unexpected sequence");
          last = { plain: plaintext, keyId: header.keyId, block: false };
        }
        lastKey = k;
      }
    } catch (e) {
      if (e instanceof FrameError) throw new CorruptionError(name, loc.frameOffset, e.message);
      throw e;
    }
    const value = last.plain.subarray(loc.start, loc.start + loc.length);
    if (loc.start + loc.length > last.plain.length || (last.block && !blockRecordIs(last.plain, loc.start, loc.key, loc.version, loc.length))) {
      throw new CorruptionError(name, loc.frameOffset, "bad payload (the record at this place is not the one the index names)");
    }
    if (last.keyId === 0) return value.slice();
    const sealer = s.keyring?.record(last.keyId, entity);
    if (!sealer) throw new CorruptionError(name, loc.frameOffset, `missing key (key id ${last.keyId})`);
    return sealer.open(value, recordAd(s.manifest.storeId, loc.version, loc.key));
  };
}

/** The entries of `all` whose key is in `keys`. */
function pick(all: { keys: string[]; locs: Loc[] }, keys: ReadonlySet<string>): { keys: string[]; locs: Loc[] } {
  const out: { keys: string[]; locs: Loc[] } = { keys: [], locs: [] };
  for (let i = 0; i < all.keys.length; i++) {
    if (!keys.has(all.keys[i]!)) continue;
    out.keys.push(all.keys[i]!);
    out.locs.push(all.locs[i]!);
  }
  return out;
}

/** A value without its sealed sensitive part (`0x00 ‖ public`). */
function withoutSensitive(v: Uint8Array): Uint8Array {
  if (v[0] !== ValueKind.sensitive) return v;
  const env = parseEnvelope(v);
  const out = new Uint8Array(1 + env.public.length);
  out[0] = ValueKind.plain;
  out.set(env.public, 1);
  return out;
}

/**
 * `only` (an archive, typed/archive.ts): back up just these entities and, of each, just these keys (those
 * still live at the consistent point); `options.entities` is then ignored.
 */
export async function writeReencodedBackup(s: StoreState, options: BackupOptions, only?: ReadonlyMap<string, ReadonlySet<string>>): Promise<BackupInfo> {
  const label = checkBackupOptions(s, options);
  const ring = s.keyring;
  const dropSensitive = options.includeSensitive === false;
  if (dropSensitive && options.password === undefined) throw new UsageError("`includeSensitive: false` needs a `password`: the backup gets data keys of its own, wrapped under it");
  const pass = options.password !== undefined ? keys.passphrase(options.password, options.passwordCost) : null;
  const under = pass && !dropSensitive ? await ring!.withMasterKey(pass) : null;

  // The consistent point: one synchronous step.
  s.checkOpen();
  const chosen = only ? (name: string) => only.has(name) : selector(options.entities);
  // Without the sensitive keys the backup has a keyring of its own, without the audit root: the log stays out.
  const selected = (name: string) => chosen(name) && !(dropSensitive && name === AUDIT_ENTITY);
  const snapshot = [...s.entities]
    .filter(([name]) => selected(name))
    .sort((a, b) => compareUtf8(a[0], b[0]))
    .map(([entity, ks]) => ({ entity, ...(only ? pick(ks.sortedEntries(), only.get(entity)!) : ks.sortedEntries()) }));
  const versions = new Map([...s.manifest.entities].filter(([n]) => selected(n)));
  const keyring = ring && !dropSensitive ? (under ? ring.encodeUnder(under) : s.io.readFile(s.paths.keyring)) : null;
  under?.destroy();
  const own: Own = new Map();
  try {
    for (const [n, f] of s.files) own.set(n, { fd: s.io.open(s.paths.file(f.kind === "segment" ? segmentName(n) : journalName(n)), "r"), bound: f.bound, kind: f.kind });
  } catch (e) {
    for (const o of own.values()) s.io.close(o.fd);
    throw e;
  }
  const parent = path.dirname(path.resolve(options.to));
  const prefix = `.${path.basename(options.to)}.parts-`;
  // Left by a backup to the same file that was killed: removed before a new one.
  if (fs.existsSync(parent)) for (const n of fs.readdirSync(parent)) if (n.startsWith(prefix)) fs.rmSync(path.join(parent, n), { recursive: true, force: true });
  s.io.mkdirp(parent);
  const staging = fs.mkdtempSync(path.join(parent, prefix));
  let fresh: Keyring | null = null;
  let segFd: number | null = null;
  try {
    // Without sensitive keys: a keyring of the backup's own (data key 1, random), under the password.
    if (dropSensitive) fresh = await Keyring.create(s.io, new StorePaths(staging), s.manifest.storeId, pass!, "all", () => {});
    const keyId = fresh ? 1 : ring ? ring.activeKeyId : 0;
    const sealing = fresh ?? ring;
    const read = ownReader(s, own);
    const segPath = path.join(staging, segmentName(1));
    const written = snapshot.some((p) => p.keys.length)
      ? await writeSegment(
          s.io,
          `${segPath}.tmp`,
          segPath,
          1,
          s.manifest.storeId,
          sealing ? { meta: sealing.meta(keyId), record: (entity) => sealing.record(keyId, entity) } : null,
          snapshot.map((p) => ({
            entity: p.entity,
            records: (async function* (): AsyncGenerator<BlockRecord> {
              for (let i = 0; i < p.keys.length; i++) {
                const loc = p.locs[i]!;
                const v = read(p.entity, loc);
                yield { key: p.keys[i]!, version: loc.version, value: dropSensitive ? withoutSensitive(v) : v, terms: loc.terms };
                if (i % 256 === 255) await new Promise<void>((r) => setImmediate(r));
              }
            })(),
          })),
          () => {},
          () => new Promise<void>((r) => setImmediate(r)),
          s.opts.compression,
        )
      : null;
    const manifest = encodeManifestFile(
      // keyFloor: the lowest data key the keyring holds, so that none is destroyed at open (sensitive parts
      // keep the data key they were sealed under).
      { storeId: s.manifest.storeId, generation: 1, journalStart: 2, nextFile: 2, seqFloor: 0, segments: written ? [1] : [], encrypted: ring !== null, keyFloor: fresh ? 1 : ring ? Math.min(...ring.keyIds) : 0, entities: versions },
      sealing ? sealing.meta(keyId) : null,
    );
    const parts: Part[] = [{ name: MANIFEST_FILE, length: manifest.length, bytes: manifest }];
    const ringBytes = fresh ? s.io.readFile(path.join(staging, KEYRING_FILE)) : keyring;
    if (ringBytes) parts.push({ name: KEYRING_FILE, length: ringBytes.length, bytes: ringBytes });
    if (written) {
      segFd = s.io.open(segPath, "r");
      parts.push({ name: segmentName(1), length: written.size, fd: segFd, copy: written.size, extra: new Uint8Array(0) });
    }
    const header = encodeBackupHeader({
      keyKind: !ring ? BackupKeyKind.none : pass ? BackupKeyKind.password : BackupKeyKind.store,
      createdAt: Date.now(),
      storeId: s.manifest.storeId,
      label,
      entities: [...new Set([...snapshot.map((p) => p.entity), ...versions.keys()])]
        .sort(compareUtf8)
        .map((name) => ({ name, version: versions.get(name) ?? 0, records: snapshot.find((p) => p.entity === name)?.keys.length ?? 0 })),
      files: parts.map((p) => ({ name: p.name, length: p.length })),
    });
    const total = header.length + parts.reduce((n, p) => n + p.length, 0) + 4;
    await writePacked(s.io, options.to, header, parts, total, options.onProgress ?? (() => {}), s.fp);
    return backupInfo(options.to, decodeBackupHeader(header), total);
  } finally {
    if (segFd !== null) s.io.close(segFd);
    for (const o of own.values()) s.io.close(o.fd);
    fresh?.destroy();
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
