// Migration registry: every step of every entity, in any order.
// `cellar generate` adds an import and an entry for each stub it writes; the rest of this file is
// yours and is never rewritten.
import type { MigrationStep } from "../generated/migrations.js";

export const migrations: readonly MigrationStep[] = [
];
