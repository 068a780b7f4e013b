// Migration of `focus_sessions` records from schema version 1 to 2.
// Written once by `cellar generate`; this file is yours from now on and is never overwritten or
// reformatted. Registered in ../registry.ts.
//
// Version 2 replaced `uint32 duration_seconds = 3` by `google.protobuf.Duration duration = 10` (field 3
// and its name are reserved). Protobuf would read a version 1 record without complaint, but its
// duration would sit in field 3, unknown to version 2, and read as unset: this step carries it over.
import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { defineMigration } from "../../generated/migrations.js";

export const migrateFocusSessionsV2 = defineMigration({
  entity: "focus_sessions",
  from: 1,
  to: 2,
  migrate(record) {
    // `record` is a `FocusSessionV1`: the record exactly as stored at version 1 (from the schema lock).
    // Every version 1 record has a duration (0 included), so every version 2 record gets one. The
    // result spreads a decoded message (it keeps `$typeName`), so nested fields must be messages too:
    // `create(DurationSchema, …)`, not a plain `{ seconds }`.
    const { durationSeconds, ...rest } = record;
    return { ...rest, duration: create(DurationSchema, { seconds: BigInt(durationSeconds) }) };
  },
});
