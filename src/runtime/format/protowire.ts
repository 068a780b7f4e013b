/**
 * Protobuf wire primitives for the per-entity codecs that protoc-gen-cellar emits (`<file>_codec.ts`).
 *
 * A generated codec is a fast path beside protobuf-es, never a second meaning of the bytes:
 * - its encoder takes a write's *input* (init object, message or spread), checks it exactly as the
 *   entity's zod validator would, and writes the same bytes as `toBinary(create(schema, input))`; for
 *   anything it does not handle (a map, a `Struct`, an unexpected prototype, a failing check) it answers
 *   `false` and the runtime takes the general path (zod, `create`, `toBinary`), which also produces the
 *   validation error;
 * - its decoder builds the same object as `fromBinary(schema, bytes)`; for anything it does not handle
 *   (an unknown field, a wire type it does not expect, malformed bytes) it answers `undefined` and the
 *   runtime calls `fromBinary`, which decodes or throws as it always did.
 * test/codec tests both claims with property tests against protobuf-es and zod.
 *
 * This file holds the contract and re-exports the primitives, so that runtime/index.ts (which generated code
 * imports) and the runtime's own modules import them from one place: ProtoWriter and the encode helpers are
 * in protowire-writer.ts, ProtoReader and `decodeWith` in protowire-reader.ts.
 */

import type { ProtoWriter } from "./protowire-writer.js";

export { decodeWith, MAX_DEPTH, ProtoReader } from "./protowire-reader.js";
export { bytesLength, encodeWith, isPlainObject, noUnknownFields, ProtoWriter } from "./protowire-writer.js";

/** What protoc-gen-cellar emits per entity (`TaskCodec`). */
export interface EntityCodec {
  /**
   * Validate `input` as the entity's zod validator does and append its protobuf encoding to `w`.
   * `false` when this input needs the general path; what was appended is then to be discarded.
   */
  readonly encode: (w: ProtoWriter, input: unknown) => boolean;
  /**
   * The message `fromBinary` would return, deeply frozen, or `undefined` when these bytes need `fromBinary`.
   */
  readonly decode: (bytes: Uint8Array) => object | undefined;
}
