/**
 * The live records of one entity: the store's segment index (sorted, searched in place) overlaid by what
 * the journals wrote since (a Map of locations and tombstones). Later writes win; a tombstone hides a
 * segment record until the next compaction folds both into a new segment.
 */
import { Loc } from "../format/location.js";
import { compareUtf8, LostPageError, type SegmentIndex } from "../format/segment-index.js";
import { entryOrder, OrderedIndex, pack } from "./ordered-index.js";
import { overdue, sortInSlices, turn } from "../platform/turn.js";

/** A delete recorded in journal `file`. */
export class Tomb {
  constructor(readonly file: number) {}
}

export class Keyspace {
  overlay = new Map<string, Loc | Tomb>();
  /** Live records. */
  count = 0;
  /**
   * Ordered indexes by term prefix (`"\u0001" + id + "\u0000"`, docs/FORMAT.md "Index terms"): each built on
   * its first use from every live record's terms, kept up to date after (null: none built).
   */
  private indexes: Map<string, OrderedIndex> | null = null;
  /** The same indexes in a list: every write goes through them (no Map iterator and entry pair per term). */
  private indexList: OrderedIndex[] = [];

  constructor(
    readonly entity: string,
    private seg: SegmentIndex | null,
    /** Slots of the segment that were damaged and are not live. */
    private readonly deadSlots = new Set<number>(),
  ) {
    this.count = this.segLiveCount();
  }

  private segLiveCount(): number {
    const r = this.seg?.range(this.entity);
    if (!r) return 0;
    let dead = 0;
    for (const s of this.deadSlots) if (s >= r.from && s < r.to) dead++;
    return r.to - r.from - dead;
  }

  /**
   * The live segment slot of `key`, or -1. A paged index (version 4) meeting a damaged page reports it and
   * throws LostPageError once (its records are not live from then on): `strict` lets that through (a read
   * fails with E_CORRUPT, as a damaged block's read does); otherwise the key is absent (a write or a count
   * must not fail half-applied).
   */
  private segFind(key: string, strict = false): number {
    if (!this.seg) return -1;
    let slot: number;
    try {
      slot = this.seg.find(this.entity, key);
    } catch (e) {
      if (strict || !(e instanceof LostPageError)) throw e;
      return -1;
    }
    return slot >= 0 && this.deadSlots.has(slot) ? -1 : slot;
  }

  get(key: string): Loc | undefined {
    const o = this.overlay.get(key);
    if (o !== undefined) return o instanceof Loc ? o : undefined;
    const slot = this.segFind(key);
    return slot < 0 ? undefined : this.seg!.loc(slot);
  }

  /** Like {@link get}, for reading the value only: a segment record's location comes without its index terms. */
  getForRead(key: string): Loc | undefined {
    const o = this.overlay.get(key);
    if (o !== undefined) return o instanceof Loc ? o : undefined;
    const slot = this.segFind(key, true);
    return slot < 0 ? undefined : this.seg!.readLoc(slot, key);
  }


  /** Record a put; returns the location it replaces. */
  put(loc: Loc): Loc | undefined {
    const old = this.get(loc.key);
    this.joinOverlay(loc.key);
    this.overlay.set(loc.key, loc);
    if (!old) this.count++;
    if (this.touched) this.touch(loc.key, old?.terms, loc.terms);
    if (this.indexes) {
      // Terms the record keeps (an update that leaves its indexed fields alone) are not touched.
      if (old) this.unindex(loc.key, old.terms, loc.terms);
      this.index(loc.key, loc.terms, old?.terms);
    }
    return old;
  }

  /** Record a delete written to journal `file`; returns the location it removes. */
  delete(key: string, file: number): Loc | undefined {
    const old = this.get(key);
    if (!old) return undefined;
    // Always a tombstone, even when the segment lacks the key: a compaction running now may be writing the
    // key into the next segment from an older file. Tombstones from retired files go at rebase.
    this.joinOverlay(key);
    this.overlay.set(key, new Tomb(file));
    this.count--;
    if (this.touched) this.touch(key, old.terms);
    if (this.indexes) this.unindex(key, old.terms);
    return old;
  }

  /**
   * A segment's keys must ascend strictly: lookups binary-search them, so a key out of order (a damaged
   * index whose checksum still matches, possible in a plaintext store) would be listed by a walk and then
   * not found by a read. Walks check it as they go and report the damage instead.
   */
  private ordered(slot: number, prev: string | undefined, key: string): void {
    if (prev !== undefined && compareUtf8(prev, key) >= 0) throw this.seg!.bad(slot, "keys out of order");
  }

  /** Every live record, segment records first (in key order), then the overlay's. */
  *entries(): Generator<[string, Loc]> {
    const r = this.seg?.range(this.entity);
    if (r) {
      let prev: string | undefined;
      for (let s = r.from; s < r.to; s++) {
        if (this.deadSlots.has(s)) continue;
        const loc = this.seg!.loc(s);
        this.ordered(s, prev, loc.key);
        prev = loc.key;
        if (!this.overlay.has(loc.key)) yield [loc.key, loc];
      }
    }
    for (const [k, o] of this.overlay) if (o instanceof Loc) yield [k, o];
  }

  /**
   * The overlay's keys (puts and tombstones) in UTF-8 order, built by the first scan (null until then or after
   * a rebase), and the keys that joined the overlay since: the next scan sorts those few and merges them in
   * (O(overlay)), instead of sorting the whole overlay again after every write (an index build re-puts
   * record after record between scans: 100,000 overlay entries sorted per slice held the event loop ~300 ms).
   */
  private overlayOrder: string[] | null = null;
  private overlayJoined: string[] = [];

  private joinOverlay(key: string): void {
    if ((this.overlayOrder || this.ordering) && !this.overlay.has(key)) this.overlayJoined.push(key);
  }

  /** An {@link orderOverlay} in progress; the keys joining the overlay meanwhile go to `overlayJoined`. */
  private ordering: Promise<void> | null = null;
  /** Bumped by every rebase: an ordering begun before one is dropped. */
  private rebases = 0;

  /**
   * Sort the overlay's keys for the next scans without holding the event loop (platform/turn.ts
   * `sortInSlices`): a scan after it merges only the keys joined since. Compaction awaits it before its
   * snapshot (a bulk load leaves 100,000 keys in the overlay).
   */
  orderOverlay(): Promise<void> {
    if (this.overlayOrder) return Promise.resolve();
    if (this.ordering) return this.ordering;
    const rebases = this.rebases;
    this.overlayJoined = [];
    const run = (async () => {
      const sorted = await sortInSlices([...this.overlay.keys()], compareUtf8);
      if (this.rebases === rebases && !this.overlayOrder) this.overlayOrder = sorted;
    })().finally(() => {
      this.ordering = null;
    });
    this.ordering = run;
    return run;
  }

  private orderedOverlay(): string[] {
    if (!this.overlayOrder) {
      this.overlayOrder = [...this.overlay.keys()].sort(compareUtf8);
      this.overlayJoined = [];
    } else if (this.overlayJoined.length) {
      const add = this.overlayJoined.sort(compareUtf8);
      const old = this.overlayOrder;
      const out: string[] = [];
      let i = 0;
      for (const k of add) {
        while (i < old.length && compareUtf8(old[i]!, k) < 0) out.push(old[i++]!);
        out.push(k);
      }
      while (i < old.length) out.push(old[i++]!);
      this.overlayOrder = out;
      this.overlayJoined = [];
    }
    return this.overlayOrder;
  }

  /**
   * Every live record in UTF-8 key order (the segment's order merged with the sorted overlay), or those
   * whose key sorts after `after`. Run it to the end within one synchronous step: a write or a compaction
   * changes what it walks. To page through, start again after the last key seen. `terms` false: the
   * segment's locations leave out the index terms (reads need none; decoding them was ~1 µs a record).
   */
  *scan(after?: string, terms = true): Generator<[string, Loc]> {
    const extra = this.orderedOverlay();
    let x = 0;
    if (after !== undefined) {
      // First overlay entry after `after`.
      let lo = 0;
      let hi = extra.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compareUtf8(extra[mid]!, after) <= 0) lo = mid + 1;
        else hi = mid;
      }
      x = lo;
    }
    const overlay = this.overlay;
    const seg = this.seg;
    const r = seg?.range(this.entity);
    if (seg && r) {
      let prev = after;
      for (let s = after === undefined ? r.from : seg.after(this.entity, after); s < r.to; s++) {
        if (this.deadSlots.has(s)) continue;
        const loc = seg.loc(s, terms);
        const key = loc.key;
        this.ordered(s, prev, key);
        prev = key;
        if (overlay.has(key)) continue;
        while (x < extra.length && compareUtf8(extra[x]!, key) < 0) {
          const k = extra[x++]!;
          const o = overlay.get(k);
          if (o instanceof Loc) yield [k, o];
        }
        yield [key, loc];
      }
    }
    while (x < extra.length) {
      const k = extra[x++]!;
      const o = overlay.get(k);
      if (o instanceof Loc) yield [k, o];
    }
  }

  keys(): string[] {
    const out: string[] = [];
    const r = this.seg?.range(this.entity);
    if (r) {
      let prev: string | undefined;
      for (let s = r.from; s < r.to; s++) {
        if (this.deadSlots.has(s)) continue;
        const k = this.seg!.key(s);
        this.ordered(s, prev, k);
        prev = k;
        if (!this.overlay.has(k)) out.push(k);
      }
    }
    for (const [k, o] of this.overlay) if (o instanceof Loc) out.push(k);
    return out;
  }

  /** Live entries sorted in UTF-8 byte order: the order a segment stores them in. */
  sortedEntries(): { keys: string[]; locs: Loc[] } {
    const all = [...this.entries()].sort((a, b) => compareUtf8(a[0], b[0]));
    return { keys: all.map((e) => e[0]), locs: all.map((e) => e[1]) };
  }

  /** The terms of a live record (undefined when absent). */
  termsOf(key: string): readonly string[] | undefined {
    return this.get(key)?.terms;
  }

  /**
   * The ordered index of the terms starting with `prefix` (entries: the term without the prefix, the key),
   * built on first use from every live record's terms (synchronously), then kept up to date by every change.
   * `compareKeys` orders equal sort keys; the first call's is kept.
   */
  orderedIndex(prefix: string, compareKeys: (a: string, b: string) => number): OrderedIndex {
    let ix = this.indexes?.get(prefix);
    if (ix) return ix;
    // Built aside and kept only once complete: a damaged slot met half-way throws, and must not leave a
    // partial index behind that later queries would trust.
    const terms: string[] = [];
    const keys: string[] = [];
    for (const [k, loc] of this.entries()) termsInto(prefix, k, loc, terms, keys);
    // Keys in UTF-8 order (string keys) are packed into numbers too (OrderedIndex `packKeys`).
    ix = OrderedIndex.from(compareKeys, terms, keys, prefix, compareKeys === compareUtf8);
    (this.indexes ??= new Map()).set(prefix, ix);
    this.indexList = [...this.indexes.values()];
    return ix;
  }

  /** {@link buildIndex}es running, by prefix (null: none). */
  private building: Map<string, Promise<void>> | null = null;
  /** While one runs: the keys changed since it began, each with every term it had meanwhile (old and new). */
  private touched: Map<string, string[]> | null = null;

  private touch(key: string, ...terms: (readonly string[] | undefined)[]): void {
    let seen = this.touched!.get(key);
    if (!seen) this.touched!.set(key, (seen = []));
    for (const t of terms) if (t) for (const x of t) seen.push(x);
  }

  /**
   * Build the ordered index of `prefix` as {@link orderedIndex} would on first use (or place a built one's
   * pending adds), without holding the event loop (issue 15: a million records' terms took seconds in one
   * step): the live records' terms collected and
   * sorted in slices (platform/turn.ts), then the writes made meanwhile applied to it (each changed key's
   * terms of that time removed, its present ones added) before it is kept. A rebase meanwhile (compaction,
   * import) starts the collection again; after three, the index is built in one step.
   */
  buildIndex(prefix: string, compareKeys: (a: string, b: string) => number): Promise<void> {
    // Built: its pending adds placed in slices (OrderedIndex.placeSliced), not all at once by the read that follows.
    const built = this.indexes?.get(prefix);
    if (built) return built.placeSliced();
    const running = this.building?.get(prefix);
    if (running) return running;
    this.touched ??= new Map();
    const run = this.buildSliced(prefix, compareKeys).finally(() => {
      this.building!.delete(prefix);
      if (this.building!.size === 0) {
        this.building = null;
        this.touched = null;
      }
    });
    (this.building ??= new Map()).set(prefix, run);
    return run;
  }

  private async buildSliced(prefix: string, compareKeys: (a: string, b: string) => number): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const rebases = this.rebases;
      const terms: string[] = [];
      const keys: string[] = [];
      // The walk stops at the first turn after a rebase: the segment and the overlay it reads are replaced.
      for (const [k, loc] of this.entries()) {
        termsInto(prefix, k, loc, terms, keys);
        if (overdue()) {
          await turn();
          if (this.rebases !== rebases) break;
        }
      }
      if (this.rebases !== rebases) continue;
      const order = new Array<number>(terms.length);
      for (let i = 0; i < order.length; i++) order[i] = i;
      const sorted = await sortInSlices(order, entryOrder(terms, keys, compareKeys));
      if (this.rebases !== rebases) continue;
      const steps = OrderedIndex.building(compareKeys, terms, keys, prefix, compareKeys === compareUtf8, sorted);
      let step = steps.next();
      for (; !step.done; step = steps.next()) if (overdue()) await turn();
      if (this.rebases !== rebases) continue;
      if (this.indexes?.has(prefix)) return; // built in one step meanwhile (orderedIndex)
      const ix = step.value;
      for (const [k, seen] of this.touched ?? []) {
        for (const t of seen) if (t.startsWith(prefix)) ix.removeTerm(t, k);
        const now = this.get(k)?.terms;
        if (now) for (const t of now) if (t.startsWith(prefix)) ix.addTerm(t, k);
      }
      (this.indexes ??= new Map()).set(prefix, ix);
      this.indexList = [...this.indexes.values()];
      return;
    }
    this.orderedIndex(prefix, compareKeys);
  }

  /**
   * For each place in a record's terms, the position in {@link indexList} of the index the last term there
   * belonged to: a record's terms come in its definition's index order, so one prefix test usually finds the
   * index (a term is in one index at most: a prefix is `"\u0001" + id + "\u0000"`). Checked, so never wrong.
   */
  private route: number[] = [];

  /** The ordered index term `t` (at place `i` of its record's terms) belongs to, if one is built. */
  private indexOf(t: string, i: number): OrderedIndex | undefined {
    const list = this.indexList;
    const guess = list[this.route[i] ?? -1];
    if (guess && t.startsWith(guess.prefix)) return guess;
    for (let j = 0; j < list.length; j++) {
      if (t.startsWith(list[j]!.prefix)) {
        this.route[i] = j;
        return list[j];
      }
    }
    return undefined;
  }

  /** Add `key`'s `terms` (but those in `keep`) to the ordered indexes they belong to. */
  private index(key: string, terms: readonly string[], keep?: readonly string[]): void {
    let kn = -1; // the key packed (OrderedIndex `pack`), once for all its terms
    for (let i = 0; i < terms.length; i++) {
      const t = terms[i]!;
      if (t.charCodeAt(0) !== 1 || keep?.includes(t)) continue;
      const ix = this.indexOf(t, i);
      if (!ix) continue;
      if (ix.packKeys && kn < 0) kn = pack(key, 0);
      ix.addTerm(t, key, ix.packKeys ? kn : 0);
    }
  }

  /** Remove `key`'s `terms` (but those in `keep`) from the ordered indexes they belong to. */
  private unindex(key: string, terms: readonly string[], keep?: readonly string[]): void {
    for (let i = 0; i < terms.length; i++) {
      const t = terms[i]!;
      if (t.charCodeAt(0) !== 1 || keep?.includes(t)) continue;
      this.indexOf(t, i)?.removeTerm(t, key);
    }
  }

  /**
   * After a compaction: `seg` now holds every record that lived in the retired files, so overlay entries
   * from those files go (a tombstone from them means the key is absent from `seg`).
   */
  rebase(seg: SegmentIndex | null, retired: ReadonlySet<number>, termsChanged = false): void {
    this.seg = seg;
    if (termsChanged) {
      // Records merged in (import), migrated or lost: the term indexes are built again when next used.
      this.indexes = null;
      this.indexList = [];
    }
    this.overlayOrder = null;
    this.rebases++;
    this.overlayJoined = [];
    this.deadSlots.clear();
    // The entries kept (from files not retired: writes since the compaction began) copied into a new map:
    // deleting ~all of a 100,000-entry map one by one cost several times more.
    const kept: typeof this.overlay = new Map();
    for (const [k, o] of this.overlay) if (!retired.has(o.file)) kept.set(k, o);
    this.overlay = kept;
    this.recountLive();
  }

  /** Live records: the segment's (less the dead slots) with the overlay's puts of other keys, less its deletes of segment keys. */
  private recountLive(): void {
    let count = this.segLiveCount();
    for (const [k, o] of this.overlay) {
      const inSeg = this.segFind(k) >= 0;
      if (o instanceof Loc && !inSeg) count++;
      else if (o instanceof Tomb && inSeg) count--;
    }
    this.count = count;
  }

  /**
   * Segment slots [from, to) were lost with a damaged index page (version 4): their keys are unknown, so they
   * stop being live without being named; the ordered indexes are built again when next used.
   */
  markLost(from: number, to: number): void {
    for (let slot = from; slot < to; slot++) this.deadSlots.add(slot);
    if (this.indexes) {
      this.indexes = null;
      this.indexList = [];
    }
    this.recountLive();
  }

  /** Segment slots [from, to) were found damaged: their records stop being live (unless newer ones shadow them). */
  markDead(from: number, to: number): void {
    for (let slot = from; slot < to; slot++) {
      if (this.deadSlots.has(slot)) continue;
      const loc = this.seg!.loc(slot);
      this.deadSlots.add(slot);
      if (this.overlay.has(loc.key)) continue;
      this.count--;
      if (this.touched) this.touch(loc.key, loc.terms);
      if (this.indexes) this.unindex(loc.key, loc.terms);
    }
  }

  /** For each overlay entry shadowing a segment record: that record's value length. */
  *shadowedSegmentBytes(): Generator<number> {
    if (!this.seg) return;
    for (const k of this.overlay.keys()) {
      const slot = this.segFind(k);
      if (slot >= 0) yield this.seg.loc(slot).length;
    }
  }
}

/** The terms of `loc` (the record `key`) under `prefix`, each pushed with its key: an ordered index's entries. */
function termsInto(prefix: string, key: string, loc: Loc, terms: string[], keys: string[]): void {
  for (const t of loc.terms) {
    if (t.startsWith(prefix)) {
      terms.push(t);
      keys.push(key);
    }
  }
}
