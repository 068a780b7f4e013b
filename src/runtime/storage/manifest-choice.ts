/**
 * Which files open believes (docs/FORMAT.md, "Manifest" and "Files the manifest does not name"): the choice
 * between `MANIFEST` and `MANIFEST.copy` (`selectManifest`), and the judgement of the data files the chosen
 * manifest does not name (`judgeLeftovers`). Both read and decide; neither changes a file. Called by the
 * engine's open and recovery, which acts on what they decide.
 */
import { type CellarError, CorruptionError, isCellarError, KeyError } from "../errors.js";
import { MANIFEST_COPY_FILE, MANIFEST_FILE, parseName, segmentName, type StorePaths } from "../format/filenames.js";
import { FILE_HEADER_SIZE, FileKind } from "../format/format.js";
import { decodeFileHeader, FrameError, type KeyLookup } from "../format/frame.js";
import type { Failpoint, FileIO } from "../platform/io.js";
import { Keyring, type KeyScope, type MasterKeySource } from "../crypto/keyring.js";
import { JournalWindow, scanJournalFile } from "./journal-reader.js";
import { type Manifest, peekManifest, readManifest } from "./manifest.js";
import { equalBytes } from "./segment.js";

/** A manifest copy or a file the manifest does not name, found at open: reported as damage, or refused. */
export interface Misfit {
  file: string;
  offset: number;
  bytes: number;
  /** For the recovery report (the store opened). */
  reason: string;
  /** For the error under `onCorruption: "refuse"` (nothing was changed). */
  refusal: string;
}

/** The manifest open goes by (docs/FORMAT.md, "Manifest"). */
export interface ManifestChoice {
  manifest: Manifest;
  /** Its file's bytes, written to both names when `rewrite`. */
  bytes: Uint8Array;
  /** What is wrong with the other copy, when that is damage (a crash window is not). */
  issue: Misfit | null;
  rewrite: boolean;
}

/**
 * Read `MANIFEST` and `MANIFEST.copy` and choose the manifest to open: of the copies that pass every check,
 * the one of the higher generation (`MANIFEST` on a tie). The other is rewritten unless byte-identical; it
 * is reported as damage when it is damaged, missing (beyond creation) or more than one generation older
 * (one generation older is the crash window between the two renames of a manifest write). Loads the
 * keyring of a sealed store on the way. Changes nothing.
 */
export async function selectManifest(
  io: FileIO,
  paths: StorePaths,
  provider: MasterKeySource | null,
  scope: KeyScope,
  fp: (name: Failpoint) => void,
  gotKeyring: (k: Keyring) => void,
): Promise<ManifestChoice> {
  interface Copy {
    name: string;
    bytes: Uint8Array | null;
    peek?: { storeId: Uint8Array; sealed: boolean };
    m?: Manifest;
    err?: CellarError;
  }
  const read = (name: string, file: string): Copy => ({ name, bytes: io.exists(file) ? io.readFile(file) : null });
  const copies: [Copy, Copy] = [read(MANIFEST_FILE, paths.manifest), read(MANIFEST_COPY_FILE, paths.manifestCopy)];
  const reasonOf = (c: Copy) => (c.err instanceof CorruptionError ? c.err.reason : c.bytes ? "authentication failed" : "file missing");
  /** Neither copy opens: the error of `MANIFEST` (or of the copy when `MANIFEST` is missing), naming both. */
  const neither = (): CellarError => {
    const [main, copy] = copies;
    const first = main.bytes ? main : copy;
    const e = first.err as CorruptionError;
    if (!main.bytes || !copy.bytes) return e; // one copy only (a store written before copies existed)
    return new CorruptionError(
      e.file,
      e.offset,
      `${e.reason}; \`${MANIFEST_COPY_FILE}\` is damaged too (${reasonOf(copy)}): the live files cannot be known without guessing; put back both from a backup of this store`,
    );
  };
  for (const c of copies) {
    if (!c.bytes) continue;
    try {
      c.peek = peekManifest(c.bytes, c.name);
    } catch (e) {
      if (!isCellarError(e, "E_CORRUPT")) throw e;
      c.err = e as CellarError;
    }
  }
  const peeked = copies.filter((c) => c.peek);
  if (!peeked.length) throw neither();
  const peek = peeked[0]!.peek!;
  if (peeked.length === 2 && (!equalBytes(peeked[1]!.peek!.storeId, peek.storeId) || peeked[1]!.peek!.sealed !== peek.sealed)) {
    throw new CorruptionError(MANIFEST_COPY_FILE, 8, `\`${MANIFEST_FILE}\` and \`${MANIFEST_COPY_FILE}\` belong to different stores: keep the one that belongs with the data files and move the other out of the directory`);
  }
  if (peek.sealed && !provider) {
    throw new KeyError('this store is encrypted: pass its `key` (opening it with `encryption: "none"` is refused)');
  }
  if (!peek.sealed && provider) {
    throw new KeyError('this store was created without encryption: open it with `encryption: "none"`');
  }
  let ring: Keyring | null = null;
  if (provider) {
    ring = await Keyring.load(io, paths, provider, scope, fp);
    gotKeyring(ring);
    if (!equalBytes(ring.storeId, peek.storeId)) throw new CorruptionError("KEYRING", 8, "the keyring belongs to another store");
  }
  const keys = ring;
  for (const c of peeked) {
    try {
      c.m = readManifest(c.bytes!, keys ? (id) => keys.meta(id) : null, c.name);
    } catch (e) {
      if (!isCellarError(e, "E_CORRUPT") && !isCellarError(e, "E_KEY")) throw e;
      c.err = e as CellarError;
    }
  }
  const valid = copies.filter((c) => c.m);
  if (!valid.length) throw copies.find((c) => c.err?.code === "E_KEY")?.err ?? neither();
  const pick = valid.length === 2 && valid[1]!.m!.generation > valid[0]!.m!.generation ? valid[1]! : valid[0]!;
  const other = pick === copies[0] ? copies[1] : copies[0];
  const g = pick.m!.generation;
  const opened = `opened from \`${pick.name}\` (generation ${g}), which is intact; \`${other.name}\` was rewritten from it`;
  const refusal = (why: string) => `${why}; \`${pick.name}\` (generation ${g}) is intact: open with \`onCorruption: "quarantine"\` to restore \`${other.name}\` from it`;
  let issue: Misfit | null = null;
  let rewrite = true;
  if (!other.bytes) {
    // A copy never written (a store from before copies existed, or a creation cut short) is not damage and is
    // left to the next manifest write (an open that fails, e.g. a migration, changes no file); a missing
    // `MANIFEST` beside a later generation is damage.
    if (other.name === MANIFEST_FILE && g > 1) issue = { file: other.name, offset: 0, bytes: 0, reason: `file missing; ${opened}`, refusal: refusal("file missing") };
    rewrite = other.name === MANIFEST_FILE;
  } else if (!other.m) {
    const offset = other.err instanceof CorruptionError ? other.err.offset : FILE_HEADER_SIZE;
    issue = { file: other.name, offset, bytes: other.bytes.length, reason: `${reasonOf(other)}; ${opened}`, refusal: refusal(reasonOf(other)) };
  } else if (other.m.generation < g - 1) {
    const why = `generation ${other.m.generation}, older than \`${pick.name}\` (generation ${g}): put back from an older copy of the store?`;
    issue = { file: other.name, offset: 0, bytes: other.bytes.length, reason: `${why}; ${opened}`, refusal: refusal(why) };
  } else {
    rewrite = !equalBytes(other.bytes, pick.bytes!);
  }
  return { manifest: pick.m!, bytes: pick.bytes!, issue, rewrite };
}

/**
 * Judge the data files manifest `m` does not name (docs/FORMAT.md, "Files the manifest does not name"):
 * which are provably this store's own leftovers (`remove`), which are kept aside in quarantine/ (`aside`),
 * and whether the data keys below `keyFloor` may be destroyed. Throws `E_CORRUPT` when `m` looks older than
 * the data files. Reads file headers, and the journals only when there is something to judge; changes nothing.
 */
export function judgeLeftovers(
  io: FileIO,
  paths: StorePaths,
  m: Manifest,
  journals: readonly number[],
  superseded: readonly string[],
  unnamed: readonly number[],
  keys: KeyLookup,
  o: { requireSealed: boolean; keysToRetire: boolean },
): { remove: string[]; aside: Misfit[]; retireKeys: boolean } {
  const out = { remove: [] as string[], aside: [] as Misfit[], retireKeys: false };
  if (!superseded.length && !unnamed.length && !o.keysToRetire) return out;
  /** Whether `name` has a sound header of this store, of `kind` and its number. */
  const ours = (name: string, kind: FileKind, number: number): boolean => {
    const head = new Uint8Array(FILE_HEADER_SIZE);
    let fd: number;
    try {
      fd = io.open(paths.file(name), "r");
    } catch (e) {
      if (isCellarError(e, "E_IO")) return false;
      throw e;
    }
    try {
      if (io.read(fd, head, 0) !== FILE_HEADER_SIZE) return false;
      const h = decodeFileHeader(head, kind);
      return h.fileNumber === number && equalBytes(h.storeId, m.storeId);
    } catch (e) {
      if (e instanceof FrameError) return false;
      throw e;
    } finally {
      io.close(fd);
    }
  };
  const sizeOf = (name: string): number => {
    const fd = io.open(paths.file(name), "r");
    try {
      return io.size(fd);
    } finally {
      io.close(fd);
    }
  };
  // 1. Does m account for the directory? Every segment it names is there, and replaying its journals
  //    starts where it says: at seq seqFloor + 1, in the first frame of the first journal holding any.
  const namedOk = m.segments.every((n) => ours(segmentName(n), FileKind.segment, n));
  const { facts, chainOk } = journalChain(io, paths, m, journals, keys, o.requireSealed);
  const consistent = namedOk && chainOk;
  out.retireKeys = o.keysToRetire && consistent;
  // 2. Segments numbered at or after m's nextFile were written after m. Deleted only when provably the output
  //    of a compaction that started from m and died before its manifest write: m accounts for the directory,
  //    the compaction's new journal (the number just below) is live, and m's state it copied was not empty.
  for (const s of unnamed) {
    const name = segmentName(s);
    if (!ours(name, FileKind.segment, s)) {
      const why = "not named by `MANIFEST` and not a segment of this store";
      out.aside.push({ file: name, offset: 0, bytes: sizeOf(name), reason: `${why}; moved to quarantine/`, refusal: `${why}: move it out of the store directory` });
      continue;
    }
    const fromM = consistent && facts.has(s - 1) && (m.segments.length > 0 || journals.some((j) => j < s - 1 && facts.get(j)?.frames));
    if (!fromM) {
      throw new CorruptionError(
        MANIFEST_FILE,
        0,
        `generation ${m.generation} does not name \`${name}\`, a segment of this store written after it, which is not provably a leftover of an unfinished compaction: the \`MANIFEST\` looks older than the data files (put back from a backup or by a sync tool?). Nothing was changed: put back the newest \`MANIFEST\`, or move \`${name}\` out of the store directory to open without its records`,
      );
    }
    if (journals.some((j) => j < s - 1 && facts.get(j)?.damage)) {
      // Its records may be the only good copy of those the damaged journal frames held.
      const why = "not named by `MANIFEST`: the output of an unfinished compaction, kept because the journals it was made from are damaged";
      out.aside.push({ file: name, offset: 0, bytes: sizeOf(name), reason: `${why}; moved to quarantine/`, refusal: why });
    } else out.remove.push(name);
  }
  // 3. Files numbered before m was written that it does not name are dead in m and every later generation:
  //    deleted once m is known to account for the directory, else kept aside.
  for (const name of superseded) {
    const p = parseName(name) as { kind: "segment" | "journal"; number: number };
    const mine = ours(name, p.kind === "segment" ? FileKind.segment : FileKind.journal, p.number);
    if (consistent && mine) {
      out.remove.push(name);
      continue;
    }
    const why = mine
      ? "not named by `MANIFEST`, which does not account for the directory (a segment it names is missing or its journals do not start at its sequence)"
      : "not named by `MANIFEST` and not a file of this store";
    out.aside.push({ file: name, offset: 0, bytes: sizeOf(name), reason: `${why}; moved to quarantine/`, refusal: `${why}: move it out of the store directory` });
  }
  return out;
}

/**
 * Replay `journals` far enough to tell whether they start where manifest `m` says (at seq `seqFloor + 1`, in
 * the first frame of the first journal holding any: `chainOk`), and which of them hold frames or damage.
 */
function journalChain(
  io: FileIO,
  paths: StorePaths,
  m: Manifest,
  journals: readonly number[],
  keys: KeyLookup,
  requireSealed: boolean,
): { facts: Map<number, { frames: boolean; damage: boolean }>; chainOk: boolean } {
  const facts = new Map<number, { frames: boolean; damage: boolean }>();
  let chainOk = true;
  let started = false;
  let seq = m.seqFloor + 1;
  journals.forEach((n, i) => {
    // Read through a bounded window, as replay does: a journal may be far larger than memory.
    const fd = io.open(paths.journal(n), "r");
    try {
      const src = { size: io.size(fd), read: (into: Uint8Array, at: number) => io.read(fd, into, at) };
      const window = new JournalWindow(src, FILE_HEADER_SIZE);
      let header;
      try {
        header = decodeFileHeader(window.view(0, FILE_HEADER_SIZE), FileKind.journal);
        if (header.fileNumber !== n || !equalBytes(header.storeId, m.storeId)) throw new FrameError("bad magic");
      } catch (e) {
        if (!(e instanceof FrameError)) throw e;
        if (window.lastNonZero(0) === 0) return; // a creation cut short: no frame
        facts.set(n, { frames: false, damage: true });
        if (!started) chainOk = false;
        started = true;
        return;
      }
      let first: { offset: number; seq: number } | undefined;
      let frames = 0;
      const scan = scanJournalFile(src, header.bound, seq, keys, requireSealed, {
        requireEnd: header.version >= 3,
        onFrame: (f) => {
          if (frames++ === 0) first = { offset: f.offset, seq: f.seq };
        },
      });
      const last = i === journals.length - 1;
      facts.set(n, { frames: frames > 0, damage: scan.damage.some((d) => !(d.atEnd && last)) });
      if (!started && (frames || scan.damage.length)) {
        started = true;
        chainOk = first !== undefined && first.offset === FILE_HEADER_SIZE && first.seq === m.seqFloor + 1;
      }
      seq = scan.nextSeq;
    } finally {
      io.close(fd);
    }
  });
  return { facts, chainOk };
}
