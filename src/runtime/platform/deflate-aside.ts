/**
 * Deflate on a worker thread (issue 15: long work runs off the main thread). A compaction deflates every block
 * it writes, about half of its CPU time (18 of 36 µs a record, measured on the benchmark's tasks); done here,
 * on the process's second core, it neither holds the event loop nor waits for it.
 *
 * One worker per process, made on first use and shared by every store: a few lines of JavaScript evaluated in
 * the worker (no file of its own to find, whether the runtime runs from TypeScript sources or a build), which
 * loads the same fflate module as `format/compress.ts` and answers each block with exactly the bytes
 * {@link compress} returns (same library, same level: deflate is deterministic). It keeps the process alive only
 * while blocks are in flight. If the worker cannot start or fails, every block in flight and every later one is
 * deflated here instead: a caller never sees an error of this module, only the slower path.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { compress, DEFLATE_LEVEL } from "../format/compress.js";

/** Below this many plaintext bytes a block is deflated at once: the round trip to the worker costs more. */
export const ASIDE_MIN_BYTES = 8 * 1024;

const SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { deflateSync } = require(workerData.fflate);
parentPort.on("message", ({ id, plain, level }) => {
  const body = deflateSync(plain, { level });
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, plain.length, true);
  out.set(body, 4);
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

interface Job {
  plain: Uint8Array;
  resolve: (out: Uint8Array) => void;
}

let worker: Worker | null = null;
/** The worker failed (or could not start): everything is deflated on the caller's thread from now on. */
let broken = false;
let nextId = 0;
const inFlight = new Map<number, Job>();
/** Blocks deflated by the worker since the process started (tests). */
let asideCount = 0;

/** End the worker (resolves once it has ended); blocks in flight are deflated here. `broken`: no new worker is started afterwards. */
function fail(markBroken = true): Promise<void> {
  broken = markBroken;
  const w = worker;
  worker = null;
  const jobs = [...inFlight.values()];
  inFlight.clear();
  for (const j of jobs) j.resolve(compress(j.plain));
  return w ? w.terminate().then(() => {}, () => {}) : Promise.resolve();
}

function start(): Worker | null {
  if (worker || broken) return worker;
  try {
    const fflate = createRequire(import.meta.url).resolve("fflate");
    const w = new Worker(SOURCE, { eval: true, workerData: { fflate }, stdout: false, stderr: false });
    w.on("message", ({ id, out }: { id: number; out: Uint8Array }) => {
      const job = inFlight.get(id);
      if (!job) return;
      inFlight.delete(id);
      asideCount++;
      if (inFlight.size === 0) w.unref();
      job.resolve(out);
    });
    w.on("error", () => void fail());
    w.on("exit", () => {
      if (worker === w) void fail();
    });
    w.on("messageerror", () => void fail());
    w.unref();
    worker = w;
  } catch {
    broken = true;
  }
  return worker;
}

/**
 * `compress(plain)` (format/compress.ts, level 4), computed on the worker thread when `plain` is large enough
 * to be worth the trip. `plain` is copied to the worker: the caller may reuse its memory once this returns.
 */
export function compressAside(plain: Uint8Array): Promise<Uint8Array> {
  const w = plain.length >= ASIDE_MIN_BYTES ? start() : null;
  if (!w) return Promise.resolve(compress(plain));
  return new Promise((resolve) => {
    const id = nextId++;
    inFlight.set(id, { plain, resolve });
    if (inFlight.size === 1) w.ref();
    // A view of part of a larger buffer is cloned with all of it: send a copy of just the view then.
    const whole = plain.byteOffset === 0 && plain.byteLength === plain.buffer.byteLength;
    try {
      w.postMessage({ id, plain: whole ? plain : plain.slice(), level: DEFLATE_LEVEL });
    } catch {
      void fail();
    }
  });
}

/** Blocks deflated on the worker so far, and whether it is out of use (tests). */
export function deflateAsideStats(): { aside: number; broken: boolean } {
  return { aside: asideCount, broken };
}

/** For tests: end the worker as if it had failed; with `recover`, the next block starts a new one. */
export function stopDeflateWorker(recover = true): Promise<void> {
  return fail(!recover);
}
