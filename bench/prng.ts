/**
 * A small seeded PRNG, so every system in the benchmark stores exactly the same records and reads
 * exactly the same keys, run after run.
 *
 * `mulberry32` is a 32-bit generator (Tommy Ettinger's public-domain design); `splitmix32` mixes a base
 * seed with an index, so record `i` can be generated on its own without generating records `0..i-1`
 * (a child process regenerates keys without regenerating 100,000 records).
 */

/** The seed of every benchmark run. Changing it changes every record; keep it fixed. */
export const BENCH_SEED = 0x5eed_ce11;

/** One round of splitmix32: a well-mixed 32-bit value from any 32-bit input. */
export function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** A 32-bit unsigned integer. */
  u32(): number;
}

/** mulberry32 seeded with `seed`. */
export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  const u32 = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
  const next = (): number => u32() / 4294967296;
  return {
    u32,
    next,
    int: (n) => Math.floor(next() * n),
    pick: (items) => {
      if (items.length === 0) throw new Error("pick from an empty array");
      return items[Math.floor(next() * items.length)] as (typeof items)[number];
    },
  };
}

/** A generator for item `index` of a stream seeded with `seed`, independent of every other item. */
export function rngFor(seed: number, stream: number, index: number): Rng {
  return createRng(splitmix32(splitmix32(seed ^ Math.imul(stream, 0x27d4eb2d)) ^ index));
}
