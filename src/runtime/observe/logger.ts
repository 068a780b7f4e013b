/**
 * The store's logger (`openStore({ logger })`): any object with pino's or the console's level methods.
 * Cellar calls them as `logger.info({ event: "compaction", … }, "cellar: compaction")`: structured fields
 * first, a fixed message after, which pino, bunyan-style loggers and `console` all take. Fields hold names,
 * counts, sizes, durations, error codes and Cellar's own file names: never a stored or submitted value, a
 * key, a label the app chose, a passphrase or a full path (docs/OBSERVABILITY.md, "The logger").
 */

/** One level method: `(fields, message)`, as pino's and the console's take. */
export type LogMethod = (obj: Record<string, unknown> | string, ...rest: unknown[]) => void;

/** What `openStore({ logger })` takes: pino, `console`, or anything with these four methods. */
export interface Logger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
}

export type LogLevel = keyof Logger;

/** What the store logs through: a level, the fields (`event` first), never throws. */
export type Log = (level: LogLevel, fields: { event: string } & Record<string, unknown>) => void;

/** No logger: logging costs one call that returns. */
export const NO_LOG: Log = () => {};

/**
 * `logger` as a `Log`: fields get `store` (the store directory's name); a logger that throws, or lacks a
 * level, is not allowed to break the store (the record is dropped).
 */
export function toLog(logger: Logger | undefined, store: string): Log {
  if (!logger) return NO_LOG;
  return (level, fields) => {
    try {
      const method = logger[level];
      if (typeof method === "function") method.call(logger, { ...fields, store }, `cellar: ${fields.event}`);
    } catch {
      // a logger's failure is its own
    }
  };
}

/** Whether `logger` has the four level methods (checked at open: `E_USAGE` otherwise). */
export function isLogger(logger: unknown): logger is Logger {
  if (typeof logger !== "object" || logger === null) return false;
  const l = logger as Record<string, unknown>;
  return ["debug", "info", "warn", "error"].every((m) => typeof l[m] === "function");
}
