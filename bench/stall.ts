/**
 * Event-loop stalls (issue 15, "the app must never freeze"): while one operation of a workload runs, how
 * late the event loop got to its timers, and whether a 1 ms interval timer kept firing.
 *
 * Two probes, started together around the measured operation only (not around open/close or record
 * generation):
 * - `perf_hooks.monitorEventLoopDelay({ resolution: 1 })`: a libuv timer re-armed every 1 ms that records,
 *   in a histogram, the time between its callbacks. That interval includes the resolution itself (an idle
 *   loop records ~1.1 ms), so the *delay* reported here is the recorded interval minus the 1 ms resolution:
 *   how late the loop was. It runs in C++ (no JS callback), so it costs the measured code next to nothing.
 *   1 ms is the finest resolution Node accepts, and the one that can judge a p99 target of 2 ms: at the
 *   default 10 ms a stall shorter than the 10 ms wait is absorbed in it and never recorded, and there are
 *   ten times fewer samples for the p99.
 * - a JS `setInterval(…, 1)`: what an app's own timer (a UI heartbeat, an IPC reply, a request's socket
 *   callback) sees. The longest gap between two of its callbacks (start and stop count as callbacks, so a
 *   loop blocked for the whole operation shows the whole operation as one gap), and how many callbacks ran
 *   against the elapsed milliseconds. Node runs a 1 ms interval every ~1.1–1.2 ms on an idle loop, so ~85 %
 *   is the ceiling, not 100 % (the report's idle row shows this machine's).
 *
 * The histogram records an interval only from its second callback on, and a loop blocked until the very
 * end of the operation records nothing until it next turns: `StallMonitor.start()` therefore lets the loop
 * turn until the histogram has recorded one interval before the operation starts (so a stall from its very
 * first instruction is recorded; that one idle interval, ~0 ms of delay, stays in the histogram), and `stop()`
 * waits 2 ms after it before reading; both outside the measured operation.
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";

/** The histogram's resolution in ms (Node's minimum). */
export const LOOP_RESOLUTION_MS = 1;

export interface StallSample {
  /** Event-loop delay (interval between the 1 ms monitor's callbacks, minus 1 ms), p99 and max, in ms. */
  p99: number;
  max: number;
  /** Longest gap between two callbacks of a 1 ms `setInterval` (or start / stop), in ms. */
  gap: number;
  /** Callbacks of that interval that ran, as a fraction of the elapsed milliseconds (0..~0.9). */
  ticks: number;
  /**
   * The most CPU time this process used (`process.cpuUsage`, user + system, all its threads) between two
   * callbacks of that interval, in ms: the longest gap without the time the OS gave the cores to other
   * processes (on a loaded machine `gap` includes it, this does not). Optional: older results lack it.
   */
  cpuGap?: number;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const turn = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class StallMonitor {
  readonly #hist = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  #start = 0;
  #last = 0;
  #gap = 0;
  #fired = 0;
  #cpuLast = 0;
  #cpuGap = 0;
  #timer: NodeJS.Timeout | undefined;

  private constructor() {}

  /** Starts both probes; resolves a few ms later, once the histogram has recorded an interval (call right before the operation). */
  static async start(): Promise<StallMonitor> {
    const m = new StallMonitor();
    m.#hist.enable();
    // Its first callback only sets the histogram's baseline: wait for a second (the first interval recorded),
    // else an operation started in the same timers phase as that first callback would not be seen.
    for (let i = 0; i < 100 && m.#hist.count === 0; i++) await turn(1);
    m.#start = m.#last = performance.now();
    m.#cpuLast = cpuMs();
    m.#timer = setInterval(() => {
      const c = cpuMs();
      if (c - m.#cpuLast > m.#cpuGap) m.#cpuGap = c - m.#cpuLast;
      m.#cpuLast = c;
      const t = performance.now();
      if (t - m.#last > m.#gap) m.#gap = t - m.#last;
      m.#last = t;
      m.#fired++;
    }, 1);
    return m;
  }

  /** Ends the measurement (call right after the operation; it waits ~2 ms for the loop to turn). */
  async stop(): Promise<StallSample> {
    const end = performance.now();
    const gap = Math.max(this.#gap, end - this.#last);
    const cpuGap = Math.max(this.#cpuGap, cpuMs() - this.#cpuLast);
    const fired = this.#fired;
    await turn(2); // let a loop that was blocked to the end record it
    clearInterval(this.#timer);
    this.#hist.disable();
    const delay = (ns: number): number => (this.#hist.count === 0 ? 0 : Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS));
    return {
      p99: delay(this.#hist.percentile(99)),
      max: delay(this.#hist.max),
      gap,
      ticks: fired / Math.max(1, end - this.#start),
      cpuGap,
    };
  }
}

/** Runs `op` under a StallMonitor and returns its result and the stalls it caused. */
export async function withStalls<T>(op: () => Promise<T>): Promise<{ value: T; stalls: StallSample }> {
  const monitor = await StallMonitor.start();
  let value: T;
  try {
    value = await op();
  } catch (e) {
    await monitor.stop();
    throw e;
  }
  return { value, stalls: await monitor.stop() };
}
