/**
 * `store.inspect()`: every stored record as protobuf JSON for support and inspection tools, sensitive fields
 * never opened (`"[redacted]"`). A record that does not decode is `E_SCHEMA_MISMATCH` (intact bytes of another
 * message type) or `E_CORRUPT` (and a `corruption` event), naming entity, file and offset. StoreImpl.inspect
 * (store.ts) calls it.
 */
import { type JsonValue, toJson } from "@bufbuild/protobuf";
import type { Engine, Loc } from "../storage/engine.js";
import { CellarError, CorruptionError, SchemaMismatchError, UsageError } from "../errors.js";
import { PayloadDecodeError, type ValueCodec } from "../crypto/value.js";
import { DecodeError } from "../format/bytes.js";
import type { EntityDefinition } from "./entity.js";
import type { Listeners } from "./events.js";
import type { RecordCodec } from "./record-codec.js";
import type { InspectedRecord } from "./types.js";
import { overdue, turn } from "../platform/turn.js";

export async function* inspectRecords(
  engine: Engine,
  records: RecordCodec,
  defs: ReadonlyMap<string, EntityDefinition>,
  listeners: Listeners,
  options?: { entities?: readonly string[] },
): AsyncGenerator<InspectedRecord> {
  const names = options?.entities ?? [...defs.keys()];
  for (const name of names) {
    const def = defs.get(name);
    if (!def) throw new UsageError(`no entity \`${name}\` in this store (storage names: ${[...defs.keys()].join(", ")})`);
    const codec = records.codecs.get(name)!;
    // A slice of records is decoded within one synchronous step (the engine's scan must not span a write or
    // a compaction, nor the consumer's awaits), then handed out; the next starts after its last key, after
    // a turn of the event loop when the slice ran long.
    let after: string | undefined;
    for (let more = true; more; ) {
      more = false;
      const slice: InspectedRecord[] = [];
      let failed: { e: unknown } | null = null;
      try {
        for (const [key, loc] of engine.scan(name, after)) {
          slice.push(inspectOne(engine, records, def, codec, listeners, key, loc));
          after = key;
          if (slice.length >= 256 || overdue()) {
            more = true;
            break;
          }
        }
      } catch (e) {
        failed = { e }; // after the records before it, as a walk record by record would
      }
      yield* slice;
      if (failed) throw failed.e;
      if (more && overdue()) await turn();
    }
  }
}

/** One record of `inspectRecords`, decoded and as JSON, sensitive fields redacted. */
function inspectOne(
  engine: Engine,
  records: RecordCodec,
  def: EntityDefinition,
  codec: ValueCodec,
  listeners: Listeners,
  key: string,
  loc: Loc,
): InspectedRecord {
  const name = def.name;
  let json: JsonValue;
  try {
    const { msg, redacted } = codec.decode(engine.read(name, loc), key, loc.version, records.keys, true);
    json = toJson(def.schema, msg, { alwaysEmitImplicit: false });
    if (redacted) json = codec.redact(json);
  } catch (e) {
    if (e instanceof CellarError) throw e;
    if (e instanceof PayloadDecodeError) {
      // Intact bytes that do not decode as the entity's message type: not damage (see RecordCodec.decode).
      const { file, offset } = engine.where(loc);
      throw new SchemaMismatchError(name, { key, stored: loc.version, expected: def.version, file, offset }, { cause: e.cause });
    }
    // Bytes that do not decode, or a message that has no JSON form (e.g. a Timestamp out of range):
    // the same error a read gives, naming entity, file and offset, never the record's key or value.
    const { file, offset } = engine.where(loc);
    const why = e instanceof DecodeError ? e.message : "the record does not decode to JSON";
    const err = new CorruptionError(file, offset, `bad payload (a \`${name}\` record: ${why})`);
    listeners.emit("corruption", err);
    throw err;
  }
  return { entity: name, key, version: loc.version, json };
}
