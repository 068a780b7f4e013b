/**
 * `cellar inspect <dir>`: records as a table, one JSON document (`--json`) or NDJSON (`--ndjson`), filtered
 * by entity, key prefix or an index query (`--where`, run by the store's query engine), sensitive fields
 * `"[redacted]"` and never opened (`store.inspect`). Opened read-only (`redactSensitive`), or as a follower
 * while another process holds the store.
 */
import type { Command } from "commander";
import { CliError, type CliContext, EXIT } from "../context.js";
import { createOutput, type Output, toJsonText } from "../output.js";
import { addStoreOptions, asCli, loadSchema, openCliStore, type StoreCliOptions } from "../store-options.js";
import { parseWhere } from "../where.js";
import type { EntityDefinition, InspectedRecord, TypedStore } from "../../runtime/index.js";

interface InspectFlags extends StoreCliOptions {
  entity?: string[];
  keyPrefix?: string;
  where?: string[];
  limit?: number;
  scan?: boolean;
  ndjson?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];
const positive = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`--limit \`${v}\`: expected a whole number ≥ 1`, EXIT.USAGE, "E_USAGE");
  return n;
};

export function register(program: Command, ctx: CliContext): void {
  addStoreOptions(
    program
      .command("inspect")
      .description("records as a table, JSON or NDJSON, sensitive fields redacted; changes nothing")
      .argument("<dir>", "the store directory")
      .option("--entity <name>", "only this entity (storage name or store property); repeatable", collect)
      .option("--key-prefix <prefix>", "only records whose key starts with prefix")
      .option("--where <condition>", "an index query on the one --entity: field=value, field>=value, field<value, field^=prefix …; repeatable", collect)
      .option("--scan", "let --where check every record when no index serves it")
      .option("--limit <n>", "at most n records", positive)
      .option("--ndjson", "one JSON line per record"),
  ).action(async (dir: string, opts: InspectFlags) => {
    const out = createOutput(opts, ctx);
    if (opts.json && opts.ndjson) throw new CliError("give --json or --ndjson, not both", EXIT.USAGE, "E_USAGE");
    const { entities } = await loadSchema(opts, ctx);
    entitiesOf(entities, opts.entity); // an unknown name fails before the key is asked for
    const store = await openCliStore(dir, opts, ctx, { write: false });
    try {
      const records = await asCli(store, () => select(store, entities, opts, (label) => out.progress(label))); // reads through a follower are recorded
      if (opts.ndjson) for (const r of records) ctx.stdout.write(toJsonText(r) + "\n");
      else
        out.result({ records }, () =>
          records.length ? records.map((r) => `${out.color.bold(r.entity)} ${r.key} ${out.color.dim(`v${r.version}`)} ${toJsonText(r.json)}`).join("\n") : out.color.dim("(no records)"),
        );
    } finally {
      await store.close();
    }
  });
}

/** The entities asked for, by storage name or property: [property, definition]. */
function entitiesOf(entities: Record<string, EntityDefinition>, names: readonly string[] | undefined): [string, EntityDefinition][] {
  const all = Object.entries(entities);
  if (!names?.length) return all;
  return names.map((n) => {
    const hit = all.find(([prop, def]) => prop === n || def.name === n);
    if (!hit) throw new CliError(`no entity \`${n}\` in the schema (${all.map(([p, d]) => (p === d.name ? p : `${d.name} (${p})`)).join(", ")})`, EXIT.USAGE, "E_USAGE");
    return hit;
  });
}

async function select(store: TypedStore<any>, entities: Record<string, EntityDefinition>, opts: InspectFlags, progress: Output["progress"]): Promise<InspectedRecord[]> {
  const chosen = entitiesOf(entities, opts.entity);
  const limit = opts.limit ?? Infinity;
  let keep: ((r: InspectedRecord) => boolean) | null = null;
  let order: Map<string, number> | null = null;
  if (opts.where?.length) {
    if (chosen.length !== 1 || !opts.entity?.length) throw new CliError("--where needs exactly one --entity", EXIT.USAGE, "E_USAGE");
    const [prop, def] = chosen[0]!;
    if (def.kind !== "collection") throw new CliError(`--where: \`${def.name}\` is a singleton`, EXIT.USAGE, "E_USAGE");
    const where = parseWhere(opts.where, def.schema.fields as never);
    const { encodeKey } = await import("../../runtime/typed/values.js");
    const repo = (store as unknown as Record<string, { query(w: unknown, o?: unknown): Promise<Record<string, unknown>[]> }>)[prop]!;
    const found = await repo.query(where, { ...(Number.isFinite(limit) ? { limit } : {}), ...(opts.scan ? { scan: true } : {}) });
    order = new Map(found.map((r, i) => [encodeKey(r[def.key], def.keyKind), i]));
    keep = (r) => order!.has(r.key);
  }
  const records: InspectedRecord[] = [];
  const prefix = opts.keyPrefix;
  const bar = progress("reading records");
  let seen = 0;
  try {
    for await (const r of store.inspect({ entities: chosen.map(([, d]) => d.name) })) {
      if (++seen % 256 === 0) bar.update(seen);
      if (prefix !== undefined && !r.key.startsWith(prefix)) continue;
      if (keep && !keep(r)) continue;
      records.push(r);
      if (!order && records.length >= limit) break;
    }
  } finally {
    bar.stop();
  }
  if (order) records.sort((a, b) => order!.get(a.key)! - order!.get(b.key)!);
  return records.slice(0, limit);
}
