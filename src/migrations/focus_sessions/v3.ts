// Migration of `focus_sessions` records from schema version 2 to 3.
// Written once by `cellar generate`; this file is yours from now on and is never overwritten or
// reformatted. Registered in ../registry.ts.
//
// Version 3 replaced `bool completed = 7` by `FocusOutcome outcome = 11` (field 7 and its name are
// reserved). A version 2 record either ran to its planned end or was stopped before it; version 2 could
// not record an abandoned session, so no migrated record is `FOCUS_OUTCOME_ABANDONED`.
import { defineMigration } from "../../generated/migrations.js";
import { FocusOutcome } from "../../generated/examples/focus/v1/focus_pb.js";

export const migrateFocusSessionsV3 = defineMigration({
  entity: "focus_sessions",
  from: 2,
  to: 3,
  migrate(record) {
    // `record` is a `FocusSessionV2`: the record exactly as stored at version 2 (from the schema lock).
    const { completed, ...rest } = record;
    return { ...rest, outcome: completed ? FocusOutcome.COMPLETED : FocusOutcome.STOPPED_EARLY };
  },
});
