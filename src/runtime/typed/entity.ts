/**
 * Entity definitions: what generated code hands the runtime for each persisted
 * message. `protoc-gen-cellar` emits one `defineCollection(...)` or
 * `defineSingleton(...)` call per annotated message; apps never need to write
 * these by hand, but can.
 */
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { ZodType } from "zod";
import type { EntityCodec } from "../format/protowire.js";

/** The TypeScript types a key field may have: string, 32-bit integers (number) or 64-bit integers (bigint). */
export type KeyValue = string | number | bigint;

/** The protobuf scalar kind of a key field. */
export type KeyKind = "string" | "int32" | "uint32" | "int64" | "uint64";

/** Retention rules from `(cellar.v1.entity).retention`. */
export interface RetentionRule {
  /** Records whose `timestampField` is older than this many milliseconds are removed by cleanup. */
  readonly maxAgeMs?: number;
  /** Local name of a `google.protobuf.Timestamp` field the age is measured by. */
  readonly timestampField?: string;
  /** At most this many records are kept; the oldest by `timestampField` (or by key) go first. */
  readonly maxCount?: number;
}

/**
 * Record history from `(cellar.v1.entity).history`: each write of a record keeps the version it replaced
 * (docs/FORMAT.md, "Record history"). At least one limit is set.
 */
export interface HistoryRule {
  /** At most this many previous versions are kept per record (≥ 1); the oldest go first. */
  readonly keep?: number;
  /** Previous versions replaced longer ago than this many milliseconds are removed. */
  readonly maxAgeMs?: number;
}

interface EntityCommon<Desc extends DescMessage> {
  /** Storage name: stable even if the message is renamed. Unique within a store. */
  readonly name: string;
  /** Schema version of the current message shape (≥ 1). */
  readonly version: number;
  /** The protobuf-es message descriptor (`TaskSchema`). */
  readonly schema: Desc;
  /**
   * A zod schema for the *input* of a write (`MessageInitShape<Desc>`): fields
   * are optional unless annotated `required`, unknown keys are rejected.
   */
  readonly validator: ZodType;
  /**
   * Generated fast path (`<file>_codec.ts`): encodes a valid input without zod, `create` and `toBinary`,
   * and decodes without `fromBinary`, with the same results; optional (the runtime does without).
   */
  readonly codec?: EntityCodec;
  /** Local names (dotted paths for nested fields) of fields annotated `sensitive`. */
  readonly sensitive: readonly string[];
  /** Keep previous versions of each record (`repo.history()`, `repo.revert()`); off when absent. */
  readonly history?: HistoryRule;
}

/**
 * One index of a collection, as `(cellar.v1.entity).indexes` declares it: one field (`"status"`) or several
 * (`"project_id,created_at"`: a compound index, ordered by the first field, then the second, …).
 */
export interface IndexSpec {
  /**
   * Stable id: the components' proto field numbers joined by `,` (`"5,2"`). Stored in every record's index
   * terms (docs/FORMAT.md, "Index terms"), so renaming a field keeps its index; changing the fields makes a
   * new index, built at open.
   */
  readonly id: string;
  /** The components' local names (`projectId`, `createdAt`), in index order. */
  readonly fields: readonly string[];
  /** The declaration as the schema writes it (`"project_id,created_at"`), for messages. */
  readonly name: string;
}

export interface CollectionDefinition<
  Desc extends DescMessage = DescMessage,
  K extends KeyValue = KeyValue,
  I extends string = string,
> extends EntityCommon<Desc> {
  readonly kind: "collection";
  /** Local name of the key field. */
  readonly key: string;
  readonly keyKind: KeyKind;
  /**
   * Local names of the fields a query may name: every component of every index (scalars, enums, repeated
   * scalars in single-field indexes, `Timestamp`, `Duration`).
   */
  readonly indexes: readonly I[];
  /**
   * The indexes themselves. Generated code always sets it; a hand-written definition may leave it out, and
   * then each field of `indexes` is a single-field index of its own.
   */
  readonly indexSpecs?: readonly IndexSpec[];
  readonly retention?: RetentionRule;
  /** Phantom: the key's TypeScript type. */
  readonly __key?: K;
}

export interface SingletonDefinition<Desc extends DescMessage = DescMessage> extends EntityCommon<Desc> {
  readonly kind: "singleton";
  /** Values a never-written singleton starts with, on top of protobuf defaults. */
  readonly defaults?: MessageInitShape<Desc>;
}

export type EntityDefinition = CollectionDefinition<any, any, any> | SingletonDefinition<any>;

/** Define a keyed collection entity. Called by generated code. */
export function defineCollection<Desc extends DescMessage, K extends KeyValue, I extends string = never>(
  def: Omit<CollectionDefinition<Desc, K, I>, "kind" | "__key">,
): CollectionDefinition<Desc, K, I> {
  return Object.freeze({ ...def, kind: "collection" as const });
}

/** Define a singleton entity (settings-like: one value with defaults). Called by generated code. */
export function defineSingleton<Desc extends DescMessage>(
  def: Omit<SingletonDefinition<Desc>, "kind">,
): SingletonDefinition<Desc> {
  return Object.freeze({ ...def, kind: "singleton" as const });
}

/** The stored message type of an entity. */
export type EntityShape<D> = D extends CollectionDefinition<infer Desc, any, any>
  ? MessageShape<Desc>
  : D extends SingletonDefinition<infer Desc>
    ? MessageShape<Desc>
    : never;
