/** How much work each workload does: the full run (issue 6) and `--quick` (the smoke check). */
export interface Sizes {
  readonly name: "full" | "quick";
  /** Repetitions of every measurement; the report shows the median and min–max. */
  readonly reps: number;
  /** Workload 1: durable puts issued one at a time. */
  readonly putOne: number;
  /** Workload 2: puts kept in flight at once, and how many in total. */
  readonly inFlight: number;
  readonly putInFlight: number;
  /** Workload 3: records bulk-loaded, and records per durable commit. Workloads 5–7 use this store. */
  readonly bulk: number;
  readonly batch: number;
  /** Workload 4: records already in the store, and settings updates measured. */
  readonly settingsStore: number;
  readonly settingsUpdates: number;
  /** Workload 6: warm random gets. */
  readonly gets: number;
  /**
   * Time budget in ms for one measurement of the per-operation workloads (1, 2, 4, 6). A system that
   * would take longer (conf rereads and rewrites its whole file per call) is measured over the
   * operations done within the budget, and the report says how many that was.
   */
  readonly budgetMs: number;
  /** Raw limits: fsync'd writes per measurement, and bytes hashed through sodium / fflate. */
  readonly rawSyncs: number;
  readonly rawBytes: number;
}

export const FULL: Sizes = {
  name: "full",
  reps: 3,
  putOne: 2_000,
  inFlight: 64,
  putInFlight: 4_096,
  bulk: 100_000,
  batch: 1_000,
  settingsStore: 10_000,
  settingsUpdates: 500,
  gets: 100_000,
  budgetMs: 10_000,
  rawSyncs: 2_000,
  rawBytes: 16 << 20,
};

export const QUICK: Sizes = {
  name: "quick",
  reps: 1,
  putOne: 150,
  inFlight: 64,
  putInFlight: 256,
  bulk: 3_000,
  batch: 500,
  settingsStore: 1_000,
  settingsUpdates: 40,
  gets: 3_000,
  budgetMs: 1_000,
  rawSyncs: 150,
  rawBytes: 1 << 20,
};
