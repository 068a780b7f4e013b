// Migration registry: every step of every entity, in any order.
// `cellar generate` adds an import and an entry for each stub it writes; the rest of this file is
// yours and is never rewritten.
import type { MigrationStep } from "../generated/migrations.js";
import { migrateFocusSessionsV2 } from "./focus_sessions/v2.js";
import { migrateFocusSessionsV3 } from "./focus_sessions/v3.js";

export const migrations: readonly MigrationStep[] = [
  migrateFocusSessionsV2,
  migrateFocusSessionsV3
];
