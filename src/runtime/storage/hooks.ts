/**
 * `EngineHooks`: what the engine tells an observer above it (the typed layer's telemetry,
 * observe/telemetry.ts) about its own work: commit groups, compactions and backups. Types and one constant
 * only; the engine calls a hook only when it is set, so an engine without an observer pays one property
 * read per commit. A hook never sees a key or a value, and must not throw (the engine does not catch).
 */
import type { BackupInfo } from "./backup.js";

/** Called when a compaction or backup ends: `error` set when it failed. */
export type HookEnd<T> = (end: { error: unknown; result: T | null }) => void;

export interface CompactionStart {
  /** `"compaction"`; `"migration"` (a rewrite that migrates records); `"import"` (a rewrite that merges records in). */
  kind: "compaction" | "migration" | "import";
  /** Data file bytes (segment and journals) when it starts. */
  bytesBefore: number;
}

export interface CompactionEnd {
  /** Data file bytes when it ends. */
  bytesAfter: number;
}

export interface EngineHooks {
  /** After a commit flush: how many callers' writes (a put, a delete, a batch: one each) it grouped. */
  committed?(writes: number): void;
  /** A compaction starts; the function it returns is called when it ends. */
  compaction?(start: CompactionStart): HookEnd<CompactionEnd>;
  /** A backup starts (its `label`); the function it returns is called when it ends. */
  backup?(label: string): HookEnd<BackupInfo>;
}

/** No observer. */
export const NO_HOOKS: EngineHooks = Object.freeze({});
