/**
 * Migrations: the contract between the steps an app writes (`src/migrations/<entity>/v<N>.ts`, made
 * with the generated, precisely typed `defineMigration`) and the runtime that applies them when a store
 * holds records older than the current schema.
 *
 * A step turns one record of `entity` stored at schema version `from` into one at `to` (= `from` + 1).
 * The runtime decodes the stored bytes with `fromSchema` (the exact historical message, generated from
 * the schema lock), calls `migrate`, and builds the result with `toSchema` (`create(toSchema, result)`)
 * before validating it. Steps chain: a record at version 1 of an entity at version 3 goes through the
 * step from 1 and then the step from 2.
 */
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import { CellarError } from "../errors.js";

/** What a step learns about the record it migrates. */
export interface MigrationContext {
  /** Storage name of the entity, e.g. `tasks`. */
  readonly entity: string;
  /** The record's key as text (`undefined` for a singleton). */
  readonly key: string | undefined;
  readonly from: number;
  readonly to: number;
}

/** One migration step of one entity, from schema version `from` to `to` (= `from` + 1). */
export interface MigrationStep {
  readonly entity: string;
  readonly from: number;
  readonly to: number;
  /** The entity's message as stored at version `from` (e.g. `TaskV1Schema`). */
  readonly fromSchema: DescMessage;
  /** The entity's message at version `to` (the current `TaskSchema`, or a later historical one). */
  readonly toSchema: DescMessage;
  /**
   * Turns a record decoded with `fromSchema` (its `MessageShape`) into an init shape of `toSchema`.
   * May be async. Throwing aborts the whole migration; the store is left as it was.
   */
  migrate(record: any, ctx: MigrationContext): MessageInitShape<any> | Promise<MessageInitShape<any>>;
}

/**
 * Thrown by a migration stub that nobody has written yet (code `E_MIGRATION`). `cellar check` finds
 * stubs statically (a `new MigrationNotImplementedError(…)` left in a file under `src/migrations/`)
 * and fails, so an unwritten step never ships.
 */
export class MigrationNotImplementedError extends CellarError {
  readonly entity: string;
  readonly from: number;
  readonly to: number;
  constructor(entity: string, from: number, to: number) {
    super(
      "E_MIGRATION",
      `migration of \`${entity}\` from schema version ${from} to ${to} is not implemented; write it in src/migrations/${entity}/v${to}.ts (.js in a JavaScript app)`,
    );
    this.entity = entity;
    this.from = from;
    this.to = to;
  }
}
