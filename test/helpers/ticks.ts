/**
 * Whether an operation lets the event loop turn (issue 15): a 1 ms interval counts its callbacks while `fn`
 * runs. An operation held in one synchronous step lets it fire at most once.
 */
export async function ticksDuring<T>(fn: () => Promise<T>): Promise<{ ticks: number; value: T }> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  // Start from a fresh turn, so that the interval is armed and no earlier tick is counted.
  await new Promise((r) => setImmediate(r));
  ticks = 0;
  try {
    const value = await fn();
    return { ticks, value };
  } finally {
    clearInterval(timer);
  }
}
