/**
 * Child process for the SIGKILL-mid-migration test: opens a store of `notes` v1 records as v3, with steps
 * that kill the process (SIGKILL, by itself) when they reach record `killAt`.
 *
 *   tsx migrate-child.ts <dir> <killAt>
 */
import { openStore } from "../../../src/runtime/typed/store.js";
import { notesAt, step1to2, step2to3 } from "./notes-versions.js";

const [dir, killAt] = process.argv.slice(2) as [string, string];
const key = new Uint8Array(32).fill(9);
await openStore(
  { notes: notesAt(3) },
  {
    dir,
    key,
    migrations: [
      {
        ...step1to2,
        migrate(old: Record<string, unknown>, ctx) {
          if (ctx.key === killAt) process.kill(process.pid, "SIGKILL");
          return step1to2.migrate(old, ctx);
        },
      },
      step2to3,
    ],
  },
);
process.exit(3); // never reached the record
