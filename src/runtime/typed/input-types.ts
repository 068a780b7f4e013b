/**
 * The types of what writes take and reads return (types.ts re-exports them): `Input` (a write's input for a
 * message type), `Frozen` and `StoredRecord` (a record as reads return it). Types only, no code.
 */
import type { DescMessage, Message, MessageShape, UnknownField } from "@bufbuild/protobuf";

/**
 * What a write accepts for a message type: every field optional, nested messages as plain objects or
 * messages, and — unlike protobuf-es's `MessageInit` — spreads of messages (`{ ...task, title }`, which
 * carry `$typeName`) at any depth.
 */
export type Input<T> = T extends Message
  ? { [P in keyof T as P extends "$unknown" ? never : P]?: P extends "$typeName" ? T[P] : InputField<T[P]> } & {
      $unknown?: readonly UnknownField[] | undefined;
    }
  : never;
export type InputField<F> = F extends Date | Uint8Array | bigint | boolean | string | number
  ? F
  : F extends Array<infer U>
    ? ReadonlyArray<InputField<U>>
    : F extends ReadonlyArray<infer U>
      ? ReadonlyArray<InputField<U>>
      : F extends Message
        ? Input<F>
        : F extends { case: infer C; value: infer V extends Message }
          ? { case: C; value: Input<V> }
          : F extends { case: string | undefined }
            ? Frozen<F>
            : F extends { [key: string | number]: infer V extends Message }
              ? { [key: string | number]: Input<V> }
              : Frozen<F>; // maps of scalars, Struct fields (JSON): a record's read-only ones are accepted

/**
 * A value as the store returns it: frozen at run time (a record, its lists, maps, oneofs and nested
 * messages), and read-only at every depth in its type. Byte arrays (`Uint8Array`) cannot be frozen and stay
 * as they are, and so does protobuf-es's `$unknown` (so that a record without lists still passes where
 * protobuf-es takes its message type, e.g. `timestampDate(task.createdAt)`). A record can be passed back to a
 * write (`put({ ...task, title })`): inputs accept read-only lists.
 */
export type Frozen<T> = T extends Uint8Array | bigint | string | number | boolean | symbol | null | undefined | Date | ((...a: never[]) => unknown)
  ? T
  : T extends ReadonlyArray<infer U>
    ? ReadonlyArray<Frozen<U>>
    : T extends object
      ? { readonly [P in keyof T]: P extends "$unknown" ? T[P] : Frozen<T[P]> }
      : T;

/** A stored record of an entity's message type, as reads return it (deeply read-only). */
export type StoredRecord<Desc extends DescMessage> = Frozen<MessageShape<Desc>>;

/** The write input of an entity's message type. */
export type EntityInput<Desc extends DescMessage> = Input<MessageShape<Desc>>;
