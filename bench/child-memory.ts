/**
 * What both measuring children (child.ts, scale-child.ts) use: a forced full GC, memory after it, and the check
 * that a get returned the record asked for.
 */

/** Two full collections (the child runs with `--expose-gc`). */
export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error("child must run with --expose-gc");
  g();
  g();
}

/** Resident set and heap (used + external) after {@link gc}. */
export function memory(): { rss: number; heap: number } {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed + m.external };
}

/** Throw unless `value` is the record of `key`. */
export function checkRecord(value: unknown, key: string): void {
  const id = (value as { id?: unknown } | undefined)?.id;
  if (id !== key) throw new Error(`get(${key}) returned ${value === undefined ? "nothing" : `a record with id ${String(id)}`}`);
}
