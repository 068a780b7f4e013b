/**
 * Placing an `OrderedIndex`'s pending adds (ordered-index.ts) into its leaves, in slices: the adds taken from the
 * pending buffer are routed to their leaves by the fences, grouped by leaf (a counting sort), then merged leaf by
 * leaf from the last back (ordered-leaf.ts `mergeRun`); a caller passes `stop` (platform/turn.ts `overdue`, or
 * never) and goes on later with the same {@link Placing}. Between two slices only adds happen (to the buffer's
 * other arrays); anything that reads or removes finishes the placing first.
 */

import { type Leaf, mergeRun } from "./ordered-leaf.js";
import { groupByLeaf, sortRun, type TakenAdds } from "./ordered-pending.js";
import type { OrderedIndex } from "./ordered-index.js";

/** Pending adds being placed: taken `t`, routed to `leafOf` up to `routed`, grouped, merged down to leaf `li`. */
export interface Placing {
  t: TakenAdds;
  /** Leaves when taken (they do not change until the placing ends). */
  nl: number;
  leafOf: Uint32Array;
  routed: number;
  order: Uint32Array;
  starts: Uint32Array;
  li: number;
  /** Leaves split off: after leaf grownAt[g], grown[g] (in order); put in place in one pass at the end. */
  grownAt: number[];
  grown: Leaf[][];
}

const NO_ORDER = new Uint32Array(0);

/** A `stop` that never stops: place everything now. */
export const never = (): boolean => false;

/** A placing of the adds `t` into an index of `nl` leaves (at least one), nothing done yet. */
export function startPlacing(t: TakenAdds, nl: number): Placing {
  return { t, nl, leafOf: new Uint32Array(t.m), routed: 0, order: NO_ORDER, starts: NO_ORDER, li: nl - 1, grownAt: [], grown: [] };
}

/**
 * Go on placing `p` until done (true) or `stop()` says to (checked every 256 adds routed and every leaf merged):
 * the adds routed to their leaves, grouped, then merged leaf by leaf from the last back (a split inserts leaves
 * after its own, put in place at the end in one pass: the positions before it stay as they are).
 */
export function placeSome(ix: OrderedIndex, p: Placing, stop: () => boolean): boolean {
  const { t, nl, leafOf } = p;
  const { sks, keys, nums, knums, m } = t;
  while (p.routed < m) {
    const end = Math.min(m, p.routed + 256);
    for (let x = p.routed; x < end; x++) leafOf[x] = Math.min(nl - 1, ix.seekLeaf(sks[x]!, nums[x]!, keys[x]!, knums[x]!));
    p.routed = end;
    if (end < m && stop()) return false;
  }
  if (p.starts === NO_ORDER) ({ order: p.order, starts: p.starts } = groupByLeaf(leafOf, m, nl));
  const { order, starts, grownAt, grown } = p;
  const leaves = ix.leaves;
  for (; p.li >= 0; ) {
    const li = p.li--;
    const from = starts[li]!;
    const to = starts[li + 1]!;
    if (from === to) continue;
    const l = leaves[li]!;
    // The leaf and its run, both sorted, merged (past the last leaf's fence, the run's greatest becomes its fence).
    const parts = mergeRun(l, order, from, to, t, sortRun(order, from, to, t, ix.compareKeys), ix.compareKeys);
    ix.lastNums[li] = l.fN;
    if (parts.length) {
      grownAt.push(li);
      grown.push(parts);
    } else if (l.n !== l.counted) {
      ix.grow(li, l.n - l.counted);
      l.counted = l.n;
    }
    if (p.li >= 0 && stop()) return false;
  }
  ix.placing = null;
  if (grown.length) {
    const all: Leaf[] = [];
    let g = grown.length - 1; // grownAt descends
    for (let li = 0; li < nl; li++) {
      all.push(leaves[li]!);
      if (g >= 0 && grownAt[g] === li) for (const q of grown[g--]!) all.push(q);
    }
    ix.leaves = all;
    ix.lastNums = all.map((l) => l.fN);
    ix.restructured();
  }
  return true;
}

