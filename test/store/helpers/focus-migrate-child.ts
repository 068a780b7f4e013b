/**
 * Child process for the SIGKILL-mid-migration test of the committed `focus_sessions` fixtures: opens a
 * copy of a fixture store with the app's generated `openStore` (current version) and its registered
 * steps, the step into version 3 killing the process (SIGKILL, by itself) when it reaches record `killAt`.
 *
 *   tsx focus-migrate-child.ts <dir> <killAt>
 */
import { openStore } from "../../../src/generated/index.js";
import { migrations } from "../../../src/migrations/registry.js";
import { FIXTURE_KEY } from "../../fixtures/focus-history.js";

const [dir, killAt] = process.argv.slice(2) as [string, string];
await openStore({
  dir,
  key: FIXTURE_KEY,
  migrations: migrations.map((step) =>
    step.entity === "focus_sessions" && step.to === 3
      ? {
          ...step,
          migrate(record, ctx) {
            if (ctx.key === killAt) process.kill(process.pid, "SIGKILL");
            return step.migrate(record, ctx);
          },
        }
      : step,
  ),
});
process.exit(3); // never reached the record
