/**
 * The checks a write's ops pass before a commit queues them (`GroupCommit.write`, storage/commit.ts): entity
 * names, keys, values and index terms within the format's limits and well-formed UTF-16. The typed layer
 * runs them itself before it commits to in-flight state of its own (typed/record-codec.ts: record history).
 */
import { isWellFormed } from "../format/bytes.js";
import { LimitError, UsageError } from "../errors.js";
import { MAX_ENTITY_NAME_BYTES, MAX_KEY_BYTES, MAX_TERMS_PER_RECORD, MAX_VALUE_BYTES } from "../format/format.js";
import { opSize, type WriteOp } from "../format/records.js";

const MAX_WRITE_BYTES = 32 * 1024 * 1024;

/** Whether the UTF-8 form of `s` is longer than `max` bytes (no count needed when even 3 bytes per unit fit). */
function longerThan(s: string, max: number): boolean {
  return s.length * 3 > max && Buffer.byteLength(s, "utf8") > max;
}

/**
 * The checks `write` makes of a write's ops before queueing them (names, sizes, limits): throws what `write`
 * would reject with; returns the write's size. The typed layer runs them before it commits to in-flight
 * state of its own (record history).
 */
export function checkWrite(ops: readonly WriteOp[]): number {
  let size = 0;
  for (const o of ops) {
    checkOp(o);
    size += opSize(o);
  }
  if (size > MAX_WRITE_BYTES) throw new LimitError(`a single write or batch may hold at most ${MAX_WRITE_BYTES} bytes, got ~${size}`);
  return size;
}

function checkOp(o: WriteOp): void {
  if (!o.entity || longerThan(o.entity, MAX_ENTITY_NAME_BYTES)) {
    throw new LimitError(`entity name must be 1 to ${MAX_ENTITY_NAME_BYTES} bytes`);
  }
  if (longerThan(o.key, MAX_KEY_BYTES)) throw new LimitError(`a key may be at most ${MAX_KEY_BYTES} bytes (entity \`${o.entity}\`)`);
  if (!isWellFormed(o.key) || !isWellFormed(o.entity)) {
    throw new UsageError(`a key or entity name holds a lone UTF-16 surrogate, which cannot be stored (entity \`${o.entity}\`)`);
  }
  if (o.op === "put") {
    if (o.value.length > MAX_VALUE_BYTES) {
      throw new LimitError(`a record may be at most ${MAX_VALUE_BYTES} bytes encoded, got ${o.value.length} (entity \`${o.entity}\`)`);
    }
    if (o.terms.length > MAX_TERMS_PER_RECORD) throw new LimitError(`at most ${MAX_TERMS_PER_RECORD} index terms per record`);
    for (const t of o.terms) {
      if (longerThan(t, MAX_KEY_BYTES)) throw new LimitError(`an index value may be at most ${MAX_KEY_BYTES} bytes`);
      if (!isWellFormed(t)) throw new UsageError("an index value holds a lone UTF-16 surrogate, which cannot be stored");
    }
  }
}

