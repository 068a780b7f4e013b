/**
 * `cellar migrate <dir> --dry-run`: what opening the store with the app's schema would do to upgrade it:
 * per entity the stored versions and record counts against the schema's version, the migration steps that
 * would run (and whether each is registered), whether a verified pre-migration backup would be taken
 * first. Changes nothing (typed/describe.ts `planUpgradeDryRun`). Exit FINDINGS when the open would refuse.
 */
import type { Command } from "commander";
import { CliError, type CliContext, EXIT, setExitCode } from "../context.js";
import { type Colors, createOutput, table } from "../output.js";
import { addStoreOptions, prepareStore, type StoreCliOptions } from "../store-options.js";
import type { UpgradePlan } from "../../runtime/typed/describe.js";

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("migrate")
      .description("--dry-run: what an upgrade to the app's schema would do (the app migrates at open); changes nothing")
      .argument("<dir>", "the store directory")
      .option("--dry-run", "say what would be done (required: the migration itself runs when the app opens the store)"),
  ).action(async (dir: string, opts: StoreCliOptions & { dryRun?: boolean }) => {
    if (!opts.dryRun) {
      throw new CliError("`cellar migrate` only has --dry-run: the app migrates the store when it opens it (with a verified backup first)", EXIT.USAGE, "E_USAGE");
    }
    const out = createOutput(opts, ctx);
    const { abs, schema, key } = await prepareStore(dir, opts, ctx);
    const { describeStore, planUpgradeDryRun } = await import("../../runtime/typed/describe.js");
    const { defaultBackupDir } = await import("../../runtime/index.js");
    const d = await describeStore(schema.entities, { dir: abs, ...key });
    const plan = planUpgradeDryRun(d, schema.entities, schema.migrations ?? []);
    const backupDir = defaultBackupDir(abs);
    out.result({ dir: abs, dryRun: true, ...plan, backupDir: plan.backup ? backupDir : null, migrations: schema.migrations !== undefined }, () =>
      humanPlan(abs, plan, backupDir, out.color),
    );
    if (plan.blocked) setExitCode(ctx, EXIT.FINDINGS);
  });
}

function humanPlan(dir: string, p: UpgradePlan, backupDir: string, c: Colors): string {
  const rows = p.entities.map((e) => [
    e.name,
    String(e.schemaVersion),
    e.storedVersion !== undefined ? String(e.storedVersion) : "-",
    Object.entries(e.versions).map(([v, n]) => `v${v}:${n}`).join(" ") || "0",
    e.action === "migrate" ? c.yellow("migrate") : e.action === "newer" ? c.red("newer") : e.action,
    e.steps.map((s) => `${s.from}→${s.to}${s.registered ? "" : c.red(" (missing)")}`).join(", "),
    e.action === "migrate" ? String(e.toMigrate) : "",
  ]);
  const verdict = p.blocked
    ? c.red(`opening this store with the app's schema would fail: ${p.blocked}`)
    : p.wouldMigrate
      ? `opening this store with the app's schema would migrate ${p.entities.filter((e) => e.action === "migrate").length} entit(ies)${p.backup ? `, after a verified backup into ${backupDir}` : ""}`
      : c.green("nothing to migrate: every entity is at the app's schema version");
  return [`${c.bold("migrate --dry-run")} ${dir} (nothing was changed)`, table(["entity", "schema", "stored", "records by version", "action", "steps", "records to migrate"], rows, c), verdict].join("\n");
}
