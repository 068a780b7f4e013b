/**
 * Bytes on disk per entity, for `store.stats()`: each data file's bytes shared among the entities that wrote
 * them, split into live (what a compaction would keep) and dead (what it would free). Computed when asked,
 * from what the engine keeps anyway: a segment's blocks name their entity and their on-disk length; a
 * journal's plaintext bytes are counted per entity as they are indexed (`ReadFile.byEntity`, state.ts) and
 * scaled to the file's bytes (frame headers, tags, compression) by the file's ratio; live records are the
 * keyspaces' locations. Entity names are the engine's (internal `~` names included: the typed layer
 * attributes them). Costs one pass over the journal overlays, not over the segment's records.
 */
import { Loc } from "../format/location.js";
import type { StoreState } from "./state.js";

export interface EntityUsage {
  /** Live records. */
  records: number;
  /** Bytes of the data files holding the entity's live records (an estimate for journals). */
  liveBytes: number;
  /** Bytes of its overwritten and deleted records still in the files, until a compaction frees them. */
  deadBytes: number;
}

export function entityUsage(state: StoreState): Map<string, EntityUsage> {
  const out = new Map<string, EntityUsage>();
  const row = (entity: string): EntityUsage => {
    let u = out.get(entity);
    if (!u) out.set(entity, (u = { records: 0, liveBytes: 0, deadBytes: 0 }));
    return u;
  };
  // Written bytes per entity (on disk), live ones found below; dead = written - live.
  const written = new Map<string, number>();
  const add = (m: Map<string, number>, e: string, n: number) => m.set(e, (m.get(e) ?? 0) + n);
  const ratio = new Map<number, number>();
  for (const [no, f] of state.files) {
    const r = f.plainTotal > 0 ? f.size / f.plainTotal : 0;
    ratio.set(no, r);
    if (f.kind === "journal" && f.byEntity) for (const [e, n] of f.byEntity) add(written, e, n * r);
  }
  const seg = state.segment;
  const segDisk = new Map<string, number>();
  if (seg) for (const b of seg.blocks) add(segDisk, b.entity, b.frameLength);
  for (const [e, n] of segDisk) add(written, e, n);
  const segRatio = seg ? (ratio.get(seg.file) ?? 0) : 0;
  for (const [entity, ks] of state.entities) {
    const u = row(entity);
    u.records = ks.count;
    let live = 0;
    for (const o of ks.overlay.values()) if (o instanceof Loc) live += o.length * (ratio.get(o.file) ?? 0);
    const inSeg = segDisk.get(entity) ?? 0;
    if (inSeg > 0) {
      let shadowed = 0;
      for (const n of ks.shadowedSegmentBytes()) shadowed += n;
      live += Math.max(0, inSeg - shadowed * segRatio);
    }
    u.liveBytes = Math.round(live);
  }
  for (const [entity, n] of written) {
    const u = row(entity);
    u.deadBytes = Math.max(0, Math.round(n) - u.liveBytes);
  }
  return out;
}
