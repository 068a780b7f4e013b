/** Every system the benchmark knows, in report order: Cellar first, then the peers. */
import type { SystemSpec } from "./adapter.js";
import { cellarPlain, cellarSealed } from "./adapters/cellar.js";
import { confSpec } from "./adapters/conf.js";
import { levelSpec } from "./adapters/level.js";
import { lmdbSpec } from "./adapters/lmdb.js";
import { sqliteFull, sqliteNormal } from "./adapters/sqlite.js";

export const SYSTEMS: readonly SystemSpec[] = [
  cellarSealed,
  cellarPlain,
  sqliteFull,
  sqliteNormal,
  lmdbSpec,
  levelSpec,
  confSpec,
];

export function findSystem(id: string): SystemSpec {
  const spec = SYSTEMS.find((s) => s.id === id);
  if (!spec) throw new Error(`unknown system \`${id}\` (known: ${SYSTEMS.map((s) => s.id).join(", ")})`);
  return spec;
}
