/**
 * The event loop's turns (issue 15: no operation holds the loop for long). Work that runs synchronously on
 * the caller's thread (decoding a page of records, sealing a block, a get served from the cache) asks
 * {@link overdue} now and then, and when it says so, awaits {@link turn}: a `setImmediate`, in which timers,
 * I/O callbacks and the app's other work run before it goes on.
 *
 * `overdue` measures from the first time it is asked after the loop last turned (a `setImmediate` it arms
 * then, and that clears the mark when it runs): so it counts the time every caller spent since, the app's
 * own code between two awaited gets included, not only one loop's. Asked once per record it costs a counter
 * and, every 8th time, a clock read; the mark costs one `setImmediate` per turn of the loop in which
 * anything asked.
 */
import { performance } from "node:perf_hooks";

/** How long synchronous work may run before it lets the loop turn (issue 15's target: max ≤ 10 ms, p99 ≤ 2 ms). */
export const SLICE_MS = 4;

let budget = SLICE_MS;
/** When the first ask since the loop last turned came (-1: not asked since). */
let since = -1;
/** Asks since the mark was armed: the clock is read on every 8th only (a read costs ~0.1–0.3 µs, a cached get ~3–5 µs). */
let asks = 0;
/** Found overdue since the mark was armed: every ask says so until the loop turns. */
let late = false;
const clear = (): void => {
  since = -1;
  late = false;
};

/**
 * True once `budget` ms have passed since the first call after the loop last turned (checked on every 8th
 * call: call it per record, not per batch of records): the caller should `await turn()` before more
 * synchronous work.
 */
export function overdue(): boolean {
  if (since < 0) {
    since = performance.now();
    asks = 0;
    setImmediate(clear);
    return false;
  }
  if (late) return true;
  if ((++asks & 7) !== 0) return false;
  late = performance.now() - since >= budget;
  return late;
}

/** The next turn of the event loop (a `setImmediate`): timers and I/O callbacks due run first. */
export function turn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** `await turn()` when {@link overdue}; otherwise nothing (one clock read). */
export function maybeTurn(): Promise<void> | undefined {
  return overdue() ? turn() : undefined;
}

/**
 * For tests: the slice's budget in ms (0: every ask after the first in a turn is overdue, so sliced work
 * yields as often as it checks). Returns the previous budget.
 */
export function setSliceBudget(ms: number): number {
  const old = budget;
  budget = ms;
  return old;
}

/**
 * `items` sorted by `cmp` (a new array when there is more than one run; `items` is left in any order)
 * without holding the loop: runs of `run` items sorted one at a time, then merged pairwise, with a turn
 * whenever {@link overdue}. Stable, like `Array.prototype.sort`.
 */
export async function sortInSlices<T>(items: T[], cmp: (a: T, b: T) => number, run = 2048): Promise<T[]> {
  const n = items.length;
  if (n <= run) return items.sort(cmp);
  for (let lo = 0; lo < n; lo += run) {
    const part = items.slice(lo, lo + run).sort(cmp);
    for (let k = 0; k < part.length; k++) items[lo + k] = part[k]!;
    if (overdue()) await turn();
  }
  let src = items;
  let dst = new Array<T>(n);
  for (let width = run; width < n; width *= 2) {
    let out = 0;
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let a = lo;
      let b = mid;
      while (a < mid || b < hi) {
        // Take from the right run only when strictly smaller: equal items keep their order.
        dst[out++] = b < hi && (a >= mid || cmp(src[b]!, src[a]!) < 0) ? src[b++]! : src[a++]!;
        if ((out & 1023) === 0 && overdue()) await turn();
      }
    }
    [src, dst] = [dst, src];
  }
  return src;
}
