/**
 * The background check of a segment (`verifyOnOpen: "background"`): every block's length, crc, type and
 * position, one block at a time between other work, after `Engine.open` returned. The Engine starts it and
 * keeps its promise as `verified`; nobody awaits it while it runs, so it never rejects.
 */
import path from "node:path";
import { CorruptionError, isCellarError } from "../errors.js";
import { FrameError } from "../format/frame.js";
import type { SegmentIndex } from "../format/segment-index.js";
import type { Compaction } from "./compaction.js";
import { turn } from "../platform/turn.js";
import { pageLost, type Reads } from "./reads.js";
import { blockProblem, readIndexPage } from "./segment.js";
import { type DamageReport, frameKey, type StoreState } from "./state.js";

/**
 * Check every block of `seg` (length, crc, type, position), one at a time between other work. A bad block's
 * records stop being live; the damage is reported like damage found at open, and a compaction retires the file.
 */
export async function scrub(state: StoreState, reads: Reads, compaction: Compaction, seg: SegmentIndex): Promise<void> {
  const name = path.basename(state.paths.segment(seg.file));
  try {
    await scrubBlocks(state, reads, compaction, seg, name);
  } catch (e) {
    // Nobody awaits this promise while it runs (close does, at the end): a failure (a read that fails, an
    // index slot that does not decode) is reported like the damage it finds, never left as an unhandled
    // rejection, which ends a Node process. The records stay as open found them; reads report their own errors.
    if (state.closed) return;
    state.onProblem?.(isCellarError(e) ? e : new CorruptionError(name, 0, `the background check of the segment stopped: ${(e as Error).message}`));
  }
}

/**
 * Check every page of a paged index (version 4) not read since open, one per turn: crc, tag, grammar and its
 * directory entry, as a lookup would (segment.ts `readIndexPage`). A damaged one is handled as a lookup that
 * met it (reads.ts `pageLost`). Returns how many were found damaged.
 */
async function scrubPages(state: StoreState, seg: SegmentIndex): Promise<number> {
  let found = 0;
  for (let p = 0; p < seg.pages.length; p++) {
    await turn();
    if (state.closed || state.segment !== seg) return found;
    const f = state.files.get(seg.file);
    if (!f) return found;
    const e = seg.pages[p]!;
    if (seg.lost.has(p) || state.cache.has(frameKey(seg.file, e.offset))) continue;
    try {
      readIndexPage(state.io, f, seg, p, state.metaKeys, state.manifest.encrypted);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      pageLost(state, seg, p, err.message);
      found++;
    }
  }
  return found;
}

async function scrubBlocks(state: StoreState, reads: Reads, compaction: Compaction, seg: SegmentIndex, name: string): Promise<void> {
  let found = await scrubPages(state, seg);
  // One buffer for every block (grown when one is larger): a fresh one per block was 13.5 MB of new memory
  // for 100,000 records, each page of it a fault (issue 15: open → every record read).
  let scratch = new Uint8Array(0);
  for (let i = 0; i < seg.blocks.length; i++) {
    await new Promise<void>((r) => setImmediate(r));
    if (state.closed || state.segment !== seg) return;
    const f = state.files.get(seg.file);
    if (!f) return;
    const b = seg.blocks[i]!;
    // A block in the cache was read since open by readBlock, which checks all this and its tag: not again.
    if (state.cache.has(frameKey(seg.file, b.offset))) continue;
    if (scratch.length < b.frameLength) scratch = new Uint8Array(Math.max(b.frameLength, 2 * scratch.length));
    const frame = scratch.subarray(0, b.frameLength);
    let problem: string | null = null;
    if (state.io.read(f.fd, frame, b.offset) !== frame.length) problem = "bad record length (short read)";
    else problem = blockProblem(frame, i);
    if (!problem) continue;
    found++;
    const records: { entity: string; key: string }[] = [];
    const ks = state.entities.get(b.entity);
    for (let slot = b.first; slot < b.first + b.count; slot++) {
      if (seg.paged && seg.lost.has(seg.pageOf(slot))) continue; // its key was lost with its index page
      const key = seg.key(slot);
      // A record a later journal write replaced or deleted is not lost with the block: not named.
      if (!ks?.overlay.has(key)) records.push({ entity: b.entity, key });
    }
    ks?.markDead(b.first, b.first + b.count);
    state.cache.delete(frameKey(seg.file, b.offset));
    reads.forgetLastBlock();
    const d: DamageReport = { file: name, offset: b.offset, bytes: b.frameLength, reason: problem, records, quarantinedAs: state.keepCopy(name) };
    state.recovery.damaged.push(d);
    state.onProblem?.(new CorruptionError(name, b.offset, `${problem}; ${records.length} record(s) lost, listed in the recovery report`));
  }
  if (found || seg.lost.size) {
    state.recount();
    compaction.maybeCompact(true);
  }
}
