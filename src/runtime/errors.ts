/**
 * Every error Cellar throws is a `CellarError` with a stable string `code`.
 * Check errors with {@link isCellarError} (it compares `code`, so it works even
 * when two copies of the package are loaded and `instanceof` would fail).
 *
 * Messages are lower-case, put identifiers in backticks, and never contain a
 * stored value, not even a record key: only entity names, field names, file
 * names, offsets and sizes. A record's key, when an error concerns one, is a
 * property of the error (`key`), outside `message` and `stack`.
 */

export type CellarErrorCode =
  | "E_VALIDATION"
  | "E_CORRUPT"
  | "E_LOCKED"
  | "E_LOCK_UNAVAILABLE"
  | "E_KEY"
  | "E_IO"
  | "E_NOSPACE"
  | "E_CLOSED"
  | "E_LIMIT"
  | "E_USAGE"
  | "E_SCHEMA_NEWER"
  | "E_MIGRATION"
  | "E_LISTENER"
  | "E_NOT_FOUND"
  | "E_SCHEMA_MISMATCH"
  | "E_QUOTA"
  | "E_BACKUP_SKIPPED" | "E_BACKUP_CORRUPT" | "E_BACKUP_FOREIGN" | "E_BACKUP_FORMAT"
  | "E_IMPORT"
  | "E_CONFLICT" | "E_UNAVAILABLE" | "E_CHANNEL_AUTH" | "E_CHANNEL_DIR" | "E_VERSION_SKEW" // several processes
  | "E_FORBIDDEN"
  | "E_FOLLOWER" | "E_AUDIT_TAMPERED";

export class CellarError extends Error {
  readonly code: CellarErrorCode;
  constructor(code: CellarErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
  }
}

/** One problem found by validation, shaped like zod's issues. */
export interface ValidationIssue {
  /** Path to the offending field, e.g. `["aiProvider", "apiKey"]` or `["tags", 3]`. */
  readonly path: readonly (string | number)[];
  /** What was expected and what was found; never the offending value itself. */
  readonly message: string;
  /** The validator's issue code (zod's, e.g. `too_small`, `unrecognized_keys`). */
  readonly code: string;
}

/** Where in a `batch` a write that failed validation was made. */
export interface BatchPosition {
  /** The write's position among the batch's writes (0 for the first `put`, `delete`, `update` or `reset`). */
  readonly index: number;
  /** The record's key as given (collections, when the input has one of the key's type); never in `message`. */
  readonly key?: string | number | bigint | undefined;
}

/** Thrown when a value given to a repository does not match its entity's schema. Nothing is written. */
export class ValidationError extends CellarError {
  readonly entity: string;
  readonly issues: readonly ValidationIssue[];
  /** Inside `batch`: the failed write's position in the batch (also in `message`), else undefined. */
  readonly batchIndex: number | undefined;
  /** Inside `batch`: the failed write's record key, when it has one (never in `message`), else undefined. */
  readonly key: string | number | bigint | undefined;
  constructor(entity: string, issues: readonly ValidationIssue[], options?: { batch?: BatchPosition; cause?: unknown }) {
    const first = issues[0];
    const where = first ? (first.path.length ? first.path.join(".") : "(root)") : "(root)";
    const batch = options?.batch;
    super(
      "E_VALIDATION",
      `invalid \`${entity}\`${batch ? ` (write #${batch.index} of the batch)` : ""}: \`${where}\`: ${first?.message ?? "invalid value"}` +
        (issues.length > 1 ? ` (and ${issues.length - 1} more issue${issues.length > 2 ? "s" : ""})` : ""),
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.entity = entity;
    this.issues = issues;
    this.batchIndex = batch?.index;
    this.key = batch?.key;
  }
}

/** Thrown when `update` names a record that does not exist. Nothing is written. The key is `key`, never in `message`. */
export class NotFoundError extends CellarError {
  readonly entity: string;
  readonly key: string | number | bigint;
  constructor(entity: string, key: string | number | bigint) {
    super("E_NOT_FOUND", `no \`${entity}\` record under this key (see the error's \`key\`); \`put\` creates one`);
    this.entity = entity;
    this.key = key;
  }
}

/**
 * Thrown when a stored record's bytes are intact (its frame's checksum and authentication passed) but do not
 * decode as the entity's current message type: the schema changed incompatibly without raising the entity's
 * `version` (`cellar check` finds such changes). Not damage: nothing is quarantined, no `corruption` event
 * fires, and the app that wrote the record still reads it. The key is `key`, never in `message`.
 */
export class SchemaMismatchError extends CellarError {
  readonly entity: string;
  readonly key: string;
  /** The schema version the record was written at. */
  readonly stored: number;
  /** The app's version of the entity. */
  readonly expected: number;
  readonly file: string;
  readonly offset: number;
  constructor(entity: string, where: { key: string; stored: number; expected: number; file: string; offset: number }, options?: { cause?: unknown }) {
    super(
      "E_SCHEMA_MISMATCH",
      `a \`${entity}\` record (in \`${where.file}\` at offset ${where.offset}) was written at schema version ${where.stored} and does not decode as this app's version ${where.expected}: ` +
        `the schema changed incompatibly without raising \`version\`; restore the old field types or raise \`version\` and add a migration (\`cellar check\`)`,
      options,
    );
    this.entity = entity;
    this.key = where.key;
    this.stored = where.stored;
    this.expected = where.expected;
    this.file = where.file;
    this.offset = where.offset;
  }
}

/** Thrown when stored bytes fail a check (magic, version, checksum, authentication, decoding). */
export class CorruptionError extends CellarError {
  readonly file: string;
  readonly offset: number;
  readonly reason: string;
  /** The entity and key of the record concerned, when the damage was found reading one (never in `message`). */
  readonly entity: string | undefined;
  readonly key: string | undefined;
  constructor(file: string, offset: number, reason: string, options?: { cause?: unknown; entity?: string; key?: string }) {
    super("E_CORRUPT", `corrupt store file \`${file}\` at offset ${offset}: ${reason}`, options);
    this.file = file;
    this.offset = offset;
    this.reason = reason;
    this.entity = options?.entity;
    this.key = options?.key;
  }
}

/** Who holds a store's lock, as its `LOCK` file names it: information for the message only, never trusted. */
export interface LockHolder {
  pid: number;
  hostname: string;
  since: string;
}

/**
 * Thrown when a store directory is already open, in this process or another (the kernel lock on its `LOCK`
 * file is held). `holder` is what the `LOCK` file says about the holder, or null when it names none (an
 * empty or unreadable file: the holder has not written it yet, or could not).
 */
export class StoreLockedError extends CellarError {
  readonly holder: LockHolder | null;
  constructor(dir: string, holder: LockHolder | null) {
    super(
      "E_LOCKED",
      holder
        ? `store \`${dir}\` is locked by process ${holder.pid} on \`${holder.hostname}\` (since ${holder.since}); close it there first`
        : `store \`${dir}\` is locked by another process (its \`LOCK\` file does not name it); close it there first`,
    );
    this.holder = holder;
  }
}

/**
 * Thrown when this platform cannot take the kernel file lock that keeps a store to one writer (the native
 * module `fs-native-extensions` did not load): Cellar never opens a store without it.
 */
export class LockUnavailableError extends CellarError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super("E_LOCK_UNAVAILABLE", `no kernel file lock on this platform: ${reason}; a store cannot be opened without one`, options);
  }
}

/** Thrown when a key is missing, wrong, or does not fit the store. */
export class KeyError extends CellarError {
  constructor(message: string) {
    super("E_KEY", message);
  }
}

/** Thrown when the operating system refuses an I/O operation (other than a full disk). */
export class IoError extends CellarError {
  readonly syscall: string;
  readonly path: string;
  readonly errno: string;
  constructor(syscall: string, path: string, errno: string, options?: { cause?: unknown }) {
    super("E_IO", `${syscall} failed on \`${path}\`: ${errno}`, options);
    this.syscall = syscall;
    this.path = path;
    this.errno = errno;
  }
}

/** Thrown when a write cannot be made because the disk is full. Earlier writes stay readable. */
export class NoSpaceError extends CellarError {
  readonly path: string;
  constructor(path: string, options?: { cause?: unknown }) {
    super("E_NOSPACE", `no space left on device while writing \`${path}\`; free space and retry`, options);
    this.path = path;
  }
}

/** Thrown when a store, or a repository of it, is used after `close()`. */
export class StoreClosedError extends CellarError {
  constructor() {
    super("E_CLOSED", "the store is closed");
  }
}

/** Thrown when a value, key, batch or frame exceeds a documented size limit. */
export class LimitError extends CellarError {
  constructor(message: string) {
    super("E_LIMIT", message);
  }
}

/**
 * Thrown (in an Electron renderer: rejected with, as a plain object carrying `code`) when a renderer asks the
 * main process for an entity or an operation that `exposeStore`'s allow-list does not grant that window
 * (`cellar/electron`). Nothing is read or written.
 */
export class ForbiddenError extends CellarError {
  constructor(message: string) {
    super("E_FORBIDDEN", message);
  }
}

/** Thrown when the SDK is called with options or arguments that cannot work. */
export class UsageError extends CellarError {
  constructor(message: string) {
    super("E_USAGE", message);
  }
}

/** Thrown when the store was written by a newer schema version than this app knows. Nothing is changed. */
export class SchemaNewerError extends CellarError {
  readonly entity: string;
  readonly stored: number;
  readonly known: number;
  constructor(entity: string, stored: number, known: number) {
    super(
      "E_SCHEMA_NEWER",
      `entity \`${entity}\` was stored at schema version ${stored}, newer than this app's version ${known}; upgrade the app`,
    );
    this.entity = entity;
    this.stored = stored;
    this.known = known;
  }
}

/**
 * Thrown when a schema migration cannot run or fails: a missing step, a step that throws, a result that
 * fails validation, a backup that does not verify. The store is left exactly as it was.
 */
export class MigrationError extends CellarError {
  /** The entity, record key and step concerned, when the failure is about one record (the key is never in `message`). */
  readonly entity: string | undefined;
  readonly key: string | undefined;
  readonly from: number | undefined;
  readonly to: number | undefined;
  constructor(
    message: string,
    where: { entity?: string; key?: string; from?: number; to?: number } = {},
    options?: { cause?: unknown },
  ) {
    super("E_MIGRATION", message, options);
    this.entity = where.entity;
    this.key = where.key;
    this.from = where.from;
    this.to = where.to;
  }
}

/**
 * Reported (never thrown to a caller) when an app's listener of a store event threw: to the store's `error`
 * listeners, or with none to `process.emitWarning`. The store's state and the other listeners are not
 * affected. The listener's own error is `cause`.
 */
export class ListenerError extends CellarError {
  readonly event: string;
  constructor(event: string, cause: unknown) {
    super("E_LISTENER", `a \`${event}\` listener threw ${cause instanceof Error ? cause.constructor.name : typeof cause} (see \`cause\`); the store is unaffected`, {
      cause,
    });
    this.event = event;
  }
}

const CODES: ReadonlySet<string> = new Set<CellarErrorCode>([
  "E_VALIDATION",
  "E_CORRUPT",
  "E_LOCKED",
  "E_LOCK_UNAVAILABLE",
  "E_KEY",
  "E_IO",
  "E_NOSPACE",
  "E_CLOSED",
  "E_LIMIT",
  "E_USAGE",
  "E_SCHEMA_NEWER",
  "E_MIGRATION",
  "E_LISTENER",
  "E_NOT_FOUND",
  "E_SCHEMA_MISMATCH",
  "E_QUOTA",
  "E_BACKUP_SKIPPED",
  "E_BACKUP_CORRUPT",
  "E_BACKUP_FOREIGN",
  "E_BACKUP_FORMAT",
  "E_IMPORT",
  ...(["E_CONFLICT", "E_UNAVAILABLE", "E_CHANNEL_AUTH", "E_CHANNEL_DIR", "E_VERSION_SKEW"] as const), // several processes
  "E_FORBIDDEN",
  "E_FOLLOWER",
]);

/** True when `e` is an error thrown by Cellar (any copy of the package). */
export function isCellarError(e: unknown, code?: CellarErrorCode): e is CellarError {
  if (typeof e !== "object" || e === null) return false;
  const c = (e as { code?: unknown }).code;
  return typeof c === "string" && CODES.has(c) && (code === undefined || c === code);
}

/**
 * Internal, never thrown to the app: an authentication tag did not verify (`crypto/seal.ts`). The layer that
 * knows the file and offset turns it into a {@link CorruptionError} or a {@link KeyError}.
 */
export class AuthenticationError extends Error {}

/**
 * Thrown when a write or batch would take the store's data files past `quota.maxBytes` (`openStore`). Nothing
 * was written. Deletes, retention cleanup and compaction are always allowed, so a full store can be freed;
 * `deadBytes` of the files are freed by the next compaction (one is started when they would make room).
 */
export class QuotaError extends CellarError {
  /** Bytes of the store's data files (segment and journals) when the write was refused. */
  readonly usedBytes: number;
  /** The quota. */
  readonly maxBytes: number;
  /** Bytes the write would have added (an estimate from above). */
  readonly writeBytes: number;
  /** Of `usedBytes`, the estimated bytes no live record needs (a compaction frees them). */
  readonly deadBytes: number;
  constructor(used: { usedBytes: number; maxBytes: number; writeBytes: number; deadBytes: number }) {
    super(
      "E_QUOTA",
      `the write needs ~${used.writeBytes} bytes and the store holds ${used.usedBytes} of its quota of ${used.maxBytes} bytes` +
        (used.deadBytes > 0 ? ` (~${used.deadBytes} of them dead: a compaction frees them)` : "") +
        "; delete records or raise `quota.maxBytes`",
    );
    this.usedBytes = used.usedBytes;
    this.maxBytes = used.maxBytes;
    this.writeBytes = used.writeBytes;
    this.deadBytes = used.deadBytes;
  }
}

/**
 * Reported (the store's `error` event), never thrown: an automatic backup was due but not taken, because this
 * session of the store found damage (`reason`). A backup of a damaged store could replace the last good one;
 * none is taken until the store is reopened without damage (see `recoverFrom`).
 */
export class BackupSkippedError extends CellarError {
  readonly reason: string;
  constructor(reason: string) {
    super("E_BACKUP_SKIPPED", `an automatic backup was not taken: the store found damage in this session (${reason}); the last good backups are kept`);
    this.reason = reason;
  }
}

/**
 * Thrown when `revert` (record history) names an entry that is not there: an id `history()` does not list
 * (pruned, or of another record), or a time older than the record's history reaches back to.
 */
export class HistoryEntryNotFoundError extends CellarError {
  readonly entity: string;
  /** What `revert` was given: an entry id or a time (never in `message`). */
  readonly at: string | Date;
  constructor(entity: string, why: string, at: string | Date) {
    super("E_NOT_FOUND", `cannot revert a \`${entity}\` record: ${why}`);
    this.entity = entity;
    this.at = at;
  }
}

/**
 * Thrown when a backup file (docs/FORMAT.md, "Backup file") is damaged: its header, a packed file or its
 * checksum does not check, it is cut short, or what it holds does not read back as a store (`reason` says
 * which, `offset` where). Nothing was changed.
 */
export class BackupCorruptError extends CellarError {
  readonly file: string;
  readonly offset: number;
  readonly reason: string;
  constructor(file: string, offset: number, reason: string, options?: { cause?: unknown }) {
    super("E_BACKUP_CORRUPT", `backup \`${file}\` is damaged at offset ${offset}: ${reason}`, options);
    this.file = file;
    this.offset = offset;
    this.reason = reason;
  }
}

/** Thrown when a backup file is not a Cellar backup, or was written by a newer backup format than this version reads. */
export class BackupFormatError extends CellarError {
  constructor(message: string) {
    super("E_BACKUP_FORMAT", message);
  }
}

/** Thrown when a backup belongs to another store than the one it is checked against (`expectStoreId`). Nothing was changed. */
export class BackupForeignError extends CellarError {
  constructor(message: string) {
    super("E_BACKUP_FOREIGN", message);
  }
}

/**
 * Thrown by `store.import` when a line of the file cannot be imported: it does not parse, names an entity
 * the store does not have, fails its entity's validation at its version, or cannot be migrated. Nothing
 * was written. Names the line (1-based; the header is line 1), the entity and the field path, never a value
 * (nor a record key).
 */
export class ImportError extends CellarError {
  readonly line: number;
  readonly entity: string | undefined;
  readonly path: readonly (string | number)[];
  constructor(line: number, entity: string | undefined, path: readonly (string | number)[], why: string, options?: { cause?: unknown }) {
    super("E_IMPORT", `import refused, nothing written: line ${line}${entity ? `, \`${entity}\`` : ""}${path.length ? `, field \`${path.join(".")}\`` : ""}: ${why}`, options);
    this.line = line;
    this.entity = entity;
    this.path = path;
  }
}

/** Thrown when another process changed a record a follower's read-modify-write read (retried 8 times first); nothing written; retryable. */
export class ConflictError extends CellarError {
  constructor(entity: string) {
    super("E_CONFLICT", `a \`${entity}\` record changed in another process while this write was made from it; nothing was written, retry`);
  }
}

/** Thrown when no writer acknowledged a follower's write within `writeTimeoutMs`; `sent`: it may have been applied. Retryable. */
export class WriterUnavailableError extends CellarError {
  readonly sent: boolean;
  constructor(ms: number, sent: boolean) {
    super("E_UNAVAILABLE", `no writer acknowledged this write within ${ms} ms${sent ? "; it was sent, so it may or may not have been applied" : "; it was not applied"}`);
    this.sent = sent;
  }
}

/** Thrown when a process on a store's channel, or the writer it reached, fails the mutual key check. */
export class ChannelAuthError extends CellarError {
  constructor(message: string) {
    super("E_CHANNEL_AUTH", message);
  }
}

/** Thrown when the directory of a store's channel socket is another user's, a link, or open to others. */
export class ChannelDirError extends CellarError {
  constructor(dir: string, why: string) {
    super("E_CHANNEL_DIR", `the channel directory \`${dir}\` ${why}; refusing to use it (it must be this user's, mode 0700)`);
  }
}

/** Thrown when a follower's schema versions differ from those of the store open in the writer. */
export class SchemaVersionSkewError extends CellarError {
  constructor(entity: string, pid: number | null, stored: number, mine: number) {
    super("E_VERSION_SKEW", `the store is open in process ${pid ?? "(unknown)"} with schema version ${stored} of \`${entity}\`; this process has ${mine}: open it with the same app version`);
  }
}

/**
 * Thrown (or rejected with) when an operation only the writer of a store runs (a write, a compaction, a key
 * change, a backup) is called on an engine that follows the store from another process (`Engine.openFollower`):
 * the share layer forwards such calls to the writer. Names the writer's pid when its `LOCK` file does.
 */
export class FollowerError extends CellarError {
  readonly writerPid: number | null;
  constructor(operation: string, dir: string, writerPid: number | null) {
    super(
      "E_FOLLOWER",
      `\`${operation}\` runs in the writer of store \`${dir}\`${writerPid !== null ? ` (process ${writerPid})` : ""}; this engine follows it from another process`,
    );
    this.writerPid = writerPid;
  }
}

/** `store.audit.verify({ strict: true })`: the audit log's chain does not verify (`problems`: the kind and seq of each, never an entry's content). */
export class AuditTamperedError extends CellarError {
  constructor(readonly problems: readonly { readonly kind: string; readonly seq: number; readonly message: string }[]) {
    super("E_AUDIT_TAMPERED", `the audit log does not verify: ${problems[0]?.message ?? "unknown problem"}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ""}`);
  }
}
